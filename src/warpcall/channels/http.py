"""HTTPXChannel: the base of HTTP channels, with httpx clients as the customization point.

The channel sends through warpcall's own HTTP client, so a process whose calls succeed over
it never imports httpx, and one that never awaits a call never imports asyncio: httpx is
imported when advice or a subclass asks for an httpx client, or when a call fails; the
async client is made by the first async call.
"""

from __future__ import annotations

import sys
import threading
import time
import weakref
from types import MethodType
from typing import TYPE_CHECKING, Any, Callable

from warpcall.channels._http_common import DEFAULT_TLS, ClientTLS, _check_expiry, _check_timeout
from warpcall.channels._http_sync import HTTPClient
from warpcall.channels.base import Channel
from warpcall.context import TokenContext
from warpcall.core.transport import DEFAULT_KEEPALIVE_EXPIRY, deadline_after
from warpcall.di import inject
from warpcall.di.configuration import ConfigurationManager, inject_value
from warpcall.exceptions import (
    AuthorizationException,
    InvalidTokenException,
    MissingTokenException,
    RemoteServiceException,
    ResponseTooLargeException,
    ServiceCommunicationException,
    ServiceException,
    TokenException,
    TokenExpiredException,
)
from warpcall.observe import records as _records
from warpcall.observe import tracing as _tracing
from warpcall.registry.contract import ChannelInstances
from warpcall.resilience import breaker as _breaker
from warpcall.resilience import bulkhead as _bulkhead
from warpcall.resilience import deadline as _deadline
from warpcall.resilience.retry import Recovery, RetryPolicy, is_refusal

if TYPE_CHECKING:
    import asyncio

    import httpx

    from warpcall.channels._http_async import AsyncHTTPClient
    from warpcall.service import ComponentDescriptor

DEFAULT_TIMEOUT = 10.0

Reply = tuple[int, list[tuple[str, str]], bytes]

_ASYNC_CLIENT_LOCK = threading.Lock()  # the first async calls of several threads make one client
_CLIENT_LOCK = threading.Lock()  # the first calls of several threads through httpx make one sync client


def _split(url: str, bases: tuple[str, ...]) -> tuple[str, str]:
    """``url`` as (the instance URL it starts with, the rest): the longest of ``bases`` that is a prefix
    ending where a path or query begins, else its scheme and authority."""
    best = ""
    for base in bases:
        if len(base) > len(best) and url.startswith(base):
            if base.endswith("/") or url[len(base) : len(base) + 1] in ("", "/", "?", "#"):
                best = base
    if not best:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        best = f"{parts.scheme}://{parts.netloc}"
    return best, url[len(best) :]


# time.monotonic() + seconds, one C clock read compiled: the clock of deadlines (loop.time() of asyncio's loops too)
_deadline_after = deadline_after
_deadline_in_force = _deadline._current.get
# what a call asks of observability (warpcall.observe.client), read by a channel's invoke in one condition:
# the process's profile collectors (a list changed in place), this context's, the caller's trace context
_profile_everywhere = _records._global_sinks
_profile_here = _records._context_sinks.get
_trace_context = _tracing.current.get
# the caller's access token (TokenContext), read once per call: a bound ContextVar.get, a few dozen instructions
_access_token = TokenContext.access_token.get


class _ClientDefault:
    """httpx's ``USE_CLIENT_DEFAULT`` without importing httpx: the client's own timeout applies."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "USE_CLIENT_DEFAULT"


#: ``request``'s default ``timeout``: the client's own (passed on to httpx as ``httpx.USE_CLIENT_DEFAULT``)
USE_CLIENT_DEFAULT: Any = _ClientDefault()


class RequestHeaders(dict[str, str]):
    """A request's headers as a channel hands them to an httpx client (``headers=``): a mutable ``dict``, as
    aspyx-service hands one, whose names compare case-insensitively, so that a client's
    ``headers["Authorization"] = ...`` replaces the channel's ``authorization`` rather than sending a second.
    """

    __slots__ = ()

    def __init__(self, items: Any = (), /, **more: str) -> None:
        super().__init__()
        self.update(items, **more)

    def _stored(self, name: str) -> str:
        """The spelling under which ``name`` is stored (case-insensitively), else ``name``."""
        if dict.__contains__(self, name) or not isinstance(name, str):
            return name
        lower = name.lower()
        for key in dict.keys(self):
            if key.lower() == lower:
                return key
        return name

    def __setitem__(self, name: str, value: str) -> None:
        stored = self._stored(name)
        if stored != name:
            dict.__delitem__(self, stored)
        dict.__setitem__(self, name, value)

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, self._stored(name))

    def __delitem__(self, name: str) -> None:
        dict.__delitem__(self, self._stored(name))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, self._stored(name))

    def get(self, name: str, default: Any = None) -> Any:
        return dict.get(self, self._stored(name), default)

    def pop(self, name: str, *default: Any) -> Any:
        return dict.pop(self, self._stored(name), *default)

    def setdefault(self, name: str, default: str) -> str:
        if name not in self:
            self[name] = default
        return self[name]

    def update(self, items: Any = (), /, **more: str) -> None:
        pairs = items.items() if hasattr(items, "items") else items
        for name, value in pairs:
            self[name] = value
        for name, value in more.items():
            self[name] = value

    def copy(self) -> RequestHeaders:
        return RequestHeaders(self)


def _with_bearer(headers: list[tuple[str, str]], token: str) -> list[tuple[str, str]]:
    """``headers`` with ``authorization: Bearer <token>``, unless they carry an authorization of their own (it wins)."""
    for name, _value in headers:
        if name.lower() == "authorization":
            return headers
    return [*headers, ("authorization", "Bearer " + token)]


def _add_bearer(headers: RequestHeaders, client_headers: Any) -> None:
    """Add the caller's token to a request's headers, unless they or the client's own carry an authorization."""
    token = _access_token()
    if token is not None and "authorization" not in headers and "authorization" not in client_headers:
        headers["Authorization"] = "Bearer " + token


def _header_value(headers: Any, name: str) -> str:
    """First value of a reply header (``name`` lowercase, names compared case-insensitively), '' when absent."""
    for key, value in headers:
        if key == name or key.lower() == name:
            return str(value)
    return ""


def auth_exception(
    status: int, headers: Any, message: str, named: str = ""
) -> AuthorizationException:
    """The exception a ``401`` or ``403`` reply means for the caller.

    A 401 is read by its ``WWW-Authenticate`` challenge, as RFC 6750 writes it and aspyx-service reads it:
    ``error="invalid_token"`` is :class:`TokenExpiredException` when the challenge says ``expired``,
    :class:`MissingTokenException` when it says ``missing``, else :class:`InvalidTokenException`; a Bearer
    challenge without an error code is :class:`MissingTokenException` (RFC 6750 3.1: the request carried no
    token); ``insufficient_scope`` is :class:`AuthorizationException`; another error code is
    :class:`InvalidTokenException`. A 401 without a challenge raises the token exception the body names
    (``named``), else :class:`TokenException`. A 403 raises :class:`AuthorizationException`.
    ``headers``: the reply's (name, value) pairs.
    """
    if status == 403:
        return AuthorizationException(message)
    challenge = _header_value(headers, "www-authenticate")
    lower = challenge.lower()
    kind: type[AuthorizationException]
    if "invalid_token" in lower:
        if "expired" in lower:
            kind = TokenExpiredException
        elif "missing" in lower:
            kind = MissingTokenException
        else:
            kind = InvalidTokenException
    elif "insufficient_scope" in lower:
        kind = AuthorizationException
    elif "error=" in lower:
        kind = InvalidTokenException
    elif lower.startswith("bearer"):
        kind = MissingTokenException
    else:
        kind = {
            cls.__name__: cls for cls in (MissingTokenException, InvalidTokenException, TokenExpiredException)
        }.get(named, TokenException)
    return kind(message)


class AnsweredBy(list[tuple[str, str]]):
    """A reply's headers when the call was sent again (failover, retry): ``url`` is the instance that
    answered, which the channel's error messages name instead of the one picked first."""

    __slots__ = ("url",)

    def __init__(self, headers: list[tuple[str, str]], url: str) -> None:
        super().__init__(headers)
        self.url = url


def _answered(reply: Reply, base: str) -> Reply:
    return reply[0], AnsweredBy(reply[1], base), reply[2]


def _call_name(call: Any, method: str, path: str) -> str:
    """How errors name a call: its service method, else the HTTP method and path."""
    return str(call.qualified) if call is not None else f"{method} {path or '/'}"


def _deadline_header(at: float) -> tuple[str, str]:
    """``x-rpc-timeout`` for the deadline ``at``: the whole milliseconds left (the advised path's header)."""
    return _deadline.DEADLINE_HEADER, _deadline.header_value(at).decode("ascii")


def _reply_in(exc: ServiceException) -> httpx.Response:
    """The reply a :meth:`HTTPXChannel.request` override's exception stands for: the response of an error status
    (the channel reads it as any reply), else the wire's error is raised (the channel recovers from it), else
    ``exc`` itself."""
    loaded = sys.modules.get("httpx")
    cause = exc.__cause__
    if loaded is not None:
        if isinstance(cause, loaded.HTTPStatusError):
            response: httpx.Response = cause.response
            return response
        if isinstance(cause, loaded.TransportError):
            raise cause
    raise exc


def _status_failure(response: httpx.Response, method: str, url: str) -> ServiceException:
    """The exception an error status means to :meth:`HTTPXChannel.request`'s caller."""
    status = response.status_code
    text = response.content[:200].decode("utf-8", "replace")
    message = f"{url} answered {method.upper()} with HTTP {status}: {text}"
    if status in (401, 403):
        named = ""
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            named = str(body.get("type") or "")
        return auth_exception(status, response.headers.items(), message, named)
    return RemoteServiceException(message)


def _httpx_arguments(
    client_headers: Any, json: Any, params: Any, headers: Any, timeout: Any, content: Any
) -> dict[str, Any]:
    """The keyword arguments of httpx's ``request`` for :meth:`HTTPXChannel.request` (sync and async): the
    caller's headers (not changed) as a :class:`RequestHeaders` dict with the caller's token added unless they
    or the client's own headers carry an authorization; httpx's client-default timeout for ours."""
    import httpx  # loaded: the caller has its httpx client

    sent = RequestHeaders(headers or ())
    _add_bearer(sent, client_headers)
    return {
        "params": params,
        "json": json,
        "headers": sent,
        "timeout": httpx.USE_CLIENT_DEFAULT if timeout is USE_CLIENT_DEFAULT else timeout,
        "content": content,
    }


class _HTTPXErrors:
    """Around one httpx request of :meth:`HTTPXChannel.request` (a sync call or an await): raises httpx's errors
    as the exceptions the method documents, each with httpx's error as its cause."""

    __slots__ = ("method", "url")

    def __init__(self, method: str, url: str) -> None:
        self.method = method
        self.url = url

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, traceback: Any) -> None:
        if exc is None:
            return
        import httpx  # loaded: the request was sent with it

        if isinstance(exc, httpx.HTTPStatusError):
            raise _status_failure(exc.response, self.method, self.url) from exc
        if isinstance(exc, httpx.RequestError):
            raise ServiceCommunicationException(f"calling {self.url} failed: {type(exc).__name__}: {exc}") from exc
        if isinstance(exc, httpx.HTTPError):
            raise RemoteServiceException(f"calling {self.url} failed: {type(exc).__name__}: {exc}") from exc


def _service_method(service_type: Any, method: Any) -> Any:
    """The descriptor of ``method`` (a descriptor already, or a function named as one) of ``service_type``."""
    if hasattr(method, "param_types") and hasattr(method, "return_type"):
        return method
    from warpcall.core.proxy import service_methods

    name = getattr(method, "__name__", None)
    found = service_methods(service_type).get(name) if isinstance(service_type, type) and name else None
    if found is None:
        raise ServiceException(f"{method!r} is not a service method of {service_type!r}")
    return found


def _failed(url: str, exc: Exception) -> ServiceCommunicationException | None:
    """The exception a failed wire (httpx's TransportError) means for the caller; None for other errors."""
    loaded = sys.modules.get("httpx")  # only httpx makes its errors: none exist before it is imported
    if loaded is None or not isinstance(exc, loaded.TransportError):
        return None
    # a response over the client's limits keeps its type (the HTTP clients raise it as httpx's and warpcall's)
    kind = ResponseTooLargeException if isinstance(exc, ResponseTooLargeException) else ServiceCommunicationException
    return kind(f"calling {url} failed: {type(exc).__name__}: {exc}")


def _wire_failure(channel: HTTPXChannel, url: str, exc: Exception) -> ServiceCommunicationException:
    """A send of ``channel`` to ``url`` failed with ``exc``: the breaker is told, and the answer is what the wire's
    failure means to the caller (the recovery goes on from it); an error that is not the wire's is raised again."""
    channel._failure(url, exc)  # breaker
    failure = _failed(url, exc)
    if failure is None:
        raise exc
    return failure


class HTTPXChannel(Channel):
    """A channel speaking HTTP to the component's instances.

    ``make_client()`` / ``make_async_client()`` return the httpx clients the
    channel sends with; they are joinpoints, so an ``@around`` advice can
    return a client of its own (auth headers, event hooks, ...), and whatever
    that client does to a request still happens. When no advice or subclass
    replaces them, the channel sends through warpcall's compiled HTTP/1.1
    client directly, with the same headers, timeouts and errors, and skips the
    httpx client layer.

    aspyx-service's API is here with its signatures: ``request`` / ``request_async`` (an
    ``httpx.Response``; overriding them puts every call of the channel through the override),
    ``get_client`` / ``get_async_client``, ``serialize_args``, ``get_serializers``,
    ``get_deserializer``, ``service_names``. Every call sends the caller's
    :class:`~warpcall.context.TokenContext` access token as ``Authorization: Bearer <token>``
    (an Authorization header already there wins), and a 401 / 403 answer raises the token
    exception / ``AuthorizationException`` it means (:func:`auth_exception`).
    """

    def __init__(self) -> None:
        super().__init__()
        self.timeout = DEFAULT_TIMEOUT
        self.keepalive_expiry = DEFAULT_KEEPALIVE_EXPIRY
        #: how ``https://`` instances are checked and who this client is to them (``http.tls.*``, per channel
        #: ``http.<channel>.tls.*``; see ClientTLS): certificates and host names verified by default
        self.tls: ClientTLS = DEFAULT_TLS
        self.configuration: ConfigurationManager | None = None
        self._direct: HTTPClient | None = None
        self._direct_async: AsyncHTTPClient | None = None
        self._async_direct = False  # the first async call makes _direct_async
        self._client: httpx.Client | None = None
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        self._loopless_async_client: httpx.AsyncClient | None = None
        #: every call of the channel takes the observed path (warpcall.observe.client.configure sets it at setup:
        #: profile.enabled / http.<channel>.profile, metrics.enabled, an OpenTelemetry tracer provider)
        self._observed = False
        self._obs_profile = False
        self._obs_tracing = True
        self._obs_metrics: Any = None
        self._obs_otel: Any = None
        # a subclass or advice replaced request / request_async: every call goes through them (set by customize)
        self._own_request = False
        self._own_request_async = False
        #: the names services of the component are registered under, by service type (aspyx-service's attribute)
        self.service_names: dict[type, str] = {}
        #: the circuit breakers of this channel's instances (None: disabled); set up by setup()
        self.breakers: _breaker.CircuitBreakers | None = None
        #: the limit on calls in flight to the component (None: no limit, and the calls are not wrapped)
        self.bulkhead: _bulkhead.Bulkhead | None = None
        #: what is sent again after a failure (``http.retry.*``, see warpcall.resilience.retry)
        self.retry = RetryPolicy()

    @inject_value("http.timeout", default=DEFAULT_TIMEOUT)
    def set_timeout(self, timeout: float) -> None:
        """Seconds every call may take (connect, send, receive), from the ``http.timeout`` configuration key."""
        self.timeout = _check_timeout(timeout)

    @inject_value("http.keepalive_expiry", default=DEFAULT_KEEPALIVE_EXPIRY)
    def set_keepalive_expiry(self, seconds: float) -> None:
        """Seconds a pooled connection may stay idle and still be reused, from ``http.keepalive_expiry``.

        Keep it below the servers' keep-alive timeout (uvicorn's ``timeout_keep_alive``, warpcall's
        ``ServerLimits.idle_timeout``, 5 s by default): a request sent on a connection the server is
        closing fails. A server's ``Keep-Alive: timeout=N`` header shortens it on its own connections.
        """
        self.keepalive_expiry = _check_expiry(seconds)

    @inject()
    def set_configuration(self, configuration: ConfigurationManager) -> None:
        self.configuration = configuration

    def setup(self, component_descriptor: ComponentDescriptor, address: ChannelInstances | None) -> None:
        """Bind the channel to a component and its URLs, and read its configuration (``http.<channel>.*``)."""
        super().setup(component_descriptor, address)
        for service in getattr(component_descriptor, "services", ()):
            self.service_names[service.type] = service.name
        # a channel's own key overrides the global one: http.<channel>.timeout, e.g. http.dispatch-json.timeout
        if self.configuration is not None:
            self.timeout = _check_timeout(self.configuration.get(f"http.{self.name}.timeout", float, self.timeout))
            self.keepalive_expiry = _check_expiry(
                self.configuration.get(f"http.{self.name}.keepalive_expiry", float, self.keepalive_expiry)
            )
            configuration = self.configuration
            self.retry = RetryPolicy.configured(lambda key: configuration.get(key, object), self.name)
            self.tls = ClientTLS.configured(configuration.get, self.name)
        self._setup_resilience()
        from warpcall.observe.client import configure

        configure(self, self.configuration.get if self.configuration is not None else None)

    # --- circuit breakers and the bulkhead (warpcall.resilience.breaker / .bulkhead) --------------------------

    def _setup_resilience(self) -> None:
        """The breakers (``http.breaker.*``) and the bulkhead (``http.bulkhead.max_in_flight``), per channel."""
        settings = _breaker.BreakerSettings.from_configuration(self.configuration, self.name)
        if settings.enabled:
            self.breakers = _breaker.CircuitBreakers(
                settings,
                owner=self.selector.owner,
                selector=lambda: self.selector,
                probe_timeout=self.timeout,
            )
        limit = _bulkhead.max_in_flight(self.configuration, self.name)
        if limit:
            # the channel's calls are wrapped only when limited: an unlimited channel pays nothing
            self.bulkhead = _bulkhead.Bulkhead(limit, self.selector.owner)
            vars(self)["_request"] = _bulkhead.wrap_sync(self.bulkhead, self._request, lambda: self.timeout)
            vars(self)["_request_async"] = _bulkhead.wrap_async(
                self.bulkhead, self._request_async, lambda: self.timeout
            )

    def _outcome(self, url: str, status: int) -> None:
        """A reply of ``status`` came from ``url``'s instance."""
        breakers = self.breakers
        if breakers is not None:
            breakers.outcome(_split(url, self.selector.urls)[0], status)

    def _ejected_too(self, error: ServiceCommunicationException) -> ServiceCommunicationException:
        """``error`` (no instance reached) naming the instances the breakers kept the call from as well."""
        breakers = self.breakers
        if breakers is not None and breakers.ejected():
            error.args = (f"{error.args[0]}; not tried: {breakers.describe_ejected()}",)
        return error

    def _failure(self, url: str, exc: BaseException) -> None:
        """A call to ``url``'s instance failed with ``exc``: a failure of the instance if it says so."""
        breakers = self.breakers
        if breakers is not None and _breaker.counts_against(exc):
            breakers.failure(_split(url, self.selector.urls)[0])

    def make_client(self) -> httpx.Client:
        """The sync httpx client this channel sends with; replace it with an ``@around`` advice."""
        import httpx

        from warpcall.channels._httpx_transport import WarpTransport

        return httpx.Client(
            transport=WarpTransport(timeout=self.timeout, keepalive_expiry=self.keepalive_expiry, tls=self.tls),
            timeout=self.timeout,
        )

    def make_async_client(self) -> httpx.AsyncClient:
        """The async httpx client this channel sends with, one per event loop; replace it with an ``@around`` advice."""
        import httpx

        from warpcall.channels._httpx_transport import AsyncWarpTransport

        return httpx.AsyncClient(
            transport=AsyncWarpTransport(timeout=self.timeout, keepalive_expiry=self.keepalive_expiry, tls=self.tls),
            timeout=self.timeout,
        )

    def _uses_default_client(self, method: str) -> bool:
        # advice (woven into the instance's attributes) or a subclass replacing the client factory means the
        # client must really be used. Looked up through getattr, not vars(self): materialising the instance's
        # __dict__ puts every later self.x read of the channel on CPython's slow path (~300 instructions each)
        # (a woven method mimics a bound method's __self__ and __func__: only a real one is the default)
        found = getattr(self, method)
        return (
            type(found) is MethodType and found.__self__ is self and found.__func__ is getattr(HTTPXChannel, method)
        )

    def customize(self) -> None:
        super().customize()
        # a request / request_async of a subclass or advice is called for every remote call of the channel
        self._own_request = not self._uses_default_client("request")
        self._own_request_async = not self._uses_default_client("request_async")
        if self._uses_default_client("make_client") and not self._own_request:
            self._direct = HTTPClient(timeout=self.timeout, keepalive_expiry=self.keepalive_expiry, tls=self.tls)
        self._async_direct = self._uses_default_client("make_async_client") and not self._own_request_async

    def _make_direct_async(self) -> AsyncHTTPClient:
        """The direct async client, made by the first async call (its module imports asyncio)."""
        from warpcall.channels._http_async import AsyncHTTPClient

        with _ASYNC_CLIENT_LOCK:
            direct = self._direct_async
            if direct is None:
                direct = self._direct_async = AsyncHTTPClient(
                    timeout=self.timeout, keepalive_expiry=self.keepalive_expiry, tls=self.tls
                )
            return direct

    def _request(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes, call: Any = None
    ) -> Reply:
        """Send one ``method`` request to ``url``; ServiceCommunicationException when the wire fails.

        The channels' own way to send (the public :meth:`request` is aspyx-service's, on httpx): returns
        ``(status, headers, body)`` whatever the status. The caller's access token
        (:class:`~warpcall.context.TokenContext`) goes as ``authorization: Bearer <token>`` unless ``headers``
        carry an authorization already (theirs wins). A subclass or advice replacing :meth:`request` is called
        for every call (``request(method, url, headers=RequestHeaders, content=body)``).

        ``call`` is the service method's descriptor (None: a plain request): errors name it, and it says
        whether the call is idempotent. The call has a deadline: the one in force
        (:func:`warpcall.resilience.deadline.deadline`), or ``timeout`` seconds from now if sooner; it
        bounds the whole exchange and goes to the server as ``x-rpc-timeout``. A call that failed before
        any byte of it reached ``url``'s instance, or that the server refused unstarted (503
        ``OverloadedException``), goes to the selector's other instances; one that may have reached it
        goes again only if idempotent (see :meth:`_recover` and warpcall.resilience.retry).
        """
        at = _deadline_after(self.timeout)
        outer = _deadline_in_force()
        start = 0.0  # the call's start is at - timeout, unless a sooner deadline in force replaces at
        if outer is not None and outer < at:
            start = at - self.timeout
            at = outer
            if at <= start:
                raise Recovery.expired(_call_name(call, method, url), self.selector.owner)
        try:
            direct = self._direct
            if direct is not None:
                token = _access_token()
                if token is not None:
                    headers = _with_bearer(headers, token)
                timeout = self.timeout
                status, _reason, reply_headers, content = direct._exchange(
                    method, url, headers, body, timeout, timeout, timeout, at
                )
                if status >= _breaker.outcome_from:  # breaker: a 502-504, or any reply while an instance has a record
                    self._outcome(url, status)
                if status != 503:
                    return status, reply_headers, content
                reply: Reply = (status, reply_headers, content)
            else:
                reply = self._send_advised(method, url, headers, body, at)
                if reply[0] != 503:
                    return reply
        except Exception as exc:
            failure = _wire_failure(self, url, exc)
            return self._recover(method, url, headers, body, call, start, at, exc, failure, None)
        if not is_refusal(reply[0], reply[2]):
            return reply
        return self._recover(method, url, headers, body, call, start, at, None, None, reply)

    def _send_advised(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes, at: float) -> Reply:
        """Send through the httpx client (advice or a subclass made it), or through the :meth:`request` a subclass
        or advice put in place. The client gets the headers as a :class:`RequestHeaders` dict (the caller's
        token and the deadline's ``x-rpc-timeout`` included); the deadline is in force while the client runs,
        so that the client's WarpTransport bounds the exchange by it. A ``ServiceException`` a :meth:`request`
        raised over an error status is read as that reply (the channel names what it means)."""
        sent = RequestHeaders(headers)
        name, value = _deadline_header(at)
        sent[name] = value
        if self._own_request:
            with _deadline.deadline_at(at):
                try:
                    response = self.request(method, url, headers=sent, content=body or None)
                except ServiceException as exc:
                    response = _reply_in(exc)
        else:
            client = self.get_client()
            _add_bearer(sent, client.headers)
            with _deadline.deadline_at(at):
                response = client.request(method, url, content=body or None, headers=sent)
        if response.status_code >= _breaker.outcome_from:  # breaker
            self._outcome(url, response.status_code)
        return response.status_code, list(response.headers.items()), response.content

    def _send_once(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes, at: float) -> Reply:
        """What :meth:`request` does, without recovering (it raises the client's error)."""
        direct = self._direct
        if direct is not None:
            timeout = self.timeout
            status, _reason, reply_headers, content = direct._exchange(
                method, url, headers, body, timeout, timeout, timeout, at
            )
            if status >= _breaker.outcome_from:  # breaker
                self._outcome(url, status)
            return status, reply_headers, content
        return self._send_advised(method, url, headers, body, at)

    def _calls_so_far(self) -> int:
        """The channel's calls so far, the retry budget's deposits: its selector's picks, one per call (the call
        path counts nothing itself; a selector without ``picks`` leaves the budget its reserve)."""
        return int(getattr(self.selector, "picks", 0))

    def _recovery(self, url: str, call: Any, method: str, start: float, at: float) -> tuple[Recovery, str]:
        base, path = _split(url, self.selector.urls)
        if not start:  # the call's own deadline: it started its timeout before it
            start = at - self.timeout
        recovery = Recovery(
            self.retry,
            self.selector.urls,
            self.selector.others(base),
            base,
            _call_name(call, method, path),
            start,
            at,
            self.retry.is_idempotent(call),
            self._calls_so_far,
            self.selector.owner,
            self._ejected_too,
        )
        return recovery, path

    def _recover(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes,
        call: Any,
        start: float,
        at: float,
        error: Exception | None,
        failure: ServiceCommunicationException | None,
        refused: Reply | None,
    ) -> Reply:
        """The call failed on ``url`` (``error``, meaning ``failure`` to the caller) or was refused unstarted
        (the ``refused`` reply): send it on as :class:`~warpcall.resilience.retry.Recovery` says, until an
        instance answers, the policy gives up (its error is raised, or the last refusal returned) or the
        deadline passes (DeadlineExceeded)."""
        recovery, path = self._recovery(url, call, method, start, at)
        while True:
            step = recovery.next(error, failure, refused)
            if step is None:  # refused everywhere it could go: the last refusal is the reply
                assert refused is not None
                return _answered(refused, recovery.current)
            base, wait = step
            if wait > 0.0:
                time.sleep(wait)
            target = base + path
            error = failure = refused = None
            try:
                reply = self._send_once(method, target, headers, body, at)
            except Exception as exc:
                failure = _wire_failure(self, target, exc)
                error = exc
                continue
            if not is_refusal(reply[0], reply[2]):
                return _answered(reply, base)
            refused = reply

    async def _request_async(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes, call: Any = None
    ) -> Reply:
        """Async :meth:`_request`: the same deadline, token, failover and retries."""
        at = _deadline_after(self.timeout)
        outer = _deadline_in_force()
        start = 0.0  # the call's start is at - timeout, unless a sooner deadline in force replaces at
        if outer is not None and outer < at:
            start = at - self.timeout
            at = outer
            if at <= start:
                raise Recovery.expired(_call_name(call, method, url), self.selector.owner)
        try:
            direct = self._direct_async
            if direct is None and self._async_direct:
                direct = self._make_direct_async()
            if direct is not None:
                token = _access_token()
                if token is not None:
                    headers = _with_bearer(headers, token)
                timeout = self.timeout
                status, _reason, reply_headers, content = await direct._exchange(
                    method, url, headers, body, timeout, timeout, timeout, timeout, at
                )
                if status >= _breaker.outcome_from:  # breaker
                    self._outcome(url, status)
                if status != 503:
                    return status, reply_headers, content
                reply: Reply = (status, reply_headers, content)
            else:
                reply = await self._send_advised_async(method, url, headers, body, at)
                if reply[0] != 503:
                    return reply
        except Exception as exc:
            failure = _wire_failure(self, url, exc)
            return await self._recover_async(method, url, headers, body, call, start, at, exc, failure, None)
        if not is_refusal(reply[0], reply[2]):
            return reply
        return await self._recover_async(method, url, headers, body, call, start, at, None, None, reply)

    async def _send_advised_async(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes, at: float
    ) -> Reply:
        """Async :meth:`_send_advised`."""
        sent = RequestHeaders(headers)
        name, value = _deadline_header(at)
        sent[name] = value
        if self._own_request_async:
            with _deadline.deadline_at(at):
                try:
                    response = await self.request_async(method, url, headers=sent, content=body or None)
                except ServiceException as exc:
                    response = _reply_in(exc)
        else:
            client = self.get_async_client()
            _add_bearer(sent, client.headers)
            with _deadline.deadline_at(at):
                response = await client.request(method, url, content=body or None, headers=sent)
        if response.status_code >= _breaker.outcome_from:  # breaker
            self._outcome(url, response.status_code)
        return response.status_code, list(response.headers.items()), response.content

    async def _send_once_async(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes, at: float
    ) -> Reply:
        """What :meth:`request_async` does, without recovering (it raises the client's error)."""
        direct = self._direct_async
        if direct is None and self._async_direct:
            direct = self._make_direct_async()
        if direct is not None:
            timeout = self.timeout
            status, _reason, reply_headers, content = await direct._exchange(
                method, url, headers, body, timeout, timeout, timeout, timeout, at
            )
            if status >= _breaker.outcome_from:  # breaker
                self._outcome(url, status)
            return status, reply_headers, content
        return await self._send_advised_async(method, url, headers, body, at)

    async def _recover_async(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes,
        call: Any,
        start: float,
        at: float,
        error: Exception | None,
        failure: ServiceCommunicationException | None,
        refused: Reply | None,
    ) -> Reply:
        """Async :meth:`_recover`."""
        import asyncio  # loaded: this coroutine runs on its loop

        recovery, path = self._recovery(url, call, method, start, at)
        while True:
            step = recovery.next(error, failure, refused)
            if step is None:
                assert refused is not None
                return _answered(refused, recovery.current)
            base, wait = step
            if wait > 0.0:
                await asyncio.sleep(wait)
            target = base + path
            error = failure = refused = None
            try:
                reply = await self._send_once_async(method, target, headers, body, at)
            except Exception as exc:
                failure = _wire_failure(self, target, exc)
                error = exc
                continue
            if not is_refusal(reply[0], reply[2]):
                return _answered(reply, base)
            refused = reply

    # --- aspyx-service's HTTPXChannel API: httpx clients, requests answering httpx.Response, (de)serializers ------

    def get_client(self) -> httpx.Client:
        """The sync httpx client of this channel, made by :meth:`make_client` on first use (one per channel)."""
        client = self._client
        if client is None:
            with _CLIENT_LOCK:
                client = self._client
                if client is None:
                    client = self._client = self.make_client()
        return client

    def get_async_client(self) -> httpx.AsyncClient:
        """The async httpx client of the running event loop, made by :meth:`make_async_client` (one per loop;
        called outside a loop, one more kept for such callers)."""
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            client = self._loopless_async_client
            if client is None:
                client = self._loopless_async_client = self.make_async_client()
            return client
        client = self._async_clients.get(loop)
        if client is None:
            client = self._async_clients[loop] = self.make_async_client()
        return client

    def request(
        self,
        http_method: str,
        url: str,
        json: Any | None = None,
        params: Any | None = None,
        headers: Any | None = None,
        timeout: Any = USE_CLIENT_DEFAULT,
        content: Any | None = None,
    ) -> httpx.Response:
        """Send one request through :meth:`get_client` and return its ``httpx.Response`` (aspyx-service's API).

        The caller's access token (:class:`~warpcall.context.TokenContext`) is added as
        ``Authorization: Bearer <token>`` unless ``headers`` or the client's own headers carry an
        authorization (theirs wins); ``headers`` itself is not changed. ``timeout``: httpx's, the client's
        own by default. Raises ``ServiceCommunicationException`` when the wire fails, for an error status
        the exception it means (:func:`auth_exception` for 401 and 403, else ``RemoteServiceException``),
        each with httpx's error as its cause. Overriding it (as aspyx-service's users do) makes every
        remote call of the channel go through the override, with ``headers`` a :class:`RequestHeaders`
        dict and ``content`` the encoded body.
        """
        client = self.get_client()
        with _HTTPXErrors(http_method, url):
            response = client.request(
                http_method, url, **_httpx_arguments(client.headers, json, params, headers, timeout, content)
            )
            response.raise_for_status()
        return response

    async def request_async(
        self,
        http_method: str,
        url: str,
        json: Any | None = None,
        params: Any | None = None,
        headers: Any | None = None,
        timeout: Any = USE_CLIENT_DEFAULT,
        content: Any | None = None,
    ) -> httpx.Response:
        """Async :meth:`request`, through :meth:`get_async_client`."""
        client = self.get_async_client()
        with _HTTPXErrors(http_method, url):
            response = await client.request(
                http_method, url, **_httpx_arguments(client.headers, json, params, headers, timeout, content)
            )
            response.raise_for_status()
        return response

    def serialize_args(self, invocation: Any) -> list[Any]:
        """The invocation's arguments as JSON-ready values in declared order (aspyx-service's helper; keywords
        and defaults resolved)."""
        # warpcall's invocations carry the method's descriptor too; aspyx's the function (with the service type)
        method = getattr(invocation, "descriptor", None) or invocation.method
        serializers = self.get_serializers(getattr(invocation, "type", None), method)
        positional = getattr(invocation, "positional", None)
        args = list(positional() if positional is not None else invocation.args)
        for index, serialize in enumerate(serializers[: len(args)]):
            args[index] = serialize(args[index])
        return args

    def get_serializers(self, type: Any, method: Any) -> list[Callable[[Any], Any]]:
        """One function per parameter of ``method`` (a service method of ``type``) making its JSON-ready value."""
        from warpcall.core.marshal import plan_for

        return [plan_for(tp).dump for tp in _service_method(type, method).param_types]

    def get_deserializer(self, type: Any, method: Any) -> Callable[[Any], Any]:
        """The function making ``method``'s declared return type of a JSON-ready value."""
        from warpcall.core.marshal import plan_for

        load: Callable[[Any], Any] = plan_for(_service_method(type, method).return_type).load
        return load

    def post(self, url: str, headers: list[tuple[str, str]], body: bytes) -> Reply:
        """POST ``body`` to ``url``; ServiceCommunicationException when the wire fails."""
        return self._request("POST", url, headers, body)

    async def post_async(self, url: str, headers: list[tuple[str, str]], body: bytes) -> Reply:
        """Async POST of ``body`` to ``url``; ServiceCommunicationException when the wire fails."""
        return await self._request_async("POST", url, headers, body)

    def close(self) -> None:
        """Close the channel's clients (the async clients close with their event loops)."""
        if self._direct is not None:
            self._direct.close()
        if self._client is not None:
            self._client.close()
