"""Issue 14, point 3: the keep-alive timer never closes a connection with a request under way.

Two or three requests in one chunk, the first answered at once (inline, on the default server),
the second a call that takes longer than the keep-alive timeout: every reply arrives, in order,
as a bare uvicorn + FastAPI answers them. Run on the inline protocol, with ``inline_protocol=False``
and behind a user middleware, with a short keep-alive so the test takes about a second.
"""

from __future__ import annotations

import asyncio
import json
from abc import abstractmethod
from typing import Any

import pytest
from fastapi import FastAPI, Request

from rawhttp import Reader, UvicornReference, connect, request
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
    component,
    implementation,
    service,
)
from warpcall.di import create, module
from warpcall.server import protocol
from warpcall.server.limits import ServerLimits

pytestmark = pytest.mark.skipif(not protocol.SUPPORTED, reason="the installed uvicorn has no httptools protocol")

KEEP_ALIVE = 0.3
SLOW = 0.6  # longer than the keep-alive timeout


@service(name="ticker")
class TickerService(Service):
    @abstractmethod
    def echo(self, value: str) -> str: ...

    @abstractmethod
    async def later(self, seconds: float) -> float: ...


@component(name="keepalive", services=[TickerService])
class KeepAliveComponent(Component):
    pass


@implementation()
class TickerServiceImpl(TickerService):
    def echo(self, value: str) -> str:
        return value

    async def later(self, seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds


@implementation()
class KeepAliveComponentImpl(AbstractComponent, KeepAliveComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://127.0.0.1:{port}")]


def with_middleware() -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def pass_through(request: Request, call_next: Any) -> Any:
        return await call_next(request)

    return app


def reference_app() -> FastAPI:
    """The same two methods as plain FastAPI endpoints behind one POST /invoke."""
    app = FastAPI()

    @app.post("/invoke")
    async def invoke(request: Request) -> dict[str, Any]:
        envelope = await request.json()
        method, args = envelope["method"].rsplit(":", 1)[1], envelope["args"]
        if method == "later":
            await asyncio.sleep(args[0])
        return {"result": args[0], "exception": None}

    return app


VARIANTS = {
    "inline": (FastAPI, {}),
    "asgi": (FastAPI, {"inline_protocol": False}),
    "middleware": (with_middleware, {}),
}


@pytest.fixture(scope="module", params=[*VARIANTS, "reference"])
def port(request: Any) -> Any:
    if request.param == "reference":
        with UvicornReference(reference_app(), timeout_keep_alive=KEEP_ALIVE) as reference:
            yield reference.port
        return
    app_factory, options = VARIANTS[request.param]

    @module(imports=[ServiceModule])
    class KeepAliveModule:
        @create()
        def create_registry(self) -> ComponentRegistry:
            return LocalComponentRegistry()

        @create()
        def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
            limits = ServerLimits(idle_timeout=KEEP_ALIVE)
            return FastAPIServer(app_factory(), manager, registry, limits=limits, **options)

    environment = FastAPIServer.boot(KeepAliveModule, host="127.0.0.1", port=0)
    try:
        yield environment.get(FastAPIServer).port
    finally:
        environment.destroy()


def call(method: str, arg: Any) -> bytes:
    return request("/invoke", json.dumps({"method": f"keepalive:ticker:{method}", "args": [arg]}).encode())


def results(reader: Reader, count: int) -> list[Any]:
    replies = [reader.response() for _ in range(count)]
    assert [status for status, _, _ in replies] == [b"HTTP/1.1 200 OK"] * count
    return [json.loads(body)["result"] for _, _, body in replies]


@pytest.mark.parametrize("calls", [
    [("echo", "first"), ("later", SLOW)],
    [("echo", "first"), ("later", SLOW), ("echo", "third")],
    [("later", SLOW), ("echo", "second")],
], ids=["answered-then-slow", "answered-slow-answered", "slow-then-answered"])
def test_pipelined_requests_outliving_the_keep_alive_timeout_are_all_answered_in_order(port, calls):
    with connect(port) as sock:
        sock.sendall(b"".join(call(method, arg) for method, arg in calls))
        reader = Reader(sock)
        assert results(reader, len(calls)) == [arg for _, arg in calls]
        # and once nothing is under way, the keep-alive timer closes the idle connection, within its promise
        sock.settimeout(KEEP_ALIVE + 0.5)
        assert reader.closed()


def test_a_slow_call_after_an_answered_one_keeps_its_connection(port):
    with connect(port) as sock:
        reader = Reader(sock)
        sock.sendall(call("echo", "first"))
        assert results(reader, 1) == ["first"]
        sock.sendall(call("later", SLOW) + call("echo", "after"))
        assert results(reader, 2) == [SLOW, "after"]
