"""Issue 16, deadlines on the server: ``x-rpc-timeout`` (the caller's remaining whole milliseconds).

On every path a request takes -- the one-chunk ``POST /invoke`` recognised from its bytes, a request
held by the protocol (head and body in separate reads), the ASGI app (``inline_protocol=False``),
the REST fast path and FastAPI's own route (an app with a user middleware) -- the server:

- runs the implementation with the deadline set: ``remaining()`` tells it the time left (sync on
  the loop, sync in the worker pool, async);
- refuses work whose deadline has already passed: 504, ``DeadlineExceeded``, not run;
- refuses a malformed value: 400, ``MalformedRequestException`` (dispatch and REST alike);
- drops a queued call whose deadline passes while it waits for a worker: 504, never started.

The client maps the 504 envelope to :class:`~warpcall.exceptions.DeadlineExceeded`.
"""

from __future__ import annotations

import json
import threading
import time
from abc import abstractmethod
from typing import Any

import pytest
from fastapi import FastAPI, Request

from rawhttp import Reader, connect, request, wait_until
from warpcall import (
    AbstractComponent,
    ChannelAddress,
    Component,
    ComponentRegistry,
    DeadlineExceeded,
    FastAPIServer,
    LocalComponentRegistry,
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
from warpcall.resilience.deadline import remaining
from warpcall.server import protocol
from warpcall.server.limits import ServerLimits

pytestmark = pytest.mark.skipif(not protocol.SUPPORTED, reason="the installed uvicorn has no httptools protocol")

#: one worker: a held call keeps the next one queued
LIMITS = ServerLimits(max_workers=1, method_share=1.0)

RUNS: dict[str, int] = {}
RELEASE = threading.Event()
HOLDING = threading.Event()


def ran(name: str) -> None:
    RUNS[name] = RUNS.get(name, 0) + 1


@service(name="clock")
@rest("/clock")
class ClockService(Service):
    @get("/sync")
    @abstractmethod
    def sync_left(self) -> float | None: ...

    @get("/pooled")
    @abstractmethod
    def pooled_left(self) -> float | None: ...

    @get("/async")
    @abstractmethod
    async def async_left(self) -> float | None: ...

    @get("/hold")
    @abstractmethod
    def hold(self) -> bool: ...


@component(name="deadlines", services=[ClockService])
class DeadlineComponent(Component):
    pass


@implementation()
class ClockServiceImpl(ClockService):
    def sync_left(self) -> float | None:
        ran("sync_left")
        return remaining()

    @blocking
    def pooled_left(self) -> float | None:
        ran("pooled_left")
        return remaining()

    async def async_left(self) -> float | None:
        ran("async_left")
        return remaining()

    @blocking
    def hold(self) -> bool:
        HOLDING.set()
        return RELEASE.wait(10)


@implementation()
class DeadlineComponentImpl(AbstractComponent, DeadlineComponent):
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
    class DeadlineModule:
        @create()
        def create_registry(self) -> ComponentRegistry:
            return LocalComponentRegistry()

        @create()
        def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
            return FastAPIServer(app_factory(), manager, registry, limits=LIMITS, **options)

    environment = FastAPIServer.boot(DeadlineModule, host="127.0.0.1", port=0)
    try:
        server = environment.get(FastAPIServer)
        server.variant = request.param
        yield server
    finally:
        RELEASE.set()
        environment.destroy()


def invoke_bytes(method: str, timeout: str | None) -> bytes:
    body = json.dumps({"method": f"deadlines:clock:{method}", "args": []}).encode()
    extra = "" if timeout is None else f"x-rpc-timeout: {timeout}\r\n"
    return request("/invoke", body, extra=extra)


def rest_bytes(path: str, timeout: str | None) -> bytes:
    head = f"GET /clock/{path} HTTP/1.1\r\nhost: 127.0.0.1\r\n"
    if timeout is not None:
        head += f"x-rpc-timeout: {timeout}\r\n"
    return (head + "\r\n").encode()


#: a header the one-chunk recogniser leaves to uvicorn's parser (obs-text): the protocol then holds the request
HELD = b"x-held: caf\xe9\r\n"


def exchange(server: Any, data: bytes, held: bool = False) -> tuple[int, dict[bytes, bytes], Any]:
    """Send ``data`` in one write (``held``: through uvicorn's parser) and read the reply: status, headers, JSON."""
    if held:
        data = data.replace(b"\r\n", b"\r\n" + HELD, 1)
    stats = server.protocol_class.stats
    unparsed = stats.unparsed
    with connect(server.port) as sock:
        sock.sendall(data)
        status, headers, body = Reader(sock).response()
    if held:
        assert stats.unparsed == unparsed
    return int(status.split()[1]), headers, json.loads(body)


DISPATCH_PATHS = ["one-chunk", "held"]


@pytest.mark.parametrize("path", DISPATCH_PATHS)
@pytest.mark.parametrize("method", ["sync_left", "pooled_left", "async_left"])
def test_the_implementation_sees_the_time_left(server: Any, method: str, path: str) -> None:
    unparsed = server.protocol_class.stats.unparsed
    status, _, reply = exchange(server, invoke_bytes(method, "5000"), held=path == "held")
    assert status == 200, reply
    assert 0 < reply["result"] <= 5.0
    if server.variant == "inline" and path == "one-chunk":  # answered straight from the bytes, header included
        assert server.protocol_class.stats.unparsed == unparsed + 1
    status, _, reply = exchange(server, invoke_bytes(method, None), held=path == "held")
    assert (status, reply["result"]) == (200, None)


@pytest.mark.parametrize("path", ["sync", "pooled", "async"])
def test_a_rest_implementation_sees_the_time_left(server: Any, path: str) -> None:
    status, _, reply = exchange(server, rest_bytes(path, "5000"))
    assert status == 200, reply
    assert 0 < reply <= 5.0
    assert exchange(server, rest_bytes(path, None))[1:] == exchange(server, rest_bytes(path, None))[1:]
    assert exchange(server, rest_bytes(path, None))[2] is None


@pytest.mark.parametrize("path", DISPATCH_PATHS)
@pytest.mark.parametrize("method", ["sync_left", "pooled_left", "async_left"])
def test_work_past_its_deadline_is_refused_unrun(server: Any, method: str, path: str) -> None:
    before = RUNS.get(method, 0)
    status, headers, reply = exchange(server, invoke_bytes(method, "0"), held=path == "held")
    assert status == 504
    assert headers[b"content-type"] == b"application/json"
    assert reply["result"] is None and reply["exception"]["type"] == "DeadlineExceeded"
    assert RUNS.get(method, 0) == before


@pytest.mark.parametrize("path", ["sync", "pooled", "async"])
def test_rest_work_past_its_deadline_is_refused_unrun(server: Any, path: str) -> None:
    method = f"{path}_left"
    before = RUNS.get(method, 0)
    status, _, reply = exchange(server, rest_bytes(path, "0"))
    assert status == 504
    assert reply["type"] == "DeadlineExceeded"
    assert RUNS.get(method, 0) == before


@pytest.mark.parametrize("value", ["abc", "-5", "1.5", "+7", "", "9999999999999"])
@pytest.mark.parametrize("path", DISPATCH_PATHS)
def test_a_malformed_deadline_is_a_400(server: Any, value: str, path: str) -> None:
    before = RUNS.get("sync_left", 0)
    status, _, reply = exchange(server, invoke_bytes("sync_left", value), held=path == "held")
    assert status == 400
    assert reply["exception"]["type"] == "MalformedRequestException"
    assert "x-rpc-timeout" in reply["exception"]["message"]
    assert RUNS.get("sync_left", 0) == before


@pytest.mark.parametrize("value", ["abc", "-5", ""])
def test_a_malformed_deadline_is_a_400_on_rest(server: Any, value: str) -> None:
    status, _, reply = exchange(server, rest_bytes("sync", value))
    assert status == 400
    assert reply["type"] == "MalformedRequestException"


def _queued_call_is_dropped(server: Any, blocker: bytes, queued: bytes, method: str) -> tuple[int, Any]:
    """Hold the only worker, queue a call with a 200 ms deadline, let the deadline pass, free the worker."""
    RELEASE.clear()
    HOLDING.clear()
    before = RUNS.get(method, 0)
    with connect(server.port) as holder, connect(server.port) as caller:
        holder.sendall(blocker)
        wait_until(HOLDING.is_set, what="the worker to hold")
        sent = time.monotonic()
        caller.sendall(queued)
        wait_until(lambda: time.monotonic() > sent + 0.25, what="the queued call's deadline to pass")
        RELEASE.set()
        status, _, body = Reader(caller).response()
        assert Reader(holder).response()[0].split()[1] == b"200"
    assert RUNS.get(method, 0) == before  # never started
    return int(status.split()[1]), json.loads(body)


def test_a_queued_call_past_its_deadline_is_dropped(server: Any) -> None:
    status, reply = _queued_call_is_dropped(
        server, invoke_bytes("hold", None), invoke_bytes("pooled_left", "200"), "pooled_left"
    )
    assert status == 504 and reply["exception"]["type"] == "DeadlineExceeded"


def test_a_queued_rest_call_past_its_deadline_is_dropped(server: Any) -> None:
    status, reply = _queued_call_is_dropped(server, rest_bytes("hold", None), rest_bytes("pooled", "200"), "pooled_left")
    assert status == 504 and reply["type"] == "DeadlineExceeded"


def test_the_client_raises_deadline_exceeded_for_the_504(server: Any) -> None:
    with connect(server.port) as sock:
        sock.sendall(invoke_bytes("sync_left", "0"))
        status, headers, body = Reader(sock).response()
    channel = DispatchJSONChannel()
    reply_headers = [(name.decode(), value.decode()) for name, value in headers.items()]
    with pytest.raises(DeadlineExceeded, match="deadline had passed"):
        channel._raise_error_reply("deadlines:clock:sync_left", server.url, int(status.split()[1]), reply_headers, body)
