"""The server's limits: behaviour mutation testing found unchecked (mutation/, area ``limits``).

Each test pins down one promise a sampled mutant broke while the limit tests still passed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import threading
from abc import abstractmethod
from collections.abc import Iterator
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
    component,
    implementation,
    service,
)
from warpcall.core.invokehead import MAX_HEADERS as INLINE_MAX_HEADERS
from warpcall.core.invokehead import REQUEST_LINE
from warpcall.di import ConfigurationException, create, module
from warpcall.exceptions import ServiceException
from warpcall.server import protocol
from warpcall.server.limits import ServerLimits, checked_getter

# --- ServerLimits --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("workers", "share", "expected"), [(8, 0.5, 4), (8, 1.0, 8), (8, 0.01, 1), (3, 0.5, 1), (10, 0.25, 2)]
)
def test_method_workers_is_the_share_of_the_workers_and_at_least_one(
    workers: int, share: float, expected: int
) -> None:
    limits = ServerLimits(max_workers=workers, method_share=share)
    assert limits.method_workers == expected  # an attribute, not a method to call


@pytest.mark.parametrize(("connections", "expected"), [(None, None), (1, 2), (3, 4)])
def test_limit_concurrency_counts_the_asker(connections: int | None, expected: int | None) -> None:
    assert ServerLimits(max_connections=connections).limit_concurrency == expected


def test_the_defaults_are_those_the_readme_states() -> None:
    limits = ServerLimits()
    assert (limits.max_head_size, limits.max_headers, limits.head_timeout, limits.idle_timeout) == (
        16384,
        100,
        10.0,
        5.0,
    )
    assert (limits.max_connections, limits.max_workers, limits.max_queued) == (1000, 32, 1024)
    assert (limits.method_share, limits.retry_after, limits.max_loop_time) == (0.5, 1, 0.02)
    assert (limits.method_workers, limits.limit_concurrency) == (16, 1001)


@pytest.mark.parametrize(
    "name",
    [
        "max_head_size",
        "max_headers",
        "head_timeout",
        "idle_timeout",
        "max_workers",
        "max_queued",
        "method_share",
        "retry_after",
        "max_loop_time",
    ],
)
def test_only_max_connections_may_be_none(name: str) -> None:
    with pytest.raises(ServiceException, match=f"^ServerLimits.{name} must be a positive number, got None$"):
        ServerLimits(**{name: None})
    assert ServerLimits(max_connections=None).max_connections is None


def test_server_limits_are_immutable() -> None:
    limits = ServerLimits()
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.max_head_size = 1  # type: ignore[misc]
    assert limits.max_head_size == 16384


# --- the fast head bound -------------------------------------------------------------------------


@pytest.mark.parametrize("max_headers", [1, 3, 5, 20, INLINE_MAX_HEADERS - 1])
def test_the_fast_head_bound_is_the_longest_head_that_cannot_exceed_max_headers(max_headers: int) -> None:
    # a head of n bytes holds at most (n - len(request line) - 2) // 4 header lines ("x:" CRLF each)
    bound = protocol._fast_head(ServerLimits(max_headers=max_headers, max_head_size=1 << 20))

    def most_lines(size: int) -> int:
        return (size - len(REQUEST_LINE) - 2) // 4

    assert most_lines(bound) == max_headers  # within the limit
    assert most_lines(bound + 1) == max_headers + 1  # one byte more could exceed it


def test_the_fast_head_bound_is_the_head_size_when_the_header_count_cannot_be_exceeded() -> None:
    for max_headers in (INLINE_MAX_HEADERS, INLINE_MAX_HEADERS + 1, INLINE_MAX_HEADERS * 3):
        assert protocol._fast_head(ServerLimits(max_headers=max_headers, max_head_size=4096)) == 4096
    assert protocol._fast_head(ServerLimits(max_headers=5, max_head_size=30)) == 30


# --- a head arriving while an earlier request is under way ---------------------------------------

RELEASE = threading.Event()
ENTERED = threading.Event()


@service(name="held")
class HeldService(Service):
    @abstractmethod
    async def wait(self, value: str) -> str: ...

    @abstractmethod
    def echo(self, value: str) -> str: ...


@component(name="limitsmut", services=[HeldService])
class HeldComponent(Component):
    pass


@implementation()
class HeldServiceImpl(HeldService):
    async def wait(self, value: str) -> str:
        ENTERED.set()
        await asyncio.to_thread(RELEASE.wait, 5.0)  # the loop stays free: it reads what comes meanwhile
        return value

    def echo(self, value: str) -> str:
        return value


@implementation()
class HeldComponentImpl(AbstractComponent, HeldComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://127.0.0.1:{port}")]


@pytest.fixture(scope="module", params=[{}, {"inline_protocol": False}], ids=["inline", "asgi"])
def server(request: Any) -> Iterator[Any]:
    options = request.param

    @module(imports=[ServiceModule])
    class HeldModule:
        @create()
        def create_registry(self) -> ComponentRegistry:
            return LocalComponentRegistry()

        @create()
        def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
            limits = ServerLimits(max_head_size=1024, max_headers=20, max_connections=None, head_timeout=1.0)
            return FastAPIServer(FastAPI(), manager, registry, limits=limits, **options)

    environment = FastAPIServer.boot(HeldModule, host="127.0.0.1", port=0)
    try:
        yield environment.get(FastAPIServer)
    finally:
        RELEASE.set()
        environment.destroy()


def _call(method: str, value: str) -> bytes:
    return request("/invoke", json.dumps({"method": f"limitsmut:held:{method}", "args": [value]}).encode())


def test_a_small_head_arriving_in_pieces_behind_a_running_request_is_served(server: Any) -> None:
    if not protocol.SUPPORTED:
        pytest.skip("the installed uvicorn has no httptools protocol")
    RELEASE.clear()
    ENTERED.clear()
    second = _call("echo", "two")
    cut = 20  # a head well within the limits, its first bytes in the same packet as the running request
    with connect(server.port) as sock:
        sock.sendall(_call("wait", "one") + second[:cut])
        wait_until(ENTERED.is_set, what="the first call to start")
        RELEASE.set()
        reader = Reader(sock)
        first = reader.response()
        assert (first[0], first[2]) == (b"HTTP/1.1 200 OK", b'{"result":"one","exception":null}')
        sock.sendall(second[cut:])
        answer = reader.response()
        assert (answer[0], answer[2]) == (b"HTTP/1.1 200 OK", b'{"result":"two","exception":null}')


def test_an_oversized_head_arriving_behind_a_running_request_is_refused_after_its_answer(server: Any) -> None:
    if not protocol.SUPPORTED:
        pytest.skip("the installed uvicorn has no httptools protocol")
    RELEASE.clear()
    ENTERED.clear()
    oversized = b"POST /invoke HTTP/1.1\r\nx-pad: " + b"p" * 1100  # past max_head_size, its end not sent
    with connect(server.port) as sock:
        sock.sendall(_call("wait", "one"))
        wait_until(ENTERED.is_set, what="the first call to start")
        sock.sendall(oversized)
        reader = Reader(sock)
        RELEASE.set()
        first = reader.response()
        assert (first[0], first[2]) == (b"HTTP/1.1 200 OK", b'{"result":"one","exception":null}')
        status, headers, body = reader.response()
        assert (status, body) == (
            b"HTTP/1.1 431 Request Header Fields Too Large",
            b"Request Header Fields Too Large",
        )
        assert headers[b"connection"] == b"close"
        assert reader.closed()


@pytest.fixture(scope="module", params=[{}, {"inline_protocol": False}], ids=["inline", "asgi"])
def single(request: Any) -> Iterator[Any]:
    options = request.param

    @module(imports=[ServiceModule])
    class SingleModule:
        @create()
        def create_registry(self) -> ComponentRegistry:
            return LocalComponentRegistry()

        @create()
        def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
            limits = ServerLimits(max_connections=1, idle_timeout=30)
            return FastAPIServer(FastAPI(), manager, registry, limits=limits, **options)

    environment = FastAPIServer.boot(SingleModule, host="127.0.0.1", port=0)
    try:
        yield environment.get(FastAPIServer)
    finally:
        environment.destroy()


def test_requests_get_503_while_the_connections_are_at_or_past_the_limit(single: Any) -> None:
    if not protocol.SUPPORTED:
        pytest.skip("the installed uvicorn has no httptools protocol")
    state = single.server.server_state
    wait_until(lambda: len(state.connections) == 0, what="no connection left from earlier tests")
    socks = []
    try:
        for _ in range(3):  # max_connections = 1: two connections beyond it, open at once
            socks.append(connect(single.port))
            wait_until(lambda: len(state.connections) == len(socks), what="the server seeing each connection")
        call = _call("echo", "one")
        refused = (b"HTTP/1.1 503 Service Unavailable", b"close", b"Service Unavailable")
        for open_now, sock in ((3, socks[2]), (2, socks[1])):  # two beyond the limit, then one
            wait_until(lambda n=open_now: len(state.connections) == n, what="the refused connection to go")
            sock.sendall(call)
            status, headers, body = Reader(sock).response()
            assert (status, headers.get(b"connection"), body) == refused
        wait_until(lambda: len(state.connections) == 1, what="the refused connection to go")
        socks[0].sendall(call)  # within the limit again: served
        status, headers, body = Reader(socks[0]).response()
        assert (status, body) == (b"HTTP/1.1 200 OK", b'{"result":"one","exception":null}')
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.parametrize("in_flight", [0, 1, 2, 3])
def test_requests_get_503_while_the_calls_in_flight_are_at_or_past_the_limit(
    single: Any, in_flight: int
) -> None:
    # max_connections = 1: uvicorn's limit_concurrency is 2, and it refuses while the server's tasks in
    # flight (those of connections gone since included) are at or past it; the inline protocol, which
    # answers a call from its bytes, must count them the same way
    if not protocol.SUPPORTED:
        pytest.skip("the installed uvicorn has no httptools protocol")
    state = single.server.server_state
    loop = single.server.servers[0].get_loop()
    wait_until(lambda: not state.connections and not state.tasks, what="nothing left from earlier tests")

    async def occupy() -> None:  # a call in flight, counted as uvicorn counts each request's task
        task = asyncio.current_task()
        assert task is not None
        state.tasks.add(task)
        try:
            await asyncio.sleep(30)
        finally:
            state.tasks.discard(task)

    calls = [asyncio.run_coroutine_threadsafe(occupy(), loop) for _ in range(in_flight)]
    inline = single.protocol_class is not None and single.protocol_class.accepts()  # not the "asgi" server
    stats = single.protocol_class.stats if inline else None
    unparsed = stats.unparsed if stats is not None else 0
    try:
        wait_until(lambda: len(state.tasks) == in_flight, what="the calls in flight")
        with connect(single.port) as sock:
            sock.sendall(_call("echo", "one"))
            status, _, body = Reader(sock).response()
    finally:
        for call in calls:
            call.cancel()
        wait_until(lambda: not state.tasks, what="the calls in flight to end")
    if in_flight < 2:
        assert (status, body) == (b"HTTP/1.1 200 OK", b'{"result":"one","exception":null}')
        if stats is not None:  # and answered from its bytes
            assert stats.unparsed == unparsed + 1
    else:
        assert (status, body) == (b"HTTP/1.1 503 Service Unavailable", b"Service Unavailable")


def test_a_head_of_exactly_max_head_size_pending_behind_a_running_request_is_timed_not_refused(
    server: Any,
) -> None:
    # 1,024 bytes of a head without its end: not over the limit yet, so after the answer it is timed (408)
    if not protocol.SUPPORTED:
        pytest.skip("the installed uvicorn has no httptools protocol")
    RELEASE.clear()
    ENTERED.clear()
    start = b"POST /invoke HTTP/1.1\r\nx-pad: "
    pending = start + b"p" * (1024 - len(start))
    assert len(pending) == 1024
    with connect(server.port) as sock:
        sock.sendall(_call("wait", "one"))
        wait_until(ENTERED.is_set, what="the first call to start")
        sock.sendall(pending)
        reader = Reader(sock)
        RELEASE.set()
        first = reader.response()
        assert (first[0], first[2]) == (b"HTTP/1.1 200 OK", b'{"result":"one","exception":null}')
        sock.settimeout(1.0 + 0.5)  # the head timeout + 0.5 s
        status, headers, body = reader.response()
        assert (status, body) == (b"HTTP/1.1 408 Request Timeout", b"Request Timeout")
        assert reader.closed()


# --- ServerLimits.method_share and the server.limits.* readers ----------------------------------


@pytest.mark.parametrize("share", [1.01, 1.5, 1.99])
def test_a_method_share_above_one_is_refused(share: float) -> None:
    with pytest.raises(ServiceException, match=f"method_share must be at most 1, got {share!r}"):
        ServerLimits(method_share=share)


def _reader(values: dict[str, Any]) -> Any:
    """checked_getter over a configuration holding ``values`` (a key missing: the default applies)."""

    def get(key: str, kind: type, default: Any) -> Any:
        return values.get(key, default)

    return checked_getter(get)


@pytest.mark.parametrize(
    ("kind", "zero", "unset", "value", "message"),
    [
        (int, False, None, "2.5", "'k' = '2.5' is not a whole number above 0; "),
        (int, False, None, 0, "'k' = 0 is not a whole number above 0; "),
        (float, False, None, "0", "'k' = '0' is not a number above 0; "),
        (float, True, None, "-1", "'k' = '-1' is not a number at least 0; "),
        (float, True, None, -0.5, "'k' = -0.5 is not a number at least 0; "),
        (int, False, "none", "-3", "'k' = '-3' is not a whole number above 0 or 'none'; "),
    ],
)
def test_a_refused_value_is_named_with_what_the_key_takes(
    kind: type, zero: bool, unset: str | None, value: Any, message: str
) -> None:
    with pytest.raises(ConfigurationException, match=re.escape(message)):
        _reader({"k": value})("k", kind, 1, zero=zero, unset=unset)


@pytest.mark.parametrize(
    ("kind", "zero", "value", "read"),
    [(int, False, " 12 ", 12), (float, False, "0.25", 0.25), (float, True, "0", 0.0), (float, True, 0, 0.0)],
)
def test_numbers_and_their_texts_are_read_as_the_keys_kind(
    kind: type, zero: bool, value: Any, read: Any
) -> None:
    got = _reader({"k": value})("k", kind, 99, zero=zero)
    assert got == read and type(got) is kind


@pytest.mark.parametrize(
    ("value", "read"), [("5", 5), (" None ", None), ("none", None), (None, None), (7, 7)]
)
def test_the_unset_text_stands_for_no_limit_and_any_other_text_is_a_number(value: Any, read: Any) -> None:
    assert _reader({"k": value})("k", int, 1000, unset="none") == read


# --- a declared body over the server's limit -------------------------------------------------------


def test_a_declared_body_over_max_body_is_refused_before_it_arrives(server: Any) -> None:
    # a 413 from the declared length alone: a caller announcing 50 MB must not be held until it sends them
    head = (
        b"POST /invoke HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 52428800\r\n\r\n"
    )
    with connect(server.port) as sock:
        sock.sendall(head)
        status = Reader(sock).response()[0]
    assert status == b"HTTP/1.1 413 Request Entity Too Large"


def _echo_body(size: int) -> bytes:
    """A call of echo whose envelope is exactly ``size`` bytes."""
    empty = len(json.dumps({"method": "limitsmut:held:echo", "args": [""]}).encode())
    return json.dumps({"method": "limitsmut:held:echo", "args": ["x" * (size - empty)]}).encode()


@pytest.mark.parametrize(
    ("size", "inline"), [(200, True), (protocol.HOLD_LIMIT, True), (protocol.HOLD_LIMIT + 1, False)]
)
def test_parsed_calls_are_answered_inline_up_to_the_hold_limit(server: Any, size: int, inline: bool) -> None:
    # two calls in one chunk are never answered from the bytes; after uvicorn's parser, a body of up to
    # HOLD_LIMIT bytes is held and answered without the ASGI app, a larger one goes to the app (as every
    # call does on the server without the inline protocol)
    if not protocol.SUPPORTED:
        pytest.skip("the installed uvicorn has no httptools protocol")
    inline = inline and server.protocol_class.accepts()
    stats = server.protocol_class.stats
    served, unparsed = stats.served, stats.unparsed
    body = _echo_body(size)
    assert len(body) == size
    expected = json.dumps({"result": json.loads(body)["args"][0], "exception": None}, separators=(",", ":"))
    with connect(server.port) as sock:
        sock.sendall(request("/invoke", body) * 2)
        reader = Reader(sock)
        for _ in range(2):
            status, _, answer = reader.response()
            assert (status, answer) == (b"HTTP/1.1 200 OK", expected.encode())
    assert (stats.served - served, stats.unparsed - unparsed) == ((2, 0) if inline else (0, 0))


@pytest.mark.parametrize(
    "name", ["max_workers", "max_queued", "method_share", "retry_after", "max_loop_time"]
)
def test_no_connection_limit_does_not_waive_the_checks_of_the_other_limits(name: str) -> None:
    with pytest.raises(ServiceException, match=f"ServerLimits.{name} must be a positive number, got 0"):
        ServerLimits(max_connections=None, **{name: 0})
