"""Issue 14, point 1: a request whose body did not fully arrive never reaches an implementation.

Real uvicorn servers on 127.0.0.1: a warpcall server on a plain app (the inline protocol, the held
body, the ASGI app and the REST fast path answer), one whose app has a pass-through middleware
(every request goes through FastAPI), and a bare uvicorn + FastAPI reference. Each request below
announces more body than it sends (or leaves out a chunked body's last chunk), and the client
then ends the connection with a FIN (``shutdown(SHUT_WR)``) or a RST (``SO_LINGER`` 0, close).
Once the server has read every byte sent, and then has seen the connection end and finished
every task, the implementation's counter must not have moved and nothing may have been
answered; the same request with its whole body must move it, which proves the wait and the
counter see a call.
"""

from __future__ import annotations

import fcntl
import logging
import socket
import struct
import termios
import threading
from abc import abstractmethod
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response

from rawhttp import Reader, UvicornReference, connect, request, wait_until
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
    post,
    rest,
    service,
)
from warpcall.channels.dispatch import DispatchProtobufChannel
from warpcall.core import envelope as core_envelope
from warpcall.di import create, module
from warpcall.server import protocol
from warpcall.service import service_descriptor

#: calls that reached an implementation, by method (the reference's routes count here too)
CALLS: Counter[str] = Counter()
_LOCK = threading.Lock()  # sync REST implementations run in the thread pool


def count(name: str) -> int:
    with _LOCK:
        CALLS[name] += 1
        return CALLS[name]


@dataclass
class Entry:
    text: str


@service(name="tally")
class TallyService(Service):
    @abstractmethod
    def note(self, text: str) -> int: ...

    @abstractmethod
    async def note_async(self, text: str) -> int: ...

    @abstractmethod
    def items(self, names: list[str]) -> int: ...

    @abstractmethod
    async def items_async(self, names: list[str]) -> int: ...


@service(name="ledger")
@rest("/ledger")
class LedgerService(Service):
    @post("/entries")
    @abstractmethod
    def add(self, entry: Entry) -> int: ...

    @post("/async/entries")
    @abstractmethod
    async def add_async(self, entry: Entry) -> int: ...


@component(name="books", services=[TallyService, LedgerService])
class BooksComponent(Component):
    pass


@implementation()
class TallyServiceImpl(TallyService):
    def note(self, text: str) -> int:
        return count("note")

    async def note_async(self, text: str) -> int:
        return count("note_async")

    def items(self, names: list[str]) -> int:
        return count("items")

    async def items_async(self, names: list[str]) -> int:
        return count("items_async")


@implementation()
class LedgerServiceImpl(LedgerService):
    def add(self, entry: Entry) -> int:
        return count("add")

    async def add_async(self, entry: Entry) -> int:
        return count("add_async")


@implementation()
class BooksComponentImpl(AbstractComponent, BooksComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://127.0.0.1:{port}")]


def with_middleware(app: FastAPI) -> FastAPI:
    @app.middleware("http")
    async def pass_through(request: Request, call_next: Any) -> Any:
        return await call_next(request)

    return app


def make_module(middleware: bool) -> type:
    @module(imports=[ServiceModule])
    class BooksModule:
        @create()
        def create_registry(self) -> ComponentRegistry:
            return LocalComponentRegistry()

        @create()
        def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
            app = with_middleware(FastAPI()) if middleware else FastAPI()
            return FastAPIServer(app, manager, registry)

    return BooksModule


def reference_app(middleware: bool) -> FastAPI:
    """The bare FastAPI counterpart: ``/invoke`` reads ``await request.body()``, the REST routes take a body."""
    app = with_middleware(FastAPI()) if middleware else FastAPI()

    @app.post("/invoke")
    async def invoke(request: Request) -> Response:
        await request.body()
        count("reference")
        return Response(b"{}", media_type="application/json")

    @app.post("/ledger/entries")
    def add(entry: Entry) -> int:
        return count("reference")

    @app.post("/ledger/async/entries")
    async def add_async(entry: Entry) -> int:
        return count("reference")

    return app


class Target:
    """A server under test: its uvicorn state, and the name its calls are counted under."""

    def __init__(self, name: str, uvicorn_server: Any, port: int, warpcall: FastAPIServer | None = None) -> None:
        self.name, self.uvicorn_server, self.port, self.warpcall = name, uvicorn_server, port, warpcall

    @property
    def state(self) -> Any:
        return self.uvicorn_server.server_state


@pytest.fixture(scope="module")
def targets():
    booted = []
    references = [UvicornReference(reference_app(middleware)) for middleware in (False, True)]
    try:
        for middleware in (False, True):
            booted.append(FastAPIServer.boot(make_module(middleware), host="127.0.0.1", port=0))
        for reference in references:
            reference.__enter__()
        plain, behind = (environment.get(FastAPIServer) for environment in booted)
        assert not plain.fast_api.user_middleware
        assert behind.fast_api.user_middleware
        yield {
            "plain": Target("plain", plain.server, plain.port, plain),
            "middleware": Target("middleware", behind.server, behind.port, behind),
            "reference": Target("reference", references[0].server, references[0].port),
            "reference+middleware": Target("reference+middleware", references[1].server, references[1].port),
        }
    finally:
        for reference in references:
            if reference.server.started:
                reference.__exit__(None, None, None)
        for environment in booted:
            environment.destroy()


# --- the requests: (what is sent before the client gives up, what would complete it) ---------------------

PAD = 70_000  # over protocol.HOLD_LIMIT: the body streams through the ASGI app
assert PAD > protocol.HOLD_LIMIT

Piece = bytes | str  # "continue": wait for the server's 100 Continue before the next piece


def invoke_json(method: str) -> bytes:
    return core_envelope.encode_request_json(f"books:tally:{method}", ["x"])


def invoke_protobuf(method: str) -> bytes:
    codec = DispatchProtobufChannel.codec(service_descriptor(TallyService).methods[method])
    return bytes(codec.encode_request((["a", "b"],)))


def rest_body() -> bytes:
    return b'{"text": "x"}'


def build(shape: str, path: str, body: bytes, content_type: str, extra: str = "") -> tuple[list[Piece], bytes]:
    """The pieces of an aborted request of ``shape`` and the bytes that would complete it.

    Every aborted request but ``no body`` carries a complete document (JSON allows the trailing spaces that pad
    it): only the framing says the body is not all there.
    """
    if shape == "one chunk":  # a short body announced 20 bytes longer, sent in one write
        return [request(path, body, content_type, extra=extra, length=len(body) + 20)], b" " * 20
    if shape == "in pieces":  # the same, head and body in three writes
        data = request(path, body, content_type, extra=extra, length=len(body) + 20)
        cut = data.index(b"\r\n\r\n") + 4
        return [data[:cut], data[cut:cut + 5], data[cut + 5:]], b" " * 20
    if shape == "over 64 KiB":  # content-length 100000, a complete document padded to 70,000 bytes
        padded = body + b" " * (PAD - len(body))
        return [request(path, padded, content_type, extra=extra, length=100_000)], b" " * (100_000 - PAD)
    if shape == "chunked":  # one chunk holding the whole document, never the last chunk
        head = (f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: {content_type}\r\n{extra}"
                "transfer-encoding: chunked\r\n\r\n").encode("latin-1")
        return [head + b"%x\r\n%s\r\n" % (len(body), body)], b"0\r\n\r\n"
    if shape == "expect":  # Expect: 100-continue, the 100 read, then the body short of 20 bytes
        data = request(path, body, content_type, extra=extra + "expect: 100-continue\r\n", length=len(body) + 20)
        cut = data.index(b"\r\n\r\n") + 4
        return [data[:cut], "continue", data[cut:]], b" " * 20
    if shape == "expect, no body":
        data = request(path, body, content_type, extra=extra + "expect: 100-continue\r\n")
        cut = data.index(b"\r\n\r\n") + 4
        return [data[:cut], "continue"], data[cut:]
    if shape == "no body":  # the head announces a body, none comes
        data = request(path, body, content_type, extra=extra)
        cut = data.index(b"\r\n\r\n") + 4
        return [data[:cut]], data[cut:]
    raise AssertionError(shape)


SHAPES = ["one chunk", "in pieces", "over 64 KiB", "chunked", "expect", "expect, no body", "no body"]


# --- one exchange -------------------------------------------------------------------------------------------


class Watched:
    """The server side of one raw connection: its protocol, and whether the server has read all that was sent.

    The kernel says so: nothing left in the client's send queue (``TIOCOUTQ``: unsent or unacknowledged
    bytes) and then nothing unread in the server socket's receive queue (``FIONREAD``). Once that holds, a RST
    cannot overtake bytes still queued, and the server has handed every byte to its protocol.
    """

    def __init__(self, target: Target, sock: socket.socket) -> None:
        address = sock.getsockname()
        found: list[Any] = []

        def appeared() -> bool:
            found[:] = [c for c in list(target.state.connections) if c.client == address]
            return bool(found)

        wait_until(appeared, what="the server's side of the connection")
        self.protocol = found[0]
        self.sock = sock
        self.server_fd = self.protocol.transport.get_extra_info("socket").fileno()

    def all_read(self) -> bool:
        return _queued(self.sock.fileno(), termios.TIOCOUTQ) == 0 and _queued(self.server_fd, termios.FIONREAD) == 0


def _queued(fd: int, request: int) -> int:
    count: int = struct.unpack("i", fcntl.ioctl(fd, request, b"\0\0\0\0"))[0]
    return count


def send_pieces(target: Target, sock: socket.socket, pieces: list[Piece], reader: Reader) -> Watched:
    watched = Watched(target, sock)
    for piece in pieces:
        if piece == "continue":
            for _ in range(1000):
                if b"\r\n\r\n" in reader.buffer:
                    break
                assert reader._fill(), "closed before 100 Continue"
            assert reader.buffer == b"HTTP/1.1 100 Continue\r\n\r\n"
            reader.buffer = b""
            continue
        assert isinstance(piece, bytes)
        sock.sendall(piece)
        wait_until(watched.all_read, what="the server's reading every byte sent")
    return watched


def abort(target: Target, pieces: list[Piece], ending: str) -> bytes:
    """Send ``pieces``, end the connection with ``ending`` (fin, rst); returns what the server sent after that.

    Returns once the server has seen the connection end and has no task left (the ASGI app has returned).
    """
    sock = connect(target.port)
    reader = Reader(sock)
    try:
        watched = send_pieces(target, sock, pieces, reader)
        answered = b""
        if ending == "fin":
            sock.shutdown(socket.SHUT_WR)
            for _ in range(1000):  # read until the server closes: an answer would come before that
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                answered += chunk
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        sock.close()
    state = target.state
    wait_until(lambda: watched.protocol not in state.connections and not state.tasks,
               what="the server's seeing the connection end and finishing its tasks")
    return reader.buffer + answered


def complete(target: Target, pieces: list[Piece], rest: bytes) -> bytes:
    """Send ``pieces`` and then ``rest``: the whole request; returns the response's status line."""
    with connect(target.port) as sock:
        reader = Reader(sock)
        send_pieces(target, sock, pieces, reader)
        sock.sendall(rest)
        status, _, _ = reader.response()
    state = target.state
    wait_until(lambda: not state.tasks, what="the server's finishing its tasks")
    return status


def check(target: Target, pieces: list[Piece], rest: bytes, counted: str, ending: str) -> None:
    before = CALLS[counted]
    answered = abort(target, pieces, ending)
    assert CALLS[counted] == before, f"{counted} ran for a request whose body did not all arrive"
    assert answered == b""  # nobody is left to answer
    # the control: the same request completed runs the method once
    assert complete(target, pieces, rest) == b"HTTP/1.1 200 OK"
    assert CALLS[counted] == before + 1


# --- the tests ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ending", ["fin", "rst"])
@pytest.mark.parametrize("method", ["note", "note_async"])
@pytest.mark.parametrize("server", ["plain", "middleware"])
@pytest.mark.parametrize("shape", SHAPES)
def test_an_aborted_json_call_runs_nothing(targets, shape, server, method, ending):
    pieces, rest = build(shape, "/invoke", invoke_json(method), "application/json")
    check(targets[server], pieces, rest, method, ending)


@pytest.mark.parametrize("ending", ["fin", "rst"])
@pytest.mark.parametrize("method", ["items", "items_async"])
@pytest.mark.parametrize("server", ["plain", "middleware"])
@pytest.mark.parametrize("shape", ["no body", "one chunk", "chunked", "expect, no body"])
def test_an_aborted_protobuf_call_runs_nothing(targets, shape, server, method, ending):
    """A protobuf body cannot be padded: only the shapes that leave the body out or keep it whole."""
    body = invoke_protobuf(method)
    extra = f"x-rpc-method: books:tally:{method}\r\n"
    if shape == "one chunk":  # the body short of its last bytes, announced whole
        data = request("/invoke", body, "application/x-protobuf", extra=extra)
        pieces: list[Piece] = [data[:-3]]
        rest = data[-3:]
    else:
        pieces, rest = build(shape, "/invoke", body, "application/x-protobuf", extra)
    check(targets[server], pieces, rest, method, ending)


@pytest.mark.parametrize("ending", ["fin", "rst"])
@pytest.mark.parametrize("path, counted", [("/ledger/entries", "add"), ("/ledger/async/entries", "add_async")],
                         ids=["sync", "async"])
@pytest.mark.parametrize("server", ["plain", "middleware"])
@pytest.mark.parametrize("shape", SHAPES)
def test_an_aborted_rest_call_runs_nothing(targets, shape, server, path, counted, ending):
    pieces, rest = build(shape, path, rest_body(), "application/json")
    check(targets[server], pieces, rest, counted, ending)


@pytest.mark.parametrize("ending", ["fin", "rst"])
@pytest.mark.parametrize("path", ["/invoke", "/ledger/entries", "/ledger/async/entries"])
@pytest.mark.parametrize("server", ["reference", "reference+middleware"])
@pytest.mark.parametrize("shape", SHAPES)
def test_the_reference_runs_nothing_either(targets, shape, server, path, ending):
    """Side by side: bare uvicorn + FastAPI (``ClientDisconnect`` from ``request.body()``) runs nothing too."""
    body = invoke_json("note") if path == "/invoke" else rest_body()
    pieces, rest = build(shape, path, body, "application/json")
    check(targets[server], pieces, rest, "reference", ending)


def test_the_paths_taken_are_the_ones_named(targets):
    """The shapes reach the paths they are named for: inline or held, or the ASGI app (the REST fast path's too)."""
    plain = targets["plain"]
    # without it (an uvicorn the protocol does not support) every request goes through ASGI: the tests above
    # still hold, but the inline and held paths are not among them
    assert protocol.SUPPORTED, "the inline protocol is off: the inline and held paths are not tested"
    assert plain.warpcall is not None and plain.warpcall.protocol_class is not None
    stats = plain.warpcall.protocol_class.stats  # requests the inline protocol answered without the ASGI app
    fast = plain.warpcall.rest_fast_path  # requests the REST fast path answered, inline or through ASGI
    served, fast_served = stats.served, fast.served
    for shape in ("one chunk", "in pieces"):
        for path, body in (("/invoke", invoke_json("note")), ("/ledger/entries", rest_body())):
            pieces, rest = build(shape, path, body, "application/json")
            assert complete(plain, pieces, rest) == b"HTTP/1.1 200 OK"
            served += 1
            fast_served += path != "/invoke"
            assert (stats.served, fast.served) == (served, fast_served), (shape, path)
    for shape in ("over 64 KiB", "chunked", "expect", "expect, no body"):
        for path, body in (("/invoke", invoke_json("note")), ("/ledger/entries", rest_body())):
            pieces, rest = build(shape, path, body, "application/json")
            assert complete(plain, pieces, rest) == b"HTTP/1.1 200 OK"
            fast_served += path != "/invoke"
            assert (stats.served, fast.served) == (served, fast_served), (shape, path)


class ExceptionsLogged(logging.Handler):
    """What a logger reports: the type of each exception logged, else the message."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(type(record.exc_info[1]).__name__ if record.exc_info else record.getMessage())


@pytest.mark.parametrize("path, logged", [("/invoke", ["ClientDisconnect"]), ("/ledger/entries", [])],
                         ids=["invoke", "rest"])
@pytest.mark.parametrize("shape", ["over 64 KiB", "chunked", "expect"])
def test_an_aborted_request_ends_as_the_references_does(targets, shape, path, logged):
    """What uvicorn reports of the aborted request is the reference's: on ``/invoke`` the ``ClientDisconnect`` that
    ``request.body()`` raises, on a REST route nothing (FastAPI answers its own 400 to nobody, and the fast path
    stops)."""
    logger = logging.getLogger("uvicorn.error")
    handler = ExceptionsLogged()
    logger.addHandler(handler)
    outcomes = {}
    try:
        for name in ("plain", "middleware", "reference", "reference+middleware"):
            handler.seen.clear()
            body = invoke_json("note") if path == "/invoke" else rest_body()
            pieces, _ = build(shape, path, body, "application/json")
            abort(targets[name], pieces, "fin")
            outcomes[name] = list(handler.seen)
    finally:
        logger.removeHandler(handler)
    assert outcomes == dict.fromkeys(outcomes, logged)
