"""The asyncio HTTP/1.1 keep-alive client on the compiled core.

``AsyncHTTPClient`` pools connections per event loop and per (scheme, host, port); the
loop reads each pooled socket and feeds ``warpcall.core.transport.ResponseParser``, and one
timer per loop watches the read timeouts of the calls in flight. A request that does not fit
the socket at once is written by the connection itself as the socket takes it, while the loop
keeps reading: a server that answers before it has read the whole request (a 413 to a body over
its limit) and closes has that answer returned, never an error from writing to a closed socket.
``https://`` URLs take the same path on a non-blocking ``ssl.SSLSocket``: the handshake is
driven by the loop's readiness callbacks within the connect timeout and the call's deadline, and
each readiness reads until OpenSSL wants more bytes (``SSLWantReadError``); a write OpenSSL could
not finish (``SSLWantWriteError``) is retried with the same bytes when the socket takes more.
``AsyncWarpTransport`` (in ``_httpx_transport``) puts it under an ``httpx.AsyncClient``.
This module imports httpx only for an error or a loop that cannot watch sockets.
"""

from __future__ import annotations

import asyncio
import socket
import ssl  # loaded with asyncio already
from collections import deque
from typing import TYPE_CHECKING, Any

from warpcall.channels._http_common import (
    _TARGETS,
    ClientTLS,
    _attach_request,
    _bad_request,
    _check_expiry,
    _check_timeout,
    _check_tls,
    _closed_while_sending,
    _connect_error,
    _connect_timeout,
    _deadline_headers,
    _peer_gone,
    _protocol_error,
    _raw_headers,
    _read_error,
    _read_limited,
    _read_timeout,
    _ssl_context,
    _Target,
    _target,
    _unsent_error,
    _write_error,
    _write_timeout,
)
from warpcall.core.transport import (
    DEFAULT_KEEPALIVE_EXPIRY,
    TLS_RECORD,
    Connection,
    ResponseParser,
    build_request,
)

if TYPE_CHECKING:
    import httpx

_READ_SIZE = 65536
_WATCH_TICK = 0.05  # how often an event loop checks the read timeouts of its calls in flight
# a socket that cannot take or give bytes now: the plain socket's word for it and TLS's two
_NOT_NOW = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


def _within(timeout: float, deadline: float, loop: asyncio.AbstractEventLoop) -> float:
    """``timeout``, or the time left before ``deadline`` (> 0) when that is shorter."""
    return timeout if deadline <= 0.0 else min(timeout, deadline - loop.time())


class _AsyncConn:
    """One kept-alive non-blocking socket of the async client; the loop reads it for as long as it lives."""

    __slots__ = (
        "sock",
        "loop",
        "io",
        "generation",
        "closed",
        "parser",
        "waiter",
        "url",
        "read_timeout",
        "write_timeout",
        "patience",
        "deadline",
        "last_progress",
        "out",
        "write_error",
        "answered",
        "send_first",
    )

    def __init__(
        self, sock: socket.socket, loop: asyncio.AbstractEventLoop, generation: int, expiry: float
    ) -> None:
        self.sock = sock
        self.loop = loop
        # the socket is non-blocking: the core's Connection serves only for its idle checks here
        self.io = Connection(sock, expiry)
        self.generation = generation
        self.closed = False
        self.parser: ResponseParser | None = None
        self.waiter: asyncio.Future[ResponseParser] | None = None
        self.url = ""
        self.read_timeout = 0.0
        self.write_timeout = 0.0
        self.patience = 0.0  # the timeout of what the call waits for now: write progress, then read progress
        self.deadline = 0.0  # the call's deadline (loop.time(), i.e. time.monotonic(); 0: none)
        self.last_progress = 0.0
        self.out: memoryview | None = None  # what is left to write of a request sent in pieces
        self.write_error: Exception | None = None  # a failed write, reported unless a response comes
        self.answered = False  # TLS only: a response came on it (its first exchange is over)
        #: the first write of a request: as much as the socket takes; over TLS one record at most (TLS writes a
        #: piece whole or fails, and a failed first record is all a "nothing was sent" can promise)
        self.send_first = self._send_record if self.io.tls else sock.send
        loop.add_reader(sock.fileno(), self._on_readable_tls if self.io.tls else self._on_readable)

    def _send_record(self, data: bytes) -> int:
        return self.sock.send(data if len(data) <= TLS_RECORD else memoryview(data)[:TLS_RECORD])

    def reusable(self) -> bool:
        # idle for less than its expiry: the loop closes a connection the server closed once it reads the EOF,
        # but a server closing it right now, its EOF not yet read, would meet the next request
        return not self.closed and self.io.reusable()

    def start(
        self, parser: ResponseParser, url: str, read_timeout: float, deadline: float = 0.0
    ) -> asyncio.Future[ResponseParser]:
        """Expect a response (by ``deadline``, if > 0); the returned future gets the finished parser or the error."""
        self.parser = parser
        self.url = url
        self.deadline = deadline
        self.read_timeout = self.patience = read_timeout
        waiter = self.waiter = self.loop.create_future()
        return waiter

    def send_rest(self, rest: memoryview, write_timeout: float) -> None:
        """Write ``rest`` as the socket takes it, reading meanwhile; the call's waiter gets the outcome."""
        self.out = rest
        self.write_timeout = self.patience = write_timeout
        self.loop.add_writer(self.sock.fileno(), self._on_writable)

    def _on_writable(self) -> None:
        out = self.out
        if out is None:
            return
        try:
            k = self.sock.send(out)  # TLS: all of out, or SSLWantWriteError and the same bytes again later
        except _NOT_NOW:
            return
        except OSError as exc:
            self._stop_writing()
            if _peer_gone(exc) and self.waiter is not None:
                # the server stopped reading and closed: it may have answered first (a 413), so keep reading;
                # the reader reports this error if no whole response comes
                self.write_error = _write_error(self.url, exc)
                self.patience = self.read_timeout
            else:
                self._fail(_write_error(self.url, exc))
            return
        self.last_progress = self.loop.time()
        if k < len(out):
            self.out = out[k:]
        else:
            self._stop_writing()

    def _stop_writing(self) -> None:
        """The request is written, or will not be: wait for the response from now on."""
        if self.out is not None:
            self.out = None
            self.patience = self.read_timeout
            if not self.closed:
                self.loop.remove_writer(self.sock.fileno())

    def time_out(self) -> None:
        """No progress for ``patience`` seconds: fail the call under way."""
        if self.waiter is not None and not self.waiter.done():
            if self.out is not None:
                self._fail(_write_timeout(self.url, self.write_timeout, self.deadline))
            else:
                self._fail(self.write_error or _read_timeout(self.url, self.read_timeout, self.deadline))

    def _on_readable(self) -> None:
        try:
            data = self.sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(self._sending_failed(exc) or _read_error(self.url, exc))
            return
        parser = self.parser
        if parser is None:
            # bytes or EOF on an idle connection: the server gave up on it
            self.close()
            return
        self.last_progress = self.loop.time()
        try:
            done = parser.feed(data)
        except ValueError as exc:
            # EOF (no data) before a whole response while writing: the server did not take the request
            self._fail((None if data else self._sending_failed(exc)) or _protocol_error(self.url, exc))
            return
        if done:
            if self.out is not None:
                # answered before the whole request went out: the rest would be read as another request
                self._stop_writing()
                parser.keep_alive = False
            waiter = self.waiter
            self.parser = self.waiter = None
            if waiter is not None and not waiter.done():
                waiter.set_result(parser)

    def _on_readable_tls(self) -> None:
        """``_on_readable`` for an ``ssl.SSLSocket``: read until OpenSSL wants more bytes from the socket, since
        the records it has decrypted no longer show on the descriptor the loop watches."""
        sock = self.sock
        while not self.closed:
            try:
                data = sock.recv(_READ_SIZE)
            except (ssl.SSLWantReadError, BlockingIOError, InterruptedError):
                return
            except ssl.SSLWantWriteError:  # OpenSSL must write first (a renegotiation): read once it can
                self._read_when_writable()
                return
            except OSError as exc:  # ssl.SSLError too: an alert, say the server refusing this client's certificate
                self._fail(self._sending_failed(exc) or _read_error(self.url, exc))
                return
            self._took(data)
            if not data:
                return

    def _read_when_writable(self) -> None:
        fd = self.sock.fileno()
        if self.out is not None:  # the writer runs already: the next read comes with the next readiness
            return

        def writable() -> None:
            if not self.closed:
                self.loop.remove_writer(fd)
                self._on_readable_tls()

        self.loop.add_writer(fd, writable)

    def _took(self, data: bytes) -> None:
        """What ``_on_readable`` does with the bytes it read (b"": EOF), for TLS's reader (the plain reader has
        the same steps inline: a call less per read)."""
        parser = self.parser
        if parser is None:
            self.close()  # bytes or EOF on an idle connection: the server gave up on it
            return
        self.last_progress = self.loop.time()
        try:
            done = parser.feed(data)
        except ValueError as exc:
            error = None if data else self._sending_failed(exc)
            self._fail(error or _protocol_error(self.url, exc, not self.answered))
            return
        if done:
            self.answered = True
            if self.out is not None:
                self._stop_writing()
                parser.keep_alive = False
            waiter = self.waiter
            self.parser = self.waiter = None
            if waiter is not None and not waiter.done():
                waiter.set_result(parser)

    def _sending_failed(self, exc: Exception) -> Exception | None:
        """The error to report when the connection ends before a whole response while the request was, or
        could not be, written whole: the server did not take the request (None when it did)."""
        if self.write_error is not None:
            return self.write_error
        if self.out is not None:
            return _closed_while_sending(self.url, exc)
        return None

    def _fail(self, exc: BaseException) -> None:
        waiter = self.waiter
        self.close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.parser = self.waiter = None
        if not self.loop.is_closed():
            self.loop.remove_reader(self.sock.fileno())
            if self.out is not None or self.io.tls:  # TLS: a read may wait for the socket to take a write
                self.loop.remove_writer(self.sock.fileno())
        self.out = None
        self.sock.close()

    def close_dead_loop(self) -> None:
        """Close the socket of a connection whose event loop is already closed."""
        self.closed = True
        self.sock.close()

    def __del__(self) -> None:
        # reached only once the loop let go of the reader, i.e. the loop is closed: no warning, just close
        self.sock.close()


async def _ready(loop: asyncio.AbstractEventLoop, sock: socket.socket, writing: bool) -> None:
    """Return once ``sock`` can be written (``writing``) or read."""
    fd = sock.fileno()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    if writing:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        if writing:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


class _LoopPool(dict[tuple[str, str, int], "_KeyPool"]):
    """One event loop's connections by (scheme, host, port), and the watch over its calls awaiting a response.

    A single recurring timer per loop checks read timeouts (each receive may wait
    ``read_timeout``, to within ``_WATCH_TICK``), instead of a timer per call; it also fires
    at the earliest deadline of the calls it watches, which end at it exactly.
    """

    __slots__ = ("loop", "inflight", "watch", "can_watch_sockets")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.loop = loop
        self.inflight: set[_AsyncConn] = set()
        self.watch: asyncio.TimerHandle | None = None
        # Windows' proactor loop cannot watch a socket (add_reader); such loops go through httpx
        self.can_watch_sockets = type(loop).add_reader is not asyncio.AbstractEventLoop.add_reader

    def track(self, conn: _AsyncConn) -> None:
        """Watch ``conn`` until ``untrack``: it is writing its request or waiting for a response."""
        now = conn.last_progress = self.loop.time()
        self.inflight.add(conn)
        watch = self.watch
        if watch is None:
            wait = min(_WATCH_TICK, conn.patience)
            if conn.deadline > 0.0:
                wait = min(wait, conn.deadline - now)
            self.watch = self.loop.call_later(wait, self._check)
        elif 0.0 < conn.deadline < watch.when():  # sooner than the next check: check then
            watch.cancel()
            self.watch = self.loop.call_at(conn.deadline, self._check)

    def untrack(self, conn: _AsyncConn) -> None:
        self.inflight.discard(conn)

    def _check(self) -> None:
        now = self.loop.time()
        at = now + _WATCH_TICK
        for conn in list(self.inflight):
            deadline = conn.deadline
            if now - conn.last_progress >= conn.patience or 0.0 < deadline <= now:
                self.inflight.discard(conn)
                conn.time_out()
            elif 0.0 < deadline < at:
                at = deadline
        self.watch = self.loop.call_at(at, self._check) if self.inflight else None


class _KeyPool:
    """Connections to one (scheme, host, port) on one event loop: idle ones, how many exist, who waits."""

    __slots__ = ("idle", "count", "waiters")

    def __init__(self) -> None:
        self.idle: list[_AsyncConn] = []
        self.count = 0
        # calls waiting for a connection: each gets one to reuse, or None for the slot of a closed one
        self.waiters: deque[asyncio.Future[_AsyncConn | None]] = deque()

    def take(self) -> _AsyncConn | None:
        idle = self.idle
        while idle:
            conn = idle.pop()
            if conn.reusable():
                return conn
            conn.close()
            self.count -= 1
        return None

    def give_back(self, conn: _AsyncConn, keep: bool, max_idle: int) -> None:
        """A call is done with ``conn``: hand it (or its slot) to a waiter, keep it idle, or close it."""
        if not keep:
            conn.close()
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn if keep else None)
                return
        if keep and len(self.idle) < max_idle:
            self.idle.append(conn)
            return
        if keep:
            conn.close()
        self.count -= 1

    def give_slot_back(self) -> None:
        """A connection could not be opened: its slot goes to the next waiter, or is freed."""
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.count -= 1

    def close_all(self, dead_loop: bool = False) -> None:
        while self.idle:
            conn = self.idle.pop()
            if dead_loop:
                conn.close_dead_loop()
            else:
                conn.close()
            self.count -= 1


class AsyncHTTPClient:
    """asyncio HTTP/1.1 keep-alive client: connections pooled per event loop and per (scheme, host, port).

    Works from any number of event loops, one after the other (successive
    ``asyncio.run()``) or at once in different threads. ``max_connections`` bounds
    the connections to one host from one loop; a call that finds them all busy
    waits up to the timeout, then raises ``httpx.PoolTimeout``. ``keepalive_expiry``:
    seconds a pooled connection may stay idle and still be reused (below the server's
    keep-alive timeout; a server's ``Keep-Alive: timeout=N`` shortens it). ``tls``: how
    ``https://`` servers are checked (a :class:`ClientTLS` or an ``ssl.SSLContext``; None:
    certificates and host names verified against the system's CAs).
    """

    def __init__(
        self,
        timeout: float = 10.0,
        max_body: int = 64 * 2**20,
        max_connections: int = 100,
        max_idle: int = 100,
        keepalive_expiry: float = DEFAULT_KEEPALIVE_EXPIRY,
        tls: ClientTLS | ssl.SSLContext | None = None,
    ) -> None:
        self.timeout = _check_timeout(timeout)
        self.max_body = max_body
        self.max_connections = max_connections
        self.max_idle = max_idle
        self.keepalive_expiry = _check_expiry(keepalive_expiry)
        self.tls = _check_tls(tls)
        self._pools: dict[asyncio.AbstractEventLoop, _LoopPool] = {}
        self._generation = 0
        self._httpx: dict[asyncio.AbstractEventLoop, httpx.AsyncHTTPTransport] = {}

    async def request(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes,
        timeout: float | None = None,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send one request and return ``(status, headers, body)``; raises httpx's exception types."""
        t = self.timeout if timeout is None else _check_timeout(timeout)
        try:
            status, _reason, response_headers, content = await self._exchange(
                method, url, headers, body, t, t, t, t
            )
        except Exception as exc:
            _attach_request(exc, method, url)  # httpx's errors only
            raise
        return status, response_headers, content

    def _loop_pool(self, loop: asyncio.AbstractEventLoop) -> _LoopPool:
        pools = self._pools.get(loop)
        if pools is None:
            # a new loop: drop what earlier, now closed, loops left behind
            # list() first: other threads may add their loops meanwhile
            for old in [old for old in list(self._pools) if old.is_closed()]:
                for key_pool in self._pools.pop(old, {}).values():
                    key_pool.close_all(dead_loop=True)
            for old in [old for old in list(self._httpx) if old.is_closed()]:
                self._httpx.pop(old, None)
            pools = self._pools[loop] = _LoopPool(loop)
        return pools

    async def _exchange(
        self,
        method: str,
        url: str,
        headers: Any,
        body: bytes,
        connect_t: float,
        write_t: float,
        read_t: float,
        pool_t: float,
        deadline: float = 0.0,
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        target = _TARGETS.get(url) or _target(url)
        try:
            data = build_request(method, target.path, target.host_header, headers, body, deadline)
        except ValueError as exc:
            raise _bad_request(method, url, exc) from None
        loop = asyncio.get_running_loop()
        pools = self._pools.get(loop)
        if pools is None:
            pools = self._loop_pool(loop)
        if not pools.can_watch_sockets:
            return await self._delegate(method, url, headers, body, connect_t, write_t, read_t, pool_t, deadline)
        key_pool = pools.get(target.key)
        if key_pool is None:
            key_pool = pools[target.key] = _KeyPool()
        conn = key_pool.take()
        if conn is None:
            conn, reused = await self._acquire(key_pool, loop, target, url, connect_t, pool_t, deadline)
        else:
            reused = True
        try:
            sent = self._send_now(conn, data, url, reused)
        except BaseException:
            key_pool.give_back(conn, False, self.max_idle)
            raise
        if sent < 0:
            # the server dropped the pooled connection and nothing was sent: a new one is safe
            key_pool.give_back(conn, False, self.max_idle)
            conn, _ = await self._acquire(key_pool, loop, target, url, connect_t, pool_t, deadline)
            try:
                sent = self._send_now(conn, data, url, False)  # once: a second drop is an error
            except BaseException:
                key_pool.give_back(conn, False, self.max_idle)
                raise
        parser = ResponseParser(self.max_body, method == "HEAD")
        waiter = conn.start(parser, url, read_t, deadline)
        if sent < len(data):
            conn.send_rest(memoryview(data)[sent:], write_t)
        pools.track(conn)
        try:
            await waiter
        except BaseException:
            # error or cancellation mid-call: the connection's state is unknown
            pools.untrack(conn)
            key_pool.give_back(conn, False, self.max_idle)
            raise
        pools.untrack(conn)
        keep = parser.keep_alive and not conn.closed and conn.generation == self._generation
        if keep:
            conn.io.rest(parser)  # idle from now, for at most its expiry or the server's announced keep-alive
        key_pool.give_back(conn, keep, self.max_idle)
        return parser.status, parser.reason, parser.headers, parser.body

    async def _acquire(
        self,
        key_pool: _KeyPool,
        loop: asyncio.AbstractEventLoop,
        target: _Target,
        url: str,
        connect_t: float,
        pool_t: float,
        deadline: float = 0.0,
    ) -> tuple[_AsyncConn, bool]:
        """A connection for one call, and whether it served calls before.

        A new one while under ``max_connections``, else the next one a call gives back.
        Waiting and connecting end by ``deadline`` (> 0) too.
        """
        if key_pool.count >= self.max_connections:
            waiter: asyncio.Future[_AsyncConn | None] = loop.create_future()
            key_pool.waiters.append(waiter)
            try:
                conn = await asyncio.wait_for(waiter, _within(pool_t, deadline, loop))
            except asyncio.TimeoutError:
                import httpx

                raise httpx.PoolTimeout(
                    f"no free connection to {url} within {pool_t} s: all {self.max_connections} are busy"
                ) from None
            if conn is not None:
                if conn.reusable():
                    return conn, True
                conn.close()
            # the slot of a closed connection passed to us: open a new one in its place
        else:
            key_pool.count += 1
        try:
            return await self._connect(loop, target, url, connect_t, deadline), False
        except BaseException:
            key_pool.give_slot_back()
            raise

    async def _connect(
        self, loop: asyncio.AbstractEventLoop, target: _Target, url: str, timeout: float, deadline: float = 0.0
    ) -> _AsyncConn:
        wait = _within(timeout, deadline, loop)
        try:
            if wait <= 0.0:
                raise asyncio.TimeoutError
            sock: socket.socket
            if target.tls:  # connect and handshake within the one wait
                sock = await asyncio.wait_for(self._open_tls(loop, target, _ssl_context(self.tls)), wait)
            else:
                sock = await asyncio.wait_for(self._open_socket(loop, target), wait)
        except asyncio.TimeoutError:
            raise _connect_timeout(url, timeout, deadline) from None
        except OSError as exc:  # ssl.SSLError included: a certificate refused, by either side
            raise _connect_error(url, exc) from None
        return _AsyncConn(sock, loop, self._generation, self.keepalive_expiry)

    @classmethod
    async def _open_tls(
        cls, loop: asyncio.AbstractEventLoop, target: _Target, context: ssl.SSLContext
    ) -> ssl.SSLSocket:
        """A connected non-blocking ``ssl.SSLSocket``, its handshake driven by the loop's readiness callbacks."""
        plain = await cls._open_socket(loop, target)
        try:
            sock = context.wrap_socket(plain, server_hostname=target.host, do_handshake_on_connect=False)
        except BaseException:
            plain.close()
            raise
        try:
            while True:
                try:
                    sock.do_handshake()
                    return sock
                except ssl.SSLWantReadError:
                    await _ready(loop, sock, False)
                except ssl.SSLWantWriteError:
                    await _ready(loop, sock, True)
        except BaseException:  # an error, a timeout (cancelled) or the caller's cancellation
            sock.close()
            raise

    @staticmethod
    async def _open_socket(loop: asyncio.AbstractEventLoop, target: _Target) -> socket.socket:
        infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        error: OSError = OSError(f"no address for {target.host}")
        for family, type_, proto, _name, address in infos:
            sock = socket.socket(family, type_, proto)
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                await loop.sock_connect(sock, address)
            except BaseException as exc:
                sock.close()
                if not isinstance(exc, OSError):
                    raise
                error = exc
                continue
            return sock
        raise error

    @staticmethod
    def _send_now(conn: _AsyncConn, data: bytes, url: str, reused: bool) -> int:
        """Send what the socket takes now; -1 when a reused connection was dropped before any byte went out
        (a new one is safe); a failure on a new connection raises, before any byte went out too."""
        try:
            return conn.send_first(data)  # TLS: one record, or SSLWantWriteError and the same bytes again later
        except _NOT_NOW:
            return 0
        except OSError as exc:
            if reused and _peer_gone(exc):
                return -1
            raise _unsent_error(url, exc) from None

    async def _delegate(
        self,
        method: str,
        url: str,
        headers: Any,
        body: bytes,
        connect_t: float,
        write_t: float,
        read_t: float,
        pool_t: float,
        deadline: float = 0.0,
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        import httpx  # loops that cannot watch sockets are httpx's

        loop = asyncio.get_running_loop()
        self._loop_pool(loop)
        transport = self._httpx.get(loop)
        if transport is None:
            transport = self._httpx[loop] = httpx.AsyncHTTPTransport(verify=_ssl_context(self.tls))
        if deadline > 0.0:
            # httpx bounds each phase, not the exchange: each gets at most the time left when it starts
            headers = _deadline_headers(headers, deadline)
            left = max(0.001, deadline - loop.time())
            connect_t, write_t, read_t, pool_t = (min(t, left) for t in (connect_t, write_t, read_t, pool_t))
        timeout = {"connect": connect_t, "write": write_t, "read": read_t, "pool": pool_t}
        request = httpx.Request(method, url, headers=headers, content=body, extensions={"timeout": timeout})
        response = await transport.handle_async_request(request)
        try:
            out = bytearray()
            async for chunk in response.aiter_raw():
                out += chunk
                if len(out) > self.max_body:
                    _read_limited([bytes(out)], self.max_body, url)
        finally:
            await response.aclose()
        return response.status_code, response.reason_phrase, _raw_headers(response), bytes(out)

    async def aclose(self) -> None:
        """Close the pooled connections of this loop and of closed loops; other loops close theirs soon.

        The client stays usable: a later call opens new connections.
        """
        self._generation += 1
        current = asyncio.get_running_loop()
        for loop, pools in list(self._pools.items()):
            if loop is current:
                for key_pool in pools.values():
                    key_pool.close_all()
            elif loop.is_closed():
                del self._pools[loop]
                for key_pool in pools.values():
                    key_pool.close_all(dead_loop=True)
            else:
                for key_pool in pools.values():
                    loop.call_soon_threadsafe(key_pool.close_all)
        transport = self._httpx.pop(current, None)
        if transport is not None:
            await transport.aclose()

    async def __aenter__(self) -> AsyncHTTPClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
