"""The fast path of REST routes: warpcall's own routes answered without FastAPI's per-request machinery.

Every ``@get``/``@post``/... route is a real FastAPI route (OpenAPI, ``/docs``, and
every request when the app has middleware). FastAPI spends most of a small request
in generic work: the router's linear scan, a ``Request``, dependency solving, a
``Response``. For warpcall's routes that work is known at startup, so
:class:`RestFastPath` does it directly, with the same results:

- it answers only a request the app would route to the same warpcall route: the
  route table is checked at startup (and again when it changes) for earlier routes
  that could catch the request (starlette routes the first full match), and any
  request it is not sure of goes to FastAPI;
- it validates every parameter with pydantic as FastAPI does (a ``TypeAdapter`` of
  the declared type, python mode, ``from_attributes``), from the same sources:
  starlette's path convertors, the last value of a query parameter (every value of
  a list), the JSON body;
- a request that does not validate, or that it does not handle (another content
  type, an empty body, a malformed query), goes to FastAPI, body included, so the
  422 and every other error reply is FastAPI's own;
- the call and the reply are the route's endpoint's (``warpcall.server.rest``):
  sync implementations in the thread pool, errors as JSON, ``HTTPException``
  answered by FastAPI's default handler.

It is off while the app has user middleware, custom exception handlers, a
``root_path``, and for a route that carries dependencies or is of a route class
of the user's (``APIRouter(route_class=...)``): those need FastAPI's stack.
"""

from __future__ import annotations

import copy
from functools import partial
from typing import Any, Callable
from urllib.parse import parse_qsl, unquote_to_bytes

from fastapi import FastAPI
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
    websocket_request_validation_exception_handler,
)
from pydantic import TypeAdapter
from pydantic_core import from_json
from starlette.exceptions import HTTPException
from starlette.routing import Route, WebSocketRoute
from starlette.types import Message, Receive, Scope, Send

from warpcall.observe import server as _observe
from warpcall.resilience.deadline import _current as _deadline
from warpcall.routes import RouteDescriptor
from warpcall.server.rest import Responder, WarpcallRoute, enter_request, raw_headers, scope_deadline

# pydantic-core's reader gives what FastAPI's json.loads gives wherever both read the body (integers of any
# size included: orjson reads those beyond 64 bits as floats, and int validation would then take a rounded
# value); whatever it refuses goes to FastAPI
json_loads: Callable[[bytes], Any] = from_json


_DEFAULT_HANDLERS = (http_exception_handler, request_validation_exception_handler,
                     websocket_request_validation_exception_handler)
_JSON = b"application/json"
_IMMUTABLE = (type(None), bool, int, float, str, bytes)


class _Missing(Exception):
    """A parameter is absent or not what the fast path handles: FastAPI answers the request."""


def _validator(tp: Any) -> Callable[[Any], Any]:
    return partial(TypeAdapter(tp).validate_python, from_attributes=True)


def _default(value: Any) -> Any:
    # FastAPI hands every call its own copy of a mutable default
    return value if type(value) in _IMMUTABLE else copy.deepcopy(value)


class FastRoute:
    """One warpcall route: its FastAPI route, how to read its parameters, and the reply (the endpoint's)."""

    __slots__ = ("api_route", "respond", "size", "path_params", "query_params", "body", "http_method", "static")

    def __init__(self, route: RouteDescriptor, api_route: Route, respond: Responder) -> None:
        self.api_route = api_route
        self.respond = respond
        self.http_method = route.http_method
        self.size = len(route.params)
        self.static = not api_route.param_convertors
        self.path_params = {p.name: (p.index, _validator(p.type)) for p in route.params if p.kind == "path"}
        self.query_params = tuple(
            (p.index, p.name, p.is_list, _validator(p.type), p.required, p.default)
            for p in route.params
            if p.kind == "query"
        )
        body = route.body
        self.body = None if body is None else (body.index, _validator(body.type))

    def arguments(
        self, scope: Scope, path_values: dict[str, Any], body: bytes | None, content_type: bytes = _JSON
    ) -> list[Any]:
        """The validated arguments, in declared order; ``_Missing`` or a ValidationError when FastAPI must answer.

        ``body`` is None for a route without one; a body must come as ``application/json``.
        """
        if body is not None and content_type != _JSON:
            raise _Missing("content-type")
        args: list[Any] = [None] * self.size
        for name, value in path_values.items():
            index, validate = self.path_params[name]
            args[index] = validate(value)
        if self.query_params:
            query = scope["query_string"]
            values: dict[str, list[str]] = {}
            if query:
                for key, value in _query_pairs(query):
                    values.setdefault(key, []).append(value)
            for index, name, is_list, validate, required, default in self.query_params:
                found = values.get(name)
                if not found:
                    if required:
                        raise _Missing(name)
                    args[index] = _default(default)
                else:
                    args[index] = validate(found if is_list else found[-1])
        if self.body is not None:
            if not body:
                raise _Missing("body")
            index, validate = self.body
            args[index] = validate(json_loads(body))
        return args


class RestFastPath:
    """Answers requests for warpcall's REST routes on ``app`` when it is sure FastAPI would answer the same."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.routes: dict[int, FastRoute] = {}  # id(api_route) -> its fast route
        self.served = 0  # requests answered here (tests read it)
        self._static: dict[tuple[str, str], FastRoute] = {}
        self._dynamic: list[tuple[FastRoute, bool]] = []  # in app order, with whether it may be answered here
        self._static_paths: set[str] = set()
        self._shape: tuple[int, int] = (-1, -1)
        self._enabled = False

    def add(self, route: RouteDescriptor, api_route: Route, respond: Responder) -> None:
        """Register a warpcall route that FastAPI serves as ``api_route``; ``respond(args)`` makes its reply."""
        self.routes[id(api_route)] = FastRoute(route, api_route, respond)
        self._shape = (-1, -1)

    def _refresh(self) -> None:
        app = self.app
        routes = app.router.routes
        self._shape = (len(routes), len(app.exception_handlers))
        self._static, self._dynamic, self._static_paths = {}, [], set()
        handlers_default = all(h in _DEFAULT_HANDLERS for h in app.exception_handlers.values())
        self._enabled = bool(self.routes) and handlers_default and not app.root_path
        if not self._enabled:
            return
        unknown_before = False  # a route whose matching is not a plain path pattern (Mount, Host, ...)
        others: list[str] = []  # the paths with parameters of earlier routes that are not warpcall's
        for position, candidate in enumerate(routes):
            if isinstance(candidate, WebSocketRoute):
                continue  # never matches an http request
            if not isinstance(candidate, Route):
                unknown_before = True
                continue
            if not candidate.param_convertors:
                self._static_paths.add(candidate.path)
            fast = self.routes.get(id(candidate))
            if fast is None:
                if candidate.param_convertors:
                    others.append(candidate.path)
                continue
            # a route class of the user's (router.route_class) may wrap every request: FastAPI must serve it
            plain = (
                not unknown_before
                and type(candidate) is WarpcallRoute
                and not getattr(candidate.dependant, "dependencies", True)
            )
            if fast.static:
                path, method = candidate.path, fast.http_method
                shadowed = any(
                    isinstance(earlier, Route)
                    and earlier.path_regex.match(path)
                    and (not earlier.methods or method in earlier.methods)
                    for earlier in routes[:position]
                )
                if plain and not shadowed:
                    self._static[(method, path)] = fast
            else:
                overlapped = any(_may_overlap(candidate.path, other) for other in others)
                self._dynamic.append((fast, plain and not overlapped))

    def handler(self, scope: Scope) -> tuple[FastRoute, dict[str, Any]] | None:
        """The warpcall route to answer ``scope`` with and its raw path values, or None: FastAPI answers."""
        app = self.app
        if self._shape != (len(app.router.routes), len(app.exception_handlers)):
            self._refresh()
        if not self._enabled or scope.get("root_path"):
            return None
        path, method = scope["path"], scope["method"]
        fast = self._static.get((method, path))
        if fast is not None:
            return fast, {}
        if path in self._static_paths:
            return None
        for fast, allowed in self._dynamic:
            match = fast.api_route.path_regex.match(path)
            if match is not None and method == fast.http_method:
                if not allowed:
                    return None
                convertors = fast.api_route.param_convertors
                return fast, {key: convertors[key].convert(value) for key, value in match.groupdict().items()}
        return None

    async def answer(
        self, fast: FastRoute, path_values: dict[str, Any], scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Answer the request on ``fast``, or hand it (with its body) to FastAPI when it does not validate."""
        body: bytes | None = None
        if fast.body is not None:
            body = await _read_body(receive)
            if body is None:  # the client went away while sending
                return
        try:
            args = fast.arguments(scope, path_values, body, _content_type(scope))
        except Exception:  # noqa: BLE001 - any doubt about the input: FastAPI validates and answers
            await self.app(scope, _replay(body, receive) if body is not None else receive, send)
            return
        self.served += 1
        payload: bytes | memoryview | None
        # this request's task: its scope and token for the implementation (400 for differing Authorization headers)
        at, refusal = scope_deadline(scope)
        refused = enter_request(scope)
        if refused is not None:
            refusal = refused
        if at is not None:
            _deadline.set(at)  # this request's task: the implementation (or the pool's job) sees it
        try:
            status, payload = reply = refusal if refusal is not None else await fast.respond(args)
        except HTTPException as exc:
            response = await http_exception_handler(None, exc)  # type: ignore[arg-type]
            status, headers, payload = response.status_code, response.raw_headers, response.body
        else:
            headers = raw_headers(reply, fast.respond.calls.retry_after)
        observation = _observe.current_observation.get()
        if observation is not None:  # observed (enter_request began it): the method, Server-Timing
            observation.method = fast.respond.qualified
            timing = _observe.rest_finish(observation, status)
            if timing is not None:
                headers = [*headers, timing]
        # what the endpoint's Response would send, as raw ASGI messages (these replies have no background task)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload or b""})


def _query_pairs(query: bytes) -> list[tuple[str, str]]:
    """What starlette's ``QueryParams`` reads: ``parse_qsl(..., keep_blank_values=True)`` of the latin-1 text."""
    if not query.isascii():
        return parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    # ASCII: the same pairs, unquoted the way parse_qsl unquotes an ASCII run, without its per-pair overhead
    pairs = []
    for part in query.decode("ascii").split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.append((_unquote(key), _unquote(value)))
    return pairs


def _unquote(text: str) -> str:
    if "+" in text:
        text = text.replace("+", " ")
    if "%" not in text:
        return text
    return unquote_to_bytes(text).decode("utf-8", "replace")


def _may_overlap(path: str, other: str) -> bool:
    """False only when no request path can match both patterns: a literal segment differs, or the counts do."""
    if ":path}" in path or ":path}" in other:
        return True  # a path convertor spans segments
    mine, theirs = path.split("/"), other.split("/")
    if len(mine) != len(theirs):
        return False
    return all(a == b or "{" in a or "{" in b for a, b in zip(mine, theirs))


def _content_type(scope: Scope) -> bytes:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == b"content-type":
            return value
    return b""


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that first gives back the body already read, then defers to the server's."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replay
