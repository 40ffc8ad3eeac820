"""The server's inline protocol answers ``POST /invoke`` byte for byte as the ASGI app does.

Two real uvicorn servers on 127.0.0.1 serve the same service: one on a plain app (the
protocol answers ``/invoke`` itself), one whose app has a pass-through middleware (every
request goes through ASGI and FastAPI). Raw requests, valid or not, must get the same
status line, headers (but ``date``) and body from both, and the connection must stay open
or close alike. HTTP details the protocol leaves to uvicorn (pipelining, ``Expect:
100-continue``, chunked and large bodies) and shutdown with calls under way are checked
on the plain server.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import socket
import threading
import time
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

import msgpack
import pytest
from fastapi import FastAPI, Request

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
from warpcall.channels.dispatch import DispatchProtobufChannel
from warpcall.core import envelope as core_envelope
from warpcall.di import create, module
from warpcall.server import protocol
from warpcall.service import service_descriptor

TIMEOUT = 5.0
MAX_BODY = 4096
MAX_READS = 10_000

pytestmark = pytest.mark.skipif(not protocol.SUPPORTED, reason="the installed uvicorn has no httptools protocol")


@dataclass
class Parcel:
    label: str
    weight: float


TAG: contextvars.ContextVar[str] = contextvars.ContextVar("tag", default="unset")


@service(name="relay")
class RelayService(Service):
    @abstractmethod
    def echo(self, parcel: Parcel) -> Parcel: ...

    @abstractmethod
    def fail(self, text: str) -> str: ...

    @abstractmethod
    def wrong(self) -> int: ...

    @abstractmethod
    def tag(self, value: str) -> str: ...

    @abstractmethod
    async def later(self, seconds: float) -> float: ...

    @abstractmethod
    async def tag_later(self, value: str) -> str: ...


@component(name="post", services=[RelayService])
class PostComponent(Component):
    pass


@implementation()
class RelayServiceImpl(RelayService):
    def echo(self, parcel: Parcel) -> Parcel:
        return parcel

    def fail(self, text: str) -> str:
        raise ValueError(text)

    def wrong(self) -> int:
        return "not an int"  # type: ignore[return-value]

    def tag(self, value: str) -> str:
        # a request's context variables must not reach the next request
        before = TAG.get()
        TAG.set(value)
        return before

    async def later(self, seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds

    async def tag_later(self, value: str) -> str:
        # awaited: the connection pauses reading meanwhile and resumes it from this task's context
        before = TAG.get()
        TAG.set(value)
        await asyncio.sleep(0)
        return before


@implementation()
class PostComponentImpl(AbstractComponent, PostComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://127.0.0.1:{port}")]


def plain_app() -> FastAPI:
    return FastAPI()


def app_with_middleware() -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def pass_through(request: Request, call_next: Any) -> Any:
        return await call_next(request)

    return app


def make_module(app_factory: Any, **options: Any) -> type:
    @module(imports=[ServiceModule])
    class PostModule:
        @create()
        def create_registry(self) -> ComponentRegistry:
            return LocalComponentRegistry()

        @create()
        def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
            return FastAPIServer(app_factory(), manager, registry, max_body=MAX_BODY, **options)

    return PostModule


@pytest.fixture(scope="module")
def servers():
    booted = []
    try:
        for factory in (plain_app, app_with_middleware):
            booted.append(FastAPIServer.boot(make_module(factory), host="127.0.0.1", port=0))
        inline, reference = (environment.get(FastAPIServer) for environment in booted)
        assert inline.protocol_class is not None
        yield inline, reference
    finally:
        for environment in booted:
            environment.destroy()


# --- a raw HTTP/1.1 client: what is sent is exactly what the test says -------------------------------


def connect(server: FastAPIServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def request(path: str, body: bytes, content_type: str | None = "application/json", *, version: str = "1.1",
            extra: str = "", method: str = "POST") -> bytes:
    head = f"{method} {path} HTTP/{version}\r\nhost: 127.0.0.1\r\n"
    if content_type is not None:
        head += f"content-type: {content_type}\r\n"
    return f"{head}content-length: {len(body)}\r\n{extra}\r\n".encode("latin-1") + body


class Reader:
    """Reads whole responses (content-length framed, as both paths answer) from a socket, bounded."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buffer = sock, b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def response(self) -> tuple[bytes, dict[bytes, bytes], bytes]:
        for _ in range(MAX_READS):
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                head, rest = self.buffer[:end], self.buffer[end + 4:]
                status, *lines = head.split(b"\r\n")
                headers = dict(line.split(b": ", 1) for line in lines)
                length = int(headers[b"content-length"])
                if len(rest) >= length:
                    self.buffer = rest[length:]
                    return status, headers, rest[:length]
            if not self._fill():
                raise ConnectionError(f"connection closed mid-response: {self.buffer[:200]!r}")
        raise AssertionError("response never completed")

    def closed(self) -> bool:
        """True when the server closed the connection (and sent nothing more)."""
        try:
            return not self.buffer and not self._fill()
        except ConnectionResetError:
            return True


def wait_until(condition: Any, timeout: float = TIMEOUT) -> None:
    """Poll ``condition`` (bounded) until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the server never got there")
        time.sleep(0.002)


def roundtrip(server: FastAPIServer, data: bytes, *, in_pieces: bool = False) -> tuple[bytes, dict[bytes, bytes], bytes, bool]:
    """Send ``data``, read one response; also whether the server then closed the connection.

    ``in_pieces``: the head's last line break goes in a second write, once the server has read the first,
    so the request reaches it in two chunks (uvicorn's parser takes it, never the unparsed path).
    """
    with connect(server) as sock:
        if in_pieces:
            cut = data.index(b"\r\n\r\n") + 2
            sock.sendall(data[:cut])
            # a bare uvicorn protocol (the reference below) is mid-head once it has headers and no cycle yet
            wait_until(lambda: any(
                getattr(c, "_in_message", c.headers is not None and c.cycle is None)
                for c in server.server.server_state.connections
            ))
            sock.sendall(data[cut:])
        else:
            sock.sendall(data)
        reader = Reader(sock)
        status, headers, body = reader.response()
        headers.pop(b"date")
        sock.settimeout(0.1)
        try:
            closed = reader.closed()
        except TimeoutError:
            closed = False
    return status, headers, body, closed


# --- the battery ----------------------------------------------------------------------------------------


def envelope(method: str, args: list[Any]) -> bytes:
    return core_envelope.encode_request_json(f"post:relay:{method}", args)


def packed(method: str, args: list[Any]) -> bytes:
    return msgpack.packb({"method": f"post:relay:{method}", "args": args})


PARCEL = {"label": "box", "weight": 2.5}

# (request bytes, what it is) -- valid and invalid alike; both servers must answer each the same
BATTERY: list[tuple[bytes, str]] = [
    (request("/invoke", envelope("echo", [PARCEL])), "json call"),
    (request("/invoke", packed("echo", [PARCEL]), "application/msgpack"), "msgpack call"),
    (request("/invoke", envelope("echo", [PARCEL]), "application/json; charset=utf-8"), "parameter in content type"),
    (request("/invoke", envelope("later", [0.01])), "async method"),
    (request("/invoke", envelope("fail", ["no"])), "implementation raises"),
    (request("/invoke", packed("fail", ["no"]), "application/msgpack"), "raises, msgpack"),
    (request("/invoke", envelope("wrong", [])), "result does not fit: 500"),
    (request("/invoke", envelope("echo", [{"label": "box"}])), "argument does not fit"),
    (request("/invoke", envelope("echo", [PARCEL, PARCEL])), "too many arguments"),
    (request("/invoke", envelope("missing", [])), "unknown method"),
    (request("/invoke", envelope("__init__", [])), "not declared"),
    (request("/invoke", b'{"method": "post:relay:echo", "args": '), "malformed JSON"),
    (request("/invoke", b'[1, 2]'), "not an envelope"),
    (request("/invoke", b""), "empty body"),
    (request("/invoke", b"\x93\x01", "application/msgpack"), "malformed msgpack"),
    (request("/invoke", envelope("echo", [PARCEL]), "text/plain"), "unsupported content type"),
    (request("/invoke", envelope("echo", [PARCEL]), None), "no content type"),
    (request("/invoke", envelope("echo", [{"label": "x" * MAX_BODY, "weight": 1}])), "over max_body"),
    (request("/invoke", b"\x0a\x03box", "application/x-protobuf", extra="x-rpc-method: post:relay:nope\r\n"),
     "protobuf, unknown method"),
    (request("/invoke", b"\xff\xff", "application/x-protobuf", extra="x-rpc-method: post:relay:echo\r\n"),
     "malformed protobuf"),
    (request("/invoke", envelope("echo", [PARCEL]), version="1.0"), "HTTP/1.0 closes"),
    (request("/invoke", envelope("echo", [PARCEL]), extra="connection: close\r\n"), "connection: close"),
    (request("/invoke", envelope("later", [0.01]), extra="connection: close\r\n"), "async, connection: close"),
    # llhttp reads Proxy-Connection as Connection, so uvicorn closes after it: on every path, however it arrives
    (request("/invoke", envelope("echo", [PARCEL]), extra="proxy-connection: close\r\n"), "proxy-connection: close"),
    (request("/invoke", envelope("later", [0.01]), extra="Proxy-Connection: close\r\n"),
     "async, proxy-connection: close"),
    (request("/invoke", envelope("echo", [PARCEL]), extra="proxy-connection: keep-alive\r\n"),
     "proxy-connection: keep-alive"),
]


@pytest.mark.parametrize("in_pieces", [False, True], ids=["one-chunk", "in-pieces"])
@pytest.mark.parametrize("data, what", BATTERY, ids=[what for _, what in BATTERY])
def test_inline_answers_match_the_asgi_path(servers, data, what, in_pieces):
    inline, reference = servers
    stats = inline.protocol_class.stats
    served, unparsed = stats.served, stats.unparsed
    expected = roundtrip(reference, data, in_pieces=in_pieces)
    answered = roundtrip(inline, data, in_pieces=in_pieces)
    assert answered == expected, what
    # each of these requests is small and plain: the protocol answered it, not the ASGI app
    assert stats.served == served + 1
    assert reference.protocol_class.stats.served == 0
    # in one chunk, an HTTP/1.1 request that keeps the connection is answered from its bytes
    plain = (not in_pieces and b"HTTP/1.0" not in data and b"connection: close" not in data
             and b"proxy-connection" not in data.lower())
    assert stats.unparsed == unparsed + plain


class BareReference:
    """uvicorn + FastAPI alone on 127.0.0.1, answering ``POST /invoke``: what warpcall's server must match."""

    def __init__(self) -> None:
        import uvicorn

        app = FastAPI()

        @app.post("/invoke")
        async def invoke() -> dict[str, Any]:
            return {"result": None, "exception": None}

        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, http="httptools", log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def __enter__(self) -> BareReference:
        self._thread.start()
        wait_until(lambda: self.server.started, timeout=10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self._thread.join(10)
        self._sock.close()


@pytest.fixture(scope="module")
def bare():
    with BareReference() as server:
        yield server


@pytest.mark.parametrize("in_pieces", [False, True], ids=["one-chunk", "in-pieces"])
@pytest.mark.parametrize("extra, closes", [
    ("proxy-connection: close\r\n", True),
    ("Proxy-Connection: CLOSE\r\n", True),
    ("proxy-connection: keep-alive\r\n", False),
    ("connection: keep-alive\r\nproxy-connection: close\r\n", True),
], ids=["close", "close-any-case", "keep-alive", "with-connection-keep-alive"])
def test_proxy_connection_is_honoured_as_bare_uvicorn_does(servers, bare, extra, closes, in_pieces):
    """Issue 14, point 4: the answer's ``connection`` header and the connection's end do not depend on segmentation."""
    data = request("/invoke", envelope("echo", [PARCEL]), extra=extra)
    reference = roundtrip(bare, data, in_pieces=in_pieces)
    assert (reference[1].get(b"connection"), reference[3]) == ((b"close", True) if closes else (None, False))
    for server in servers:  # the inline protocol, then ASGI behind a middleware
        status, headers, body, closed = roundtrip(server, data, in_pieces=in_pieces)
        assert status == b"HTTP/1.1 200 OK" and core_envelope.decode_response_json(body) == (PARCEL, None)
        assert (headers.get(b"connection"), closed) == (reference[1].get(b"connection"), reference[3])


# header lines after the request's own content type; (status, reply content type, exception type or result)
DUPLICATES = [
    (request("/invoke", envelope("echo", [PARCEL]), extra="content-type: application/msgpack\r\n"),
     (b"HTTP/1.1 400 Bad Request", b"application/json", "MalformedRequestException"), "two content types"),
    (request("/invoke", envelope("echo", [PARCEL]), extra="Content-Type: Application/JSON\r\n"),
     (b"HTTP/1.1 400 Bad Request", b"application/json", "MalformedRequestException"), "content types differing in case"),
    (request("/invoke", packed("echo", [PARCEL]), "application/msgpack",
             extra="x-rpc-method: post:relay:echo\r\nX-Rpc-Method: post:relay:fail\r\n"),
     (b"HTTP/1.1 400 Bad Request", b"application/msgpack", "MalformedRequestException"), "two methods, msgpack"),
    (request("/invoke", b"\x0a\x03box", "application/x-protobuf",
             extra="x-rpc-method: post:relay:echo\r\nx-rpc-method: post:relay:fail\r\n"),
     (b"HTTP/1.1 400 Bad Request", b"application/json", "MalformedRequestException"), "two methods, protobuf"),
    (request("/invoke", envelope("echo", [PARCEL]), extra="content-type: application/json\r\n"),
     (b"HTTP/1.1 200 OK", b"application/json", PARCEL), "the same content type twice"),
]


@pytest.mark.parametrize("in_pieces", [False, True], ids=["one-chunk", "in-pieces"])
@pytest.mark.parametrize("data, expected, what", DUPLICATES, ids=[what for _, _, what in DUPLICATES])
def test_differing_duplicate_headers_are_refused_on_every_path(servers, data, expected, what, in_pieces):
    """Issue 14, point 2: a middleware reads the first value; no path may act on another one."""
    inline, reference = servers
    status, content_type, outcome = expected
    answers = [roundtrip(server, data, in_pieces=in_pieces) for server in (inline, reference)]
    assert answers[0] == answers[1], what
    answer_status, headers, body, closed = answers[0]
    assert (answer_status, headers[b"content-type"], closed) == (status, content_type, False)
    if content_type == b"application/msgpack":
        result, exception = core_envelope.decode_response_msgpack(body)
    else:
        result, exception = core_envelope.decode_response_json(body)
    assert (exception["type"] if exception else result) == outcome


def test_identical_method_headers_are_one_method(servers):
    codec = DispatchProtobufChannel.codec(service_descriptor(RelayService).methods["echo"])
    data = request(
        "/invoke", codec.encode_request((Parcel("box", 2.5),)), "application/x-protobuf",
        extra="x-rpc-method: post:relay:echo\r\nX-RPC-Method: post:relay:echo\r\n",
    )
    for in_pieces in (False, True):
        answers = [roundtrip(server, data, in_pieces=in_pieces) for server in servers]
        assert answers[0] == answers[1]
        assert answers[0][0] == b"HTTP/1.1 200 OK"
        assert codec.decode_response(answers[0][2]) == (Parcel("box", 2.5), None)


def test_a_protobuf_call_is_answered_inline_and_decodes(servers):
    inline, reference = servers
    codec = DispatchProtobufChannel.codec(service_descriptor(RelayService).methods["echo"])
    data = request(
        "/invoke", codec.encode_request((Parcel("box", 2.5),)), "application/x-protobuf",
        extra="x-rpc-method: post:relay:echo\r\n",
    )
    before = inline.protocol_class.stats.served
    answered = roundtrip(inline, data)
    assert answered == roundtrip(reference, data)
    status, headers, payload, closed = answered
    assert (status, headers[b"content-type"], closed) == (b"HTTP/1.1 200 OK", b"application/x-protobuf", False)
    assert codec.decode_response(payload) == (Parcel("box", 2.5), None)
    assert inline.protocol_class.stats.served == before + 1


def test_access_lines_are_uvicorns(servers, caplog):
    inline, reference = servers
    data = request("/invoke", envelope("echo", [PARCEL]))
    lines = {}
    for server in servers:
        with caplog.at_level(logging.INFO, logger="uvicorn.access"):
            caplog.clear()
            roundtrip(server, data)
            time.sleep(0.05)  # uvicorn's own path logs from its task
        lines[server.port] = [r.getMessage().split(" - ", 1)[1] for r in caplog.records if r.name == "uvicorn.access"]
    assert lines[inline.port] == lines[reference.port] == ['"POST /invoke HTTP/1.1" 200']


def test_an_internal_error_is_uvicorns_500_and_the_server_goes_on(servers, monkeypatch):
    def broken(*args: Any) -> Any:
        raise RuntimeError("a bug in the server")

    async def broken_later() -> Any:
        raise RuntimeError("a bug in the server")

    data = request("/invoke", envelope("echo", [PARCEL]))
    for server in servers:
        monkeypatch.setattr(server.endpoint, "answer", broken)
    sync_answers = [roundtrip(server, data) for server in servers]
    for server in servers:
        monkeypatch.setattr(server.endpoint, "answer", lambda *args: broken_later())
    async_answers = [roundtrip(server, data) for server in servers]
    monkeypatch.undo()
    # the inline answer is the one uvicorn sends when an app fails; FastAPI's error middleware on the
    # other server sends the same status and body (its own headers, the connection kept)
    uvicorns = {b"server": b"uvicorn", b"content-type": b"text/plain; charset=utf-8", b"content-length": b"21",
                b"connection": b"close"}
    for answers in (sync_answers, async_answers):
        assert answers[0] == (b"HTTP/1.1 500 Internal Server Error", uvicorns, b"Internal Server Error", True)
        assert answers[1][0::2] == (b"HTTP/1.1 500 Internal Server Error", b"Internal Server Error")
    assert roundtrip(servers[0], data)[0] == b"HTTP/1.1 200 OK"


def test_pipelined_requests_are_answered_in_order(servers):
    inline, _ = servers
    before = inline.protocol_class.stats.served
    with connect(inline) as sock:
        sock.sendall(
            request("/invoke", envelope("echo", [PARCEL]))
            + request("/invoke", envelope("later", [0.05]))
            + request("/invoke", envelope("fail", ["third"]))
            + request("/invoke", envelope("echo", [{"label": "last", "weight": 1.0}]))
        )
        reader = Reader(sock)
        bodies = [reader.response()[2] for _ in range(4)]
    assert [core_envelope.decode_response_json(body) for body in bodies] == [
        (PARCEL, None),
        (0.05, None),
        (None, {"type": "ValueError", "message": "third"}),
        ({"label": "last", "weight": 1.0}, None),
    ]
    # the first two arrive fresh; the third queues behind the async call and takes uvicorn's path
    assert inline.protocol_class.stats.served >= before + 2


def test_context_variables_do_not_reach_the_next_request(servers):
    for server in servers:
        with connect(server) as sock:
            reader = Reader(sock)
            answers = []
            for value in ("a", "b"):
                sock.sendall(request("/invoke", envelope("tag", [value])))
                answers.append(core_envelope.decode_response_json(reader.response()[2])[0])
        assert answers == ["unset", "unset"]


@pytest.mark.parametrize("pipelined", [False, True], ids=["one-by-one", "pipelined"])
def test_context_variables_set_by_an_awaited_call_do_not_reach_the_next_request(servers, pipelined):
    # asyncio's reader callback runs in the context reading was last resumed in: after an awaited reply,
    # the task's (cpython#140947); each request must still start from the connection's own context
    calls = [("tag_later", "a"), ("tag", "b"), ("tag_later", "c"), ("tag", "d")]
    for server in servers:
        with connect(server) as sock:
            reader = Reader(sock)
            if pipelined:
                sock.sendall(b"".join(request("/invoke", envelope(method, [value])) for method, value in calls))
                bodies = [reader.response()[2] for _ in calls]
            else:
                bodies = []
                for method, value in calls:
                    sock.sendall(request("/invoke", envelope(method, [value])))
                    bodies.append(reader.response()[2])
        assert [core_envelope.decode_response_json(body)[0] for body in bodies] == ["unset"] * len(calls)


def _tag_seen(protocol_class: Any, app: Any, **config: Any) -> str:
    """What ``tag`` reads over a connection to ``protocol_class`` made in a context where TAG is "server"."""
    from uvicorn import Config
    from uvicorn.server import ServerState

    async def main() -> bytes:
        TAG.set("server")  # as a server's own startup (or instrumentation) may set one
        settings = Config(app, interface="asgi3", http=protocol_class, lifespan="off", log_level="warning", **config)
        settings.load()
        state = ServerState()
        factory = lambda: settings.http_protocol_class(config=settings, server_state=state, app_state={})  # noqa: E731
        server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
        try:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request("/invoke", envelope("tag", ["x"]), extra="connection: close\r\n"))
            reply = await asyncio.wait_for(reader.read(), TIMEOUT)
            writer.close()
            return reply
        finally:
            server.close()
            await server.wait_closed()

    reply = asyncio.run(main())
    return core_envelope.decode_response_json(reply.partition(b"\r\n\r\n")[2])[0]


@pytest.mark.parametrize("reset", [False, True], ids=["default", "reset_contextvars"])
def test_requests_start_in_the_context_uvicorn_starts_its_tasks_in(servers, reset):
    # uvicorn 0.55 added Config(reset_contextvars=True): tasks start in an empty context; before, and by
    # default, in the server's. The inline protocol does as uvicorn's own protocol does, on the same app.
    from uvicorn import Config
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    if reset and "reset_contextvars" not in inspect.signature(Config).parameters:
        pytest.skip("this uvicorn has no reset_contextvars (added in 0.55)")
    inline = servers[0]
    config = {"reset_contextvars": True} if reset else {}
    app = inline._uvicorn_app()
    theirs = _tag_seen(HttpToolsProtocol, app, **config)
    before = inline.protocol_class.stats.served
    ours = _tag_seen(inline.protocol_class, app, **config)
    assert inline.protocol_class.stats.served == before + 1  # answered inline
    assert ours == theirs == ("unset" if reset else "server")


def test_a_body_arriving_in_pieces_is_answered_inline(servers):
    inline, _ = servers
    data = request("/invoke", envelope("echo", [PARCEL]))
    cut = data.index(b"\r\n\r\n") + 4
    before = inline.protocol_class.stats.served
    with connect(inline) as sock:
        for piece in (data[:cut], data[cut:cut + 10], data[cut + 10:]):
            sock.sendall(piece)
            time.sleep(0.02)
        status, _, body = Reader(sock).response()
    assert status == b"HTTP/1.1 200 OK" and core_envelope.decode_response_json(body) == (PARCEL, None)
    assert inline.protocol_class.stats.served == before + 1


def test_what_the_protocol_leaves_to_uvicorn_still_works(servers):
    inline, _ = servers
    before = inline.protocol_class.stats.served
    body = envelope("echo", [PARCEL])
    with connect(inline) as sock:
        reader = Reader(sock)
        # Expect: 100-continue -- uvicorn answers 100 once the app reads the body
        head = request("/invoke", body, extra="expect: 100-continue\r\n")
        sock.sendall(head[: head.index(b"\r\n\r\n") + 4])
        for _ in range(MAX_READS):
            if b"\r\n\r\n" in reader.buffer:
                break
            reader._fill()
        assert reader.buffer == b"HTTP/1.1 100 Continue\r\n\r\n"
        reader.buffer = b""
        sock.sendall(body)
        assert reader.response()[2] == b'{"result":{"label":"box","weight":2.5},"exception":null}'
        # a chunked body
        sock.sendall(
            b"POST /invoke HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
            + b"%x\r\n%s\r\n" % (10, body[:10]) + b"%x\r\n%s\r\n" % (len(body) - 10, body[10:]) + b"0\r\n\r\n"
        )
        assert reader.response()[2] == b'{"result":{"label":"box","weight":2.5},"exception":null}'
        # a body over the protocol's limit streams through the app, which refuses it before reading it
        big = request("/invoke", b"x" * (protocol.HOLD_LIMIT + 1))
        sock.sendall(big)
        status, _, refusal = reader.response()
        assert status == b"HTTP/1.1 413 Request Entity Too Large" and b"RequestTooLargeException" in refusal
    assert inline.protocol_class.stats.served == before


def test_unparsed_requests_count_and_keep_alive_times_out_as_uvicorns(servers):
    inline, _ = servers
    stats, state, config = inline.protocol_class.stats, inline.server.server_state, inline.server.config
    saved = config.timeout_keep_alive
    config.timeout_keep_alive = 0.3  # read by each new connection
    try:
        with connect(inline) as sock:
            reader = Reader(sock)
            unparsed, total = stats.unparsed, state.total_requests
            for _ in range(3):
                sock.sendall(request("/invoke", envelope("echo", [PARCEL])))
                assert reader.response()[2] == b'{"result":{"label":"box","weight":2.5},"exception":null}'
            assert stats.unparsed == unparsed + 3
            # uvicorn counts a request once its reply is written, which the caller may see first
            wait_until(lambda: state.total_requests == total + 3)
            # the keep-alive timer runs again after each reply: the idle connection is closed in time
            started = time.monotonic()
            sock.settimeout(0.3 + 0.5)  # the keep-alive timeout + max(0.5 s, 50 %): a late close fails here
            assert reader.closed()
            assert 0.2 < time.monotonic() - started
    finally:
        config.timeout_keep_alive = saved


def test_a_request_arriving_while_an_unparsed_call_is_awaited_waits_its_turn(servers):
    inline, _ = servers
    stats = inline.protocol_class.stats
    served, unparsed = stats.served, stats.unparsed
    with connect(inline) as sock:
        reader = Reader(sock)
        sock.sendall(request("/invoke", envelope("later", [0.2])))
        wait_until(lambda: stats.unparsed == unparsed + 1)  # the async call is under way
        sock.sendall(request("/invoke", envelope("echo", [PARCEL])))
        first, second = reader.response(), reader.response()
    assert core_envelope.decode_response_json(first[2]) == (0.2, None)
    assert core_envelope.decode_response_json(second[2]) == (PARCEL, None)
    assert stats.served == served + 2


def test_a_request_after_a_stray_byte_is_read_as_uvicorn_reads_it(servers):
    # uvicorn's parser holds the stray byte: the request that follows is not a request on its own
    answers = []
    for server in servers:
        unparsed = server.protocol_class.stats.unparsed
        with connect(server) as sock:
            sock.sendall(b"P")
            time.sleep(0.05)
            sock.sendall(request("/invoke", envelope("echo", [PARCEL])))
            status, headers, body = Reader(sock).response()
            headers.pop(b"date", None)
            answers.append((status, headers, body))
        assert server.protocol_class.stats.unparsed == unparsed
    assert answers[0] == answers[1]
    assert answers[0][0] == b"HTTP/1.1 400 Bad Request"


def test_destroy_lets_a_call_under_way_finish():
    environment = FastAPIServer.boot(make_module(plain_app), host="127.0.0.1", port=0)
    server = environment.get(FastAPIServer)
    stopper = threading.Thread(target=environment.destroy)
    with connect(server) as sock:
        sock.sendall(request("/invoke", envelope("later", [0.3])))
        time.sleep(0.1)  # the call is under way
        stopper.start()
        status, headers, body = Reader(sock).response()
    stopper.join(TIMEOUT)
    assert not stopper.is_alive()
    assert status == b"HTTP/1.1 200 OK" and core_envelope.decode_response_json(body) == (0.3, None)
    assert headers[b"connection"] == b"close"  # the server is going away: this connection ends with the call
    with pytest.raises(OSError):
        connect(server).close()  # and nothing accepts any more


def test_the_inline_protocol_can_be_turned_off():
    environment = FastAPIServer.boot(make_module(plain_app, inline_protocol=False), host="127.0.0.1", port=0)
    try:
        server = environment.get(FastAPIServer)
        # the server's protocol still serves (it enforces the limits) but answers nothing itself
        assert server.protocol_class is not None
        status, _, body, _ = roundtrip(server, request("/invoke", envelope("echo", [PARCEL])))
        assert (status, core_envelope.decode_response_json(body)) == (b"HTTP/1.1 200 OK", (PARCEL, None))
        assert server.protocol_class.stats.served == 0
    finally:
        environment.destroy()
