"""uvicorn's httptools protocol, answering ``POST /invoke`` and warpcall's REST routes itself when that is safe.

Going through ASGI costs a request a task, a scope walk through the app, a ``receive``
and two ``send`` coroutines: on a 2-core machine about as much as the whole bare
uvicorn echo. The subclass here keeps uvicorn's parsing, connection, keep-alive,
pipelining and shutdown handling, and only replaces the ASGI hand-off for a request
with no or a small ``content-length`` body that the server's own fast paths would
answer anyway:

- ``POST /invoke``: once the body is in, :meth:`DispatchEndpoint.answer` makes the
  reply; a method that must be awaited gets a task, the rest need none;
- a request :class:`RestFastPath` routes to a warpcall route: its arguments are
  validated as there, a sync implementation goes to the thread pool with a callback
  instead of an awaiting task, and a request that does not validate goes to
  FastAPI's ASGI app, body included. The worker that ran a sync implementation also
  writes a plain reply itself, to a duplicate of the connection's socket, so the
  caller is answered without waiting for the event loop to wake up (the loop then
  only completes the request's bookkeeping); see :func:`_call_and_send`.

A connection that is idle and reads exactly one plain ``POST /invoke`` in one chunk
(the common call) skips even uvicorn's parser callbacks, scope and request cycle:
``invokehead.parse`` recognises the request from its bytes, and the protocol does what
uvicorn does around it (keep-alive timer, request count, flow control, access line,
graceful shutdown). Anything it does not recognise goes to uvicorn's parser.

The reply is written the way uvicorn's ``send`` writes it (the same status line,
default headers, ``connection: close`` when the connection ends, access log line).
Everything else -- other routes, chunked or large bodies, ``Expect: 100-continue``,
pipelined requests, an app with user middleware -- takes uvicorn's ordinary path
to the ASGI app, which has the same endpoint and routes mounted.

The same class, with answering inline turned off, serves ``inline_protocol=False``: on
every path it enforces the server's :class:`~warpcall.server.limits.ServerLimits` (head
size and header count, time to send a head, idle connections, with uvicorn's
``limit_concurrency`` for connections), keeps the keep-alive timer off a connection
while a request is under way, and starts every request (inline or ASGI task) in a copy
of the connection's context, so context variables never pass from one request to the
next (uvicorn's ``reset_contextvars`` is honoured: then that context is empty).

The subclass relies on uvicorn internals; :data:`SUPPORTED` says whether the
installed uvicorn has the ones it uses, and without them the server runs uvicorn's
own protocol.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import os
from asyncio import TimerHandle
from functools import partial
from time import monotonic
from typing import Any, Awaitable, Callable, Coroutine

from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException

from warpcall.core.invokehead import parse
from warpcall.core.transport import deadline_after_ms as _deadline_after_ms
from warpcall.exceptions import OverloadedException
from warpcall.observe import server as _observe
from warpcall.resilience.deadline import DEADLINE_HEADER_BYTES
from warpcall.resilience.deadline import _current as _deadline
from warpcall.server.context import RESPONSES, head_scope, prepare_response, set_source
from warpcall.server.dispatch import ARRIVED, DispatchEndpoint, Reply
from warpcall.server.limits import ServerLimits
from warpcall.server.rest import Headed, Responder, deadline_of, overloaded_reply, refused_reply
from warpcall.server.rest import Reply as RestReply
from warpcall.server.rest_fast import RestFastPath
from warpcall.server.security import run_checks, set_token
from warpcall.server.workers import NotStarted, Refused
from warpcall.wire import METHOD_HEADER_BYTES

logger = logging.getLogger("warpcall.server")
#: every request observed (metrics or OpenTelemetry on): one list item read on the plain path
_OBSERVE_ALL = _observe.ALWAYS

#: bodies up to this size are read by the protocol; larger ones stream through the ASGI app
HOLD_LIMIT = 64 * 1024

_CYCLE_FIELDS = {"scope", "keep_alive", "default_headers", "on_response", "message_event"}
#: the header lines of a REST reply with a JSON body (its length to fill in), as FastAPI's response orders them
_REST_HEAD = b"content-length: %d\r\ncontent-type: application/json\r\n"


#: the header lines of a dispatch reply: its content type and length to fill in
_DISPATCH_HEAD = b"content-type: %s\r\ncontent-length: %d\r\n"


#: the last default header list seen and its lines: uvicorn makes a new list when the date changes (once a
#: second) and never changes one in place, so the lines are made once per list, not once per reply. One
#: tuple, replaced whole: servers in other threads may read it at any time
_head_cache: tuple[object, bytes] = (None, b"")


def _default_head(default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """uvicorn's default header lines (server, date) as they start every reply."""
    global _head_cache
    cached = _head_cache
    if cached[0] is default_headers:  # the list is held here: its identity cannot pass to another one
        return cached[1]
    head = b"".join([b"%s: %s\r\n" % header for header in default_headers])
    _head_cache = (default_headers, head)
    return head


def _client_addr(client: tuple[str, int] | None) -> str:
    """The peer as uvicorn's access log writes it (``get_client_addr`` of a scope with this client)."""
    return "%s:%d" % client if client else ""


def _response(status: int, default_headers: list[tuple[bytes, bytes]], head: bytes, close: bool,
              payload: bytes | memoryview) -> bytes:
    """A whole response as uvicorn's ``send`` writes it: status line, default headers, ``head``, body."""
    return b"".join((
        STATUS_LINE[status], _default_head(default_headers), head,
        b"connection: close\r\n" if close else b"", b"\r\n", payload,
    ))

#: everything the inline protocol uses of uvicorn's HttpToolsProtocol, as paths from an instance: the
#: methods it overrides or calls (``name()``), the attributes uvicorn sets in ``__init__`` and
#: ``connection_made``, and what it reads or calls on them and on the request cycle (``cycle.``).
#: SUPPORTED checks the methods and the protocol's own attributes; tests/service/test_uvicorn_contract.py
#: checks every path on a real instance serving a request. Keep it in step with the code below.
UVICORN_USES: tuple[str, ...] = (
    # methods overridden (and called through super()) or called
    "data_received()", "on_message_begin()", "on_headers_complete()", "_start_asgi_task()",
    "on_message_complete()", "on_response_complete()", "_unset_keepalive_if_required()", "shutdown()",
    # the protocol's own state
    "app", "loop", "loop.create_task()", "tasks", "tasks.add()", "tasks.discard()", "connections",
    "limit_concurrency", "root_path", "expect_100_continue", "access_log", "access_logger",
    "access_logger.info()", "access_logger.isEnabledFor()", "client", "scheme", "server_state", "server_state.default_headers",
    "transport", "transport.write()", "transport.close()", "transport.is_closing()",
    "transport.get_write_buffer_size()", "transport.get_extra_info()",
    "flow", "flow.write_paused", "flow.pause_reading()", "flow.drain()", "cycle",
    "connection_made()", "connection_lost()", "config", "parser", "parser.get_method()", "url", "headers", "scope",
    "loop.call_later()", "timeout_keep_alive", "timeout_keep_alive_task", "timeout_keep_alive_handler()",
    # the request cycle
    "cycle.scope", "cycle.body", "cycle.keep_alive", "cycle.default_headers", "cycle.on_response()",
    "cycle.message_event", "cycle.message_event.set()", "cycle.response_started", "cycle.response_complete",
)

try:
    from uvicorn.protocols.http.httptools_impl import (
        HEADER_RE,
        HEADER_VALUE_RE,
        STATUS_LINE,
        HttpToolsProtocol,
        RequestResponseCycle,
    )
    from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string
except ImportError:  # httptools is not installed (uvicorn runs h11), or uvicorn moved what this needs
    SUPPORTED = False
else:
    # methods must be on the class; the protocol's own attributes must be set where uvicorn sets them
    # (per connection, or per request for the parsed request line)
    _assigned = {
        *HttpToolsProtocol.__init__.__code__.co_names, *HttpToolsProtocol.connection_made.__code__.co_names,
        *HttpToolsProtocol.on_message_begin.__code__.co_names,
    }
    SUPPORTED = all(
        callable(getattr(HttpToolsProtocol, path[:-2], None)) if path.endswith("()") else path in _assigned
        for path in UVICORN_USES
        if "." not in path
    ) and _CYCLE_FIELDS <= set(inspect.signature(RequestResponseCycle.__init__).parameters)

INTERNAL_ERROR: Reply = (500, b"text/plain; charset=utf-8", b"Internal Server Error")

_parse_invoke = parse
_INFO = logging.INFO  # the access log's level


def inline_protocol(
    endpoint: DispatchEndpoint,
    rest: RestFastPath,
    accepts: Callable[[], bool],
    limits: ServerLimits | None = None,
    inline: bool = True,
) -> type | None:
    """A protocol class for ``uvicorn.Config(http=...)`` answering ``endpoint`` and ``rest`` inline (None: unsupported).

    ``accepts()`` is asked on every request; while it is false (the app has user middleware),
    every request goes through the ASGI app. ``limits`` (default :class:`ServerLimits`) are
    enforced on every request, inline or not. ``inline=False`` never answers inline: every
    request goes through the ASGI app, under the same limits.
    """
    if not SUPPORTED:
        return None
    limits = limits or ServerLimits()
    namespace = {
        "endpoint": endpoint,
        "rest": rest,
        "accepts": staticmethod(accepts if inline else _never),
        "stats": InlineStats(),
        "limits": limits,
        "_max_head_size": limits.max_head_size,
        "_max_headers": limits.max_headers,
        "_head_timeout": limits.head_timeout,
        "_fast_head": _fast_head(limits),
        "_retry_after": b"retry-after: %d\r\n" % endpoint.sync_calls.retry_after,
    }
    return type("InlineProtocol", (_InlineProtocol,), namespace)


def _never() -> bool:
    return False


def _fast_head(limits: ServerLimits) -> int:
    """The longest head of a one-chunk ``POST /invoke`` that is surely within ``limits``.

    ``invokehead.parse`` recognises heads of at most its own ``MAX_HEADERS`` header lines, each at
    least 4 bytes (``x:`` and CRLF) after the 23-byte request line. A longer head, or one that
    could hold more headers than allowed, goes to uvicorn's parser, where the limits are checked
    exactly; the common call only compares one length.
    """
    from warpcall.core.invokehead import MAX_HEADERS, REQUEST_LINE

    if limits.max_headers >= MAX_HEADERS:
        return limits.max_head_size
    # a head of n bytes holds at most (n - len(request line) - 2) // 4 header lines
    return min(limits.max_head_size, len(REQUEST_LINE) + 2 + 4 * (limits.max_headers + 1) - 1)


def _plain_reply(status: int, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """A refusal written straight to the transport, as uvicorn writes its own 400: the connection then closes."""
    phrase = STATUS_LINE[status][13:-2]  # b"HTTP/1.1 408 " ... b"\r\n"
    return b"".join((
        STATUS_LINE[status], _default_head(default_headers),
        b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(phrase),
        phrase,
    ))


def _refusal(status: int) -> Callable[[Any, Any, Any], Awaitable[None]]:
    """An ASGI app answering ``status`` with ``connection: close``: a refused request takes its turn among pipelined ones."""
    phrase = STATUS_LINE[status][13:-2]
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(phrase)),
        (b"connection", b"close"),
    ]

    async def refuse(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": phrase, "more_body": False})

    return refuse


class InlineStats:
    """What an inline protocol class did; kept apart from the class, since assigning a class attribute
    would invalidate the interpreter's attribute cache for every instance on every request."""

    __slots__ = ("served", "unparsed")

    def __init__(self) -> None:
        #: requests taken on (and answered) without the ASGI app, over all connections
        self.served = 0
        #: of those, ``POST /invoke`` requests answered straight from the bytes, without uvicorn's parser
        self.unparsed = 0


def _call_and_send(
    target: Callable[..., Any], responder: Responder, fd: int, head: bytes, box: list[Any], *args: Any
) -> tuple[int | None, Any]:
    """Run in a worker: call ``target``, and write a plain reply to ``fd`` (a duplicate of the socket).

    Returns ``(status, unsent bytes)`` once the reply went out (or the peer is gone), ``(None,
    reply)`` for a reply the loop must write (no body, or the socket would block at once).
    The duplicate keeps the socket itself open until the write is over, even if the loop
    closes the connection meanwhile, so the bytes can never reach another connection.
    The outcome also goes into ``box`` at once: the caller may send its next request
    before the loop hears back from the pool, and the loop settles this one first.
    """
    try:
        reply = responder.returned(target(*args))
        status, payload = reply
        if payload is None:
            outcome: tuple[int | None, Any] = (None, reply)
        else:
            data = b"".join((
                STATUS_LINE[status], head,
                _REST_HEAD % len(payload), payload.lines if type(payload) is Headed else b"", b"\r\n", payload,
            ))
            try:
                written = os.write(fd, data)  # the socket is non-blocking: as much as fits now
            except BlockingIOError:
                written = -1
            except OSError:  # the caller went away; the loop sees the connection close
                written = len(data)
            outcome = (None, reply) if written < 0 else (status, data[written:])
        box.append(outcome)
        return outcome
    finally:
        os.close(fd)


def _enter(scope: Any, authorization: bytes) -> None:
    """In a request's own context: its scope for ``RequestContext``, its token for ``TokenContext``."""
    set_source(scope)
    if authorization:
        set_token(authorization)


def _small_body(headers: list[tuple[bytes, bytes]]) -> tuple[bytes, bytes, bytes, bytes] | None:
    """(content type, method header, x-rpc-timeout, authorization) when the body is absent or a small
    ``content-length`` one; else None. The timeout is ``b""`` when absent, ``b"-"`` (malformed) when sent
    empty; the authorization ``b""`` when absent.

    None too when one of content type, method header or authorization comes twice with differing values:
    the ASGI app then answers as it does on every path (the dispatch endpoint's 400, the REST routes' 400).
    None for a request carrying ``traceparent``, ``tracestate`` or ``x-rpc-timing``: the ASGI app observes it.
    """
    content_type: bytes | None = None
    method_header: bytes | None = None
    authorization: bytes | None = None
    timeout = b""
    for name, value in headers:
        if name == b"content-type":
            if content_type is not None and value != content_type:
                return None
            content_type = value
        elif name == b"content-length":
            if not value.isdigit() or int(value) > HOLD_LIMIT:
                return None
        elif name == METHOD_HEADER_BYTES:
            if method_header is not None and value != method_header:
                return None
            method_header = value
        elif name == b"transfer-encoding":
            return None
        elif name == DEADLINE_HEADER_BYTES:
            if not timeout:  # the first one, as the ASGI path reads it
                timeout = value or b"-"
        elif name == b"authorization":
            if authorization is not None and value != authorization:
                return None
            authorization = value
        elif name == b"traceparent" or name == b"tracestate" or name == b"x-rpc-timing":
            return None  # observed: the ASGI app's paths time it and carry its trace (warpcall.observe.server)
    return content_type or b"", method_header or b"", timeout, authorization or b""


if SUPPORTED:
    _REFUSE_431 = _refusal(431)
    _uvicorn_response_complete = HttpToolsProtocol.on_response_complete

    class _InlineProtocol(HttpToolsProtocol):
        """Holds a fresh request the fast paths answer instead of starting its ASGI task; answers it when complete."""

        endpoint: DispatchEndpoint
        rest: RestFastPath
        accepts: Callable[[], bool]
        stats: InlineStats
        limits: ServerLimits
        _max_head_size: int
        _max_headers: int
        _head_timeout: float
        _fast_head: int
        _retry_after: bytes  # the header line of a 503 for a full queue

        # slots, set in connection_made: uvicorn's protocol already has about as many attributes as an instance
        # dict shares keys for, and one more in the dict would slow every attribute read of the fast path
        __slots__ = (
            "_base", "_fast_head_size", "_in_head", "_head_bytes", "_head_bound", "_head_counted",
            "_chunk_starts_head", "_chunk", "_head_timer", "_head_refused", "_unparsed",
        )
        _base: contextvars.Context  # each request runs in a copy of it
        _fast_head_size: int  # _fast_head, read as a slot on the fast path
        _in_head: bool  # uvicorn's parser has begun a request whose head is not complete
        _head_bytes: int  # bytes of that head in earlier chunks (those that surely belong to it)
        _head_bound: int  # bytes of every earlier chunk holding part of that head (it is no longer)
        _head_counted: bool  # the current chunk's bytes belong to that head from its first one on
        _chunk_starts_head: bool  # the chunk being parsed began at a request's first byte or within its head
        _chunk: int  # length of the chunk being parsed
        _head_timer: TimerHandle | None
        _head_refused: bool  # the head grew past its limit while an earlier reply was under way
        _unparsed: bytes | None  # the bytes of the last request answered unparsed, until the parser begins one

        _fresh = False
        _in_message = False  # uvicorn's parser has seen part of a request it has not completed
        _pending = False  # an unparsed request's reply is awaited
        _closing = False  # shut down while _pending: that reply ends the connection
        _held: Any = None
        _sending: Any = None  # the token of a reply a worker writes itself, until the loop settles it
        _complete: Callable[[Any, Any], None]
        _request: Any = None

        def connection_made(self, transport: Any) -> None:  # uvicorn types it as asyncio.Transport
            super().connection_made(transport)
            self._fast_head_size = self._fast_head
            self._in_head = self._head_counted = self._chunk_starts_head = self._head_refused = False
            self._head_bytes = self._head_bound = self._chunk = 0
            self._head_timer = None
            self._unparsed = None
            # the context uvicorn would start this connection's first request in; every request starts in
            # a copy of it, not in whatever context reading last resumed in (a task's, after a paused read:
            # asyncio's reader callback keeps the context it was added in, cpython#140947)
            self._base = (
                contextvars.Context() if getattr(self.config, "reset_contextvars", False)  # uvicorn >= 0.55
                else contextvars.copy_context()
            )
            # RequestContext.get_request() of a call answered unparsed: made from this connection on demand
            self._base.run(set_source, self)
            # a connection that never sends a request is closed as an idle keep-alive one is
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            sending = self._sending
            if sending is not None and sending[2]:
                # the worker has answered, and the caller already sent more: settle that request
                # first, so this one arrives on a free connection rather than as a pipelined one
                self._settle(sending, sending[2][0])
            if (
                not self._in_message
                and not self._pending
                and self._sending is None
                and (self.cycle is None or self.cycle.response_complete)
            ):
                request = _parse_invoke(data, HOLD_LIMIT)
                # one length compared: a head that could be over a limit is checked by the parser path
                if request is not None and request[2] <= self._fast_head_size and self._may_answer_unparsed():
                    self._answer_unparsed(data, request)
                    return
            self._chunk = len(data)
            self._chunk_starts_head = self._in_head or not self._in_message
            super().data_received(data)
            if self._in_head and not self.transport.is_closing():
                # the head is still incomplete: bound what it holds, and time it
                if self._head_counted:
                    self._head_bytes += self._chunk
                self._head_bound += self._chunk
                self._head_counted = True  # the next chunk continues it
                self._head_pending()

        def current_scope(self) -> Any:
            """The ASGI scope of the request under way on this connection (for ``RequestContext``), or None."""
            data = self._unparsed
            if data is not None:
                return head_scope(data, data.index(b"\r\n\r\n") + 4, self.transport, self.scheme or "http")
            cycle = self.cycle
            return cycle.scope if cycle is not None else None

        def on_message_begin(self) -> None:
            self._unparsed = None
            self._in_message = self._in_head = True
            self._head_bytes = self._head_bound = 0
            # a head starting mid-chunk (after another request) is counted from the next chunk on
            self._head_counted, self._chunk_starts_head = self._chunk_starts_head, False
            # a request is under way: the keep-alive timer must not end the connection until it is answered
            # (uvicorn arms it after each reply; the next request may be in the same chunk)
            self._unset_keepalive_if_required()
            super().on_message_begin()

        def _busy(self) -> bool:
            """An earlier request on this connection is not answered yet."""
            cycle = self.cycle
            return self._pending or (cycle is not None and not cycle.response_complete)

        def _head_pending(self) -> None:
            """A head is incomplete with nothing else under way: refuse it once too large, time it once it starts."""
            if self._busy():
                if self._head_bytes > self._max_head_size and not self._head_refused:
                    # refused once the earlier reply is out (on_response_complete); read no more of it meanwhile
                    self._head_refused = True
                    self.flow.pause_reading()
                return
            if self._head_bytes > self._max_head_size:
                self._refuse_now(431)
                return
            self._unset_keepalive_if_required()  # armed by a reply written while this head was arriving
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(self._head_timeout, self._head_timed_out)

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self._in_head and not self.transport.is_closing():
                logger.warning(
                    "%s: request head not complete within %s s, answered 408", _client_addr(self.client),
                    self._head_timeout,
                )
                self._refuse_now(408)

        def _refuse_now(self, status: int) -> None:
            """Answer a request whose head is incomplete (no earlier reply is under way) and close."""
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            self._in_head = False
            self.transport.write(_plain_reply(status, self.server_state.default_headers))
            self.transport.close()

        def _head_refusal(self) -> Any:
            """The refusing app for the head just parsed when it is over a limit, else None."""
            if len(self.headers) > self._max_headers:
                return _REFUSE_431
            if self._head_bound + self._chunk > self._max_head_size:
                # only a bound so far (whole chunks): count the head as parsed, each header as `name: value`
                size = len(self.parser.get_method()) + len(self.url) + 14  # spaces, HTTP/1.1, CRLF, final CRLF
                for name, value in self.headers:
                    size += len(name) + len(value) + 4
                size = max(size, self._head_bytes)  # the bytes of earlier chunks, whitespace included
                if size > self._max_head_size:
                    return _REFUSE_431
            return None

        def on_headers_complete(self) -> None:
            self._in_head = False
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            refusal = self._head_refusal()
            if refusal is not None:
                # through uvicorn's cycle, so it is answered in turn after any pipelined request before it
                app = self.app
                self.app = refusal
                try:
                    super().on_headers_complete()
                finally:
                    self.app = app
                return
            # a deadline the request carries counts from now, whenever its turn comes
            self.scope[ARRIVED] = monotonic()  # type: ignore[literal-required]  # an extension key, as ASGI allows
            # uvicorn starts the ASGI task from here for a fresh request, and from
            # on_response_complete for a pipelined one; only the fresh ones are held
            self._fresh = True
            try:
                super().on_headers_complete()
            finally:
                self._fresh = False

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self._in_head and not self.transport.is_closing():
                # the next request's head was arriving while this reply was made: its turn starts now
                if self._head_refused:
                    self._refuse_now(431)
                else:
                    self._head_pending()

        def _start_asgi_task(self, cycle: Any, app: Any) -> None:
            if (
                self._fresh
                and app is self.app  # not uvicorn's 503 app for a concurrency limit
                and not self.expect_100_continue
                and not self.flow.write_paused
                and self.accepts()
                and not _OBSERVE_ALL[0]  # every request observed: the ASGI app's observed paths answer
            ):
                scope = cycle.scope
                request = _small_body(scope["headers"])
                if request is not None:
                    if scope["path"] == "/invoke":
                        if scope["method"] == "POST":
                            self._held, self._complete, self._request = cycle, self._dispatch, request
                            return
                    else:
                        found = self.rest.handler(scope)
                        if found is not None:
                            self._held, self._complete, self._request = (
                                cycle, self._rest, (request[0], request[2], request[3], *found)
                            )
                            return
            # the task copies the context it is created in: the connection's, not the last request's
            self._base.run(super()._start_asgi_task, cycle, app)

        def on_message_complete(self) -> None:
            self._in_message = False
            super().on_message_complete()
            cycle = self._held
            if cycle is not None:
                self._held = None
                self._complete(cycle, self._request)

        def _spawn(self, context: contextvars.Context, coroutine: Coroutine[Any, Any, None]) -> None:
            task = context.run(self.loop.create_task, coroutine)
            task.add_done_callback(self.tasks.discard)
            self.tasks.add(task)  # uvicorn's shutdown waits for it

        def shutdown(self) -> None:
            if self._pending:  # as uvicorn does for a request under way: its reply closes the connection
                self._closing = True
                return
            super().shutdown()

        # --- POST /invoke, straight from the bytes --------------------------------------------------
        # A chunk that is exactly one plain POST /invoke (the common call: one request, one read)
        # skips uvicorn's parser callbacks, scope and cycle, which cost more than the call itself.
        # Everything uvicorn does around a request is done here too: the keep-alive timer, the
        # request count, flow control, the access line, graceful shutdown.

        def _may_answer_unparsed(self) -> bool:
            limit = self.limit_concurrency
            return (
                not self.root_path
                and not self.flow.write_paused
                and (limit is None or (len(self.connections) < limit and len(self.tasks) < limit))
                and self.accepts()
            )

        def _answer_unparsed(self, data: bytes, request: tuple[bytes, bytes, int, int, bytes, Any]) -> None:
            # timeout: the x-rpc-timeout milliseconds the recogniser read (-1: none sent); observed: None unless
            # the request asks for timings or carries a trace context
            content_type, method_header, head_length, timeout, authorization, observed = request
            if observed is not None or _OBSERVE_ALL[0]:
                self._answer_observed(data, request)
                return
            self._unset_keepalive_if_required()
            stats = self.stats
            stats.served += 1
            stats.unparsed += 1
            self._unparsed = data  # RequestContext reads the head from it, only when asked
            context = self._base.copy()
            try:
                if authorization:
                    context.run(set_token, authorization)
                if timeout > 0:
                    # the whole request came in this chunk: its deadline counts from now (one C clock read),
                    # set by answer in the call's own context (the common call carries one)
                    outcome = context.run(
                        self.endpoint.answer, content_type, method_header, data[head_length:], _deadline_after_ms(timeout)
                    )
                elif timeout:  # none sent
                    outcome = context.run(self.endpoint.answer, content_type, method_header, data[head_length:])
                else:  # no time left: refused unrun
                    outcome = self.endpoint.expired(content_type)
            except Exception:
                logger.exception("answering POST /invoke failed")
                outcome = INTERNAL_ERROR
            if isinstance(outcome, tuple):
                self._write_unparsed(outcome)
            else:
                # until the reply is out, the connection reads nothing: a pipelined request waits its turn
                self._pending = True
                self.flow.pause_reading()
                self._spawn(context, self._reply_later(outcome, self._write_unparsed))

        def _answer_observed(self, data: bytes, request: tuple[bytes, bytes, int, int, bytes, Any]) -> None:
            """``_answer_unparsed``'s observed path (``warpcall.observe.server``): phases, trace, span, metrics."""
            self._unset_keepalive_if_required()
            stats = self.stats
            stats.served += 1
            stats.unparsed += 1
            self._unparsed = data
            context = self._base.copy()
            try:
                if request[4]:
                    context.run(set_token, request[4])
                outcome = context.run(_observe.answer_chunk, self.endpoint, data, request, HOLD_LIMIT)
            except Exception:
                context.run(logger.exception, "answering POST /invoke failed")  # with the request's trace id
                outcome = INTERNAL_ERROR
            if isinstance(outcome, tuple):
                context.run(self._write_unparsed, outcome)  # its access line in the request's context: its trace id
            else:
                self._pending = True
                self.flow.pause_reading()
                self._spawn(context, self._reply_later(outcome, self._write_unparsed))

        def _write_unparsed(self, reply: Reply) -> None:
            self._pending = False
            status, content_type, payload = reply
            keep_alive = reply is not INTERNAL_ERROR and not self._closing
            if self.access_log and self.access_logger.isEnabledFor(_INFO):  # no line to make when none is written
                self.access_logger.info(
                    '%s - "POST /invoke HTTP/1.1" %d', _client_addr(self.client), status
                )
            if not self.transport.is_closing():
                # a 503's Retry-After line comes in its content type value (see dispatch.Reply)
                self.transport.write(_response(
                    status, self.server_state.default_headers, _DISPATCH_HEAD % (content_type, len(payload)),
                    not keep_alive, payload,
                ))
                if not keep_alive:
                    self.transport.close()
            # uvicorn's own: no head can be arriving, since reading pauses while an unparsed call is awaited
            _uvicorn_response_complete(self)

        # --- POST /invoke ---------------------------------------------------------------------------

        def _dispatch(self, cycle: Any, request: tuple[bytes, bytes, bytes, bytes]) -> None:
            content_type, method_header, timeout, authorization = request
            self.stats.served += 1
            # each request runs in a context of its own, as an ASGI task would
            context = self._base.copy()
            try:
                # its scope (another request's cycle may start while it is awaited) and its token
                context.run(_enter, cycle.scope, authorization)
                if timeout:
                    outcome = context.run(
                        self.endpoint.answer_by, content_type, method_header, bytes(cycle.body), timeout,
                        cycle.scope[ARRIVED],
                    )
                else:
                    outcome = context.run(self.endpoint.answer, content_type, method_header, bytes(cycle.body))
            except Exception:
                logger.exception("answering POST /invoke failed")
                outcome = INTERNAL_ERROR
            if isinstance(outcome, tuple):
                self._reply(cycle, outcome)
            else:
                self._spawn(context, self._reply_later(outcome, partial(self._reply, cycle)))

        async def _reply_later(self, outcome: Awaitable[Reply], write: Callable[[Reply], None]) -> None:
            """Await a dispatch reply and ``write`` it once the transport takes writes."""
            try:
                reply = await outcome
            except Exception:
                logger.exception("answering POST /invoke failed")
                reply = INTERNAL_ERROR
            await self._drained()
            write(reply)

        def _reply(self, cycle: Any, reply: Reply) -> None:
            status, content_type, payload = reply
            if reply is INTERNAL_ERROR:
                cycle.keep_alive = False  # as uvicorn ends a connection whose app failed
            self._write(cycle, status, _DISPATCH_HEAD % (content_type, len(payload)), payload)

        # --- REST routes ----------------------------------------------------------------------------

        def _rest(self, cycle: Any, request: tuple[bytes, bytes, bytes, Any, dict[str, Any]]) -> None:
            content_type, timeout, authorization, fast, path_values = request
            body = bytes(cycle.body) if fast.body is not None else None
            try:
                args = fast.arguments(cycle.scope, path_values, body, content_type)
            except Exception:  # noqa: BLE001 - any doubt about the input: FastAPI validates and answers
                # starlette and uvicorn type the same ASGI call differently (MutableMapping, TypedDicts)
                self._base.run(
                    HttpToolsProtocol._start_asgi_task, self, cycle, self.rest.app  # type: ignore[arg-type]
                )
                return
            self.rest.served += 1
            self.stats.served += 1  # counted before any reply can reach the caller
            responder: Responder = fast.respond
            method = responder.method
            # the call's own context, holding its scope, token and deadline: the pool's job (and any task)
            # starts in a copy
            base = self._base.copy()
            base.run(_enter, cycle.scope, authorization)
            if timeout:
                at, refusal = deadline_of(timeout, cycle.scope[ARRIVED])
                if refusal is not None:
                    self._rest_reply(cycle, refusal)
                    return
                base.run(_deadline.set, at)
            if method.is_async:  # the responder runs the authorization checks
                self._spawn(base.copy(), self._rest_later(cycle, responder, args))
                return
            if method.checks:
                refused = base.run(run_checks, method, args)
                if refused is not None:
                    self._rest_reply(cycle, refused_reply(refused))
                    return
            if RESPONSES[0]:  # cookies (ResponseContext): a holder the call's copies of this context share
                base.run(prepare_response)
            try:
                self._rest_call(cycle, responder, method, args, base)
            except OverloadedException as exc:
                self._rest_reply(cycle, overloaded_reply(exc))

        def _rest_call(self, cycle: Any, responder: Responder, method: Any, args: list[Any], base: Any) -> None:
            if method.offload:
                # no task waits for the worker: it writes the reply itself where it safely can, else its
                # callback on the loop does. Only a lone job writes: under load, workers that write
                # would fight over the GIL, and the loop writes many replies in one wake-up
                pool = responder.calls.pool
                if (
                    not pool.running
                    and cycle.keep_alive
                    and self.scheme == "http"
                    and not self.transport.get_write_buffer_size()
                ):
                    fd = os.dup(self.transport.get_extra_info("socket").fileno())
                    box: list[Any] = []
                    head = _default_head(cycle.default_headers)
                    job = partial(_call_and_send, method.target, responder, fd, head, box)
                    token = (cycle, responder, box, fd)
                    # the pool runs the call in a copy of the context it is given the job in
                    try:
                        base.run(pool.submit, self.loop, job, args, self._rest_sent, token, method)
                    except BaseException:
                        os.close(fd)
                        raise
                    self._sending = token
                else:
                    base.run(pool.submit, self.loop, method.target, args, self._rest_done, (cycle, responder), method)
            else:
                try:
                    value = base.copy().run(method.call_inline, args, responder.calls)
                except BaseException as exc:  # noqa: BLE001 - sorted out in _rest_done
                    self._rest_done((cycle, responder), exc, True)
                else:
                    self._rest_done((cycle, responder), value, False)

        def _rest_sent(self, token: tuple[Any, Responder, list[Any], int], outcome: Any, failed: bool) -> None:
            if isinstance(outcome, (NotStarted, Refused)):  # _call_and_send never ran: its socket duplicate is ours
                os.close(token[3])
            if self._sending is not token:
                return  # settled already, when the caller's next request came in
            if failed:  # the implementation raised (or never ran): nothing was written
                self._sending = None
                self._rest_done(token[:2], outcome, True)
                return
            self._settle(token, outcome)

        def _settle(self, token: tuple[Any, Responder, list[Any], int], outcome: tuple[int | None, Any]) -> None:
            self._sending = None
            cycle = token[0]
            status, rest = outcome
            if status is None:  # the worker left the reply to the loop
                self._rest_reply(cycle, rest)
                return
            self._started(cycle, status)
            if rest and not self.transport.is_closing():  # what the socket did not take at once, in order
                self.transport.write(rest)
            self._finished(cycle)

        def _rest_done(self, token: tuple[Any, Responder], outcome: Any, failed: bool) -> None:
            cycle, responder = token
            if failed and isinstance(outcome, HTTPException):
                self._spawn(self._base.copy(), self._http_exception(cycle, outcome))
                return
            try:
                if not failed:
                    reply = responder.returned(outcome)
                elif isinstance(outcome, Exception):
                    reply = responder.raised(outcome)
                else:  # SystemExit and the like in the worker: the app failed, as uvicorn would see it
                    raise RuntimeError("the implementation raised a BaseException") from outcome
            except Exception:
                logger.exception("answering %s %s failed", cycle.scope["method"], cycle.scope["path"])
                self._reply(cycle, INTERNAL_ERROR)
                return
            self._rest_reply(cycle, reply)

        async def _rest_later(self, cycle: Any, responder: Responder, args: list[Any]) -> None:
            try:
                reply = await responder(args)
            except HTTPException as exc:
                await self._http_exception(cycle, exc)
                return
            except Exception:
                logger.exception("answering %s %s failed", cycle.scope["method"], cycle.scope["path"])
                await self._drained()
                self._reply(cycle, INTERNAL_ERROR)
                return
            await self._drained()
            self._rest_reply(cycle, reply)

        def _rest_reply(self, cycle: Any, reply: RestReply) -> None:
            status, payload = reply
            if payload is None:  # 204, 304: no body, no content headers
                self._write(cycle, status, b"", b"")
            elif status == 503:
                self._write(cycle, status, _REST_HEAD % len(payload) + self._retry_after, payload)
            elif type(payload) is Headed:  # a 401's challenge, the call's cookies
                self._write(cycle, status, _REST_HEAD % len(payload) + payload.lines, payload)
            else:
                self._write(cycle, status, _REST_HEAD % len(payload), payload)

        async def _http_exception(self, cycle: Any, exc: HTTPException) -> None:
            """FastAPI's default handler makes the reply, headers of the user's included."""
            response = await http_exception_handler(None, exc)  # type: ignore[arg-type]
            head: list[bytes] = []
            closes = False
            for name, value in response.raw_headers:
                if HEADER_RE.search(name) or HEADER_VALUE_RE.search(value):
                    # uvicorn refuses the header once the response has started: the connection just ends
                    logger.error("invalid HTTP header in %s's reply", cycle.scope["path"])
                    cycle.response_started = cycle.response_complete = True
                    self.transport.close()
                    return
                name = name.lower()
                if name == b"connection" and b"close" in [t.lower().strip() for t in value.split(b",")]:
                    cycle.keep_alive, closes = False, True
                head += (name, b": ", value, b"\r\n")
            await self._drained()
            self._write(cycle, response.status_code, b"".join(head), response.body, closes)

        # --- writing ------------------------------------------------------------------------------

        async def _drained(self) -> None:
            if self.flow.write_paused and not self.transport.is_closing():
                await self.flow.drain()

        def _write(
            self, cycle: Any, status: int, head: bytes, payload: bytes | memoryview, closes: bool = False
        ) -> None:
            """Write the response as uvicorn's ``send`` would, then complete the cycle.

            ``head`` is the reply's own header lines; ``closes`` says they hold ``connection: close``.
            """
            self._started(cycle, status)
            if not self.transport.is_closing():
                self.transport.write(
                    _response(status, cycle.default_headers, head, not (cycle.keep_alive or closes), payload)
                )
            self._finished(cycle)

        def _started(self, cycle: Any, status: int) -> None:
            cycle.response_started = True
            if self.access_log and self.access_logger.isEnabledFor(_INFO):  # no line to make when none is written
                scope = cycle.scope
                self.access_logger.info(
                    '%s - "%s %s HTTP/%s" %d', get_client_addr(scope), scope["method"],
                    get_path_with_query_string(scope), scope["http_version"], status,
                )

        def _finished(self, cycle: Any) -> None:
            """What uvicorn does once a response is complete: the next pipelined request or the keep-alive timer."""
            cycle.response_complete = True
            cycle.message_event.set()
            if not cycle.keep_alive:
                self.transport.close()
            cycle.on_response()
