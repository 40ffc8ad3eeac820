"""``invokehead.parse``, on both cores: only a chunk that is exactly one plain ``POST /invoke`` is recognised."""

from __future__ import annotations

import random
from typing import Any

import pytest

from warpcall.core.invokehead import MAX_TIMEOUT_DIGITS
from warpcall.resilience.deadline import MAX_DIGITS, parse_header

BODY = b'{"method":"c:s:m","args":[1]}'
LIMIT = 1000


def plain(*headers: str, body: bytes = BODY, length: int | None = None, line: bytes = b"POST /invoke HTTP/1.1") -> bytes:
    """A request with ``headers`` (a content-length for ``body`` is added unless one is given)."""
    lines = [line, *(h.encode("latin-1") for h in headers)]
    if not any(h.lower().startswith("content-length") for h in headers):
        lines.append(b"content-length: %d" % (len(body) if length is None else length))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def head_length(data: bytes) -> int:
    return data.index(b"\r\n\r\n") + 4


ACCEPTED = [
    pytest.param(plain("host: 127.0.0.1", "content-type: application/json"), b"application/json", b"", id="json"),
    pytest.param(plain("Content-Type:application/msgpack"), b"application/msgpack", b"", id="no-space-any-case"),
    pytest.param(plain("content-type: \t application/json; charset=utf-8 \t"), b"application/json; charset=utf-8",
                 b"", id="value-trimmed"),
    pytest.param(plain("content-type: application/x-protobuf", "X-RPC-Method: c:s:m"), b"application/x-protobuf",
                 b"c:s:m", id="method-header"),
    pytest.param(plain("connection: Keep-Alive", "user-agent: x/1", "accept: */*"), b"", b"", id="keep-alive"),
    pytest.param(plain("content-length: 0", body=b""), b"", b"", id="empty-body"),
    pytest.param(plain("content-length: 0029"), b"", b"", id="leading-zeros"),
    pytest.param(plain("x-empty:", "content-type: a"), b"a", b"", id="empty-value"),
]


@pytest.mark.parametrize(("data", "content_type", "method"), ACCEPTED)
def test_plain_requests_are_recognised(core: Any, data: bytes, content_type: bytes, method: bytes) -> None:
    assert core.invokehead.parse(data, LIMIT) == (content_type, method, head_length(data), -1, b"", None)


@pytest.mark.parametrize(("line", "value"), [
    ("x-rpc-timeout: 250", 250), ("X-RPC-Timeout:\t7 ", 7), ("x-rpc-timeout: 0", 0), ("x-rpc-timeout: 0042", 42),
    ("x-rpc-timeout: 999999999999", 999_999_999_999),
])
def test_the_deadline_header_is_read_as_milliseconds(core: Any, line: str, value: int) -> None:
    """The value's milliseconds (trimmed), as the server's parse_header reads them: no Python needed to read it."""
    data = plain("content-type: a", line)
    assert core.invokehead.parse(data, LIMIT) == (b"a", b"", head_length(data), value, b"", None)
    assert parse_header(line.partition(":")[2].strip(" \t"), 10.0) == 10.0 + value / 1000.0


@pytest.mark.parametrize("lines", [
    ("x-rpc-timeout: 1", "x-rpc-timeout: 2"), ("x-rpc-timeout:  ",), ("x-rpc-timeout: abc",),
    ("x-rpc-timeout: -5",), ("x-rpc-timeout: +7",), ("x-rpc-timeout: 1.5",), ("x-rpc-timeout: 1_000",),
    ("x-rpc-timeout: 1 000",), ("x-rpc-timeout: 9999999999999",),
])
def test_a_repeated_empty_or_malformed_deadline_header_goes_to_the_parser(core: Any, lines: tuple[str, ...]) -> None:
    """uvicorn's path then reads it, and the server answers a malformed value 400 there, in one place."""
    assert core.invokehead.parse(plain(*lines), LIMIT) is None
    for line in lines:  # what the server's own reading makes of each value: malformed, except a repeat
        value = line.partition(":")[2].strip(" \t")
        assert (parse_header(value, 0.0) is None) == (len(lines) == 1)


def test_the_digit_limit_is_the_servers() -> None:
    assert MAX_TIMEOUT_DIGITS == MAX_DIGITS


REFUSED = [
    pytest.param(plain()[:-1], id="body-short"),
    pytest.param(plain() + b"x", id="body-long"),
    pytest.param(plain() + plain(), id="two-requests"),
    pytest.param(plain()[:20], id="head-in-pieces"),
    pytest.param(plain().split(b"\r\n\r\n")[0] + b"\r\n", id="no-end-of-head"),
    pytest.param(plain(body=b"x" * (LIMIT + 1)), id="over-the-limit"),
    pytest.param(plain("content-length: 29", "content-length: 29"), id="two-lengths"),
    pytest.param(plain("content-length: +29"), id="signed-length"),
    pytest.param(plain("content-length: 2 9"), id="spaced-length"),
    pytest.param(plain("content-length:"), id="empty-length"),
    pytest.param(plain("content-length: 1234567890123456789"), id="huge-length"),
    pytest.param(b"POST /invoke HTTP/1.1\r\n\r\n", id="no-length"),
    pytest.param(plain("content-type: a", "content-type: b"), id="two-content-types"),
    pytest.param(plain("x-rpc-method: a", "x-rpc-method: b"), id="two-methods"),
    # the same value twice too: whether two values differ is decided on uvicorn's path, in one place
    pytest.param(plain("content-type: a", "Content-Type: a"), id="same-content-type-twice"),
    pytest.param(plain("x-rpc-method: a", "X-Rpc-Method: a"), id="same-method-twice"),
    pytest.param(plain("transfer-encoding: chunked"), id="chunked"),
    pytest.param(plain("expect: 100-continue"), id="expect"),
    pytest.param(plain("upgrade: websocket"), id="upgrade"),
    pytest.param(plain("te: trailers"), id="te"),
    pytest.param(plain("trailer: x"), id="trailer"),
    pytest.param(plain("connection: close"), id="connection-close"),
    pytest.param(plain("connection: keep-alive, upgrade"), id="connection-list"),
    # llhttp reads Proxy-Connection as Connection: uvicorn closes after "close", so the request takes its path
    pytest.param(plain("proxy-connection: close"), id="proxy-connection-close"),
    pytest.param(plain("Proxy-Connection: keep-alive"), id="proxy-connection"),
    pytest.param(plain(line=b"POST /invoke HTTP/1.0"), id="http-1.0"),
    pytest.param(plain(line=b"POST /invoke?x=1 HTTP/1.1"), id="query"),
    pytest.param(plain(line=b"POST /invokes HTTP/1.1"), id="other-path"),
    pytest.param(plain(line=b"PUT /invoke HTTP/1.1"), id="other-method"),
    pytest.param(plain(line=b"post /invoke HTTP/1.1"), id="lowercase-method"),
    pytest.param(plain(line=b"POST  /invoke HTTP/1.1"), id="double-space"),
    pytest.param(plain(line=b"POST http://h/invoke HTTP/1.1"), id="absolute-form"),
    pytest.param(plain("bad header: x"), id="space-in-name"),
    pytest.param(plain("name : x"), id="space-before-colon"),
    pytest.param(plain(": x"), id="empty-name"),
    pytest.param(plain("no-colon"), id="no-colon"),
    pytest.param(plain("x-a: caf\xe9"), id="obs-text"),
    pytest.param(plain("x-a: a\x00b"), id="nul"),
    pytest.param(plain("x-a: a\rb"), id="bare-cr"),
    pytest.param(plain("x-a: a\nb"), id="bare-lf"),
    pytest.param(plain(" x-a: folded"), id="leading-space"),
    pytest.param(plain(*[f"x-{i}: v" for i in range(101)]), id="too-many-headers"),
    pytest.param(b"", id="empty"),
]


@pytest.mark.parametrize("data", REFUSED)
def test_anything_else_is_left_to_uvicorn(core: Any, data: bytes) -> None:
    assert core.invokehead.parse(data, LIMIT) is None


def test_only_bytes_are_read(core: Any) -> None:
    data = plain()
    assert core.invokehead.parse(bytearray(data), LIMIT) is None
    assert core.invokehead.parse(memoryview(data), LIMIT) is None


def test_a_hundred_headers_are_fine(core: Any) -> None:
    data = plain(*[f"x-{i}: v" for i in range(99)])
    assert core.invokehead.parse(data, LIMIT) == (b"", b"", head_length(data), -1, b"", None)


def test_both_builds_agree_on_mangled_requests(core: Any) -> None:
    """Bounded random byte changes to a valid request: the compiled build says what the plain-Python one says."""
    from warpcall._compiled import load_pure

    reference = load_pure("warpcall.core.invokehead")

    rng = random.Random(20261124)
    base = plain("host: h", "content-type: application/json", "x-rpc-method: c:s:m", "connection: keep-alive")
    alphabet = b"\r\n\t :;,-+0123456789aAxX\x00\x7f\xff"
    recognised = 0
    for _ in range(3000):
        data = bytearray(base)
        for _ in range(rng.randint(1, 3)):
            position = rng.randrange(len(data))
            action = rng.random()
            if action < 0.5:
                data[position] = rng.choice(alphabet)
            elif action < 0.75:
                del data[position]
            else:
                data.insert(position, rng.choice(alphabet))
        mangled = bytes(data)
        expected = reference.parse(mangled, LIMIT)
        assert core.invokehead.parse(mangled, LIMIT) == expected, mangled
        recognised += expected is not None
    assert 0 < recognised < 3000  # the corpus holds both kinds


@pytest.mark.parametrize(("line", "value"), [
    ("authorization: Bearer abc.def", b"Bearer abc.def"), ("Authorization:\tBearer x \t", b"Bearer x"),
    ("AUTHORIZATION: Basic dXNlcg==", b"Basic dXNlcg=="), ("authorization:", b""),
])
def test_the_authorization_header_is_read_on_the_one_chunk_path(core: Any, line: str, value: bytes) -> None:
    """The server reads the token where it answers the call: a call with a token keeps the one-chunk path."""
    data = plain("content-type: a", line)
    assert core.invokehead.parse(data, LIMIT) == (b"a", b"", head_length(data), -1, value, None)


@pytest.mark.parametrize("lines", [
    ("authorization: Bearer a", "authorization: Bearer b"), ("authorization: Bearer a", "Authorization: Bearer a"),
])
def test_a_repeated_authorization_header_goes_to_the_parser(core: Any, lines: tuple[str, ...]) -> None:
    """Differing values are answered 400 there (one reading of the token); the same value twice is one token."""
    assert core.invokehead.parse(plain(*lines), LIMIT) is None


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(("x-rpc-timing: 1",), id="timing"),
        pytest.param(("X-RPC-Timing: 0",), id="timing-not-1"),
        pytest.param(("traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01 ",), id="traceparent"),
        pytest.param(("TraceState: a=1", "tracestate: b=2"), id="tracestate-twice"),
    ],
)
def test_observed_headers_flagged(core: Any, headers: tuple[str, ...]) -> None:
    """A request asking for timings or carrying a trace context is flagged: the server observes it (and reads
    the values from the head itself)."""
    data = plain("content-type: a", *headers)
    assert core.invokehead.parse(data, LIMIT) == (b"a", b"", head_length(data), -1, b"", True)


def test_observed_header_names_only(core: Any) -> None:
    data = plain("content-type: a", "x-traceparent: 1", "traceparents: 1", "x-rpc-timing-x: 1")
    assert core.invokehead.parse(data, LIMIT) == (b"a", b"", head_length(data), -1, b"", None)
