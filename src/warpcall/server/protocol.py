"""uvicorn's httptools protocol, answering ``POST /invoke`` itself when that is safe.

Going through ASGI costs a request a task, a scope walk through the app, a ``receive``
and two ``send`` coroutines: on a 2-core machine about as much as the whole bare
uvicorn echo. The subclass here keeps uvicorn's parsing, connection, keep-alive,
pipelining and shutdown handling, and only replaces the ASGI hand-off for a plain
``POST /invoke`` with a small ``content-length`` body: once the body is in, it asks
:meth:`DispatchEndpoint.answer` for the reply and writes it, the way uvicorn's
``send`` would (same status line, default headers, ``connection: close`` when the
connection ends). Everything else -- other routes, chunked or large bodies,
``Expect: 100-continue``, pipelined requests, an app with user middleware -- takes uvicorn's ordinary path to the ASGI app, which has the same
endpoint mounted.

The subclass relies on uvicorn internals; :data:`SUPPORTED` says whether the
installed uvicorn has the ones it uses, and without them the server runs uvicorn's
own protocol.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
from typing import Any, Awaitable, Callable

from warpcall.server.dispatch import METHOD_HEADER_BYTES, DispatchEndpoint, Reply

logger = logging.getLogger("warpcall.server")

#: bodies up to this size are read by the protocol; larger ones stream through the ASGI app
HOLD_LIMIT = 64 * 1024

_CYCLE_FIELDS = {"scope", "keep_alive", "default_headers", "on_response", "message_event"}

try:
    from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle
    from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string
except ImportError:  # httptools is not installed: uvicorn runs h11
    SUPPORTED = False
else:
    SUPPORTED = all(
        callable(getattr(HttpToolsProtocol, name, None))
        for name in ("_start_asgi_task", "on_headers_complete", "on_message_complete", "on_response_complete")
    ) and _CYCLE_FIELDS <= set(inspect.signature(RequestResponseCycle.__init__).parameters)

INTERNAL_ERROR: Reply = (500, b"text/plain; charset=utf-8", b"Internal Server Error")


def inline_protocol(endpoint: DispatchEndpoint, accepts: Callable[[], bool]) -> type | None:
    """A protocol class for ``uvicorn.Config(http=...)`` that answers ``endpoint`` inline, or None when unsupported.

    ``accepts()`` is asked on every request; while it is false (the app has user middleware),
    ``/invoke`` goes through the ASGI app like any other route.
    """
    if not SUPPORTED:
        return None
    return type(
        "InlineDispatchProtocol", (_InlineDispatchProtocol,), {"endpoint": endpoint, "accepts": staticmethod(accepts)}
    )


def _holdable(headers: list[tuple[bytes, bytes]]) -> tuple[bytes, bytes] | None:
    """(content type, method header) when the request has a small ``content-length`` body and nothing unusual."""
    content_type, method_header, length = b"", b"", None
    for name, value in headers:
        if name == b"content-type":
            content_type = value
        elif name == b"content-length":
            length = value
        elif name == METHOD_HEADER_BYTES:
            method_header = value
        elif name == b"transfer-encoding":
            return None
    if length is None or not length.isdigit() or int(length) > HOLD_LIMIT:
        return None
    return content_type, method_header


if SUPPORTED:

    class _InlineDispatchProtocol(HttpToolsProtocol):  # type: ignore[misc]
        """Holds a fresh ``POST /invoke`` instead of starting its ASGI task, and answers it when its body is in."""

        endpoint: DispatchEndpoint
        accepts: Callable[[], bool]
        #: requests answered without the ASGI app, over all connections of this class
        served = 0

        _fresh = False
        _held: Any = None
        _request: tuple[bytes, bytes] = (b"", b"")

        def on_headers_complete(self) -> None:
            # uvicorn starts the ASGI task from here for a fresh request, and from
            # on_response_complete for a pipelined one; only the fresh ones are held
            self._fresh = True
            try:
                super().on_headers_complete()
            finally:
                self._fresh = False

        def _start_asgi_task(self, cycle: Any, app: Any) -> None:
            if (
                self._fresh
                and app is self.app  # not uvicorn's 503 app for a concurrency limit
                and cycle.scope["path"] == "/invoke"
                and cycle.scope["method"] == "POST"
                and not self.expect_100_continue
                and not self.flow.write_paused
                and self.accepts()
            ):
                request = _holdable(cycle.scope["headers"])
                if request is not None:
                    self._held, self._request = cycle, request
                    return
            super()._start_asgi_task(cycle, app)

        def on_message_complete(self) -> None:
            super().on_message_complete()
            cycle = self._held
            if cycle is None:
                return
            self._held = None
            content_type, method_header = self._request
            # each request runs in a context of its own, as an ASGI task would
            context = contextvars.copy_context()
            try:
                outcome = context.run(self.endpoint.answer, content_type, method_header, bytes(cycle.body))
            except Exception:
                logger.exception("answering POST /invoke failed")
                outcome = INTERNAL_ERROR
            if type(outcome) is tuple:
                type(self).served += 1
                self._reply(cycle, outcome)
                return
            task = context.run(self.loop.create_task, self._reply_later(cycle, outcome))
            task.add_done_callback(self.tasks.discard)
            self.tasks.add(task)  # uvicorn's shutdown waits for it

        async def _reply_later(self, cycle: Any, outcome: Awaitable[Reply]) -> None:
            try:
                reply = await outcome
            except Exception:
                logger.exception("answering POST /invoke failed")
                reply = INTERNAL_ERROR
            if self.flow.write_paused and not self.transport.is_closing():
                await self.flow.drain()
            type(self).served += 1
            self._reply(cycle, reply)

        def _reply(self, cycle: Any, reply: Reply) -> None:
            """Write the response as uvicorn's ``send`` would, then complete the cycle."""
            cycle.response_started = True
            if reply is INTERNAL_ERROR:
                cycle.keep_alive = False
            status, content_type, payload = reply
            if self.access_log:
                scope = cycle.scope
                self.access_logger.info(
                    '%s - "%s %s HTTP/%s" %d', get_client_addr(scope), scope["method"],
                    get_path_with_query_string(scope), scope["http_version"], status,
                )
            if not self.transport.is_closing():
                parts = [STATUS_LINE[status]]
                for name, value in cycle.default_headers:
                    parts += (name, b": ", value, b"\r\n")
                parts.append(b"content-type: %s\r\ncontent-length: %d\r\n" % (content_type, len(payload)))
                if not cycle.keep_alive:
                    parts.append(b"connection: close\r\n")
                parts += (b"\r\n", payload)
                self.transport.write(b"".join(parts))
            cycle.response_complete = True
            cycle.message_event.set()
            if not cycle.keep_alive:
                self.transport.close()
            cycle.on_response()
