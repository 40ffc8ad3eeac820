"""REST declarations: ``@rest(prefix)`` on a service, ``@get``/``@post``/``@put``/``@delete``/``@patch`` on its methods.

Each declared method becomes one HTTP route. Its parameters are sorted once,
into a :class:`RouteDescriptor`:

- a parameter named in the path (``/orders/{id}``) is a path parameter; its
  value is one path segment, or several with ``{name:path}``;
- one marked ``Body(T)`` is the JSON body, ``QueryParam(T)`` a query parameter,
  ``PathParam(T)`` a path parameter (it must be named in the path);
- unmarked, on POST, PUT and PATCH, the first dataclass or pydantic parameter
  is the body; every other parameter is a query parameter. A list query
  parameter is repeated (``?tag=a&tag=b``) and defaults to ``[]``, since an
  empty list cannot be told from a missing one.

A malformed declaration (a path name with no parameter, two bodies, a body on
GET, a query parameter that is not a scalar or a list of scalars) raises a
ServiceException naming the method when the class is decorated, or, when its
type hints cannot be resolved yet, when the server or the channel starts.

The module is named ``routes`` because ``warpcall.rest`` is the decorator.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import inspect
import math
import re
import threading
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin
from uuid import UUID

from warpcall.core.marshal import type_name
from warpcall.core.marshal_plan import pydantic_base_model
from warpcall.core.proxy import service_methods
from warpcall.exceptions import ServiceException

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "Body",
    "BodyMarker",
    "ParamMarker",
    "PathParam",
    "PathParamMarker",
    "QueryParam",
    "QueryParamMarker",
    "RouteDescriptor",
    "RouteParam",
    "RouteSpec",
    "delete",
    "get",
    "may_hold_float",
    "non_finite",
    "non_finite_check",
    "non_finite_json",
    "patch",
    "post",
    "put",
    "rest",
    "routes_of",
]

_NO_DEFAULT: Any = ...
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SCALARS = (str, int, float, bool, datetime, date, time, UUID, Decimal)
_BODY_METHODS = ("POST", "PUT", "PATCH")


# ---------------------------------------------------------------- parameter markers


class ParamMarker:
    """Where a parameter travels, with its OpenAPI description, example and default (``...``: required)."""

    kind = ""

    def __init__(
        self, default: Any = _NO_DEFAULT, *, description: str | None = None, example: Any = None
    ) -> None:
        self.default = default
        self.description = description
        self.example = example

    @property
    def required(self) -> bool:
        return self.default is _NO_DEFAULT

    def __repr__(self) -> str:
        return f"{type(self).__name__}(description={self.description!r})"


class BodyMarker(ParamMarker):
    """Marks the parameter sent as the JSON body."""

    kind = "body"


class QueryParamMarker(ParamMarker):
    """Marks a parameter sent in the query string."""

    kind = "query"


class PathParamMarker(ParamMarker):
    """Marks a parameter sent as a path segment."""

    kind = "path"


def Body(
    t: type[T], *, description: str | None = None, example: Any = None, default: Any = _NO_DEFAULT
) -> Any:
    """Annotate a parameter as the JSON body of type ``t``: ``def add(self, item: Body(Item)) -> Item``."""
    return Annotated[t, BodyMarker(default, description=description, example=example)]


def QueryParam(
    t: type[T], *, description: str | None = None, example: Any = None, default: Any = _NO_DEFAULT
) -> Any:
    """Annotate a parameter as a query parameter of type ``t`` (a scalar or a list of scalars)."""
    return Annotated[t, QueryParamMarker(default, description=description, example=example)]


def PathParam(t: type[T], *, description: str | None = None, example: Any = None) -> Any:
    """Annotate a parameter as a path parameter of type ``t``; the path must name it: ``/items/{id}``."""
    return Annotated[t, PathParamMarker(description=description, example=example)]


# ---------------------------------------------------------------- decorators


@dataclass(frozen=True)
class RouteSpec:
    """What ``@get``/``@post``/... wrote on a method: the HTTP method, the path and the OpenAPI metadata."""

    http_method: str
    path: str
    summary: str | None = None
    description: str | None = None
    tags: tuple[str, ...] | None = None
    response_description: str = "Successful Response"
    deprecated: bool | None = None
    status_code: int | None = None


def rest(url: str = "") -> Callable[[type[T]], type[T]]:
    """Declare a service as REST: every ``@get``/``@post``/... method is a route under the prefix ``url``."""
    prefix = url  # aspyx-service's parameter name
    if not isinstance(prefix, str):
        raise ServiceException(f"@rest(prefix) takes the URL prefix as a string, got {prefix!r}")

    def decorate(cls: type[T]) -> type[T]:
        if not isinstance(cls, type):
            raise ServiceException(f"@rest('{prefix}') decorates a service class, got {cls!r}")
        cls.__warpcall_rest__ = prefix  # type: ignore[attr-defined]
        try:
            routes_of(cls)
        except UnresolvedHints:
            # a hint names a type defined later in the module: the server or the channel checks at startup
            pass
        return cls

    return decorate


def _route(http_method: str) -> Callable[..., Callable[[F], F]]:
    def declare(
        url: str,
        *,
        summary: str | None = None,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        response_description: str = "Successful Response",
        deprecated: bool | None = None,
        status_code: int | None = None,
    ) -> Callable[[F], F]:
        path = url  # aspyx-service's parameter name
        if not isinstance(path, str):
            raise ServiceException(
                f"@{http_method.lower()}(path) takes the route path as a string, got {path!r}"
            )
        spec = RouteSpec(
            http_method,
            path,
            summary,
            description,
            tuple(tags) if tags is not None else None,
            response_description,
            deprecated,
            status_code,
        )

        def decorate(func: F) -> F:
            if not inspect.isfunction(func):
                raise ServiceException(f"@{http_method.lower()}('{path}') decorates a method, got {func!r}")
            label = getattr(func, "__qualname__", func.__name__)
            if getattr(func, "__warpcall_route__", None) is not None:
                raise ServiceException(
                    f"{label} has two route decorators; declare one HTTP method per service method"
                )
            # what can be checked without type hints is checked now, at import
            _check_placeholders(label, spec, _parameter_names(label, func))
            func.__warpcall_route__ = spec  # type: ignore[attr-defined]
            return func

        return decorate

    declare.__name__ = http_method.lower()
    declare.__qualname__ = http_method.lower()
    declare.__doc__ = (
        f"Declare a service method as the HTTP {http_method} route ``url`` (a path under the @rest prefix)."
    )
    return declare


get = _route("GET")
post = _route("POST")
put = _route("PUT")
delete = _route("DELETE")
patch = _route("PATCH")


def _parameter_names(label: str, func: Callable[..., Any]) -> list[str]:
    parameters = list(inspect.signature(func).parameters.values())[1:]
    for parameter in parameters:
        if parameter.kind not in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.POSITIONAL_ONLY):
            raise ServiceException(
                f"{label}: parameter '{parameter.name}' is keyword-only or variadic; "
                "a REST method takes plain positional parameters"
            )
    return [parameter.name for parameter in parameters]


def _placeholders(label: str, spec: RouteSpec) -> list[str]:
    names = []
    for placeholder in _PLACEHOLDER.findall(spec.path):
        name, _, convertor = placeholder.partition(":")
        if _IDENTIFIER.fullmatch(name) is None or convertor not in ("", "str", "path"):
            raise ServiceException(
                f"{label}: path '{spec.path}' has placeholder {{{placeholder}}}; write {{name}} with a parameter's "
                "name, or {name:path} for a value that may contain '/'"
            )
        names.append(name)
    stripped = _PLACEHOLDER.sub("", spec.path)
    if "{" in stripped or "}" in stripped:
        raise ServiceException(f"{label}: path '{spec.path}' has an unbalanced brace")
    if len(set(names)) != len(names):
        raise ServiceException(f"{label}: path '{spec.path}' names a parameter twice")
    return names


def _check_placeholders(label: str, spec: RouteSpec, parameters: list[str]) -> None:
    for name in _placeholders(label, spec):
        if name not in parameters:
            raise ServiceException(
                f"{label}: path '{spec.path}' names {{{name}}} but the method has no parameter '{name}'; "
                f"its parameters are {parameters}"
            )


# ---------------------------------------------------------------- the route, computed once


class UnresolvedHints(ServiceException):
    """A route's type hints name a type that does not exist (yet); checked again at startup."""


@dataclass(frozen=True)
class RouteParam:
    """One parameter of a route: where it travels, its type (markers removed) and its default."""

    name: str
    index: int
    kind: str  # "path", "query" or "body"
    type: Any
    default: Any  # ``...`` when required
    description: str | None
    example: Any
    is_list: bool = False

    @property
    def required(self) -> bool:
        return self.default is _NO_DEFAULT


@dataclass(frozen=True)
class RouteDescriptor:
    """Per service method: the HTTP route it is, with its parameters sorted by where they travel (built once)."""

    service_type: type
    name: str
    func: Callable[..., Any]
    spec: RouteSpec
    path: str
    params: tuple[RouteParam, ...]
    return_type: Any

    @property
    def http_method(self) -> str:
        return self.spec.http_method

    @property
    def label(self) -> str:
        return f"{self.service_type.__name__}.{self.name}"

    @property
    def body(self) -> RouteParam | None:
        """The body parameter, if any."""
        return next((p for p in self.params if p.kind == "body"), None)

    @property
    def status_code(self) -> int:
        """The status of a successful reply: the declared one, else 200."""
        return self.spec.status_code or 200

    @property
    def summary(self) -> str | None:
        """The declared summary, else the first line of the docstring."""
        if self.spec.summary is not None:
            return self.spec.summary
        doc = inspect.getdoc(self.func)
        return doc.strip().splitlines()[0] if doc else None

    @property
    def description(self) -> str | None:
        """The declared description, else the docstring."""
        return self.spec.description if self.spec.description is not None else inspect.getdoc(self.func)


def is_model(tp: Any) -> bool:
    """True for a dataclass or pydantic model class: the kind of parameter that is a body when unmarked."""
    if not isinstance(tp, type):
        return False
    base_model = pydantic_base_model()  # None until pydantic defines it: then no class is a model
    return dataclasses.is_dataclass(tp) or (base_model is not None and issubclass(tp, base_model))


def _is_scalar(tp: Any) -> bool:
    if isinstance(tp, type):
        return issubclass(tp, _SCALARS) or issubclass(tp, Enum)
    origin = get_origin(tp)
    if origin is Literal:
        return True
    if origin is Union or origin is types.UnionType:
        return all(arg is type(None) or _is_scalar(arg) for arg in get_args(tp))
    return False


def _list_item(tp: Any) -> Any:
    """The item type when ``tp`` is a list/set/tuple/sequence of one type (optionally Optional), else None."""
    args = get_args(tp)
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        members = [arg for arg in args if arg is not type(None)]
        return _list_item(members[0]) if len(members) == 1 else None
    if origin in (list, set, frozenset, collections.abc.Sequence) or (
        origin is tuple and len(args) == 2 and args[1] is Ellipsis
    ):
        return args[0] if args else None
    return None


def _split(hint: Any) -> tuple[Any, ParamMarker | None]:
    if get_origin(hint) is Annotated:
        args = get_args(hint)
        markers = [meta for meta in args[1:] if isinstance(meta, ParamMarker)]
        return args[0], markers[-1] if markers else None
    return hint, None


def _build(
    service_type: type, name: str, func: Callable[..., Any], spec: RouteSpec, prefix: str
) -> RouteDescriptor:
    label = f"{service_type.__name__}.{name}"
    names = _parameter_names(label, func)
    placeholders = _placeholders(label, spec)
    _check_placeholders(label, spec, names)
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except NameError as exc:
        raise UnresolvedHints(f"{label}: cannot resolve its type hints yet: {exc}") from exc
    except Exception as exc:
        raise ServiceException(f"{label}: cannot resolve its type hints: {exc}") from exc
    defaults = {p.name: p.default for p in list(inspect.signature(func).parameters.values())[1:]}
    params: list[RouteParam] = []
    unmarked: list[tuple[int, str, Any]] = []
    for index, param_name in enumerate(names):
        tp, marker = _split(hints.get(param_name, Any))
        default = defaults[param_name]
        if marker is not None and not marker.required:
            default = marker.default
        default = _NO_DEFAULT if default is inspect.Parameter.empty else default
        description = marker.description if marker else None
        example = marker.example if marker else None
        if param_name in placeholders:
            if marker is not None and marker.kind != "path":
                raise ServiceException(
                    f"{label}: parameter '{param_name}' is named in the path '{spec.path}' "
                    f"but marked {type(marker).__name__}; rename it or drop the placeholder"
                )
            kind = "path"
        elif marker is not None and marker.kind == "path":
            raise ServiceException(
                f"{label}: parameter '{param_name}' is a PathParam but the path '{spec.path}' has no "
                f"{{{param_name}}}; add it to the path"
            )
        elif marker is not None:
            kind = marker.kind
        else:
            unmarked.append((index, param_name, tp))
            kind = ""
        params.append(RouteParam(param_name, index, kind, tp, default, description, example))
    if not any(p.kind == "body" for p in params) and spec.http_method in _BODY_METHODS:
        for index, _, tp in unmarked:
            if is_model(tp):
                params[index] = dataclasses.replace(params[index], kind="body")
                break
    for index, param in enumerate(params):
        if param.kind == "":
            params[index] = param = dataclasses.replace(param, kind="query")
        params[index] = _checked(label, spec, param)
    bodies = [p.name for p in params if p.kind == "body"]
    if len(bodies) > 1:
        raise ServiceException(
            f"{label}: {len(bodies)} parameters are bodies ({bodies}); a request carries one body"
        )
    if bodies and spec.http_method == "GET":
        raise ServiceException(
            f"{label}: a GET request carries no body, but '{bodies[0]}' is one; use @post, or QueryParam(...) scalars"
        )
    path = join_path(prefix, spec.path)
    return RouteDescriptor(service_type, name, func, spec, path, tuple(params), hints.get("return", Any))


def join_path(prefix: str, path: str) -> str:
    """``prefix`` and ``path`` joined by one '/'; a trailing '/' of ``path`` stays (FastAPI tells them apart)."""
    joined = "/" + "/".join(part for part in (prefix.strip("/"), path.strip("/")) if part)
    return joined + "/" if path.endswith("/") and joined != "/" else joined


def _checked(label: str, spec: RouteSpec, param: RouteParam) -> RouteParam:
    if param.kind == "body":
        return param
    if param.type is Any or _is_scalar(param.type):
        return param
    item = _list_item(param.type)
    if param.kind == "query" and item is not None and _is_scalar(item):
        # an empty list leaves no trace in a query string, so a list parameter is never required
        default = [] if param.required else param.default
        return dataclasses.replace(param, is_list=True, default=default)
    if param.kind == "path":
        raise ServiceException(
            f"{label}: path parameter '{param.name}' has type {type_name(param.type)}; "
            "a path segment carries a scalar (str, int, float, bool, enum, date/time, UUID, Decimal)"
        )
    hint = " on GET/DELETE; use @post/@put/@patch or mark it Body(...)" if is_model(param.type) else ""
    raise ServiceException(
        f"{label}: parameter '{param.name}' of type {type_name(param.type)} cannot be a query "
        f"parameter{hint}; a query parameter is a scalar or a list of scalars"
    )


_lock = threading.RLock()
_routes: dict[type, dict[str, RouteDescriptor]] = {}


def is_rest(service_type: type) -> bool:
    """True when the service is ``@rest``-declared or has a method with a route decorator."""
    if getattr(service_type, "__warpcall_rest__", None) is not None:
        return True
    return any(
        getattr(method.func, "__warpcall_route__", None) is not None
        for method in service_methods(service_type).values()
    )


def routes_of(service_type: type) -> dict[str, RouteDescriptor]:
    """The routes of a service by method name (built once; also cached as ``method.plans['rest']``).

    Raises ServiceException naming the method when a declaration is malformed.
    """
    routes = _routes.get(service_type)
    if routes is not None:
        return routes
    with _lock:
        routes = _routes.get(service_type)
        if routes is None:
            prefix = getattr(service_type, "__warpcall_rest__", "") or ""
            methods = service_methods(service_type)
            built: dict[str, RouteDescriptor] = {}
            for name, method in methods.items():
                spec = getattr(method.func, "__warpcall_route__", None)
                if spec is not None:
                    built[name] = _build(service_type, name, method.func, spec, prefix)
            seen: dict[tuple[str, str], str] = {}
            for route in built.values():
                key = (route.http_method, _PLACEHOLDER.sub("{}", route.path))
                if key in seen:
                    raise ServiceException(
                        f"{route.label} and {service_type.__name__}.{seen[key]} both declare "
                        f"{route.http_method} {route.path}; give each its own path"
                    )
                seen[key] = route.name
            for name, route in built.items():
                methods[name].plans["rest"] = route
            routes = _routes[service_type] = built
    return routes


# ---------------------------------------------------------------- non-finite floats in JSON

# types whose values never hold a float (their subclasses neither: bool and IntEnum are ints)
_FLOATLESS = (str, bytes, int, type(None), datetime, date, time, UUID, Decimal)  # Decimal dumps as a string


def may_hold_float(tp: Any, _seen: frozenset[Any] = frozenset()) -> bool:
    """False only when no value of ``tp`` can hold a float, so the JSON made of it never holds inf or nan.

    Conservative: a type it does not know (``Any``, ``object``, a bare ``list``, a custom class) may hold one.
    Decided once per route, so the JSON writer checks its output only where a float can be in it.
    """
    if tp in _seen:
        return False  # a recursive type: its other members decide
    seen = _seen | {tp}
    if tp is None:
        return False
    if isinstance(tp, type) and issubclass(tp, Enum):
        return any(may_hold_float(type(member.value), seen) for member in tp)
    if isinstance(tp, type) and issubclass(tp, _FLOATLESS) and not issubclass(tp, float):
        return False
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is Annotated:
        return may_hold_float(args[0], seen)
    if origin is Literal:
        return any(isinstance(arg, float) for arg in args)
    if origin is Union or origin is types.UnionType:
        return any(may_hold_float(arg, seen) for arg in args)
    if origin in (list, set, frozenset, tuple, dict, collections.abc.Sequence, collections.abc.Mapping,
                  collections.abc.Set, collections.abc.Collection, collections.abc.Iterable):
        return not args or any(arg is not Ellipsis and may_hold_float(arg, seen) for arg in args)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        try:
            hints = typing.get_type_hints(tp)
        except Exception:  # noqa: BLE001 - unresolvable: assume the worst
            return True
        return any(may_hold_float(hints.get(f.name, Any), seen) for f in dataclasses.fields(tp))
    base_model = pydantic_base_model()
    if base_model is not None and isinstance(tp, type) and issubclass(tp, base_model):
        return any(may_hold_float(field.annotation, seen) for field in tp.model_fields.values())
    return True


#: what :func:`non_finite_check` says: no float can be in the value, a float or None, floats deeper in it
NO_FLOAT, A_NUMBER, A_TREE = 0, 1, 2


def non_finite_check(tp: Any) -> int:
    """How a value of ``tp`` is checked for inf and nan before it is sent as JSON.

    ``NO_FLOAT``: never (no float can be in it); ``A_NUMBER``: the dumped value itself (a float or an
    optional one); ``A_TREE``: a scan of its JSON, :func:`non_finite_json` (about 2,500 instructions on
    a small reply, only for types that may hold a float deeper).
    """
    if not may_hold_float(tp):
        return NO_FLOAT
    if tp is float or (get_origin(tp) in (Union, types.UnionType) and set(get_args(tp)) == {float, type(None)}):
        return A_NUMBER
    return A_TREE


def non_finite(kind: int, dumped: Any, payload: bytes) -> bool:
    """True when ``dumped`` (written as ``payload``) holds inf or nan, by the check ``kind`` names."""
    if kind == A_NUMBER:
        # the plans may hand a non-finite float as a subclass of float (the dispatch codecs' marker)
        return isinstance(dumped, float) and not math.isfinite(dumped)
    return non_finite_json(payload)


def non_finite_json(payload: bytes) -> bool:
    """True when ``payload`` (JSON as pydantic-core writes it) holds ``NaN`` or ``Infinity``, which JSON has not.

    Those tokens can otherwise only be inside strings: the scan is cheap and a strict parse decides.
    """
    if payload.find(b"NaN") < 0 and payload.find(b"Infinity") < 0:
        return False
    from pydantic_core import from_json  # loaded already by whoever wrote the payload

    try:
        from_json(payload, allow_inf_nan=False)
    except ValueError:
        return True
    return False
