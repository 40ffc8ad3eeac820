"""The HTTP client against misbehaving servers (issue 14, point 5): bounded responses, early answers.

Each server here is a socket server on 127.0.0.1 sending crafted bytes; each caller is a real
warpcall client on one of the paths calls take: the sync and async clients, the httpx clients on
warpcall's transports, and an HTTP channel's sync and async ``request`` (the path of every proxy
call). The core's two builds are covered by running this file on the compiled build and under
``WARPCALL_PURE=1``; the parser's limits are also tested on both builds in one process at the end.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from abc import abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from rawhttp import Reader, connect, request, wait_until
from test_transport_http import LoopWithoutReaders, ScriptedServer
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
from warpcall.channels.dispatch import DispatchJSONChannel
from warpcall.channels.transport import (
    AsyncHTTPClient,
    AsyncWarpTransport,
    HTTPClient,
    ResponseTooLargeError,
    WarpTransport,
)
from warpcall.core import transport
from warpcall.di import create, module
from warpcall.exceptions import (
    RequestTooLargeException,
    ResponseTooLargeException,
    ServiceCommunicationException,
)

TIMEOUT = 5.0
CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
STREAM_LIMIT = 64 * 2**20  # an "endless" server gives up after this many bytes: a client that reads on fails


# --- the paths a call takes --------------------------------------------------------------------------------

Call = Callable[[str, str, bytes], tuple[int, bytes]]


def _run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


class Callers:
    """One path of calls, kept for several calls (to see whether a connection is reused), then closed."""

    def __init__(self, kind: str, timeout: float = TIMEOUT) -> None:
        self.kind = kind
        self.loop: asyncio.AbstractEventLoop | None = None
        if kind == "sync":
            self.client: Any = HTTPClient(timeout=timeout)
        elif kind == "async":
            self.client = AsyncHTTPClient(timeout=timeout)
        elif kind == "httpx-sync":
            self.client = httpx.Client(transport=WarpTransport(timeout=timeout), timeout=timeout)
        elif kind == "httpx-async":
            self.client = httpx.AsyncClient(transport=AsyncWarpTransport(timeout=timeout), timeout=timeout)
        else:  # channel-sync, channel-async: what a proxy's call runs
            self.client = DispatchJSONChannel()
            self.client.timeout = timeout
            self.client.customize()
        if kind.endswith("async"):
            self.loop = asyncio.new_event_loop()

    def call(self, method: str, url: str, body: bytes = b"") -> tuple[int, bytes]:
        kind, client = self.kind, self.client
        if kind == "sync":
            status, _, content = client.request(method, url, [], body)
        elif kind == "async":
            status, _, content = self._wait(client.request(method, url, [], body))
        elif kind == "httpx-sync":
            response = client.request(method, url, content=body)
            status, content = response.status_code, response.content
        elif kind == "httpx-async":
            response = self._wait(client.request(method, url, content=body))
            status, content = response.status_code, response.content
        elif kind == "channel-sync":
            status, _, content = client._request(method, url, [], body)
        else:
            status, _, content = self._wait(client._request_async(method, url, [], body))
        return status, content

    def _wait(self, coro: Any) -> Any:
        assert self.loop is not None
        return self.loop.run_until_complete(asyncio.wait_for(coro, 30))

    def close(self) -> None:
        if self.kind in ("sync", "httpx-sync", "channel-sync"):
            self.client.close()
        elif self.kind == "async":
            self._wait(self.client.aclose())
        elif self.kind == "httpx-async":
            self._wait(self.client.aclose())
        if self.loop is not None:
            self.loop.close()


KINDS = ["sync", "async", "httpx-sync", "httpx-async", "channel-sync", "channel-async"]


@pytest.fixture(params=KINDS)
def caller(request: pytest.FixtureRequest) -> Iterator[Callers]:
    callers = Callers(request.param)
    try:
        yield callers
    finally:
        callers.close()


def expect_too_large(caller: Callers, url: str, message: str) -> ResponseTooLargeException:
    """The call fails with ResponseTooLargeException (and httpx's RemoteProtocolError below the channel)."""
    with pytest.raises(ResponseTooLargeException, match=message) as info:
        caller.call("GET", url)
    error = info.value
    assert isinstance(error, ServiceCommunicationException)
    assert url in str(error)
    if not caller.kind.startswith("channel"):
        assert isinstance(error, ResponseTooLargeError)
        assert isinstance(error, httpx.RemoteProtocolError)
    return error


# --- servers that never stop sending ------------------------------------------------------------------------


class Streamer:
    """Per connection: read a request, send ``first``, then ``line`` over and over (at most STREAM_LIMIT bytes).

    ``cut_off`` counts the connections whose client hung up on the stream (the sending failed);
    a second request on a connection is answered with OK, so a client reusing it would get OK.
    """

    def __init__(self, first: bytes, line: bytes) -> None:
        self.first, self.line = first, line
        self.cut_off = 0
        self.ran_out = 0
        self._lock = threading.Lock()

    def __call__(self, conn: socket.socket, server: ScriptedServer) -> None:
        if not server.next_request(conn):
            return
        block = self.line * max(1, 65536 // len(self.line))
        sent = 0
        try:
            conn.sendall(self.first)
            while sent < STREAM_LIMIT:
                conn.sendall(block)
                sent += len(block)
        except OSError:
            with self._lock:
                self.cut_off += 1
            return
        with self._lock:
            self.ran_out += 1
        while server.next_request(conn):
            conn.sendall(OK)


ENDLESS = [
    pytest.param(CHUNKED_HEAD + b"2\r\nok\r\n0\r\n", b"X-Trailer: 0123456789\r\n", "more than 100 trailer lines",
                 id="trailer-lines"),
    pytest.param(CHUNKED_HEAD + b"2\r\nok\r\n0\r\n", b"X-Trailer: " + b"t" * 8000 + b"\r\n",
                 "extensions and trailers of the response are larger than 65536 bytes", id="trailer-bytes"),
    pytest.param(CHUNKED_HEAD + b"2\r\nok\r\n0\r\nX-Trailer: ", b"t", "trailer line is longer than 8192 bytes",
                 id="trailer-line-length"),
    pytest.param(CHUNKED_HEAD, b"1;" + b"e" * 1000 + b"\r\nx\r\n",
                 "extensions and trailers of the response are larger than 65536 bytes", id="chunk-extensions"),
    pytest.param(CHUNKED_HEAD + b"1;name=", b"e", "chunk size line is longer than 8192 bytes",
                 id="chunk-size-line"),
    pytest.param(b"HTTP/1.1 200 OK\r\n", b"X-Header: value\r\n", "response head is larger than 65536 bytes",
                 id="header-lines"),
    pytest.param(b"HTTP/1.1 200 ", b"r", "response head is larger than 65536 bytes", id="status-line"),
    pytest.param(b"", b"HTTP/1.1 100 Continue\r\n\r\n", r"response head is larger than 65536 bytes \(interim",
                 id="interim-responses"),
]


@pytest.mark.parametrize(("first", "line", "message"), ENDLESS)
def test_an_endless_response_part_is_cut_off_and_its_connection_discarded(
    caller: Callers, first: bytes, line: bytes, message: str
) -> None:
    streamer = Streamer(first, line)
    with ScriptedServer(streamer) as server:
        expect_too_large(caller, server.url, message)
        # the client hung up on the stream: the server's sending failed long before its own limit
        wait_until(lambda: streamer.cut_off == 1, TIMEOUT, "the client to close the connection")
        assert streamer.ran_out == 0
        # the next call opens a new connection (a reused one would have been answered OK)
        expect_too_large(caller, server.url, message)
        assert server.connections == 2


# --- heads over a limit, sent whole -------------------------------------------------------------------------

OVERSIZED = [
    pytest.param(b"HTTP/1.1 200 OK\r\n" + b"X-H: v\r\n" * 101 + b"Content-Length: 2\r\n\r\nok",
                 "the response head has more than 100 header lines", id="101-headers"),
    pytest.param(b"HTTP/1.1 200 " + b"r" * 8200 + b"\r\nContent-Length: 2\r\n\r\nok",
                 "status line is longer than 8192 bytes", id="status-line"),
    pytest.param(b"HTTP/1.1 200 OK\r\nX-Big: " + b"b" * 70_000 + b"\r\nContent-Length: 2\r\n\r\nok",
                 "response head is larger than 65536 bytes", id="one-big-header"),
    pytest.param(CHUNKED_HEAD + b"2\r\nok\r\n0\r\n" + b"X-T: v\r\n" * 101 + b"\r\n",
                 "more than 100 trailer lines", id="101-trailers"),
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n",
                 "response body exceeds the limit of 67108864 bytes", id="body"),
]


def keep_answering(response: bytes) -> Callable[[socket.socket, ScriptedServer], None]:
    def handler(conn: socket.socket, server: ScriptedServer) -> None:
        while server.next_request(conn):
            conn.sendall(response)

    return handler


@pytest.mark.parametrize(("response", "message"), OVERSIZED)
def test_a_head_over_a_limit_raises_and_the_connection_is_not_reused(
    caller: Callers, response: bytes, message: str
) -> None:
    with ScriptedServer(keep_answering(response)) as server:
        expect_too_large(caller, server.url, message)
        expect_too_large(caller, server.url, message)
        assert server.connections == 2


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_responses_at_the_limits_are_accepted(kind: str) -> None:
    """100 headers, 100 trailer lines, an 8 KiB status line: all accepted, the connection kept."""
    at_limits = (
        b"HTTP/1.1 200 " + b"r" * (8192 - 13) + b"\r\n"
        + b"X-H: v\r\n" * 99 + b"Transfer-Encoding: chunked\r\n\r\n"
        + b"2;" + b"e" * 1000 + b"\r\nok\r\n0\r\n" + b"X-T: v\r\n" * 100 + b"\r\n"
    )
    with ScriptedServer(keep_answering(at_limits)) as server:
        callers = Callers(kind)
        try:
            assert callers.call("GET", server.url) == (200, b"ok")
            assert callers.call("GET", server.url) == (200, b"ok")
        finally:
            callers.close()
        assert server.connections == 1


# --- an answer before the upload is done ----------------------------------------------------------------------

UPLOAD = b"u" * (8 * 2**20)
REFUSAL = json.dumps(
    {"result": None, "exception": {"type": "RequestTooLargeException", "message": "body too large"}}
).encode()
EARLY_413 = (
    b"HTTP/1.1 413 Content Too Large\r\nContent-Type: application/json\r\nConnection: close\r\n"
    + b"Content-Length: %d\r\n\r\n" % len(REFUSAL) + REFUSAL
)


def answer_early_and_close(conn: socket.socket, server: ScriptedServer) -> None:
    """Read the request head (and whatever body came with it), answer 413, close with the body unread."""
    data = b""
    for _ in range(1000):
        if b"\r\n\r\n" in data:
            break
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    server.requests += 1
    conn.sendall(EARLY_413)
    # closing with unread data makes the kernel reset the connection: the client's sending fails


def test_an_early_answer_during_an_upload_is_returned(caller: Callers) -> None:
    with ScriptedServer(answer_early_and_close) as server:
        for _ in range(3):
            assert caller.call("POST", server.url, UPLOAD) == (413, REFUSAL)
        assert server.connections == 3  # the connection of an interrupted upload is never reused


def test_a_server_that_closes_without_answering_an_upload_is_a_write_error(caller: Callers) -> None:
    def close_at_once(conn: socket.socket, server: ScriptedServer) -> None:
        conn.recv(65536)

    with ScriptedServer(close_at_once) as server:
        with pytest.raises((httpx.WriteError, ServiceCommunicationException), match="sending the request") as info:
            caller.call("POST", server.url, UPLOAD)
        assert server.url in str(info.value)


def test_an_answer_before_the_body_was_read_is_returned(caller: Callers) -> None:
    """A server that answers on the head, then reads the body: the answer (the async client stops sending
    once it has it, the sync one sends on), and the next call works."""

    def answer_then_drain(conn: socket.socket, server: ScriptedServer) -> None:
        while True:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = conn.recv(1)
                if not chunk:
                    return
                head += chunk
            server.requests += 1
            conn.sendall(OK)
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            while length > 0:
                chunk = conn.recv(min(length, 65536))
                if not chunk:
                    return
                length -= len(chunk)

    with ScriptedServer(answer_then_drain) as server:
        assert caller.call("POST", server.url, UPLOAD) == (200, b"ok")
        assert caller.call("POST", server.url, b"small") == (200, b"ok")
        assert server.requests == 2


def test_an_early_answer_from_a_server_that_stops_reading_is_returned(caller: Callers) -> None:
    """Answered 413 on the head, then neither read nor closed: the answer, not a write timeout (the async
    client sees it at once, the sync one when its send times out, here after 0.5 s)."""
    done = threading.Event()

    def answer_and_stop_reading(conn: socket.socket, server: ScriptedServer) -> None:
        conn.recv(65536)
        conn.sendall(EARLY_413)
        done.wait(TIMEOUT)

    with ScriptedServer(answer_and_stop_reading) as server:
        callers = Callers(caller.kind, timeout=0.5)
        try:
            assert callers.call("POST", server.url, UPLOAD * 8) == (413, REFUSAL)
        finally:
            done.set()  # the server's handler ends: the client's connection closes
            callers.close()


# --- the httpx fallback (event loops that cannot watch sockets): httpx's own limits ------------------------
# (https takes the compiled transport: the early answer over https is tested in tests/test_tls.py)


def _on_the_httpx_fallback(url: str, body: bytes) -> tuple[int, bytes]:
    loop = LoopWithoutReaders()
    client = AsyncHTTPClient(timeout=TIMEOUT)
    try:
        status, _, content = loop.run_until_complete(asyncio.wait_for(client.request("POST", url, [], body), 30))
        return status, content
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()


def test_the_httpx_fallback_bounds_trailers() -> None:
    """h11 reads the trailers as one event of bounded size: httpx's RemoteProtocolError, the connection closed."""
    streamer = Streamer(CHUNKED_HEAD + b"2\r\nok\r\n0\r\n", b"X-Trailer: 0123456789\r\n")
    with ScriptedServer(streamer) as server:
        with pytest.raises(httpx.RemoteProtocolError):
            _on_the_httpx_fallback(server.url, b"")
        wait_until(lambda: streamer.cut_off == 1, TIMEOUT, "the client to close the connection")


@pytest.mark.xfail(
    strict=True,
    raises=httpx.ReadError,
    reason="httpx's async transport (anyio) pauses reading while it writes: the answer is lost in the reset; "
    "only event loops that cannot watch sockets (Windows' proactor) still go to it, https no longer does",
)
def test_the_async_httpx_fallback_returns_an_early_answer() -> None:
    with ScriptedServer(answer_early_and_close) as server:
        assert _on_the_httpx_fallback(server.url, UPLOAD) == (413, REFUSAL)


# --- the parser's limits on both builds -----------------------------------------------------------------------


def test_the_limits_are_exported(core: Any) -> None:
    t = core.transport
    assert (t.MAX_HEAD, t.MAX_HEADERS, t.MAX_LINE) == (65536, 100, 8192)
    assert issubclass(t.ResponseTooLarge, ValueError)
    assert t.MAX_HEAD == transport.MAX_HEAD


@pytest.mark.parametrize(("response", "message"), OVERSIZED)
def test_the_parser_raises_response_too_large(core: Any, response: bytes, message: str) -> None:
    parser = core.transport.ResponseParser()
    with pytest.raises(core.transport.ResponseTooLarge, match=message):
        parser.feed(response)


@pytest.mark.parametrize(("first", "line", "message"), ENDLESS)
def test_the_parser_stops_an_endless_stream_early(core: Any, first: bytes, line: bytes, message: str) -> None:
    """Fed in 1000-byte pieces, the parser gives up within one piece of the limit it names."""
    parser = core.transport.ResponseParser()
    stream = first + line * (200_000 // len(line))
    fed = 0
    with pytest.raises(core.transport.ResponseTooLarge, match=message):
        for start in range(0, len(stream), 1000):
            fed += 1000
            parser.feed(stream[start : start + 1000])
    assert fed <= 65536 + 8192 + 1000


# --- against a real warpcall server with a small max_body -------------------------------------------------


@dataclass
class Blob:
    data: str


@service(name="sink")
class SinkService(Service):
    @abstractmethod
    def take(self, blob: Blob) -> int: ...

    @abstractmethod
    async def take_async(self, blob: Blob) -> int: ...


@component(name="sink", services=[SinkService])
class SinkComponent(Component):
    pass


@implementation()
class SinkServiceImpl(SinkService):
    def take(self, blob: Blob) -> int:
        return len(blob.data)

    async def take_async(self, blob: Blob) -> int:
        return len(blob.data)


@implementation()
class SinkComponentImpl(AbstractComponent, SinkComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://127.0.0.1:{port}")]


@module(imports=[ServiceModule])
class SinkModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry, max_body=4096)


@pytest.fixture(scope="module")
def sink() -> Iterator[Any]:
    environment = FastAPIServer.boot(SinkModule, host="127.0.0.1", port=0)
    try:
        yield environment
    finally:
        environment.destroy()


def test_a_warpcall_server_refusing_an_upload_is_answered_with_its_refusal(sink: Any) -> None:
    """A warpcall server answers 413 on the head and reads on (it does not close mid-upload, so this passed
    before too); the crafted server above is the one that closes, as a proxy or another server may."""
    server = sink.get(FastAPIServer)
    proxy = sink.get(ServiceManager).get_service(SinkService, "dispatch-json")
    big = Blob("b" * len(UPLOAD))
    for _ in range(2):
        with pytest.raises(RequestTooLargeException, match="exceeds the limit of 4096 bytes"):
            proxy.take(big)
        with pytest.raises(RequestTooLargeException, match="exceeds the limit of 4096 bytes"):
            _run(proxy.take_async(big))
    assert proxy.take(Blob("small")) == 5
    assert _run(proxy.take_async(Blob("small"))) == 5
    # whether the server answers before the body came, on a raw socket: the head alone gets the 413
    with connect(server.port) as sock:
        sock.sendall(request("/invoke", b"", length=len(UPLOAD)))
        status = Reader(sock).response()[0]
    assert status.startswith(b"HTTP/1.1 413 ")
