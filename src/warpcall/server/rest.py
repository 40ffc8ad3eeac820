"""REST routes: each ``@get``/``@post``/... method of an exposed service becomes a real FastAPI route.

The generated endpoint's signature carries every parameter annotated with
FastAPI's ``Path``/``Query``/``Body``, so FastAPI validates the input and the
OpenAPI document shows the parameters, the body schema, the response schema
and the declared metadata. The result is marshalled once, by warpcall's
marshaller, straight to JSON; FastAPI's response serialization is skipped.

Async implementations run on the event loop; sync ones where the server's
``SyncCalls`` policy says (as on ``/invoke``): in the thread pool, or on the
loop until a call is seen blocking. An implementation's exception becomes
``{"detail": message, "type": name}`` with the status it carries (warpcall's
protocol and authorization errors) or 500; ``fastapi.HTTPException`` passes
through untouched.

A request may carry its caller's deadline (``x-rpc-timeout``: the whole milliseconds left,
counted from when its head arrived). Work whose deadline has passed is not started: ``504``
with ``{"detail": ..., "type": "DeadlineExceeded"}``, also when it passed while the call waited
for a worker. A malformed value is refused with ``400`` (``MalformedRequestException``), as on
``/invoke``. The implementation runs with the deadline set
(``warpcall.resilience.deadline.remaining()``). A full queue of sync calls, and a queued one the server
refuses when it stops (never started), are answered ``503`` with ``Retry-After`` (``OverloadedException``).
"""

from __future__ import annotations

import email.message
import inspect
import json
import logging
import math
import operator
from collections.abc import Callable, Coroutine, MutableMapping
from time import monotonic
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Body, FastAPI, Path, Query, Request
from fastapi.datastructures import DefaultPlaceholder
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import FastAPIError, RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic_core import from_json, to_json
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from warpcall.core.marshal import plan_for
from warpcall.exceptions import (
    AuthorizationException,
    DeadlineExceeded,
    MalformedRequestException,
    MarshalException,
    OverloadedException,
    ServiceException,
)
from warpcall.observe import server as _observe
from warpcall.resilience.deadline import DEADLINE_HEADER_BYTES, parse_header
from warpcall.resilience.deadline import _current as _deadline
from warpcall.routes import RouteDescriptor, RouteParam, is_rest, non_finite, non_finite_check, routes_of
from warpcall.server.context import RESPONSES, cookie_lines, prepare_response, set_source
from warpcall.server.dispatch import ARRIVED, ServerMethod, SyncCalls
from warpcall.server.security import refusal, run_checks, set_token
from warpcall.server.workers import NotStarted, Refused
from warpcall.wire import JSON, status_of

if TYPE_CHECKING:
    from warpcall.server.rest_fast import RestFastPath

logger = logging.getLogger("warpcall.server")

_FASTAPI_PARAMS = {"path": Path, "query": Query, "body": Body}
_NO_CONTENT = (204, 304)
_JSON_BYTES = JSON.encode()

#: a route's reply: the status and the JSON body (None: no body, for 204 and 304)
Reply = tuple[int, "bytes | None"]


def error_reply(exc: BaseException, status: int | None = None) -> Reply:
    """The JSON error reply for ``exc``: the status of warpcall's protocol and authorization errors, else 500."""
    if status is None:
        status = status_of(exc)
    return status, to_json({"detail": str(exc), "type": type(exc).__name__})


class Headed(bytes):
    """A reply's JSON body carrying header lines its reply is sent with (``lines``, each ending in CRLF): a 401's
    ``WWW-Authenticate``, the ``Set-Cookie`` lines of ``ResponseContext``."""

    lines: bytes

    @staticmethod
    def of(payload: bytes, lines: bytes) -> bytes:
        """``payload`` carrying ``lines`` (``payload`` itself when there are none)."""
        if not lines:
            return payload
        headed = Headed(payload)
        headed.lines = (payload.lines + lines) if isinstance(payload, Headed) else lines
        return headed

    def pairs(self) -> list[tuple[bytes, bytes]]:
        """The header lines as (lower-case name, value) pairs."""
        found = []
        for line in self.lines.split(b"\r\n"):
            if line:
                name, _, value = line.partition(b": ")
                found.append((name.lower(), value))
        return found


def refused_reply(exc: BaseException) -> Reply:
    """401 (a token error, with its ``WWW-Authenticate`` line: see :class:`Headed`) or 403 for a call an
    authorization check refused."""
    status, reported, www_authenticate = refusal(exc)
    payload = error_reply(reported, status)[1] or b""
    if www_authenticate is not None:
        return status, Headed.of(payload, b"www-authenticate: " + www_authenticate + b"\r\n")
    return status, payload


def enter_request(scope: MutableMapping[str, Any]) -> Reply | None:
    """In a request's own context: its scope for ``RequestContext`` and its token for ``TokenContext``; a 400
    reply when it carries differing ``Authorization`` headers (one reading of the token on every path)."""
    authorization: bytes | None = None
    observed = False
    for name, value in scope["headers"]:
        if name == b"authorization":
            if authorization is not None and value != authorization:
                return error_reply(MalformedRequestException(
                    "the authorization header is sent more than once, with differing values"), 400)
            authorization = value
        elif name == b"traceparent" or name == b"tracestate" or name == b"x-rpc-timing":
            observed = True
    set_source(scope)
    if authorization:
        set_token(authorization)
    if observed or _observe.ALWAYS[0]:  # timings, trace context, span, metrics (warpcall.observe.server)
        _observe.rest_begin(_observe.observed_headers(scope["headers"]) if observed else None, scope)
    return None


def deadline_of(timeout: bytes, arrived: float) -> tuple[float | None, Reply | None]:
    """``(deadline, None)`` for an ``x-rpc-timeout`` value counted from ``arrived``, or ``(None, refusal)``:
    400 for a malformed value, 504 for a deadline already passed."""
    at = parse_header(timeout, arrived)
    if at is None:
        return None, error_reply(MalformedRequestException(
            f"x-rpc-timeout must be the whole milliseconds left, got {timeout[:40]!r}"), 400)
    if monotonic() >= at:
        return None, expired_reply()
    return at, None


def scope_deadline(scope: MutableMapping[str, Any]) -> tuple[float | None, Reply | None]:
    """:func:`deadline_of` the first ``x-rpc-timeout`` of an ASGI scope's headers (``(None, None)``: none)."""
    for name, value in scope["headers"]:
        if name == DEADLINE_HEADER_BYTES:
            return deadline_of(value or b"-", scope.get(ARRIVED) or monotonic())
    return None, None


def expired_reply() -> Reply:
    """504: the caller's deadline passed before the call could start; the implementation did not run."""
    return error_reply(DeadlineExceeded("not started: the caller's deadline had passed"), 504)


def overloaded_reply(exc: OverloadedException) -> Reply:
    """503 for a full queue of sync calls (the writers add ``Retry-After`` to every 503 of warpcall's routes)."""
    return error_reply(exc, 503)


def raw_headers(reply: Reply, retry_after: int = 1) -> list[tuple[bytes, bytes]]:
    """The headers ``as_response(reply)`` carries, for sending ``reply`` as raw ASGI messages (a 503 asks the
    caller to retry after ``retry_after`` seconds)."""
    status, payload = reply
    if payload is None:
        return []
    headers = [(b"content-length", b"%d" % len(payload)), (b"content-type", _JSON_BYTES)]
    if status == 503:
        headers.append((b"retry-after", b"%d" % retry_after))
    if type(payload) is Headed:
        headers += payload.pairs()
    return headers


def as_response(reply: Reply, retry_after: int = 1) -> Response:
    """The starlette ``Response`` of a ``(status, JSON payload or None)`` reply (see :func:`raw_headers`)."""
    status, payload = reply
    if payload is None:
        return Response(status_code=status)
    headers = {"retry-after": "%d" % retry_after} if status == 503 else None
    response = Response(payload, status_code=status, media_type=JSON, headers=headers)
    if type(payload) is Headed:
        response.raw_headers.extend(payload.pairs())
    return response


def _parameter(param: RouteParam) -> inspect.Parameter:
    options: dict[str, Any] = {}
    if param.description is not None:
        options["description"] = param.description
    if param.example is not None:
        options["examples"] = [param.example]
    # Annotated[param.type, ...] built from a value known at run time (a type checker reads the
    # subscript form as a static type expression)
    annotation = operator.getitem(Annotated, (param.type, _FASTAPI_PARAMS[param.kind](**options)))
    default = inspect.Parameter.empty if param.required else param.default
    # keyword-only: FastAPI passes keywords, and required ones may follow optional ones
    return inspect.Parameter(
        param.name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default
    )


class Responder:
    """A route's call and reply: ``await responder(args)`` runs the method with validated arguments and makes
    the JSON reply (``HTTPException`` passes through).

    :meth:`returned` and :meth:`raised` are the two halves after the call, for a caller that runs
    ``method`` itself (the server's inline protocol hands sync implementations to the thread pool
    with no coroutine in between).
    """

    __slots__ = ("method", "calls", "dump", "status", "empty", "qualified", "non_finite")

    def __init__(self, route: RouteDescriptor, method: ServerMethod, calls: SyncCalls) -> None:
        self.method = method
        self.calls = calls
        self.dump = plan_for(route.return_type).dump
        self.status = route.status_code
        self.empty = self.status in _NO_CONTENT
        self.qualified = method.descriptor.qualified
        #: the check for inf and nan, only where a result can hold a float
        self.non_finite = non_finite_check(route.return_type)

    async def __call__(self, args: list[Any]) -> Reply:
        method = self.method
        if method.checks:  # authorization, in the request's context (TokenContext set)
            refused = run_checks(method, args)
            if refused is not None:
                return refused_reply(refused)
        if RESPONSES[0]:  # cookies (ResponseContext): a holder the call's copies of this context share
            prepare_response()
        try:
            if method.offload and not method.is_async:
                try:
                    future = self.calls.pool.run(method.target, *args, lane=method)
                except OverloadedException as exc:  # the queue is full: refused, not run
                    return overloaded_reply(exc)
                value = await future
            else:
                # sync implementations run where the server's SyncCalls policy says, as on /invoke
                value = await method.call(args, self.calls)
        except HTTPException:
            raise
        except Exception as exc:
            return self.raised(exc)
        return self.returned(value)

    def returned(self, value: Any) -> Reply:
        """The reply to the implementation's result."""
        if self.empty:
            return self.status, None  # 204 and 304 carry no headers of the call's
        try:
            # the marshaller makes the primitive tree (and checks the type); pydantic-core writes the JSON
            dumped = self.dump(value)
            payload = to_json(dumped)
        except MarshalException as exc:  # the result does not fit the declared type: the server's fault
            return error_reply(MarshalException(f"{self.qualified}: {exc}"), 500)
        except ValueError as exc:  # pydantic-core cannot write it (a lone surrogate): the server's fault too
            return error_reply(MarshalException(f"{self.qualified}: its result cannot be written as JSON: {exc}"), 500)
        if self.non_finite and non_finite(self.non_finite, dumped, payload):
            # pydantic-core writes inf and nan as Infinity and NaN, which no JSON reader need accept
            return error_reply(MarshalException(
                f"{self.qualified}: its result holds a non-finite float (inf or nan), which JSON cannot carry"
            ), 500)
        if RESPONSES[0]:
            return self.status, Headed.of(payload, cookie_lines())
        return self.status, payload

    def raised(self, exc: Exception) -> Reply:
        """The reply to an exception the implementation raised (not ``HTTPException``: that one has its handler),
        or to the pool's :class:`NotStarted` (504) or :class:`Refused` (503 with ``Retry-After``, as for a full
        queue: the call was queued when the server stopped and never ran, so another instance may take it)."""
        if isinstance(exc, NotStarted):
            return expired_reply()
        if isinstance(exc, Refused):  # under its documented name, as /invoke answers it
            return overloaded_reply(OverloadedException(str(exc), self.calls.retry_after))
        if isinstance(exc, AuthorizationException):  # raised by the implementation or its advice: a refusal
            return refused_reply(exc)
        _observe.note_error(exc)
        logger.debug("%s raised", self.qualified, exc_info=True)
        status, payload = error_reply(exc)
        if RESPONSES[0] and payload is not None:
            return status, Headed.of(payload, cookie_lines())
        return status, payload


class ValidationReplyMixin:
    """Mixed into the route class of warpcall's routes: FastAPI's handling, except that a validation error
    FastAPI's default handler cannot write is still answered 422.

    The default handler echoes each bad input, and fails with a plain-text 500 when the input holds a
    float that is not finite (``NaN`` in a JSON body), a lone surrogate (``"\\ud800"``) or bytes that are
    not UTF-8 (a body sent as another content type). Only then does this answer, with the same reply
    made writable: the input shown as the caller sent it (``"NaN"``, ``"\\ud800"``, ``\\xff``). An app with
    its own handler for the error keeps it; the user's own routes are untouched (no app-wide handler,
    so the REST fast path stays on).

    A JSON body whose strings hold a lone surrogate escape is refused as FastAPI refuses invalid JSON
    (422, ``json_invalid``): FastAPI's reader takes it, and the text could reach the implementation,
    which could then not answer with it.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()  # type: ignore[misc]
        has_body = getattr(self, "body_field", None) is not None

        async def route_handler(request: Request) -> Response:
            try:
                response = await handle(request)
            except BaseException as exc:
                observation = _observe.current_observation.get()
                if observation is not None:  # an HTTPException (its handler answers) or a failure
                    observation.method = getattr(
                        getattr(self, "endpoint", None), "__warpcall_qualified__", _observe.UNKNOWN_METHOD
                    )
                    _observe.note_error(exc)
                    _observe.rest_finish(observation, getattr(exc, "status_code", 500))
                raise
            observation = _observe.current_observation.get()
            if observation is not None:  # observed (enter_request began it): the method, Server-Timing
                observation.method = getattr(
                    getattr(self, "endpoint", None), "__warpcall_qualified__", _observe.UNKNOWN_METHOD
                )
                timing = _observe.rest_finish(observation, response.status_code)
                if timing is not None:
                    response.headers.append(timing[0].decode(), timing[1].decode("latin-1"))
            return response

        async def handle(request: Request) -> Response:
            entered = enter_request(request.scope)  # this task's context: the endpoint sees scope and token
            if entered is not None:
                return as_response(entered)
            at, refusal = scope_deadline(request.scope)
            if refusal is not None:
                return as_response(refusal)
            if at is not None:
                _deadline.set(at)  # this request's task: the endpoint and the pool's job see it
            if has_body:
                # read once here, FastAPI reads the same cached bytes; the check costs a scan unless the
                # body has a \u escape
                try:
                    body = await request.body()
                except ClientDisconnect:
                    # the body did not all arrive: FastAPI's own reading meets the same end and answers
                    # its 400 to nobody, as on any route (issue 14, point 1)
                    body = b""
                if b"\\u" in body and _reads_json(self, request):
                    refused = _lone_surrogate(body)
                    if refused is not None:
                        return refused
            try:
                response: Response = await handler(request)
            except RequestValidationError as exc:
                handlers = request.scope.get("starlette.exception_handlers")
                if handlers is None or _handler_for(handlers[0], exc) is not request_validation_exception_handler:
                    raise
                try:
                    response = await request_validation_exception_handler(request, exc)
                except ValueError:  # a float out of range, or a Unicode{En,De}codeError
                    return JSONResponse({"detail": jsonable_encoder(_writable(exc.errors()))}, status_code=422)
            return response

        return route_handler


class WarpcallRoute(ValidationReplyMixin, APIRoute):
    """The route class of warpcall's routes on an app whose router uses FastAPI's own ``APIRoute``."""


_route_classes: dict[type, type[APIRoute]] = {APIRoute: WarpcallRoute}


def route_class(base: type[APIRoute]) -> type[APIRoute]:
    """The route class for warpcall's routes on a router of route class ``base`` (a user's class is kept)."""
    cls = _route_classes.get(base)
    if cls is None:
        cls = _route_classes[base] = type(f"Warpcall{base.__name__}", (ValidationReplyMixin, base), {})
    return cls


def _reads_json(route: Any, request: Request) -> bool:
    """Whether FastAPI reads the body of ``request`` as JSON (else it validates the raw bytes)."""
    value = request.headers.get("content-type")
    if not value:
        strict = route.strict_content_type
        return not (strict.value if isinstance(strict, DefaultPlaceholder) else strict)
    message = email.message.Message()
    message["content-type"] = value
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


def _lone_surrogate(body: bytes) -> Response | None:
    """FastAPI's invalid-JSON reply when ``body`` is JSON whose strings hold a lone surrogate (``"\\ud800"``),
    else None.

    FastAPI's ``json.loads`` reads such an escape into a str no UTF-8 writer takes: the call would run
    with text it cannot answer, or its 422 would fail. pydantic-core refuses it, as a 4xx.
    """
    try:
        from_json(body)
        return None  # pydantic-core takes no lone surrogate
    except ValueError:
        pass
    try:
        # what FastAPI reads, written back: only a lone surrogate fails to encode
        json.dumps(json.loads(body), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        lone = exc.object[exc.start:exc.end].encode("utf-8", "backslashreplace").decode("ascii")
        error = {"type": "json_invalid", "loc": ["body"], "msg": "JSON decode error", "input": {},
                 "ctx": {"error": f"lone surrogate {lone} in a \\u escape: not text"}}
        return JSONResponse({"detail": [error]}, status_code=422)
    except (ValueError, RecursionError):  # not JSON to FastAPI either: its own reply
        pass
    return None


def _handler_for(handlers: dict[Any, Any], exc: Exception) -> Any:
    # starlette's lookup: the handler of the nearest class in the exception's MRO
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None


def _writable(value: Any) -> Any:
    """``value`` with what JSON cannot carry spelled out: bytes decoded with escapes, surrogates escaped,
    non-finite floats as the tokens a caller sends (``NaN``, ``Infinity``, ``-Infinity``)."""
    if isinstance(value, dict):
        return {_writable(key): _writable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_writable(item) for item in value]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "backslashreplace")
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    return value


def make_endpoint(route: RouteDescriptor, respond: Responder) -> Callable[..., Any]:
    """The async endpoint FastAPI calls with the validated parameters; ``respond`` runs the method and answers."""
    names = tuple(p.name for p in route.params)

    async def endpoint(**values: Any) -> Response:
        return as_response(await respond([values[name] for name in names]), respond.calls.retry_after)

    endpoint.__warpcall_qualified__ = respond.qualified  # type: ignore[attr-defined]  # observed requests' label
    endpoint.__name__ = route.name
    endpoint.__qualname__ = f"{route.service_type.__name__}.{route.name}"
    endpoint.__doc__ = route.description
    endpoint.__signature__ = inspect.Signature([_parameter(p) for p in route.params])  # type: ignore[attr-defined]
    return endpoint


def _response_model(route: RouteDescriptor) -> Any:
    tp = route.return_type
    return None if tp is None or tp is type(None) or tp is Any or route.status_code in _NO_CONTENT else tp


def _method_doc(cls: type, name: str) -> str | None:
    """The docstring of the function ``cls`` has as method ``name``. Read on the class, not the instance:
    advice replaces the method on the instance with a wrapper object whose ``__doc__`` is its class's."""
    function = getattr(cls, name, None)
    doc = getattr(function, "__doc__", None) if inspect.isroutine(function) else None
    return inspect.cleandoc(doc) if isinstance(doc, str) and doc.strip() else None


def mount_routes(
    app: FastAPI,
    component: Any,
    service: Any,
    implementation: object,
    calls: SyncCalls | None = None,
    fast_path: RestFastPath | None = None,
) -> int:
    """Add every route of ``service`` (bound to ``implementation``) to ``app``; returns how many were added.

    Sync implementations always run in ``calls``' thread pool, as FastAPI runs ``def`` endpoints, async
    ones on the loop. Each route is also registered with ``fast_path``, which may answer its requests
    without FastAPI's per-request machinery. A service that declares no route adds nothing. A malformed
    declaration raises ServiceException.
    """
    calls = calls or SyncCalls("threadpool")
    if not is_rest(service.type):
        return 0
    routes = routes_of(service.type)
    methods = service.methods
    for name, route in routes.items():
        target = getattr(implementation, name)
        descriptor = methods[name]
        server_method = ServerMethod(descriptor, target, offload=True)
        respond = Responder(route, server_method, calls)
        description = route.description  # the declaration's description=, else its docstring
        if description is None:
            description = _method_doc(type(implementation), name)
        summary = route.summary
        if summary is None and description:
            summary = description.strip().splitlines()[0]
        try:
            app.router.add_api_route(
                route.path,
                make_endpoint(route, respond),
                methods=[route.http_method],
                name=descriptor.qualified,
                response_model=_response_model(route),
                status_code=route.status_code,
                summary=summary,
                description=description or "",
                tags=list(route.spec.tags) if route.spec.tags is not None else [service.type.__name__],
                response_description=route.spec.response_description,
                deprecated=route.spec.deprecated,
                route_class_override=route_class(app.router.route_class),
            )
        except FastAPIError as exc:
            raise ServiceException(
                f"{route.label}: FastAPI cannot serve {route.http_method} {route.path}: {exc}"
            ) from exc
        if fast_path is not None:
            api_route = app.router.routes[-1]
            if isinstance(api_route, APIRoute) and api_route.name == descriptor.qualified:
                fast_path.add(route, api_route, respond)
    return len(routes)
