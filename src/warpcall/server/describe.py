"""``GET /warpcall/services``: what a server serves, for tools (``warpcall services``, ``warpcall call``).

The registry knows components and their addresses; only the server knows the signatures. This
read-only route describes each hosted component: its addresses, health path, services and, per
method, the parameters (name, type, default, JSON schema), the result type and the REST route
if it has one. It shows exactly what the caller could call:

- only what ``/invoke`` serves, so the ``expose`` allow-list holds (an unexposed method is absent);
- only the methods whose authorization checks pass for the request's token, run as ``/invoke``
  runs them (with no arguments: a check that reads the arguments sees none). When checks hide
  every method and one of them was a token refusal, the answer is ``401`` with the challenge
  ``/invoke`` gives, so a client knows a token is wanted.

The route is a plain Starlette route after ``/invoke`` and the REST routes: the call path never
reaches it, and the description is built on its first request, then only filtered per request.
"""

from __future__ import annotations

import contextvars
import inspect
import json
import types
import typing
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from warpcall.exceptions import TokenException

__all__ = ["DESCRIBE_PATH", "describe", "mount_description", "type_name"]

#: where a server describes its services
DESCRIBE_PATH = "/warpcall/services"


def type_name(tp: Any) -> str:
    """A type as a reader writes it: ``int``, ``list[Point]``, ``str | None``; ``Any`` for a missing hint."""
    if tp is inspect.Parameter.empty or tp is Any:
        return "Any"
    if tp is None or tp is type(None):
        return "None"
    if tp is Ellipsis:
        return "..."
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(type_name(arg) for arg in args)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is typing.Literal:
        return f"Literal[{', '.join(repr(arg) for arg in args)}]"
    if origin is not None:
        name = getattr(origin, "__qualname__", None) or str(origin).replace("typing.", "")
        return f"{name}[{', '.join(type_name(arg) for arg in args)}]" if args else name
    if isinstance(tp, type):
        return tp.__qualname__
    return str(tp).replace("typing.", "")


def _schema(tp: Any) -> Any:
    """The JSON schema of values of ``tp`` (pydantic's), None when pydantic cannot make one."""
    try:
        from pydantic import TypeAdapter

        return TypeAdapter(tp).json_schema()
    except Exception:  # noqa: BLE001 - a type pydantic cannot describe: the type's name still says it
        return None


def _default(tp: Any, value: Any) -> dict[str, Any]:
    """A parameter's default: ``{"default": <as JSON carries it>}``, or ``{"default_repr": ...}`` when JSON cannot."""
    try:
        from warpcall.core.marshal import plan_for

        dumped = plan_for(tp).dump(value)
        json.dumps(dumped, allow_nan=False)
        return {"default": dumped}
    except Exception:  # noqa: BLE001 - a default no format carries: shown, never sent
        return {"default_repr": repr(value)}


def _method_entry(method: Any, route: Any) -> dict[str, Any]:
    descriptor = method.descriptor
    parameters = list(descriptor.signature.parameters.values())[1:]
    types = descriptor.param_types
    params = []
    for index, parameter in enumerate(parameters):
        tp = types[index] if index < len(types) else Any
        entry: dict[str, Any] = {
            "name": parameter.name,
            "type": type_name(tp),
            "required": parameter.default is inspect.Parameter.empty,
        }
        if parameter.default is not inspect.Parameter.empty:
            entry.update(_default(tp, parameter.default))
        entry["schema"] = _schema(tp)
        params.append(entry)
    doc = inspect.getdoc(descriptor.func)
    rest = None
    if route is not None:
        rest = {
            "method": route.http_method,
            "path": route.path,
            "parameters": {param.name: param.kind for param in route.params},
        }
    return {
        "name": descriptor.name,
        "qualified": descriptor.qualified,
        "async": bool(descriptor.is_async),
        "parameters": params,
        "returns": type_name(descriptor.return_type),
        "returns_schema": _schema(descriptor.return_type),
        "doc": doc.strip().splitlines()[0] if doc else "",
        "rest": rest,
    }


def describe(server: Any) -> list[dict[str, Any]]:
    """Every hosted component as served by ``server`` (a ``FastAPIServer``), each method with its ``ServerMethod``
    under the key ``"_method"`` (taken out per request, once the caller's checks are run)."""
    from warpcall.routes import is_rest, routes_of

    served = server.endpoint.methods  # what /invoke serves: the expose allow-list is applied to it
    components = []
    for hosted in server.service_manager.hosted_components():
        component = hosted.descriptor
        services = []
        for service in component.services:
            routes = routes_of(service.type) if is_rest(service.type) else {}
            methods = []
            for name, descriptor in service.methods.items():
                method = served.get(descriptor.qualified)
                if method is None:
                    continue
                methods.append({**_method_entry(method, routes.get(name)), "_method": method})
            if methods:
                services.append({
                    "name": service.name,
                    "type": f"{service.type.__module__}.{service.type.__qualname__}",
                    "description": service.description or "",
                    "methods": methods,
                })
        if services:
            components.append({
                "name": component.name,
                "health": hosted.health or "",
                "addresses": [{"channel": a.channel, "url": a.uri} for a in hosted.addresses],
                "services": services,
            })
    return components


def _visible(components: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], BaseException | None, bool]:
    """The components with only the methods the current token may call, the first token refusal seen, and
    whether any method was left out."""
    from warpcall.server.security import run_checks

    refused: BaseException | None = None
    hidden = False
    shown = []
    for component in components:
        services = []
        for service in component["services"]:
            methods = []
            for entry in service["methods"]:
                method = entry["_method"]
                failure = run_checks(method, ()) if method.checks else None
                if failure is None:
                    methods.append({key: value for key, value in entry.items() if key != "_method"})
                    continue
                hidden = True
                if refused is None and isinstance(failure, TokenException):
                    refused = failure
            if methods:
                services.append({**service, "methods": methods})
        if services:
            shown.append({**component, "services": services})
    return shown, refused, hidden


def mount_description(server: Any) -> None:
    """Add ``GET /warpcall/services`` to ``server``'s app (after ``/invoke`` and its REST routes)."""
    from warpcall.server.security import refusal, set_token

    cache: list[list[dict[str, Any]]] = []

    async def endpoint(request: Request) -> Response:
        if not cache:
            cache.append(describe(server))
        authorization = request.headers.get("authorization")

        def filtered() -> tuple[list[dict[str, Any]], BaseException | None, bool]:
            if authorization is not None:
                set_token(authorization.encode("latin-1"))
            return _visible(cache[0])

        # in a copy of the context: the token and the claims a check sets stay with this request
        components, refused, restricted = contextvars.copy_context().run(filtered)
        if not components and refused is not None:
            status, reported, challenge = refusal(refused)
            headers = {"www-authenticate": challenge.decode("latin-1")} if challenge is not None else None
            body = {"result": None, "exception": {"type": type(reported).__name__, "message": str(reported)}}
            return JSONResponse(body, status_code=status, headers=headers)
        # "restricted": the token may not call everything this server serves (which, it does not say)
        return JSONResponse({"server": server.url, "components": components, "restricted": restricted})

    server.fast_api.router.routes.append(Route(DESCRIBE_PATH, endpoint, methods=["GET"], include_in_schema=False))
