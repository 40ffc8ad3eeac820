"""Issue 16, loop protection: in ``adaptive`` mode a sync method runs on the event loop until one call takes
longer than ``ServerLimits.max_loop_time``; from then on it runs in the worker pool, so no method holds
the loop past the bound twice. A method declared ``@blocking`` (on the service or the implementation)
never runs on the loop. The second run of the slow method waits on an event while a fast call is
answered beside it: the loop stays responsive.
"""

from __future__ import annotations

import json
import threading
import time
from abc import abstractmethod
from typing import Any

import pytest
from fastapi import FastAPI

from rawhttp import Reader, connect, request, wait_until
from warpcall import (
    AbstractComponent,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    LocalComponentRegistry,
    Service,
    ServiceManager,
    ServiceModule,
    blocking,
    component,
    implementation,
    service,
)
from warpcall.di import create, module
from warpcall.server import protocol
from warpcall.server.limits import ServerLimits

pytestmark = pytest.mark.skipif(not protocol.SUPPORTED, reason="the installed uvicorn has no httptools protocol")

BOUND = 0.05
THREADS: dict[str, list[str]] = {}
SECOND_RUN = threading.Event()
RELEASE = threading.Event()


def note(name: str) -> int:
    THREADS.setdefault(name, []).append(threading.current_thread().name)
    return len(THREADS[name])


@service(name="guarded")
class GuardedService(Service):
    @abstractmethod
    def slow_once(self) -> str: ...

    @abstractmethod
    def quick(self) -> str: ...

    @blocking
    @abstractmethod
    def declared(self) -> str: ...

    @abstractmethod
    def implemented(self) -> str: ...


@component(name="loop", services=[GuardedService])
class LoopComponent(Component):
    pass


@implementation()
class GuardedServiceImpl(GuardedService):
    def slow_once(self) -> str:
        if note("slow_once") == 1:
            time.sleep(BOUND * 2)  # the first run outlasts the bound (on the loop: nothing else runs meanwhile)
        else:
            SECOND_RUN.set()
            RELEASE.wait(10)
        return "slow"

    def quick(self) -> str:
        note("quick")
        return "quick"

    def declared(self) -> str:
        note("declared")
        return "declared"

    @blocking
    def implemented(self) -> str:
        note("implemented")
        return "implemented"


@implementation()
class LoopComponentImpl(AbstractComponent, LoopComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://127.0.0.1:{port}")]


@pytest.fixture(scope="module", params=[{}, {"inline_protocol": False}], ids=["inline", "asgi"])
def server(request: Any) -> Any:
    THREADS.clear()
    SECOND_RUN.clear()
    RELEASE.clear()

    @module(imports=[ServiceModule])
    class LoopModule:
        @create()
        def create_registry(self) -> ComponentRegistry:
            return LocalComponentRegistry()

        @create()
        def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
            return FastAPIServer(FastAPI(), manager, registry, limits=ServerLimits(max_loop_time=BOUND),
                                 **request.param)

    environment = FastAPIServer.boot(LoopModule, host="127.0.0.1", port=0)
    try:
        yield environment.get(FastAPIServer)
    finally:
        RELEASE.set()
        environment.destroy()


def invoke(method: str) -> bytes:
    return request("/invoke", json.dumps({"method": f"loop:guarded:{method}", "args": []}).encode())


def call(port: int, method: str) -> Any:
    with connect(port) as sock:
        sock.sendall(invoke(method))
        status, _, body = Reader(sock).response()
    assert status.split()[1] == b"200", body
    return json.loads(body)["result"]


def in_pool(thread_name: str) -> bool:
    return thread_name.startswith("warpcall-sync")


def test_a_method_over_the_bound_never_runs_on_the_loop_again(server: Any) -> None:
    assert call(server.port, "quick") == "quick"
    loop_thread = THREADS["quick"][0]
    assert not in_pool(loop_thread)  # fast sync methods run on the loop
    assert call(server.port, "slow_once") == "slow"  # over the bound, on the loop
    assert THREADS["slow_once"] == [loop_thread]
    with connect(server.port) as sock:
        sock.sendall(invoke("slow_once"))
        wait_until(SECOND_RUN.is_set, what="the second run to start")
        # it is running (and holding its thread); the loop answers another call meanwhile
        assert call(server.port, "quick") == "quick"
        assert not RELEASE.is_set()
        RELEASE.set()
        status, _, body = Reader(sock).response()
    assert status.split()[1] == b"200" and json.loads(body)["result"] == "slow"
    assert in_pool(THREADS["slow_once"][1])
    assert THREADS["quick"][-1] == loop_thread  # quick still runs on the loop


@pytest.mark.parametrize("method", ["declared", "implemented"])
def test_a_blocking_method_never_runs_on_the_loop(server: Any, method: str) -> None:
    for _ in range(3):
        assert call(server.port, method) == method
    assert THREADS[method][-3:] and all(in_pool(name) for name in THREADS[method])


def test_the_blocking_marker_is_exported() -> None:
    import warpcall

    assert warpcall.blocking is blocking
    assert "blocking" in warpcall.__all__
