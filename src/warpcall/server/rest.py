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
"""

from __future__ import annotations

import inspect
import logging
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Body, FastAPI, Path, Query
from fastapi.exceptions import FastAPIError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic_core import to_json
from starlette.exceptions import HTTPException

from warpcall.core.marshal import plan_for
from warpcall.exceptions import MarshalException, ServiceException
from warpcall.routes import RouteDescriptor, RouteParam, is_rest, routes_of
from warpcall.server.dispatch import ServerMethod, SyncCalls
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


def raw_headers(reply: Reply) -> list[tuple[bytes, bytes]]:
    """The headers ``as_response(reply)`` carries, for sending ``reply`` as raw ASGI messages."""
    status, payload = reply
    if payload is None:
        return []
    return [(b"content-length", b"%d" % len(payload)), (b"content-type", _JSON_BYTES)]


def as_response(reply: Reply) -> Response:
    """The starlette ``Response`` of a ``(status, JSON payload or None)`` reply."""
    status, payload = reply
    if payload is None:
        return Response(status_code=status)
    return Response(payload, status_code=status, media_type=JSON)


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

    __slots__ = ("method", "calls", "dump", "status", "empty", "qualified")

    def __init__(self, route: RouteDescriptor, method: ServerMethod, calls: SyncCalls) -> None:
        self.method = method
        self.calls = calls
        self.dump = plan_for(route.return_type).dump
        self.status = route.status_code
        self.empty = self.status in _NO_CONTENT
        self.qualified = method.descriptor.qualified

    async def __call__(self, args: list[Any]) -> Reply:
        try:
            # sync implementations run where the server's SyncCalls policy says, as on /invoke
            value = await self.method.call(args, self.calls)
        except HTTPException:
            raise
        except Exception as exc:
            return self.raised(exc)
        return self.returned(value)

    def returned(self, value: Any) -> Reply:
        """The reply to the implementation's result."""
        if self.empty:
            return self.status, None
        try:
            # the marshaller makes the primitive tree (and checks the type); pydantic-core writes the JSON
            return self.status, to_json(self.dump(value))
        except MarshalException as exc:  # the result does not fit the declared type: the server's fault
            return error_reply(exc, 500)

    def raised(self, exc: Exception) -> Reply:
        """The reply to an exception the implementation raised (not ``HTTPException``: that one has its handler)."""
        logger.debug("%s raised", self.qualified, exc_info=True)
        return error_reply(exc)


def make_endpoint(route: RouteDescriptor, respond: Responder) -> Callable[..., Any]:
    """The async endpoint FastAPI calls with the validated parameters; ``respond`` runs the method and answers."""
    names = tuple(p.name for p in route.params)

    async def endpoint(**values: Any) -> Response:
        return as_response(await respond([values[name] for name in names]))

    endpoint.__name__ = route.name
    endpoint.__qualname__ = f"{route.service_type.__name__}.{route.name}"
    endpoint.__doc__ = route.description
    endpoint.__signature__ = inspect.Signature([_parameter(p) for p in route.params])  # type: ignore[attr-defined]
    return endpoint


def _response_model(route: RouteDescriptor) -> Any:
    tp = route.return_type
    return None if tp is None or tp is type(None) or tp is Any or route.status_code in _NO_CONTENT else tp


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
        description = route.description
        if description is None:
            description = inspect.getdoc(target)
        summary = route.summary
        if summary is None and description:
            summary = description.strip().splitlines()[0]
        try:
            app.add_api_route(
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
