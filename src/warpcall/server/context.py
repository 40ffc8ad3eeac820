"""The HTTP request and response of the current call, for implementations (aspyx-service's API).

- :class:`RequestContext`: ``RequestContext.get_request()`` is the starlette ``Request`` of the call
  under way, on every path (``/invoke`` and the REST routes, inline or through ASGI). It is made only
  when asked for: the inline paths remember which connection the call came on (one slot written per
  call) and build the request from its head on demand. Its body has been read already: use the
  headers, cookies, client and URL. Valid while the call runs.
  ``RequestContext`` is also an ASGI middleware, as in aspyx-service (``app.add_middleware(RequestContext)``);
  warpcall's routes do not need it.
- :class:`ResponseContext`: ``ResponseContext.create().set_cookie(...)`` / ``.delete_cookie(...)`` in an
  implementation adds ``Set-Cookie`` lines to that call's reply.
- :class:`TokenContextMiddleware`: for a FastAPI app's own routes, sets ``TokenContext`` from the
  ``access_token`` cookie or the ``Authorization`` header, as aspyx-service's does (the ``Bearer``
  prefix removed). warpcall's routes set ``TokenContext`` themselves, middleware or not.
"""

from __future__ import annotations

import contextvars
import typing
from datetime import datetime
from typing import Any, Awaitable, Callable, Optional

from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import Response as StarletteResponse

from warpcall.context import TokenContext

__all__ = ["RequestContext", "ResponseContext", "TokenContextMiddleware", "bearer_token"]

Scope = dict[str, Any]

#: what the current call came from: its ASGI scope, or the connection (``scope_of_connection``) on the inline path
_source: contextvars.ContextVar[Any] = contextvars.ContextVar("warpcall.request", default=None)
set_source = _source.set  # bound once: read per call it would make a method object each time


def bearer_token(value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value (None when absent or of another scheme)."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


def head_scope(data: bytes, head_length: int, transport: Any, scheme: str = "http") -> Scope:
    """The ASGI scope of a one-chunk ``POST /invoke`` (its raw bytes, head first) received on ``transport``."""
    lines = bytes(data[:head_length]).split(b"\r\n")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(b":")
        headers.append((name.strip().lower(), value.strip(b" \t")))
    method, target, _ = lines[0].split(b" ", 2)
    path, _, query = target.partition(b"?")
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": method.decode("ascii"), "scheme": scheme, "path": path.decode("latin-1"),
        "raw_path": path, "query_string": query, "root_path": "", "headers": headers,
        "client": _address(transport, "peername"), "server": _address(transport, "sockname"),
    }


def _address(transport: Any, name: str) -> tuple[str, int] | None:
    info = transport.get_extra_info(name) if transport is not None else None
    return (str(info[0]), int(info[1])) if isinstance(info, tuple) and len(info) >= 2 else None


class RequestContext:
    """The HTTP request of the call under way (see the module); also an ASGI middleware, as in aspyx-service."""

    request_var = _source

    @classmethod
    def get_request(cls) -> Request:
        """The starlette ``Request`` of the current call; LookupError outside a call."""
        source = _source.get()
        if source is None:
            raise LookupError("RequestContext.get_request() is only available while a remote call runs")
        if isinstance(source, Request):
            return source
        scope = source if isinstance(source, dict) else source.current_scope()
        if scope is None:
            raise LookupError("RequestContext.get_request(): the call's request is no longer current")
        return Request(scope)

    def __init__(self, app: Callable[[Scope, Any, Any], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _source.set(Request(scope))
        try:
            await self.app(scope, receive, send)
        finally:
            _source.reset(token)


class ResponseContext:
    """Cookies an implementation sets on its call's reply: ``ResponseContext.create().set_cookie(...)``."""

    response_var: contextvars.ContextVar[Optional[ResponseContext.Response]] = contextvars.ContextVar(
        "warpcall.response", default=None
    )

    class Response:
        """The cookies to set and to delete on the reply."""

        def __init__(self) -> None:
            self.cookies: dict[str, dict[str, Any]] = {}
            self.delete_cookies: dict[str, dict[str, Any]] = {}
            self._prepared = False  # made by the server before the call: create() hands this one out

        def delete_cookie(
            self,
            key: str,
            path: str = "/",
            domain: str | None = None,
            secure: bool = False,
            httponly: bool = False,
            samesite: typing.Literal["lax", "strict", "none"] | None = "lax",
        ) -> None:
            """Delete the cookie ``key`` on the caller (an expired ``Set-Cookie``)."""
            self.delete_cookies[key] = {
                "path": path, "domain": domain, "secure": secure, "httponly": httponly, "samesite": samesite,
            }

        def set_cookie(
            self,
            key: str,
            value: str = "",
            max_age: int | None = None,
            expires: datetime | str | int | None = None,
            path: str | None = "/",
            domain: str | None = None,
            secure: bool = False,
            httponly: bool = False,
            samesite: typing.Literal["lax", "strict", "none"] | None = "lax",
        ) -> None:
            """Set the cookie ``key`` on the caller (starlette's ``Response.set_cookie`` parameters)."""
            self.cookies[key] = {
                "value": value, "max_age": max_age, "expires": expires, "path": path, "domain": domain,
                "secure": secure, "httponly": httponly, "samesite": samesite,
            }

        def header_values(self) -> list[bytes]:
            """The ``Set-Cookie`` values, as starlette writes them."""
            response = StarletteResponse()
            for key, options in self.cookies.items():
                response.set_cookie(key, **options)
            for key, options in self.delete_cookies.items():
                response.delete_cookie(key, **options)
            return [value for name, value in response.raw_headers if name == b"set-cookie"]

    @classmethod
    def create(cls) -> ResponseContext.Response:
        """The reply's cookie holder for the current call (the one the server prepared, else a new one)."""
        if not RESPONSES[0]:
            RESPONSES[0] = True
        response = cls.response_var.get()
        if response is None or not response._prepared:
            response = ResponseContext.Response()
            cls.response_var.set(response)
        return response

    @classmethod
    def get(cls) -> Optional[ResponseContext.Response]:
        """The current call's cookie holder, or None."""
        return cls.response_var.get()

    @classmethod
    def reset(cls) -> None:
        """Forget the current call's cookie holder."""
        cls.response_var.set(None)


#: ``[used]``: true once an implementation may set cookies (``ResponseContext.create()`` was called, or a served
#: method names ``ResponseContext``): until then the servers' call paths skip every cookie step (one list read)
RESPONSES = [False]


def uses_responses(func: Any) -> bool:
    """Whether a method may set cookies: its code names ``ResponseContext``, or its module imports it (a helper
    there may use it). Then the server prepares a cookie holder for every call from the first on."""
    func = getattr(func, "__func__", func)
    code = getattr(func, "__code__", None)
    if code is None:
        return False
    if "ResponseContext" in code.co_names:
        return True
    return any(value is ResponseContext for value in getattr(func, "__globals__", {}).values())


def prepare_response() -> ResponseContext.Response:
    """A cookie holder set in the current context before a call runs (where the call may run in a copy of it)."""
    response = ResponseContext.Response()
    response._prepared = True
    ResponseContext.response_var.set(response)
    return response


def cookie_lines() -> bytes:
    """The ``set-cookie`` header lines (each ending in CRLF) of the current call's cookie holder, or b""."""
    response = ResponseContext.response_var.get()
    if response is None or not (response.cookies or response.delete_cookies):
        return b""
    return b"".join(b"set-cookie: " + value + b"\r\n" for value in response.header_values())


class TokenContextMiddleware(BaseHTTPMiddleware):
    """Sets ``TokenContext`` for a request from its ``access_token`` cookie or ``Authorization`` header."""

    async def dispatch(self, request: Request, call_next: Any) -> Any:
        cookie = request.cookies.get("access_token")
        access_token = cookie or bearer_token(request.headers.get("Authorization"))
        if access_token:
            TokenContext.set(access_token)
        try:
            return await call_next(request)
        finally:
            TokenContext.clear()

