"""HTTP/1.1 bytes: the request writer and the response parser of the core, on both cores."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest

from warpcall._compiled import load_variant

CoreImpl = Any  # the ``core`` fixture of conftest.py: ``core.transport`` is one variant of the module

CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
    b"5;name=value\r\nhello\r\n"
    b"6\r\n world\r\n"
    b"0\r\nX-Trailer: yes\r\n\r\n"
)


def parse(core: CoreImpl, data: bytes, pieces: list[int] | None = None, **kwargs: object):
    """Feed ``data`` whole, or cut at the offsets in ``pieces``; return the finished parser."""
    parser = core.transport.ResponseParser(**kwargs)
    cuts = [0, *(pieces or []), len(data)]
    done = False
    for start, end in pairwise(cuts):
        if start < end:
            assert not done, "the parser finished before the last piece"
            done = parser.feed(data[start:end])
    assert done
    return parser


# --- writer -------------------------------------------------------------------------------------------


def test_request_has_host_headers_in_order_and_content_length(core: CoreImpl) -> None:
    out = core.transport.build_request(
        "POST",
        "/invoke?x=1",
        "127.0.0.1:8000",
        [("Content-Type", "application/json"), (b"X-Id", b"7")],
        b'{"a":1}',
    )
    assert out == (
        b"POST /invoke?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: application/json\r\n"
        b'X-Id: 7\r\nContent-Length: 7\r\n\r\n{"a":1}'
    )


def test_request_keeps_the_callers_host_and_replaces_framing_headers(core: CoreImpl) -> None:
    out = core.transport.build_request(
        "PUT",
        "/",
        "ignored:1",
        [("host", "example.org"), ("Content-Length", "99"), ("Transfer-Encoding", "chunked")],
        b"ab",
    )
    assert out == b"PUT / HTTP/1.1\r\nhost: example.org\r\nContent-Length: 2\r\n\r\nab"


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("GET", b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
        ("POST", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"),
    ],
)
def test_empty_body_sends_content_length_only_for_methods_with_a_body(
    core: CoreImpl, method: str, expected: bytes
) -> None:
    assert core.transport.build_request(method, "/", "h", [], b"") == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("GE T", "/", "h", [], b""), "invalid HTTP method 'GE T'"),
        (("GET", "/a b", "h", [], b""), "invalid request target '/a b'"),
        (("GET", "/", "h\r\nX: 1", [], b""), "invalid Host"),
        (("GET", "/", "h", [("Bad Name", "v")], b""), "invalid header name 'Bad Name'"),
        (("GET", "/", "h", [("X", "a\r\nInjected: 1")], b""), "invalid value for header 'X'"),
        (("GET", "/", "h", [("X", "\u20ac")], b""), "header value '\u20ac' is not latin-1 text"),
    ],
)
def test_request_refuses_what_would_break_the_message(core: CoreImpl, args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        core.transport.build_request(*args)


def test_request_refuses_wrong_types(core: CoreImpl) -> None:
    with pytest.raises(TypeError, match="header value must be str or bytes, not int"):
        core.transport.build_request("GET", "/", "h", [("X", 1)], b"")
    with pytest.raises(TypeError, match="body must be bytes, not str"):
        core.transport.build_request("POST", "/", "h", [], "text")
    with pytest.raises(TypeError, match=r"each header must be a \(name, value\) pair"):
        core.transport.build_request("GET", "/", "h", [("X",)], b"")


# --- parser -------------------------------------------------------------------------------------------


def test_content_length_response(core: CoreImpl) -> None:
    p = parse(core, b"HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-A:  spaced value \r\n\r\nhello")
    assert (p.status, p.reason, p.body, p.keep_alive) == (201, "Created", b"hello", True)
    assert p.headers == [("Content-Length", "5"), ("X-A", "spaced value")]
    assert p.complete


def test_chunked_response_with_extensions_and_trailers(core: CoreImpl) -> None:
    p = parse(core, CHUNKED)
    assert (p.status, p.body, p.keep_alive) == (200, b"hello world", True)


@pytest.mark.parametrize(
    "data",
    [
        CHUNKED,
        b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world",
        b"HTTP/1.0 200 OK\r\n\r\nhello world",
    ],
    ids=["chunked", "length", "until-close"],
)
def test_every_split_point_gives_the_same_response(core: CoreImpl, data: bytes) -> None:
    for cut in range(1, len(data)):
        parser = core.transport.ResponseParser()
        done = parser.feed(data[:cut]) or parser.feed(data[cut:]) or parser.feed(b"")
        assert done and parser.body == b"hello world" and parser.status == 200, cut


def test_byte_by_byte(core: CoreImpl) -> None:
    parser = core.transport.ResponseParser()
    results = [parser.feed(CHUNKED[i : i + 1]) for i in range(len(CHUNKED))]
    assert results == [False] * (len(CHUNKED) - 1) + [True]
    assert parser.body == b"hello world"


def test_body_larger_than_one_read(core: CoreImpl) -> None:
    body = bytes(range(256)) * 20_000
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    data = head + body
    p = parse(core, data, pieces=list(range(65536, len(data), 65536)))
    assert p.body == body


def test_connection_close_and_http10(core: CoreImpl) -> None:
    assert not parse(core, b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keep_alive
    assert not parse(
        core, b"HTTP/1.1 200 OK\r\nConnection: Upgrade, CLOSE\r\nContent-Length: 0\r\n\r\n"
    ).keep_alive
    assert not parse(core, b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive
    assert parse(core, b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n").keep_alive


def test_body_until_close_ends_at_eof(core: CoreImpl) -> None:
    parser = core.transport.ResponseParser()
    assert not parser.feed(b"HTTP/1.1 200 OK\r\n\r\nsome ")
    assert not parser.feed(b"bytes")
    assert parser.feed(b"")
    assert (parser.body, parser.keep_alive) == (b"some bytes", False)


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(core: CoreImpl, status: int) -> None:
    # a 304 may announce the length of the representation it does not send
    p = parse(core, b"HTTP/1.1 %d X\r\nContent-Length: 10\r\n\r\n" % status)
    assert (p.status, p.body, p.keep_alive) == (status, b"", True)


def test_head_response_has_no_body(core: CoreImpl) -> None:
    p = parse(core, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", head=True)
    assert (p.body, p.keep_alive) == (b"", True)


def test_informational_responses_are_skipped(core: CoreImpl) -> None:
    p = parse(
        core, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", pieces=[10, 30]
    )
    assert (p.status, p.body) == (200, b"ok")


def test_both_framings_trust_chunked_and_close(core: CoreImpl) -> None:
    p = parse(
        core,
        b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    )
    assert (p.body, p.keep_alive) == (b"ok", False)


def test_bytes_after_the_response_make_the_connection_unusable(core: CoreImpl) -> None:
    p = parse(core, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA")
    assert (p.body, p.keep_alive) == (b"ok", False)


def test_reason_may_be_missing(core: CoreImpl) -> None:
    p = parse(core, b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n")
    assert (p.status, p.reason) == (200, "")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"HTTP/2 200 OK\r\n\r\n", "malformed status line b'HTTP/2 200 OK'"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", "malformed header line b'No colon here'"),
        (b"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n", "malformed header line"),
        (b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "malformed header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid Content-Length b'-1'"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "conflicting Content-Length headers",
        ),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed chunk size line b'zz'"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXY",
            "chunk data is not followed by CRLF",
        ),
        (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "unexpected 101 Switching Protocols"),
    ],
)
def test_malformed_responses(core: CoreImpl, data: bytes, message: str) -> None:
    parser = core.transport.ResponseParser()
    with pytest.raises(ValueError) as info:
        parser.feed(data)
    assert str(info.value).startswith(message)


def test_max_body_from_content_length_and_from_chunks(core: CoreImpl) -> None:
    message = "response body exceeds the limit of 10 bytes; raise max_body if this is expected"
    with pytest.raises(ValueError, match=message):
        core.transport.ResponseParser(max_body=10).feed(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n")
    parser = core.transport.ResponseParser(max_body=10)
    parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n")
    with pytest.raises(ValueError, match=message):
        parser.feed(b"8\r\n")
    parser = core.transport.ResponseParser(max_body=10)
    parser.feed(b"HTTP/1.1 200 OK\r\n\r\n123456")
    with pytest.raises(ValueError, match=message):
        parser.feed(b"123456")
    assert (
        parse(core, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", max_body=10).body
        == b"0123456789"
    )


def test_head_too_large(core: CoreImpl) -> None:
    parser = core.transport.ResponseParser()
    with pytest.raises(ValueError, match="response head is larger than 65536 bytes"):
        parser.feed(b"HTTP/1.1 200 OK\r\n" + b"X: " + b"a" * 70_000)


def test_eof_before_and_during_the_response(core: CoreImpl) -> None:
    with pytest.raises(ValueError, match="^the server closed the connection without sending a response$"):
        core.transport.ResponseParser().feed(b"")
    parser = core.transport.ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel")
    with pytest.raises(
        ValueError, match="^the server closed the connection before the response was complete$"
    ):
        parser.feed(b"")


ERROR_CASES = [
    ("build", ("GE T", "/", "h", [], b"")),
    ("build", ("GET", "/", "h", [("X", "\u20ac")], b"")),
    ("build", ("GET", "/", "h", [(b"X", 3)], b"")),
    ("parse", b"HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n"),
    ("parse", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFZ\r\n"),
    ("parse", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\n"),
    ("parse", b"XTTP/1.1 200 OK\r\n\r\n"),
    ("parse", b"HTTP/1.1 200 OK\r\n:empty\r\n\r\n"),
    # the size limits (ResponseTooLarge)
    ("parse", b"HTTP/1.1 200 OK\r\n" + b"X: v\r\n" * 101 + b"\r\n"),
    ("parse", b"HTTP/1.1 200 " + b"r" * 8200 + b"\r\n\r\n"),
    ("parse", b"HTTP/1.1 100 Continue\r\n\r\n" * 3000),
    ("parse", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + b"T: v\r\n" * 101),
    ("parse", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1;" + b"e" * 8200 + b"\r\n"),
    ("parse", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + (b"1;" + b"e" * 8000 + b"\r\nx\r\n") * 9),
]


def _outcome(transport: Any, kind: str, arg: object) -> tuple[str, str]:
    try:
        if kind == "build":
            transport.build_request(*arg)
        else:
            transport.ResponseParser(max_body=1000).feed(arg)
    except (TypeError, ValueError) as exc:
        return type(exc).__name__, str(exc)
    return "ok", ""


@pytest.mark.c_extension
@pytest.mark.parametrize(("kind", "arg"), ERROR_CASES)
def test_both_cores_raise_the_same_errors(kind: str, arg: object) -> None:
    try:
        native = load_variant("transport", native=True)
    except ImportError:
        pytest.skip("the compiled core is not built here")
    outcome = _outcome(native, kind, arg)
    assert outcome == _outcome(load_variant("transport", native=False), kind, arg)
    assert outcome[0] != "ok"


# --- Connection: a real socket pair -------------------------------------------------------------------


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected (client, server) pair of blocking sockets."""
    client, server = socket.socketpair()
    server.settimeout(5)
    yield client, server
    client.close()
    server.close()


def write_later(
    sock: socket.socket, pieces: list[bytes], pause: float = 0.01, close: bool = False
) -> threading.Thread:
    def run() -> None:
        for piece in pieces:
            time.sleep(pause)
            sock.sendall(piece)
        if close:
            sock.shutdown(socket.SHUT_WR)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_connection_sends_and_receives_in_pieces(core: CoreImpl, pair: tuple) -> None:
    client, server = pair
    conn = core.transport.Connection(client)
    conn.set_timeout(5)
    conn.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert conn.sent == 27
    assert server.recv(100) == b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
    body = bytes(range(256)) * 1000  # several reads
    response = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    writer = write_later(server, [response[:7], response[7:50], response[50:100_000], response[100_000:]])
    parser = conn.receive(core.transport.ResponseParser())
    writer.join(5)
    assert (parser.status, parser.body, parser.keep_alive) == (200, body, True)
    assert conn.idle()


def test_connection_body_until_eof(core: CoreImpl, pair: tuple) -> None:
    client, server = pair
    conn = core.transport.Connection(client)
    writer = write_later(server, [b"HTTP/1.0 200 OK\r\n\r\nuntil ", b"the end"], close=True)
    parser = conn.receive(core.transport.ResponseParser())
    writer.join(5)
    assert (parser.body, parser.keep_alive) == (b"until the end", False)


def test_connection_is_not_idle_once_the_peer_wrote_or_closed(core: CoreImpl, pair: tuple) -> None:
    client, server = pair
    conn = core.transport.Connection(client)
    assert conn.idle()
    server.sendall(b"x")
    assert not conn.idle()
    client2, server2 = socket.socketpair()
    with client2, server2:
        conn2 = core.transport.Connection(client2)
        server2.close()
        assert not conn2.idle()


def test_connection_receive_times_out(core: CoreImpl, pair: tuple) -> None:
    client, _server = pair
    conn = core.transport.Connection(client)
    conn.set_timeout(0.2)
    assert conn.timeout == 0.2
    started = time.monotonic()
    with pytest.raises((BlockingIOError, TimeoutError)):
        conn.receive(core.transport.ResponseParser())
    assert time.monotonic() - started <= 0.2 + 0.5  # the timeout + max(0.5 s, 50 %): an upper bound on a hang


def test_connection_errors(core: CoreImpl, pair: tuple) -> None:
    client, server = pair
    conn = core.transport.Connection(client)
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds, not 0.0"):
        conn.set_timeout(0)
    server.sendall(b"SMTP ready\r\n\r\n")
    with pytest.raises(ValueError, match="malformed status line"):
        conn.receive(core.transport.ResponseParser())
    server.close()
    with pytest.raises(OSError):
        for _ in range(100):  # the first writes may still land in the socket buffer
            conn.send(b"x" * 65536)
    assert conn.sent == 0


def test_connection_and_parser_refuse_wrong_types(core: CoreImpl, pair: tuple) -> None:
    client, _server = pair
    conn = core.transport.Connection(client)
    with pytest.raises(TypeError, match="^parser must be a ResponseParser, not dict$"):
        conn.receive({})
    with pytest.raises(TypeError, match="'float' object cannot be interpreted as an integer"):
        core.transport.ResponseParser(max_body=1.5)
    assert core.transport.ResponseParser(max_body=True).feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")


class Interrupted(Exception):
    pass


@pytest.fixture
def alarm() -> Iterator[Any]:
    """``alarm(handler)`` runs ``handler`` on SIGALRM every 50 ms, interrupting a blocked system call (EINTR)."""
    signal = pytest.importorskip("signal")
    if not hasattr(signal, "setitimer"):
        pytest.skip("no setitimer on this platform")
    previous = signal.getsignal(signal.SIGALRM)

    def start(handler: Any) -> None:
        signal.signal(signal.SIGALRM, lambda _signum, _frame: handler())
        signal.setitimer(signal.ITIMER_REAL, 0.05, 0.05)

    yield start
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def test_receive_retries_after_a_signal_and_raises_what_the_handler_raises(
    core: CoreImpl, pair: tuple, alarm: Any
) -> None:
    client, server = pair
    conn = core.transport.Connection(client)
    conn.set_timeout(30)  # a bound, should the signal never come
    # the handler answers: the receive blocked before it, so it sees EINTR, runs the handler and reads again
    alarm(lambda: server.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    assert conn.receive(core.transport.ResponseParser()).body == b"ok"

    def interrupt() -> None:
        raise Interrupted

    alarm(interrupt)
    with pytest.raises(Interrupted):
        conn.receive(core.transport.ResponseParser())


def test_send_retries_after_a_signal(core: CoreImpl, pair: tuple, alarm: Any) -> None:
    client, server = pair
    conn = core.transport.Connection(client)
    conn.set_timeout(30)
    data = bytes(range(256)) * 4_000  # more than both socket buffers: the send blocks until the peer reads
    received = bytearray()
    server.setblocking(False)

    def drain() -> None:
        try:
            while True:
                received.extend(server.recv(1 << 20))
        except BlockingIOError:
            pass

    alarm(drain)
    conn.send(data)
    assert conn.sent == len(data)
    server.settimeout(5)
    while len(received) < len(data):
        received.extend(server.recv(1 << 20))
    assert bytes(received) == data


# --- keep-alive: the server's announced timeout and the idle expiry -------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (b"timeout=5", 5.0),
        (b"timeout=5, max=1000", 5.0),
        (b"max=3, Timeout = 0.5 ", 0.5),
        (b'timeout="2"', 2.0),
        (b"timeout=1.25", 1.25),
        (b"timeout=0", 0.0),
        (b"timeout=", -1.0),
        (b"timeout=x", -1.0),
        (b"timeout=-1", -1.0),
        (b"timeout=1.2.3", -1.0),
        (b"max=5", -1.0),
        (b"timeouts=5", -1.0),
        (b"", -1.0),
    ],
)
def test_parser_reads_the_keep_alive_timeout(core: CoreImpl, value: bytes, seconds: float) -> None:
    parser = parse(core, b"HTTP/1.1 200 OK\r\nKeep-Alive: " + value + b"\r\nContent-Length: 0\r\n\r\n")
    assert parser.keep_alive_timeout == seconds
    assert parser.keep_alive  # the header says how long, never whether


def test_parser_keep_alive_timeout_comes_from_the_final_head_only(core: CoreImpl) -> None:
    assert parse(core, b"HTTP/1.1 204 No Content\r\n\r\n").keep_alive_timeout == -1.0
    interim = b"HTTP/1.1 100 Continue\r\nKeep-Alive: timeout=9\r\n\r\n"
    final = b"HTTP/1.1 200 OK\r\nkeep-alive: timeout=3\r\nContent-Length: 0\r\n\r\n"
    assert parse(core, interim + b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive_timeout == -1.0
    assert parse(core, interim + final, [len(interim) + 20]).keep_alive_timeout == 3.0


def test_keepalive_limit_leaves_a_margin_before_the_servers_timeout(core: CoreImpl) -> None:
    limit = core.transport.keepalive_limit
    assert (limit(5.0), limit(1.0), limit(0.5), limit(60.0), limit(0.0)) == (4.0, 0.75, 0.375, 59.0, 0.0)
    # uvicorn closes idle connections after 5 s and says nothing: the default stays below that
    assert core.transport.DEFAULT_KEEPALIVE_EXPIRY == 4.0


def respond(conn: Any, server: socket.socket, core: CoreImpl, head: bytes = b"") -> Any:
    """One exchange on ``conn``: a request, the answer (with ``head`` lines) and the parser."""
    conn.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    server.recv(100)
    server.sendall(b"HTTP/1.1 200 OK\r\n" + head + b"Content-Length: 2\r\n\r\nok")
    return conn.receive(core.transport.ResponseParser())


def test_connection_is_not_reusable_once_idle_past_its_expiry(core: CoreImpl, pair: tuple) -> None:
    client, server = pair
    conn = core.transport.Connection(client, 0.1)
    conn.set_timeout(5)
    assert conn.expiry == 0.1
    before = time.monotonic()
    respond(conn, server, core)
    # the idle period starts when a response is complete, on the clock time.monotonic() reads
    assert before <= conn.idle_since <= time.monotonic()
    time.sleep(0.15)  # idle for longer than the expiry: what the test is about, not a wait for a state
    assert conn.idle() and not conn.reusable()
    respond(conn, server, core)  # a new exchange starts a new idle period
    assert conn.reusable()
    near, far = socket.socketpair()
    with near, far:
        never = core.transport.Connection(near, 0)
        assert never.idle() and not never.reusable()  # expiry 0: never reused


def test_connection_honours_the_servers_keep_alive_timeout(core: CoreImpl, pair: tuple) -> None:
    client, server = pair
    conn = core.transport.Connection(client, 30.0)
    conn.set_timeout(5)
    respond(conn, server, core, b"Keep-Alive: timeout=0\r\n")
    assert conn.idle() and not conn.reusable()  # the server keeps nothing: neither does the client
    respond(conn, server, core, b"Keep-Alive: timeout=20\r\n")
    assert conn.reusable()  # 15 s before this connection expires
    respond(conn, server, core, b"Keep-Alive: timeout=0.2\r\n")
    time.sleep(0.2)  # past keepalive_limit(0.2) == 0.15, below the client's own 30 s
    assert not conn.reusable()
    respond(conn, server, core)  # no announcement: the client's expiry again
    assert conn.reusable()
    near, far = socket.socketpair()
    with near, far:
        conn2 = core.transport.Connection(near, 0.05)
        parser = core.transport.ResponseParser()
        parser.feed(b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=600\r\nContent-Length: 0\r\n\r\n")
        conn2.rest(parser)  # what the async client calls: a longer announcement never extends the client's expiry
        assert conn2.idle()
        time.sleep(0.1)
        assert not conn2.reusable()


def test_connection_is_not_reusable_when_the_peer_closed_or_wrote(core: CoreImpl, pair: tuple) -> None:
    client, server = pair
    conn = core.transport.Connection(client)
    conn.set_timeout(5)
    respond(conn, server, core)
    assert conn.reusable()
    server.sendall(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
    assert not conn.reusable()


def test_connection_refuses_a_bad_expiry_and_rest_a_bad_parser(core: CoreImpl, pair: tuple) -> None:
    client, _server = pair
    for bad in (-1, float("nan")):
        with pytest.raises(ValueError, match="expiry must be a number of seconds >= 0"):
            core.transport.Connection(client, bad)
    with pytest.raises(TypeError, match="^parser must be a ResponseParser, not dict$"):
        core.transport.Connection(client).rest({})
