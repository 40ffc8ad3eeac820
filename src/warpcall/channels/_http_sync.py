"""The blocking HTTP/1.1 keep-alive client on the compiled core.

``HTTPClient`` pools connections per thread and per (scheme, host, port); one call is
a request written by ``warpcall.core.transport.build_request``, one ``send`` and as many
``recv`` as the response needs; a server that answers before it has read the whole request and
closes (a 413 to a body over its limit) has that answer returned. ``https://`` URLs take the same
path on an ``ssl.SSLSocket`` (handshake on connect, within the connect timeout and the call's
deadline; certificates checked as the client's ``ClientTLS`` says). ``WarpTransport`` (in
``_httpx_transport``) puts it under an ``httpx.Client``. This module imports httpx only for an
error, and ssl only for an https connection.
"""

from __future__ import annotations

import socket
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from warpcall.channels._http_common import (
    _TARGETS,
    ClientTLS,
    _attach_request,
    _bad_request,
    _check_expiry,
    _check_timeout,
    _check_tls,
    _connect_error,
    _connect_timeout,
    _peer_gone,
    _protocol_error,
    _read_error,
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
    Connection,
    ResponseParser,
    ResponseTooLarge,
    build_request,
)

if TYPE_CHECKING:
    import ssl


#: seconds an answer that came before the request was written whole may still take to read, past the deadline
_EARLY_GRACE = 0.02


class _Conn:
    """One kept-alive connection of the sync client: the core's Connection and the generation it joined."""

    __slots__ = ("io", "generation", "__weakref__")

    def __init__(self, sock: socket.socket, generation: int, expiry: float) -> None:
        self.io = Connection(sock, expiry)
        self.generation = generation

    def close(self) -> None:
        self.io.sock.close()

    __del__ = close


def _open(
    target: _Target,
    url: str,
    timeout: float,
    generation: int,
    expiry: float,
    deadline: float,
    tls: ClientTLS | ssl.SSLContext,
) -> _Conn:
    started = time.monotonic()
    wait = timeout
    if deadline > 0.0:  # connecting takes from the call's time too
        wait = min(timeout, deadline - started)
        if wait <= 0.0:
            raise _connect_timeout(url, timeout, deadline)
    try:
        sock = socket.create_connection((target.host, target.port), timeout=wait)
    except TimeoutError:
        raise _connect_timeout(url, timeout, deadline) from None
    except OSError as exc:
        raise _connect_error(url, exc) from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if target.tls:
        return _Conn(_handshake(sock, target, url, timeout, deadline, wait - (time.monotonic() - started), tls),
                     generation, expiry)
    sock.settimeout(None)  # blocking: the core's Connection sets kernel timeouts per send and receive
    return _Conn(sock, generation, expiry)


def _handshake(
    sock: socket.socket,
    target: _Target,
    url: str,
    timeout: float,
    deadline: float,
    left: float,
    tls: ClientTLS | ssl.SSLContext,
) -> socket.socket:
    """``sock`` wrapped in TLS, the handshake done within ``left`` seconds (what connecting left of the connect
    timeout and the deadline). The socket keeps a timeout: the core's Connection re-arms it per call."""
    try:
        context = _ssl_context(tls)
        if left <= 0.0:
            raise TimeoutError
        sock.settimeout(left)
        return context.wrap_socket(sock, server_hostname=target.host)
    except TimeoutError:
        sock.close()
        raise _connect_timeout(url, timeout, deadline) from None
    except OSError as exc:  # ssl.SSLError included: a certificate refused, by either side
        sock.close()
        raise _connect_error(url, exc) from None
    except BaseException:
        sock.close()
        raise


class HTTPClient:
    """Blocking HTTP/1.1 keep-alive client: connections pooled per thread and per (scheme, host, port).

    ``timeout`` bounds connect, each send and each receive; ``max_body`` is the
    largest response body accepted. ``_exchange``'s ``deadline`` (a ``time.monotonic()``
    instant) bounds the whole exchange and is sent as ``x-rpc-timeout``. ``request`` returns ``(status, headers, body)``.
    ``keepalive_expiry``: seconds a pooled connection may stay idle and still be reused
    (below the server's keep-alive timeout; a server's ``Keep-Alive: timeout=N`` shortens it).
    ``tls``: how ``https://`` servers are checked (a :class:`ClientTLS` or an ``ssl.SSLContext``;
    None: certificates and host names verified against the system's CAs).
    """

    def __init__(
        self,
        timeout: float = 10.0,
        max_body: int = 64 * 2**20,
        max_idle: int = 8,
        keepalive_expiry: float = DEFAULT_KEEPALIVE_EXPIRY,
        tls: ClientTLS | ssl.SSLContext | None = None,
    ) -> None:
        self.timeout = _check_timeout(timeout)
        self.max_body = max_body
        self.max_idle = max_idle
        self.keepalive_expiry = _check_expiry(keepalive_expiry)
        self.tls = _check_tls(tls)
        self._local = threading.local()
        self._pools: weakref.WeakSet[_Pool] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._generation = 0

    def request(
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
            status, _reason, response_headers, content = self._exchange(method, url, headers, body, t, t, t)
        except Exception as exc:
            _attach_request(exc, method, url)  # httpx's errors only
            raise
        return status, response_headers, content

    def _pool(self) -> _Pool:
        try:
            pool: _Pool = self._local.pool
        except AttributeError:
            pool = self._local.pool = _Pool()
            with self._lock:
                self._pools.add(pool)
        return pool

    def _exchange(
        self,
        method: str,
        url: str,
        headers: Any,
        body: bytes,
        connect_t: float,
        write_t: float,
        read_t: float,
        deadline: float = 0.0,
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        target = _TARGETS.get(url) or _target(url)
        try:
            data = build_request(method, target.path, target.host_header, headers, body, deadline)
        except ValueError as exc:
            raise _bad_request(method, url, exc) from None
        idle: list[_Conn]
        try:
            idle = self._local.pool[target.key]
        except (AttributeError, KeyError):
            idle = self._pool().setdefault(target.key, [])
        conn: _Conn | None = None
        while idle:
            candidate = idle.pop()
            # idle for less than its expiry, and nothing to read: data or EOF there means the server gave up on it
            if candidate.io.reusable():
                conn = candidate
                break
            candidate.close()
        while True:
            fresh = conn is None
            if conn is None:
                conn = _open(target, url, connect_t, self._generation, self.keepalive_expiry, deadline, self.tls)
            io = conn.io
            try:
                if io.timeout != write_t:
                    io.set_timeout(write_t)
                io.send(data, deadline)
                break
            except (BlockingIOError, TimeoutError):
                # the server stopped reading: if it answered meanwhile (a 413 without closing), that is the reply
                early = None if io.idle() else self._early_reply(conn, url, method, read_t, deadline)
                conn.close()
                if early is None:
                    raise _write_timeout(url, write_t, deadline) from None
                return early.status, early.reason, early.headers, early.body
            except OSError as exc:
                if fresh or io.sent != 0 or not _peer_gone(exc):
                    # closed or reset: the server may have answered first (a 413), and that answer is the reply
                    gone = _peer_gone(exc)
                    early = self._early_reply(conn, url, method, read_t, deadline) if gone else None
                    conn.close()
                    if early is None:
                        # no byte taken by the OS: provably not sent, another instance may take the call
                        raise (_unsent_error if io.sent == 0 else _write_error)(url, exc) from None
                    return early.status, early.reason, early.headers, early.body
                conn.close()
                conn = None  # the server dropped the pooled one and nothing was sent: a new connection is safe
        parser = ResponseParser(self.max_body, method == "HEAD")
        try:
            if read_t != write_t:
                conn.io.set_timeout(read_t)
            conn.io.receive(parser, deadline)
        except (BlockingIOError, TimeoutError):
            conn.close()  # discarded: the rest of the response may still come
            raise _read_timeout(url, read_t, deadline) from None
        except ValueError as exc:
            conn.close()
            raise _protocol_error(url, exc, fresh and conn.io.tls) from None
        except OSError as exc:
            conn.close()
            raise _read_error(url, exc) from None
        if parser.keep_alive and conn.generation == self._generation and len(idle) < self.max_idle:
            idle.append(conn)
        else:
            conn.close()
        return parser.status, parser.reason, parser.headers, parser.body

    def _early_reply(
        self, conn: _Conn, url: str, method: str, read_t: float, deadline: float
    ) -> ResponseParser | None:
        """The whole response a server sent before it closed on, or stopped reading, a request it did not read
        whole (a 413 to a body over its limit), or None. The connection is closed by the caller either way."""
        parser = ResponseParser(self.max_body, method == "HEAD")
        try:
            if conn.io.timeout != read_t:
                conn.io.set_timeout(read_t)
            if deadline > 0.0:
                # the answer is there already (the peer is gone or stopped reading): read it even at the deadline
                deadline = max(deadline, time.monotonic() + _EARLY_GRACE)
            conn.io.receive(parser, deadline)  # the peer is gone: data it sent, then EOF or a reset, come at once
        except ResponseTooLarge as exc:
            raise _protocol_error(url, exc) from None
        except (OSError, ValueError):
            return None
        return parser

    def close(self) -> None:
        """Close every pooled connection of every thread; calls under way close theirs when they end.

        The client stays usable: a later call opens new connections.
        """
        with self._lock:
            self._generation += 1
            pools = list(self._pools)
        for pool in pools:
            for idle in list(pool.values()):
                while idle:
                    try:
                        idle.pop().close()
                    except IndexError:  # another thread took it meanwhile
                        break

    def __enter__(self) -> HTTPClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Pool(dict[tuple[str, str, int], list[_Conn]]):
    """A thread's idle connections: (scheme, host, port) -> list, most recently used last."""

    # identity, not contents: the client keeps every thread's pool in a WeakSet
    __hash__ = object.__hash__  # type: ignore[assignment]  # dict declares itself unhashable
    __eq__ = object.__eq__
