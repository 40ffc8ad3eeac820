"""The asyncio HTTP client's behaviour mutation testing found unchecked (mutation/, area ``channels``).

What the event loop is left watching (after a TLS handshake, a refused one, a write timeout, ``aclose``) and
how often it wakes; the watch's first check at a read timeout under its tick; ``max_connections`` and
``max_idle`` after connections closed or a burst; ``aclose`` with a call in flight, on the current loop and
from a new one; an upload larger than the socket takes at once; an answer that came before a reset mid-upload;
the one reconnect after a pooled connection's reset; a name whose first address refuses; connecting within
the deadline; the httpx fallback (a loop that cannot watch sockets) bounded by the deadline, and a deadline at
or before the clock's origin counting as none.

Every test here says ``async`` (the module's name does too): the driver selects the async client's tests by
name (mutation/areas.toml). Loops run on a selector the test owns, to see what the loop watches.
"""

from __future__ import annotations

import asyncio
import select
import selectors
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rawhttp import wait_until
from test_channels_mutants import Pki, backlogged_listener, make_pki, tls_keep_alive
from test_transport_http import OK, LoopWithoutReaders, ScriptedServer, keep_alive
from warpcall.channels import _http_async
from warpcall.channels._http_errors import RequestNotSentError
from warpcall.channels._httpx_transport import AsyncWarpTransport
from warpcall.channels.transport import AsyncHTTPClient, ClientTLS
from warpcall.resilience.deadline import deadline, deadline_at


class CountingSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """The platform's selector, counting how often the loop waits on it."""

    def __init__(self) -> None:
        super().__init__()
        self.selects = 0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        self.selects += 1
        return super().select(timeout)

    def watched(self, event: int) -> set[int]:
        """The descriptors the loop watches for ``event`` (selectors.EVENT_READ or EVENT_WRITE)."""
        return {key.fd for key in self.get_map().values() if key.events & event}


@pytest.fixture
def loop() -> Iterator[tuple[asyncio.AbstractEventLoop, CountingSelector]]:
    selector = CountingSelector()
    loop = asyncio.SelectorEventLoop(selector)
    try:
        yield loop, selector
    finally:
        loop.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory)


def test_async_a_tls_handshake_leaves_no_wait_for_writability(
    pki: Pki, loop: tuple[asyncio.AbstractEventLoop, CountingSelector]
) -> None:
    # a writer left on a connected socket would wake the loop at once, over and over, for as long as it is pooled
    run, selector = loop
    client = AsyncHTTPClient(timeout=5, tls=ClientTLS(ca_file=pki.ca))
    with ScriptedServer(tls_keep_alive(pki)) as server:
        url = f"https://127.0.0.1:{server.port}/x"
        for _ in range(2):
            assert run.run_until_complete(client.request("GET", url, [], b""))[::2] == (200, b"ok")
            assert selector.watched(selectors.EVENT_WRITE) == set()
        run.run_until_complete(client.aclose())
    assert server.connections == 1


def test_async_a_call_without_deadline_wakes_the_loop_only_at_its_checks(
    loop: tuple[asyncio.AbstractEventLoop, CountingSelector],
) -> None:
    def slow(conn: socket.socket, server: ScriptedServer) -> None:
        while server.next_request(conn):
            time.sleep(0.3)  # the answer takes 0.3 s: the loop's watch checks the call every 50 ms meanwhile
            conn.sendall(OK)

    run, selector = loop
    client = AsyncHTTPClient(timeout=5)
    with ScriptedServer(slow) as server:
        before = selector.selects
        assert run.run_until_complete(client.request("GET", server.url, [], b""))[::2] == (200, b"ok")
        waits = selector.selects - before
        run.run_until_complete(client.aclose())
    # 6 checks, the connect, the response: a loop that spins waits thousands of times
    assert waits < 60, waits


def test_async_a_read_timeout_shorter_than_the_watch_tick_ends_the_call_at_it() -> None:
    def silent(conn: socket.socket, server: ScriptedServer) -> None:
        while server.next_request(conn):
            pass  # never answered; the client gives up and closes

    async def waits(url: str) -> list[float]:
        client = AsyncHTTPClient(timeout=2)
        out = []
        try:
            for _ in range(5):
                started = time.monotonic()
                with pytest.raises(httpx.ReadTimeout, match="within 0.01 s"):
                    await client.request("GET", url, [], b"", timeout=0.01)
                out.append(time.monotonic() - started)
        finally:
            await client.aclose()
        return out

    with ScriptedServer(silent) as server:
        # the watch checks every 50 ms, but first at the call's own 10 ms: one call of five ends well before 50 ms
        assert min(asyncio.run(waits(server.url))) < 0.04


def test_async_aclose_stops_watching_the_pooled_sockets_and_the_client_stays_usable(
    loop: tuple[asyncio.AbstractEventLoop, CountingSelector],
) -> None:
    run, selector = loop
    client = AsyncHTTPClient(timeout=5, max_connections=1)
    with ScriptedServer(keep_alive) as server:
        watched = selector.watched(selectors.EVENT_READ)

        async def call_then_aclose() -> set[int]:
            assert (await client.request("GET", server.url, [], b""))[::2] == (200, b"ok")
            assert len(selector.watched(selectors.EVENT_READ) - watched) == 1  # the pooled connection
            await client.aclose()
            return selector.watched(selectors.EVENT_READ)  # closed by aclose itself, not later

        assert run.run_until_complete(call_then_aclose()) == watched
        assert server.closed.wait(5)  # the server saw the client hang up
        # its slot is free again: with max_connections=1, a leaked slot would keep every later call waiting
        for _ in range(2):
            assert run.run_until_complete(client.request("GET", server.url, [], b""))[::2] == (200, b"ok")
        run.run_until_complete(client.aclose())
    assert (server.connections, server.requests) == (2, 3)


def test_async_aclose_from_a_new_loop_closes_what_a_closed_loop_pooled() -> None:
    client = AsyncHTTPClient(timeout=5)
    with ScriptedServer(keep_alive) as server:
        assert asyncio.run(client.request("GET", server.url, [], b""))[::2] == (
            200,
            b"ok",
        )  # its loop closed after
        # held here as any reference would hold it: aclose must close it, not the garbage collector
        pooled = [conn for pool in client._pools.values() for keyed in pool.values() for conn in keyed.idle]
        assert len(pooled) == 1
        asyncio.run(client.aclose())
        assert server.closed.wait(5)  # the server saw the client hang up
        assert pooled[0].closed


def test_async_a_refused_handshake_leaves_nothing_watched(
    pki: Pki, loop: tuple[asyncio.AbstractEventLoop, CountingSelector]
) -> None:
    run, selector = loop
    client = AsyncHTTPClient(timeout=5)  # the system's CAs: the test CA's certificate is refused
    with ScriptedServer(tls_keep_alive(pki)) as server:
        watched = selector.watched(selectors.EVENT_READ)
        for _ in range(2):
            with pytest.raises(httpx.ConnectError, match="TLS certificate verification failed"):
                run.run_until_complete(client.request("GET", f"https://127.0.0.1:{server.port}/x", [], b""))
            # the handshake's socket is closed: the loop watches neither its reading nor its writing
            assert (selector.watched(selectors.EVENT_READ), selector.watched(selectors.EVENT_WRITE)) == (
                watched,
                set(),
            )
        run.run_until_complete(client.aclose())


class KeepAliveSlow:
    """A ScriptedServer handler: ``ok`` with keep-alive to each request after ``pause``; counts the connections
    that ended."""

    def __init__(self, pause: float) -> None:
        self.pause = pause
        self.ended = 0

    def __call__(self, conn: socket.socket, server: ScriptedServer) -> None:
        try:
            while server.next_request(conn):
                time.sleep(self.pause)
                conn.sendall(OK)
        finally:
            self.ended += 1


def test_async_max_idle_bounds_the_connections_kept_after_a_burst() -> None:
    handler = KeepAliveSlow(0.1)

    async def bursts(url: str) -> list[bytes]:
        client = AsyncHTTPClient(timeout=5, max_idle=1)
        try:
            bodies = []
            for _ in range(2):  # three calls at once: three connections, of which one is kept
                calls = [client.request("GET", url, [], b"") for _ in range(3)]
                bodies += [body for _status, _headers, body in await asyncio.gather(*calls)]
                await asyncio.to_thread(
                    wait_until, lambda: handler.ended == server.connections - 1, 2, "the closes"
                )
            return bodies
        finally:
            await client.aclose()

    with ScriptedServer(handler) as server:
        assert asyncio.run(bursts(server.url)) == [b"ok"] * 6
        # the second burst reused the one kept and opened two
        assert server.connections == 5


def test_async_a_write_timeout_leaves_nothing_watched(
    loop: tuple[asyncio.AbstractEventLoop, CountingSelector],
) -> None:
    def not_reading(conn: socket.socket, server: ScriptedServer) -> None:
        server.closed.wait(10)  # set by the test once done: until then nothing is read

    run, selector = loop
    client = AsyncHTTPClient(timeout=0.3)
    with ScriptedServer(not_reading) as server:
        watched = selector.watched(selectors.EVENT_READ)
        with pytest.raises(httpx.WriteTimeout, match="took over 0.3 s"):
            run.run_until_complete(client.request("POST", server.url, [], b"x" * (64 * 2**20)))
        server.closed.set()
        # the connection was closed mid-upload: neither its reader nor its writer is left behind
        assert (selector.watched(selectors.EVENT_READ), selector.watched(selectors.EVENT_WRITE)) == (
            watched,
            set(),
        )
        run.run_until_complete(client.aclose())


def test_async_a_connection_busy_during_aclose_is_closed_after_its_call() -> None:
    answer = threading.Event()

    def held(conn: socket.socket, server: ScriptedServer) -> None:
        while server.next_request(conn):
            answer.wait(5)  # the first answer waits for the test's aclose()
            conn.sendall(OK)

    async def scenario(server: ScriptedServer) -> list[tuple[int, bytes]]:
        client = AsyncHTTPClient(timeout=5)
        try:
            first = asyncio.ensure_future(client.request("GET", server.url, [], b""))
            for _ in range(500):  # bounded: 5 s
                if server.requests == 1:
                    break
                await asyncio.sleep(0.01)
            await client.aclose()
            answer.set()
            return [(await first)[::2], (await client.request("GET", server.url, [], b""))[::2]]
        finally:
            await client.aclose()

    with ScriptedServer(held) as server:
        assert asyncio.run(scenario(server)) == [(200, b"ok")] * 2
        # the connection aclose() found busy was not pooled again: the second call opened its own
        assert server.connections == 2


class FrozenClockLoop(LoopWithoutReaders):
    """A loop that cannot watch sockets (the httpx fallback's), its clock standing still: no timeout of a phase
    can run out while it waits, and one already past fails at once."""

    def __init__(self) -> None:
        super().__init__()
        self.frozen = time.monotonic()

    def time(self) -> float:
        return self.frozen


def test_async_the_fallback_leaves_each_phase_a_millisecond_of_a_passed_deadline() -> None:
    loop = FrozenClockLoop()
    try:
        with ScriptedServer(keep_alive) as server:

            async def calls() -> list[int]:
                async with httpx.AsyncClient(transport=AsyncWarpTransport(timeout=5)) as client:
                    statuses = [(await client.get(server.url)).status_code]  # the connection, pooled
                    with deadline_at(loop.frozen - 0.5):  # passed: each phase gets its last millisecond
                        statuses += [(await client.get(server.url)).status_code for _ in range(2)]
                    return statuses

            assert loop.run_until_complete(calls()) == [200] * 3
    finally:
        loop.close()


def test_async_the_fallback_ends_by_the_deadline_in_force() -> None:
    def silent(conn: socket.socket, server: ScriptedServer) -> None:
        server.next_request(conn)
        server.closed.wait(10)  # set by the test once done: until then no answer

    loop = LoopWithoutReaders()
    try:
        with ScriptedServer(silent) as server:

            async def call() -> None:
                async with httpx.AsyncClient(transport=AsyncWarpTransport(timeout=5)) as client:
                    with deadline(0.3):
                        await client.get(server.url)

            started = time.monotonic()
            with pytest.raises(httpx.ReadTimeout):
                loop.run_until_complete(call())
            assert time.monotonic() - started < 2.5  # the 0.3 s left, not the client's 5 s
            server.closed.set()
    finally:
        loop.close()


def test_async_a_deadline_at_or_before_the_clocks_origin_counts_as_none() -> None:
    # deadlines are time.monotonic() instants, 0 (or less) for none: such a call waits by its timeouts alone
    async def calls(url: str) -> list[int]:
        async with httpx.AsyncClient(transport=AsyncWarpTransport(timeout=5)) as client:
            with deadline_at(-1.0):
                return [(await client.get(url)).status_code for _ in range(2)]

    with ScriptedServer(keep_alive) as server:
        assert asyncio.run(calls(server.url)) == [200, 200]


def test_async_connecting_ends_at_the_deadline_before_the_connect_timeout() -> None:
    async def call(url: str) -> None:
        async with httpx.AsyncClient(transport=AsyncWarpTransport(timeout=4.0)) as client:
            with deadline(0.2):
                await client.get(url)

    with backlogged_listener() as url:
        started = time.monotonic()
        with pytest.raises(httpx.ConnectTimeout, match="before the call's deadline"):
            asyncio.run(call(url))
        assert time.monotonic() - started < 0.7  # the 0.2 s left, not a second nor the client's 4 s


def sink(conn: socket.socket, server: ScriptedServer) -> None:
    """A ScriptedServer handler: reads each request's body whole (counted, not kept) and answers its length."""
    for _ in range(100):  # bounded: a test sends a few requests
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(65536)
            if not chunk:
                return
            head += chunk
        head, _, got = head.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
        left = length - len(got)
        while left > 0:
            chunk = conn.recv(min(left, 1 << 20))
            if not chunk:
                return
            left -= len(chunk)
        server.requests += 1
        answer = b"%d" % length
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer))


def test_async_an_upload_larger_than_the_socket_takes_at_once_is_sent_whole() -> None:
    body = b"u" * (32 * 2**20)  # far more than the socket's buffers: the loop writes the rest as it is taken

    async def calls(url: str) -> list[tuple[int, bytes]]:
        client = AsyncHTTPClient(timeout=2)
        try:
            return [(await client.request("POST", url, [], body))[::2] for _ in range(2)]
        finally:
            await client.aclose()

    with ScriptedServer(sink) as server:
        assert asyncio.run(calls(server.url)) == [(200, b"%d" % len(body))] * 2
        assert (server.connections, server.requests) == (1, 2)


class RefuseAndReset:
    """A ScriptedServer handler: reads a request's head, answers 413 with a body longer than one read of the
    client's once ``answer`` is set, waits until the client's kernel has taken all of it, and resets the connection
    (SO_LINGER 0), the rest of the upload unread. ``head`` is set once the head came, ``reset`` once the reset
    went."""

    REFUSAL = b"r" * 80_000  # two reads of the client's; within the window its kernel takes unread

    def __init__(self) -> None:
        self.head = threading.Event()
        self.answer = threading.Event()
        self.reset = threading.Event()

    def __call__(self, conn: socket.socket, server: ScriptedServer) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        self.head.set()
        if not self.answer.wait(5):
            return
        conn.sendall(
            b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: %d\r\n\r\n" % len(self.REFUSAL) + self.REFUSAL
        )
        wait_until(lambda: unacknowledged(conn) == 0, what="the client's kernel to take the refusal")
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
        self.reset.set()


def unacknowledged(sock: socket.socket) -> int:
    """Bytes ``sock`` sent that its peer's kernel has not acknowledged yet (Linux's TIOCOUTQ)."""
    import fcntl
    import termios

    return struct.unpack("i", fcntl.ioctl(sock, termios.TIOCOUTQ, b"\0\0\0\0"))[0]


@pytest.mark.skipif(
    sys.platform != "linux", reason="TIOCOUTQ on a socket, and data kept readable after a reset: Linux's"
)
def test_async_an_answer_before_a_reset_mid_upload_is_returned() -> None:
    handler = RefuseAndReset()

    async def call(url: str) -> tuple[int, int]:
        client = AsyncHTTPClient(timeout=5)
        try:
            upload = asyncio.ensure_future(client.request("POST", url, [], b"u" * (32 * 2**20)))
            for _ in range(500):  # bounded: 5 s
                if handler.head.is_set():
                    break
                await asyncio.sleep(0.01)
            # the loop is held on purpose from before the refusal until the reset is there too: the client then
            # meets the reset writing, between its two reads of the refusal
            handler.answer.set()
            assert handler.reset.wait(5)
            status, _headers, body = await upload
            return status, len(body)
        finally:
            await client.aclose()

    with ScriptedServer(handler) as server:
        # the write that meets the reset fails; the refusal that came before it is the reply
        assert asyncio.run(call(server.url)) == (413, len(RefuseAndReset.REFUSAL))


class Peak:
    """A ScriptedServer handler answering after ``pause`` with ``Connection: close``; counts the connections
    served at once."""

    def __init__(self, pause: float) -> None:
        self.pause = pause
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0

    def __call__(self, conn: socket.socket, server: ScriptedServer) -> None:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            if server.next_request(conn):
                time.sleep(self.pause)
                conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
        finally:
            with self.lock:
                self.active -= 1


def test_async_max_connections_holds_after_connections_the_server_closed() -> None:
    peak = Peak(0.1)

    async def scenario(url: str) -> list[bytes]:
        client = AsyncHTTPClient(timeout=5, max_connections=1)
        try:
            bodies = []
            for _ in range(2):  # each connection closed after its call: its slot freed, once
                bodies.append((await client.request("GET", url, [], b""))[2])
            calls = [client.request("GET", url, [], b"") for _ in range(3)]
            bodies += [body for _status, _headers, body in await asyncio.gather(*calls)]
            return bodies
        finally:
            await client.aclose()

    with ScriptedServer(peak) as server:
        assert asyncio.run(scenario(server.url)) == [b"ok"] * 5
        wait_until(lambda: peak.active == 0, what="the server to be done")
    assert (server.connections, peak.peak) == (5, 1)


class Resettable:
    """A ScriptedServer handler: ``ok`` with keep-alive to each request until :meth:`reset`, which ends the
    connection with a RST (``SO_LINGER`` 0, close)."""

    def __init__(self) -> None:
        self.doomed = threading.Event()

    def __call__(self, conn: socket.socket, server: ScriptedServer) -> None:
        conn.settimeout(0.01)
        data = b""
        for _ in range(1000):  # bounded: 10 s
            if self.doomed.is_set():
                self.doomed.clear()
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return  # ScriptedServer closes it: a reset
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                return
            data += chunk
            while b"\r\n\r\n" in data:
                data = data.split(b"\r\n\r\n", 1)[1]  # GET: no body
                server.requests += 1
                conn.sendall(OK)

    def reset(self, server: ScriptedServer) -> None:
        server.closed.clear()
        self.doomed.set()
        assert server.closed.wait(5)


def test_async_a_pooled_connection_reset_after_the_idle_check_is_replaced_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handler = Resettable()

    async def scenario(server: ScriptedServer) -> list[tuple[int, bytes]]:
        client = AsyncHTTPClient(timeout=5)
        try:
            first = (await client.request("GET", server.url, [], b""))[::2]
            # no await until the next call: the loop cannot read the reset before the send meets it
            handler.reset(server)
            pooled = [
                conn for pool in client._pools.values() for keyed in pool.values() for conn in keyed.idle
            ]
            assert len(pooled) == 1
            sock = pooled[0].sock
            wait_until(lambda: select.select([sock], [], [], 0)[0], what="the reset reaching the client")
            # the idle check would see the reset: let it pass, as when the reset lands just after it
            monkeypatch.setattr(_http_async._AsyncConn, "reusable", lambda self: not self.closed)
            second = (await client.request("GET", server.url, [], b""))[::2]
            return [first, second]
        finally:
            monkeypatch.undo()
            await client.aclose()

    with ScriptedServer(handler) as server:
        assert asyncio.run(scenario(server)) == [(200, b"ok")] * 2
        # a new connection; the request sent once
        assert (server.connections, server.requests) == (2, 2)


def test_async_a_connection_handed_to_a_waiting_call_and_reset_meanwhile_is_replaced_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # max_connections = 1: the second call waits for the first one's connection, which is handed to it as a
    # connection that served calls before; reset on the way, it is replaced once, as a pooled one is
    handler = Resettable()
    handed: list[Any] = []

    async def scenario(server: ScriptedServer) -> list[tuple[int, bytes]]:
        client = AsyncHTTPClient(timeout=5, max_connections=1)
        acquire = client._acquire
        calls: list[int] = []

        async def acquire_then_reset(*args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            call = len(calls)
            conn, reused = await acquire(*args, **kwargs)
            if call == 2:  # the waiting call, handed the first call's connection: reset before it sends
                handed.append(conn)
                handler.reset(server)
                wait_until(
                    lambda: select.select([conn.sock], [], [], 0)[0], what="the reset reaching the client"
                )
            return conn, reused

        monkeypatch.setattr(client, "_acquire", acquire_then_reset)
        try:
            answers = await asyncio.gather(*(client.request("GET", server.url, [], b"") for _ in range(2)))
            return [answer[::2] for answer in answers]
        finally:
            monkeypatch.undo()
            await client.aclose()

    with ScriptedServer(handler) as server:
        assert asyncio.run(scenario(server)) == [(200, b"ok")] * 2
        assert len(handed) == 1  # the reset was made
        # the reset connection and its replacement; each request sent once
        assert (server.connections, server.requests) == (2, 2)


def test_async_a_replacement_connection_that_fails_its_first_send_gives_its_slot_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # max_connections = 1: a pooled connection the server dropped is replaced once; when the replacement is
    # reset before its first write too, the call fails, and the slot is free again for the next call
    handler = Resettable()

    async def scenario(server: ScriptedServer) -> tuple[Any, Any, Any]:
        client = AsyncHTTPClient(timeout=2, max_connections=1)
        connect = client._connect

        async def connect_then_reset(*args: Any, **kwargs: Any) -> Any:
            conn = await connect(*args, **kwargs)
            # the reset lands after connecting, before the first write: a window of microseconds otherwise
            handler.reset(server)
            wait_until(lambda: select.select([conn.sock], [], [], 0)[0], what="the reset reaching the client")
            return conn

        try:
            first = (await client.request("GET", server.url, [], b""))[::2]
            handler.reset(server)  # the pooled connection is dropped
            pooled = [
                conn for pool in client._pools.values() for keyed in pool.values() for conn in keyed.idle
            ]
            wait_until(
                lambda: select.select([pooled[0].sock], [], [], 0)[0], what="the reset reaching the client"
            )
            # the idle check would see the reset: let it pass, as when the reset lands just after it
            monkeypatch.setattr(_http_async._AsyncConn, "reusable", lambda self: not self.closed)
            monkeypatch.setattr(client, "_connect", connect_then_reset)
            with pytest.raises(httpx.WriteError) as failed:
                await client.request("GET", server.url, [], b"")
            monkeypatch.undo()
            third = (await client.request("GET", server.url, [], b""))[::2]
            return first, failed.value, third
        finally:
            monkeypatch.undo()
            await client.aclose()

    with ScriptedServer(handler) as server:
        first, failed, third = asyncio.run(scenario(server))
        assert first == third == (200, b"ok")
        assert isinstance(failed, RequestNotSentError)  # safe to send elsewhere: nothing went out
        # the dropped one, the replacement reset before its write, and the third call's own
        assert (server.connections, server.requests) == (3, 2)


class TwoAddresses(asyncio.SelectorEventLoop):
    """A loop whose resolver answers two addresses for 127.0.0.1: first ::1, then 127.0.0.1 (the hosts file here
    has no name with two)."""

    async def getaddrinfo(self, host: Any, port: Any, **kwargs: Any) -> list[Any]:
        return [
            *await super().getaddrinfo("::1", port, **kwargs),
            *await super().getaddrinfo(host, port, **kwargs),
        ]


def test_async_an_address_that_refuses_is_skipped_for_the_next() -> None:
    loop = TwoAddresses()
    client = AsyncHTTPClient(timeout=5)
    try:
        with ScriptedServer(keep_alive) as server, socket.socket(socket.AF_INET6) as refusing:
            refusing.bind(("::1", server.port))  # bound, not listening: a connect is refused
            assert loop.run_until_complete(client.request("GET", server.url, [], b""))[::2] == (200, b"ok")
            loop.run_until_complete(client.aclose())
        assert server.connections == 1
    finally:
        loop.close()


def test_async_a_name_whose_addresses_all_refuse_is_a_connect_error() -> None:
    loop = TwoAddresses()
    client = AsyncHTTPClient(timeout=5)
    try:
        with socket.socket(socket.AF_INET6) as v6, socket.socket() as v4:
            v4.bind(("127.0.0.1", 0))
            port = v4.getsockname()[1]
            v6.bind(("::1", port))
            url = f"http://127.0.0.1:{port}/x"
            with pytest.raises(httpx.ConnectError, match=f"^cannot connect to {url}: Connection refused$"):
                loop.run_until_complete(client.request("GET", url, [], b""))
    finally:
        loop.close()
