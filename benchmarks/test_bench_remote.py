"""Remote calls, warpcall beside aspyx-service, server in a separate process on 127.0.0.1.

Run: ``pytest benchmarks/test_bench_remote.py --benchmark-only --benchmark-group-by=group``.
Groups: ``<payload>-<sync|async>`` holds every channel of both frameworks for that payload;
``throughput-8-threads`` holds the time for 8 client threads x 50 ``data()`` calls.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from bench_api import BenchComponent, BenchService
from workload import DATA, PYDANTIC

from warpcall import ChannelAddress, ComponentRegistry, LocalComponentRegistry, ServiceManager, ServiceModule
from warpcall.di import Environment, create, module
from warpcall.service import Declarations

WARPCALL_CHANNELS = ["dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest"]
ASPYX_CHANNELS = ["dispatch-json", "dispatch-msgpack", "rest"]
PAYLOADS = {"hello": "hello world", "data": DATA, "pydantic": PYDANTIC}
THREADS, CALLS_PER_THREAD = 8, 50


@module(imports=[ServiceModule])
class BenchClientModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()


@pytest.fixture(scope="module")
def warpcall_manager(warpcall_server: str) -> Iterator[ServiceManager]:
    environment = Environment(BenchClientModule)
    descriptor = Declarations.by_type[BenchComponent]
    environment.get(ComponentRegistry).register(
        descriptor, [ChannelAddress(name, warpcall_server) for name in WARPCALL_CHANNELS]
    )
    yield environment.get(ServiceManager)
    environment.destroy()


@pytest.fixture(scope="module")
def aspyx_manager(aspyx_server: str) -> Iterator[Any]:
    import aspyx_bench

    environment, manager = aspyx_bench.client(aspyx_server)
    yield manager
    environment.destroy()


def proxy_for(request: pytest.FixtureRequest, framework: str, channel: str) -> Any:
    if framework == "warpcall":
        return request.getfixturevalue("warpcall_manager").get_service(BenchService, channel)
    manager = request.getfixturevalue("aspyx_manager")  # skips where aspyx-service is not installed
    import aspyx_bench

    return manager.get_service(aspyx_bench.AspyxBenchService, preferred_channel=channel)


CASES = [("warpcall", c) for c in WARPCALL_CHANNELS] + [("aspyx", c) for c in ASPYX_CHANNELS]


@pytest.mark.parametrize("payload", list(PAYLOADS))
@pytest.mark.parametrize(("framework", "channel"), CASES, ids=[f"{f}-{c}" for f, c in CASES])
def test_sync_call(benchmark, request, framework, channel, payload):
    benchmark.group = f"{payload}-sync"
    proxy = proxy_for(request, framework, channel)
    method: Callable[[Any], Any] = getattr(proxy, payload)
    argument = PAYLOADS[payload]
    assert method(argument) == argument
    benchmark(method, argument)


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    # one loop for every async case: aspyx-service keeps its async clients bound to the first loop it ran on
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.mark.parametrize("payload", list(PAYLOADS))
@pytest.mark.parametrize(("framework", "channel"), CASES, ids=[f"{f}-{c}" for f, c in CASES])
def test_async_call(benchmark, request, loop, framework, channel, payload):
    benchmark.group = f"{payload}-async"
    proxy = proxy_for(request, framework, channel)
    method = getattr(proxy, f"{payload}_async")
    argument = PAYLOADS[payload]
    assert loop.run_until_complete(method(argument)) == argument
    benchmark(lambda: loop.run_until_complete(method(argument)))


@pytest.mark.parametrize(("framework", "channel"), CASES, ids=[f"{f}-{c}" for f, c in CASES])
def test_throughput_8_threads(benchmark, request, framework, channel):
    benchmark.group = "throughput-8-threads"
    proxy = proxy_for(request, framework, channel)

    def burst() -> None:
        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(CALLS_PER_THREAD):
                    proxy.data(DATA)
            except BaseException as exc:  # surfaced below; a thread must not swallow it
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors[0]

    benchmark.extra_info["calls"] = THREADS * CALLS_PER_THREAD
    benchmark.pedantic(burst, rounds=5, warmup_rounds=1)
