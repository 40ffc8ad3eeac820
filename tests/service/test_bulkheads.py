"""Issue 16, bulkheads on the server: worker threads, their share per method, and the queue bound.

A slow sync method holds at most ``method_share`` of the workers: with its calls beyond that
waiting, calls to other methods (sync and async, ``/invoke`` and REST) are answered while every
slow call is still running. Beyond ``max_queued`` waiting calls the server answers 503 with
``Retry-After``, the envelope naming ``OverloadedException`` (the client raises it with
``retry_after`` filled in). The slow method waits on an event rather than sleeping, so the
tests assert what overlaps, not how long anything takes.
"""

from __future__ import annotations

import json
import threading
from abc import abstractmethod
from contextlib import ExitStack
from typing import Any

import pytest
from fastapi import FastAPI, Request

from rawhttp import Reader, connect, request, wait_until
from warpcall import (
    AbstractComponent,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    LocalComponentRegistry,
    OverloadedException,
    Service,
    ServiceManager,
    ServiceModule,
    blocking,
    component,
    get,
    implementation,
    rest,
    service,
)
from warpcall.channels.dispatch import DispatchJSONChannel
from warpcall.di import create, module
from warpcall.exceptions import ServiceException
from warpcall.server import protocol
from warpcall.server.limits import ServerLimits

pytestmark = pytest.mark.skipif(not protocol.SUPPORTED, reason="the installed uvicorn has no httptools protocol")

WORKERS = 4
QUEUED = 3
RETRY_AFTER = 7
#: 4 workers, at most 2 per method, 3 calls waiting at most
LIMITS = ServerLimits(max_workers=WORKERS, method_share=0.5, max_queued=QUEUED, retry_after=RETRY_AFTER)

RELEASE = threading.Event()
RUNNING = {"slow": 0, "most": 0}
LOCK = threading.Lock()


@service(name="mixed")
@rest("/mixed")
class MixedService(Service):
    @get("/slow")
    @abstractmethod
    def slow(self) -> str: ...

    @get("/fast")
    @abstractmethod
    def fast(self) -> str: ...

    @get("/fast-async")
    @abstractmethod
    async def fast_async(self) -> str: ...


@component(name="bulkheads", services=[MixedService])
class BulkheadComponent(Component):
    pass


@implementation()
class MixedServiceImpl(MixedService):
    @blocking
    def slow(self) -> str:
        with LOCK:
            RUNNING["slow"] += 1
            RUNNING["most"] = max(RUNNING["most"], RUNNING["slow"])
        try:
            RELEASE.wait(10)
        finally:
            with LOCK:
                RUNNING["slow"] -= 1
        return "slow"

    @blocking  # through the worker pool too: it needs a worker the slow method has not taken
    def fast(self) -> str:
        return "fast"

    async def fast_async(self) -> str:
        return "fast-async"


@implementation()
class BulkheadComponentImpl(AbstractComponent, BulkheadComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://127.0.0.1:{port}")]


def with_middleware() -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def pass_through(request: Request, call_next: Any) -> Any:
        return await call_next(request)

    return app


VARIANTS = {
    "inline": (FastAPI, {}),
    "asgi": (FastAPI, {"inline_protocol": False}),
    "middleware": (with_middleware, {}),
}


@pytest.fixture(scope="module", params=list(VARIANTS))
def server(request: Any) -> Any:
    app_factory, options = VARIANTS[request.param]

    @module(imports=[ServiceModule])
    class BulkheadModule:
        @create()
        def create_registry(self) -> ComponentRegistry:
            return LocalComponentRegistry()

        @create()
        def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
            return FastAPIServer(app_factory(), manager, registry, limits=LIMITS, **options)

    environment = FastAPIServer.boot(BulkheadModule, host="127.0.0.1", port=0)
    try:
        yield environment.get(FastAPIServer)
    finally:
        RELEASE.set()
        environment.destroy()


@pytest.fixture(autouse=True)
def released() -> Any:
    RELEASE.clear()
    RUNNING["most"] = 0
    yield
    RELEASE.set()


def invoke(method: str) -> bytes:
    return request("/invoke", json.dumps({"method": f"bulkheads:mixed:{method}", "args": []}).encode())


def rest_get(path: str) -> bytes:
    return f"GET /mixed/{path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n".encode()


def call(port: int, data: bytes) -> tuple[int, dict[bytes, bytes], Any]:
    with connect(port) as sock:
        sock.sendall(data)
        status, headers, body = Reader(sock).response()
    return int(status.split()[1]), headers, json.loads(body)


def slow_calls(stack: ExitStack, port: int, data: bytes, count: int) -> list[Reader]:
    """``count`` slow calls on their own connections, left running; their readers."""
    readers = []
    for _ in range(count):
        sock = stack.enter_context(connect(port))
        sock.sendall(data)
        readers.append(Reader(sock))
    return readers


KINDS = {"dispatch": invoke, "rest": rest_get}
FAST = {"dispatch": ("fast", "fast_async"), "rest": ("fast", "fast-async")}


@pytest.mark.parametrize("slow_kind", list(KINDS))
@pytest.mark.parametrize("fast_kind", list(KINDS))
def test_a_slow_method_never_holds_every_worker(server: Any, slow_kind: str, fast_kind: str) -> None:
    with ExitStack() as stack:
        readers = slow_calls(stack, server.port, KINDS[slow_kind]("slow"), 3)
        wait_until(lambda: RUNNING["slow"] == 2, what="two slow calls running")
        # the third waits in the slow method's lane; the other workers answer everything else meanwhile
        for name in FAST[fast_kind]:
            status, _, reply = call(server.port, KINDS[fast_kind](name))
            assert status == 200
            assert (reply["result"] if fast_kind == "dispatch" else reply) == name.replace("_", "-")
        assert RUNNING["slow"] == 2 and not RELEASE.is_set()  # every slow call still running or waiting
        RELEASE.set()
        replies = [reader.response() for reader in readers]
    assert [int(status.split()[1]) for status, _, _ in replies] == [200, 200, 200]
    assert RUNNING["most"] == 2  # the share: never more than half the workers


@pytest.mark.parametrize("kind", list(KINDS))
def test_beyond_the_queue_bound_calls_are_refused_with_503(server: Any, kind: str) -> None:
    with ExitStack() as stack:
        # 2 running, then 3 waiting (the slow method's lane): the queue is full
        readers = slow_calls(stack, server.port, KINDS[kind]("slow"), 2 + QUEUED)
        wait_until(lambda: RUNNING["slow"] == 2, what="two slow calls running")
        wait_until(lambda: server.endpoint.sync_calls.pool.queued == QUEUED, what="three calls waiting")
        status, headers, reply = call(server.port, KINDS[kind]("fast"))
        assert status == 503
        assert headers[b"retry-after"] == b"%d" % RETRY_AFTER
        name = reply["exception"]["type"] if kind == "dispatch" else reply["type"]
        assert name == "OverloadedException"
        # async work takes no worker: still answered
        assert call(server.port, KINDS[kind]("fast_async" if kind == "dispatch" else "fast-async"))[0] == 200
        RELEASE.set()
        statuses = [int(reader.response()[0].split()[1]) for reader in readers]
    assert statuses == [200] * (2 + QUEUED)  # the queued ones were run, none lost
    assert call(server.port, KINDS[kind]("fast"))[0] == 200  # and the queue has room again


def test_the_client_raises_overloaded_with_retry_after(server: Any) -> None:
    with ExitStack() as stack:
        slow_calls(stack, server.port, invoke("slow"), 2 + QUEUED)
        wait_until(lambda: server.endpoint.sync_calls.pool.queued == QUEUED, what="three calls waiting")
        with connect(server.port) as sock:
            sock.sendall(invoke("fast"))
            status, headers, body = Reader(sock).response()
        RELEASE.set()
    reply_headers = [(name.decode(), value.decode()) for name, value in headers.items()]
    with pytest.raises(OverloadedException) as raised:
        DispatchJSONChannel()._raise_error_reply("bulkheads:mixed:fast", server.url, int(status.split()[1]),
                                                 reply_headers, body)
    assert raised.value.retry_after == RETRY_AFTER


@pytest.mark.parametrize(("field", "value"), [
    ("max_workers", 0), ("max_queued", 0), ("method_share", 0), ("method_share", 1.5), ("retry_after", 0),
    ("max_loop_time", 0), ("max_workers", 2.5),
])
def test_bad_bulkhead_settings_are_refused(field: str, value: Any) -> None:
    with pytest.raises(ServiceException, match=field):
        ServerLimits(**{field: value})


def test_the_defaults() -> None:
    limits = ServerLimits()
    assert (limits.max_workers, limits.max_queued, limits.method_share, limits.retry_after, limits.max_loop_time) == (
        32, 1024, 0.5, 1, 0.02
    )
    assert limits.method_workers == 16
    assert ServerLimits(max_workers=1, method_share=0.1).method_workers == 1
