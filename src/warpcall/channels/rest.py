"""The ``rest`` channel: one HTTP route per method, built from ``@rest``/``@get``/``@post``/... declarations.

A call formats the path (each path value percent-escaped), appends the query
string, sends the body as JSON made by the marshaller, and loads the JSON reply
into the declared return type. Replies map to the same exceptions as on the
dispatch channels: a 4xx raises the caller-side type the server names (or the
one its status means), a 5xx raises RemoteServiceException, a failed wire
raises ServiceCommunicationException.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from warpcall.channels.base import channel
from warpcall.channels.dispatch import positional_args
from warpcall.channels.http import (
    AnsweredBy,
    HTTPXChannel,
    _profile_everywhere,
    _profile_here,
    _trace_context,
    auth_exception,
)
from warpcall.core.marshal import plan_for
from warpcall.exceptions import (
    MarshalException,
    OverloadedException,
    RemoteServiceException,
    ServiceCommunicationException,
    ServiceException,
    UnknownMethodException,
)
from warpcall.wire import CALLER_ERRORS, JSON, REFUSALS, STATUS_ERRORS

if TYPE_CHECKING:
    from warpcall.routes import RouteDescriptor

#: 5xx statuses that say the server was not reached or not ready, rather than that the call failed there
UNREACHABLE = (502, 503, 504)


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
#: str.translate tables escaping ASCII exactly as ``quote(..., safe="")`` and ``quote(..., safe="/")`` do
_ESCAPE = {c: f"%{c:02X}" for c in range(128) if chr(c) not in _UNRESERVED}
_ESCAPE_KEEP_SLASH = {c: e for c, e in _ESCAPE.items() if c != ord("/")}


def escape(value: str, keep_slash: bool = False) -> str:
    """``urllib.parse.quote(value, safe="" or "/")``; ASCII text through a translate table, in C."""
    if value.isascii():
        return value.translate(_ESCAPE_KEEP_SLASH if keep_slash else _ESCAPE)
    return quote(value, safe="/" if keep_slash else "")


def text(value: Any) -> str:
    """A dumped scalar as it appears in a URL: JSON spelling for booleans and None, str() otherwise."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


class RestCallPlan:
    """Per method: how a call becomes a request and a reply becomes a result (built on the first call)."""

    __slots__ = (
        "body_floats",
        "body_index",
        "dump_body",
        "from_json",
        "headers",
        "http_method",
        "load_result",
        "names",
        "non_finite",
        "path_params",
        "qualified",
        "query_params",
        "segments",
        "to_json",
    )

    def __init__(self, method: Any, route: RouteDescriptor) -> None:
        self.qualified: str = method.qualified
        self.http_method = route.http_method
        self.names = tuple(p.name for p in route.params)
        # the path split at its placeholders: literal, value, literal, value, ..., literal
        positions = {p.name: p.index for p in route.params if p.kind == "path"}
        self.segments: list[str] = []
        self.path_params: list[tuple[int, Callable[[Any], Any], bool]] = []  # index, dump, '/' allowed
        rest = route.path
        while "{" in rest:
            head, _, tail = rest.partition("{")
            placeholder, _, rest = tail.partition("}")
            name, _, convertor = placeholder.partition(":")
            self.segments.append(head)
            param = route.params[positions[name]]
            # {name} is one segment: a '/' in it would never reach the route, so it is refused before sending
            self.path_params.append(
                (param.index, plan_for(param.type).dump, convertor == "path")
            )
        self.segments.append(rest)
        self.query_params = tuple(
            (quote(p.name, safe="") + "=", p.index, p.is_list, plan_for(p.type).dump)
            for p in route.params
            if p.kind == "query"
        )
        body = route.body
        self.body_index = -1 if body is None else body.index
        self.dump_body: Callable[[Any], Any] | None = None if body is None else plan_for(body.type).dump
        # loaded already: the channel's setup read the routes
        from warpcall.routes import non_finite, non_finite_check

        #: how the body is checked for inf and nan (0: it cannot hold a float)
        self.body_floats = 0 if body is None else non_finite_check(body.type)
        self.non_finite = non_finite
        self.load_result = plan_for(route.return_type).load
        self.headers = [("content-type", JSON)] if body is not None else []
        # pydantic-core reads and writes the JSON; imported by the first call, not by the environment that
        # registers this channel (a process calling only over dispatch channels never loads it)
        from pydantic_core import from_json, to_json

        self.to_json: Callable[[Any], bytes] = to_json
        self.from_json: Callable[[bytes], Any] = from_json

    @classmethod
    def of(cls, method: Any) -> RestCallPlan:
        """The cached plan of a method descriptor; ServiceException when the method is not a route."""
        plan: RestCallPlan | None = method.plans.get("rest-call")
        if plan is None:
            route = method.plans.get("rest")
            if route is None:
                raise ServiceException(
                    f"{method.qualified} has no @get/@post/@put/@delete/@patch declaration; "
                    "the rest channel cannot call it (use a dispatch channel, or declare its route)"
                )
            plan = method.plans["rest-call"] = cls(method, route)
        return plan

    def target(self, args: tuple[Any, ...]) -> tuple[str, bytes]:
        """The path with query string, and the body, for one call; MarshalException naming the argument."""
        index = -1
        try:
            segments = self.segments
            if len(segments) == 1:
                path = segments[0]
            else:
                parts = [segments[0]]
                for (index, dump, slashes), literal in zip(self.path_params, segments[1:]):
                    value = dump(args[index])
                    if value is None:
                        raise MarshalException("a path parameter cannot be None")
                    value = text(value)
                    if slashes:
                        parts.append(escape(value, keep_slash=True))
                    elif "/" in value or not value:
                        raise MarshalException(
                            f"{value!r} cannot be a path segment (empty, or contains '/'); declare the "
                            f"placeholder as {{{self.names[index]}:path}} for values with '/'"
                        )
                    else:
                        parts.append(escape(value))
                    parts.append(literal)
                path = "".join(parts)
            if self.query_params:
                query: list[str] = []
                for key, index, is_list, dump in self.query_params:
                    value = dump(args[index])
                    if value is None:
                        continue
                    if is_list:
                        query.extend(key + escape(text(item)) for item in value if item is not None)
                    else:
                        query.append(key + escape(text(value)))
                if query:
                    path = path + "?" + "&".join(query)
            index = self.body_index
            dump_body = self.dump_body  # None exactly when there is no body (index < 0)
            # the marshaller makes the primitive tree (and checks the type); pydantic-core writes the JSON
            dumped = None if dump_body is None else dump_body(args[index])
            body = b"" if dump_body is None else self.to_json(dumped)
        except (MarshalException, ValueError) as exc:  # ValueError: a lone surrogate, in the URL or the JSON
            name = self.names[index] if 0 <= index < len(self.names) else "?"
            raise MarshalException(f"{self.qualified}: argument '{name}': {exc}") from None
        if self.body_floats and self.non_finite(self.body_floats, dumped, body):
            # pydantic-core writes inf and nan as Infinity and NaN, which is not JSON: refused before sending
            raise MarshalException(
                f"{self.qualified}: argument '{self.names[index]}' holds a non-finite float (inf or nan), "
                "which a JSON body cannot carry"
            )
        return path, body

    def result(self, url: str, status: int, content: bytes, headers: list[tuple[str, str]] | None = None) -> Any:
        """The call's result from the reply, or the exception the reply means (``headers``: the reply's)."""
        if 200 <= status < 300:
            if not content:
                return self.load_result(None)
            try:
                data = self.from_json(content)
            except ValueError:
                raise ServiceCommunicationException(
                    f"{url} answered {self.qualified} with a body that is not JSON: {_excerpt(content)}"
                ) from None
            return self.load_result(data)
        raise self.error(url, status, content, headers)

    def error(
        self, url: str, status: int, content: bytes, headers: list[tuple[str, str]] | None = None
    ) -> ServiceException:
        """The exception an error reply means for the caller."""
        kind, message = _error_body(content)
        refused = REFUSALS.get((status, kind))
        if refused is not None:  # not started there: 504 past the deadline, 503 with a full queue or draining
            text = f"{url} did not run {self.qualified} (HTTP {status}): {message}"
            if refused is OverloadedException:
                return OverloadedException(text, _retry_after(headers or []))
            return refused(text)
        if status < 400:
            return ServiceException(
                f"{url} answered {self.qualified} with HTTP {status} (the rest channel follows no "
                f"redirects; check the route's path): {message}"
            )
        if status == 401 or status == 403:
            return auth_exception(status, headers or [], f"{url} rejected {self.qualified} (HTTP {status}): {message}", kind)
        if 400 <= status < 500:
            error = CALLER_ERRORS.get(kind) or STATUS_ERRORS.get(status)
            if error is None:
                error = (
                    UnknownMethodException
                    if status in (404, 405) and message in _ROUTE_MISSES
                    else ServiceException
                )
            return error(f"{url} rejected {self.qualified} (HTTP {status}): {message}")
        if status in UNREACHABLE and not kind:
            return ServiceCommunicationException(
                f"{url} answered {self.qualified} with HTTP {status}: {message}"
            )
        return RemoteServiceException(
            f"{self.qualified} raised {kind or f'HTTP {status}'} at {url}: {message}",
            remote_type=kind,
            remote_message=message,
        )


_ROUTE_MISSES = ("Not Found", "Method Not Allowed")


def _retry_after(headers: list[tuple[str, str]]) -> float | None:
    for name, value in headers:
        if name.lower() == "retry-after":
            return float(value) if value.isdigit() else None
    return None


def _excerpt(content: bytes) -> str:
    return content[:200].decode("utf-8", "replace")


def _error_body(content: bytes) -> tuple[str, str]:
    """``(type, message)`` from an error reply: warpcall's ``{"detail", "type"}`` or FastAPI's ``{"detail"}``."""
    from pydantic_core import from_json  # loaded already: the call's plan imported it

    try:
        data = from_json(content)
    except ValueError:
        return "", _excerpt(content)
    if not isinstance(data, dict):
        return "", _excerpt(content)
    detail = data.get("detail", data)
    if isinstance(detail, list):  # FastAPI's validation errors: where and what
        message = "; ".join(_validation_error(item) for item in detail)
    else:
        message = str(detail)
    return str(data.get("type") or ""), message


def _validation_error(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    where = ".".join(str(part) for part in item.get("loc", ()))
    text = f"{where}: {item.get('msg', '')}" if where else str(item.get("msg", ""))
    given = item.get("input")
    if type(given) in (str, int, float, bool):  # the value refused (an enum value of a newer version), cut short
        shown = repr(given)
        text += f", got {shown if len(shown) <= 60 else shown[:57] + '...'}"
    return text


@channel("rest")
class RestChannel(HTTPXChannel):
    """Calls ``@rest`` services over their declared HTTP routes, with JSON bodies."""

    def setup(self, component_descriptor: Any, address: Any) -> None:
        # the routes are read here, not when the environment registers this channel: a process that
        # calls only over dispatch channels never loads the REST declarations
        from warpcall.routes import routes_of

        # every route of the component is checked here, when the channel starts, never at the first call
        for service in component_descriptor.services:
            routes_of(service.type)
        super().setup(component_descriptor, address)

    def invoke(self, invocation: Any) -> Any:
        if self._observed or _profile_everywhere or _profile_here() or _trace_context() is not None:
            from warpcall.observe.client import invoke

            return invoke(self, invocation)  # timed, traced, counted: warpcall.observe.client
        plan = RestCallPlan.of(invocation.descriptor)
        path, body = plan.target(positional_args(invocation))
        url = self.get_url()
        status, headers, content = self._request(plan.http_method, url + path, plan.headers, body, invocation.descriptor)
        if type(headers) is AnsweredBy:  # sent again: another instance answered
            url = headers.url
        return plan.result(url, status, content, headers)

    async def invoke_async(self, invocation: Any) -> Any:
        if self._observed or _profile_everywhere or _profile_here() or _trace_context() is not None:
            from warpcall.observe.client import invoke_async

            return await invoke_async(self, invocation)
        plan = RestCallPlan.of(invocation.descriptor)
        path, body = plan.target(positional_args(invocation))
        url = self.get_url()
        status, headers, content = await self._request_async(
            plan.http_method, url + path, plan.headers, body, invocation.descriptor
        )
        if type(headers) is AnsweredBy:  # sent again: another instance answered
            url = headers.url
        return plan.result(url, status, content, headers)
