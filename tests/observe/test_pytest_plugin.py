"""The pytest plugin, run by pytester on a tiny user project: a child server, proxies, extra_info in the JSON."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
pytest.importorskip("pytest_benchmark")

API = '''
from abc import abstractmethod
from dataclasses import dataclass

from warpcall import Component, Service, component, post, rest, service


@dataclass
class Point:
    x: int
    y: int


@service(name="geometry")
@rest("/geometry")
class GeometryService(Service):
    @post("/mirror")
    @abstractmethod
    def mirror(self, point: Point) -> Point: ...

    @post("/pid")
    @abstractmethod
    def pid(self) -> int: ...

    @post("/mirror-async")
    @abstractmethod
    async def mirror_async(self, point: Point) -> Point: ...


@component(name="geometry-component", services=[GeometryService])
class GeometryComponent(Component):
    pass
'''

SERVER = '''
import os

from fastapi import FastAPI

from myproject.api import GeometryComponent, GeometryService, Point
from warpcall import (AbstractComponent, ChannelAddress, ComponentRegistry, FastAPIServer,
                      LocalComponentRegistry, ServiceManager, ServiceModule, implementation)
from warpcall.di import create, module


@implementation()
class GeometryServiceImpl(GeometryService):
    def mirror(self, point: Point) -> Point:
        return Point(point.y, point.x)

    def pid(self) -> int:
        return os.getpid()

    async def mirror_async(self, point: Point) -> Point:
        return Point(point.y, point.x)


@implementation()
class GeometryComponentImpl(AbstractComponent, GeometryComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress(c, f"http://127.0.0.1:{port}")
                for c in ("dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest")]


@module(imports=[ServiceModule])
class ServerModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry)
'''

BENCH = '''
import asyncio
import os

import pytest

from myproject.api import GeometryService, Point

pytestmark = pytest.mark.warpcall_server("myproject.server:ServerModule")
CHANNELS = ["dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest"]


@pytest.mark.parametrize("channel", CHANNELS)
def test_mirror(benchmark, warpcall_service, channel):
    proxy = warpcall_service(GeometryService, channel)
    assert proxy.mirror(Point(1, 2)) == Point(2, 1)
    benchmark(proxy.mirror, Point(3, 4))


def test_pedantic(benchmark, warpcall_service):
    proxy = warpcall_service(GeometryService, "dispatch-msgpack")
    benchmark.pedantic(proxy.mirror, args=(Point(5, 6),), rounds=5)


def test_async(benchmark, warpcall_service):
    proxy = warpcall_service(GeometryService, "dispatch-json")
    loop = asyncio.new_event_loop()
    try:
        benchmark(lambda: loop.run_until_complete(proxy.mirror_async(Point(7, 8))))
    finally:
        loop.close()


def test_during(benchmark, warpcall_service, warpcall_profile):
    benchmark(warpcall_service(GeometryService, "rest").mirror, Point(1, 1))
    assert warpcall_profile.records


def test_served_by_a_child_process(warpcall_service, warpcall_server_url):
    assert warpcall_server_url.startswith("http://127.0.0.1:")
    with open("pids.txt", "a") as out:
        out.write(f"{warpcall_service(GeometryService, 'dispatch-json').pid()} {os.getpid()}\\n")
'''


def write_project(pytester: pytest.Pytester, ini: str = "") -> None:
    package = pytester.mkpydir("myproject")
    (package / "api.py").write_text(textwrap.dedent(API))
    (package / "server.py").write_text(textwrap.dedent(SERVER))
    pytester.makeini(f"[pytest]\npythonpath = .\nwarpcall_profile_calls = 30\n{ini}")


def test_benchmarks_get_the_phase_breakdown_in_their_json(pytester: pytest.Pytester) -> None:
    write_project(pytester)
    pytester.makepyfile(test_bench=BENCH)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--benchmark-json=out.json", "--benchmark-min-rounds=3",
                                           "--benchmark-max-time=0.05", timeout=300)
    result.assert_outcomes(passed=8)
    document = json.loads(Path(pytester.path / "out.json").read_text())
    by_name = {b["name"]: b for b in document["benchmarks"]}
    assert sorted(by_name) == sorted(
        [f"test_mirror[{c}]" for c in ("dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest")]
        + ["test_pedantic", "test_async", "test_during"]
    )
    for name, bench in by_name.items():
        info = bench["extra_info"]["warpcall"]
        (call,) = info["calls"]
        channel = name[len("test_mirror["):-1] if name.startswith("test_mirror") else {
            "test_pedantic": "dispatch-msgpack", "test_async": "dispatch-json", "test_during": "rest"}[name]
        expected_method = "mirror_async" if name == "test_async" else "mirror"
        assert (call["method"], call["channel"]) == (f"geometry-component:geometry:{expected_method}", channel)
        assert info["unit"] == "ns"
        if name == "test_during":
            assert info["mode"] == "during"
            assert call["count"] >= bench["stats"]["rounds"]  # every benchmarked call, profiled
        else:
            assert info["mode"] == "after" and info["profiled_calls"] == 30 and call["count"] == 30
        total = call["total"]
        assert 0 < total["p50"] <= total["p90"] <= total["p99"] <= total["max"]
        assert {"marshal", "send", "first_byte", "decode"} <= set(call["client"]), call["client"]
        assert "impl" in call["server"], call["server"]
    # a child process served the calls, not the test process
    pids = {tuple(line.split()) for line in (pytester.path / "pids.txt").read_text().splitlines()}
    ((server_pid, test_pid),) = pids
    assert server_pid != test_pid


def test_disabled_benchmarks_still_run_the_calls(pytester: pytest.Pytester) -> None:
    write_project(pytester)
    pytester.makepyfile(test_bench=BENCH)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--benchmark-disable", timeout=300)
    result.assert_outcomes(passed=8)


def test_module_from_the_command_line_or_ini_and_override_fixture(pytester: pytest.Pytester) -> None:
    write_project(pytester, ini="warpcall_server = myproject.server")
    pytester.makepyfile(
        test_plain="""
        import pytest

        from myproject.api import GeometryService, Point

        def test_from_ini(warpcall_service):
            assert warpcall_service(GeometryService, "dispatch-protobuf").mirror(Point(1, 2)) == Point(2, 1)

        def test_remote(warpcall_remote, warpcall_server_url):
            assert warpcall_remote.url == warpcall_server_url
            assert warpcall_remote.get(GeometryService, "rest").mirror(Point(0, 9)) == Point(9, 0)

        # one child per module: two spellings of the same module are two servers (as two releases would be)
        @pytest.mark.parametrize("warpcall_server_module", ["myproject.server", "myproject.server:ServerModule"])
        def test_parametrized(warpcall_service, warpcall_server_module):
            with open("pids.txt", "a") as out:
                out.write(f"{warpcall_server_module} {warpcall_service(GeometryService, 'dispatch-json').pid()}\\n")
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=300).assert_outcomes(passed=4)
    pids = dict(line.split() for line in (pytester.path / "pids.txt").read_text().splitlines())
    assert set(pids) == {"myproject.server", "myproject.server:ServerModule"} and len(set(pids.values())) == 2
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--warpcall-server", "myproject.server:NoSuchModule", timeout=300
    )
    result.assert_outcomes(errors=2, passed=2)  # the parametrized test names its own module
    result.stdout.fnmatch_lines(
        [
            "*warpcall_server 'myproject.server:NoSuchModule' did not start*did not serve: exited with code 2*",
            "*myproject.server has no attribute 'NoSuchModule'*",
        ]
    )


def test_no_module_configured_is_a_clear_usage_error(pytester: pytest.Pytester) -> None:
    write_project(pytester)
    pytester.makepyfile(
        test_plain="""
        from myproject.api import GeometryService

        def test_one(warpcall_service):
            warpcall_service(GeometryService)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=300)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*which module should warpcall_service serve?*"])
