"""HTTPXChannel: the base of HTTP channels, with httpx clients as the customization point.

The channel sends through warpcall's own HTTP client, so a process whose calls succeed over
it never imports httpx, and one that never awaits a call never imports asyncio: httpx is
imported when advice or a subclass asks for an httpx client, or when a call fails; the
async client is made by the first async call.
"""

from __future__ import annotations

import sys
import threading
import weakref
from typing import TYPE_CHECKING

from warpcall.channels._http_common import _check_expiry, _check_timeout
from warpcall.channels._http_sync import HTTPClient
from warpcall.channels.base import Channel
from warpcall.core.transport import DEFAULT_KEEPALIVE_EXPIRY
from warpcall.di import inject
from warpcall.di.configuration import ConfigurationManager, inject_value
from warpcall.exceptions import ResponseTooLargeException, ServiceCommunicationException
from warpcall.registry.contract import ChannelInstances
from warpcall.resilience import breaker as _breaker
from warpcall.resilience import bulkhead as _bulkhead
from warpcall.resilience.failures import not_sent

if TYPE_CHECKING:
    import asyncio

    import httpx

    from warpcall.channels._http_async import AsyncHTTPClient
    from warpcall.service import ComponentDescriptor

DEFAULT_TIMEOUT = 10.0

Reply = tuple[int, list[tuple[str, str]], bytes]

_ASYNC_CLIENT_LOCK = threading.Lock()  # the first async calls of several threads make one client


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


def _none_reached(owner: str, method: str, path: str, tried: list[tuple[str, Exception]]) -> ServiceCommunicationException:
    """Every instance failed a call before it was sent: the error names each, with its reason."""
    instances = ", ".join(base for base, _ in tried)
    reasons = "; ".join(f"{type(exc).__name__}: {exc}" for _, exc in tried)
    return ServiceCommunicationException(
        f"{owner or 'this channel'}: {method} {path or '/'} reached none of the {len(tried)} instances "
        f"tried ({instances}): {reasons}"
    )


def _failed(url: str, exc: Exception) -> ServiceCommunicationException | None:
    """The exception a failed wire (httpx's TransportError) means for the caller; None for other errors."""
    loaded = sys.modules.get("httpx")  # only httpx makes its errors: none exist before it is imported
    if loaded is None or not isinstance(exc, loaded.TransportError):
        return None
    # a response over the client's limits keeps its type (the HTTP clients raise it as httpx's and warpcall's)
    kind = ResponseTooLargeException if isinstance(exc, ResponseTooLargeException) else ServiceCommunicationException
    return kind(f"calling {url} failed: {type(exc).__name__}: {exc}")


class HTTPXChannel(Channel):
    """A channel speaking HTTP to the component's instances.

    ``make_client()`` / ``make_async_client()`` return the httpx clients the
    channel sends with; they are joinpoints, so an ``@around`` advice can
    return a client of its own (auth headers, event hooks, ...), and whatever
    that client does to a request still happens. When no advice or subclass
    replaces them, the channel sends through warpcall's compiled HTTP/1.1
    client directly, with the same headers, timeouts and errors, and skips the
    httpx client layer.
    """

    def __init__(self) -> None:
        super().__init__()
        self.timeout = DEFAULT_TIMEOUT
        self.keepalive_expiry = DEFAULT_KEEPALIVE_EXPIRY
        self.configuration: ConfigurationManager | None = None
        self._direct: HTTPClient | None = None
        self._direct_async: AsyncHTTPClient | None = None
        self._async_direct = False  # the first async call makes _direct_async
        self._client: httpx.Client | None = None
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        #: the circuit breakers of this channel's instances (None: disabled); set up by setup()
        self.breakers: _breaker.CircuitBreakers | None = None
        #: replies of this status or above go to the breakers (502; 0 while an instance has a record)
        self._outcome_from = _breaker.RECORD_NONE
        #: the limit on calls in flight to the component (None: no limit, and the calls are not wrapped)
        self.bulkhead: _bulkhead.Bulkhead | None = None

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
        super().setup(component_descriptor, address)
        # a channel's own key overrides the global one: http.<channel>.timeout, e.g. http.dispatch-json.timeout
        if self.configuration is not None:
            self.timeout = _check_timeout(self.configuration.get(f"http.{self.name}.timeout", float, self.timeout))
            self.keepalive_expiry = _check_expiry(
                self.configuration.get(f"http.{self.name}.keepalive_expiry", float, self.keepalive_expiry)
            )
        self._setup_resilience()

    # --- circuit breakers and the bulkhead (warpcall.resilience.breaker / .bulkhead) --------------------------

    def _setup_resilience(self) -> None:
        """The breakers (``http.breaker.*``) and the bulkhead (``http.bulkhead.max_in_flight``), per channel."""
        settings = _breaker.BreakerSettings.from_configuration(self.configuration, self.name)
        if settings.enabled:
            self.breakers = _breaker.CircuitBreakers(
                settings,
                owner=self.selector.owner,
                selector=lambda: self.selector,
                watch=self._watch_outcomes,
                probe_timeout=self.timeout,
            )
            self._outcome_from = _breaker.RECORD_FAILURES
        limit = _bulkhead.max_in_flight(self.configuration, self.name)
        if limit:
            # the channel's calls are wrapped only when limited: an unlimited channel pays nothing
            self.bulkhead = _bulkhead.Bulkhead(limit, self.selector.owner)
            vars(self)["request"] = _bulkhead.wrap_sync(self.bulkhead, self.request, lambda: self.timeout)
            vars(self)["request_async"] = _bulkhead.wrap_async(self.bulkhead, self.request_async, lambda: self.timeout)

    def _watch_outcomes(self, watching: bool) -> None:
        """The breakers hold a record: show them every reply (else only 502-504 ones)."""
        self._outcome_from = _breaker.RECORD_ALL if watching else _breaker.RECORD_FAILURES

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

        return httpx.Client(transport=WarpTransport(), timeout=self.timeout)

    def make_async_client(self) -> httpx.AsyncClient:
        """The async httpx client this channel sends with, one per event loop; replace it with an ``@around`` advice."""
        import httpx

        from warpcall.channels._httpx_transport import AsyncWarpTransport

        return httpx.AsyncClient(transport=AsyncWarpTransport(), timeout=self.timeout)

    def _uses_default_client(self, method: str) -> bool:
        # advice (woven into the instance's __dict__) or a subclass replacing the client factory means the
        # client must really be used
        return method not in vars(self) and getattr(type(self), method) is getattr(HTTPXChannel, method)

    def customize(self) -> None:
        super().customize()
        if self._uses_default_client("make_client"):
            self._direct = HTTPClient(timeout=self.timeout, keepalive_expiry=self.keepalive_expiry)
        self._async_direct = self._uses_default_client("make_async_client")

    def _make_direct_async(self) -> AsyncHTTPClient:
        """The direct async client, made by the first async call (its module imports asyncio)."""
        from warpcall.channels._http_async import AsyncHTTPClient

        with _ASYNC_CLIENT_LOCK:
            direct = self._direct_async
            if direct is None:
                direct = self._direct_async = AsyncHTTPClient(
                    timeout=self.timeout, keepalive_expiry=self.keepalive_expiry
                )
            return direct

    def request(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes) -> Reply:
        """Send one ``method`` request to ``url``; ServiceCommunicationException when the wire fails.

        A call that failed before any byte of it reached ``url``'s instance goes to the selector's other
        instances in turn, each once (see :meth:`_fail_over`).
        """
        try:
            direct = self._direct
            if direct is not None:
                timeout = self.timeout
                status, _reason, reply_headers, content = direct._exchange(
                    method, url, headers, body, timeout, timeout, timeout
                )
                if status >= self._outcome_from:  # breaker: a 502-504, or any reply while an instance has a record
                    self._outcome(url, status)
                return status, reply_headers, content
            client = self._client
            if client is None:
                client = self._client = self.make_client()
            response = client.request(method, url, content=body or None, headers=headers)
            if response.status_code >= self._outcome_from:  # breaker
                self._outcome(url, response.status_code)
            return response.status_code, list(response.headers.items()), response.content
        except Exception as exc:
            self._failure(url, exc)  # breaker
            failure = _failed(url, exc)
            if failure is None:
                raise
            if not_sent(exc):
                return self._fail_over(method, url, headers, body, exc, failure)
            raise failure from exc

    def _send_once(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes) -> Reply:
        """What :meth:`request` does, without failing over (it raises the client's error)."""
        direct = self._direct
        if direct is not None:
            timeout = self.timeout
            status, _reason, reply_headers, content = direct._exchange(
                method, url, headers, body, timeout, timeout, timeout
            )
            if status >= self._outcome_from:  # breaker
                self._outcome(url, status)
            return status, reply_headers, content
        client = self._client
        if client is None:
            client = self._client = self.make_client()
        response = client.request(method, url, content=body or None, headers=headers)
        if response.status_code >= self._outcome_from:  # breaker
            self._outcome(url, response.status_code)
        return response.status_code, list(response.headers.items()), response.content

    def _fail_over(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes,
        first: Exception,
        failure: ServiceCommunicationException,
    ) -> Reply:
        """The call failed on ``url`` before any byte of it reached the instance: send it to the selector's
        next instances, each once, until one takes it. A failure that may have reached an instance is raised
        as it is (only an idempotent method may be sent again); when none took it, the error names them all."""
        base, path = _split(url, self.selector.urls)
        tried: list[tuple[str, Exception]] = [(base, first)]
        for other in self.selector.others(base):
            target = other + path
            try:
                return self._send_once(method, target, headers, body)
            except Exception as exc:
                self._failure(target, exc)  # breaker
                again = _failed(target, exc)
                if again is None:
                    raise
                if not not_sent(exc):
                    raise again from exc
                tried.append((other, exc))
        if len(tried) == 1:
            raise failure from first
        raise self._ejected_too(_none_reached(self.selector.owner, method, path, tried)) from tried[-1][1]

    async def request_async(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes) -> Reply:
        """Async :meth:`request`; ServiceCommunicationException when the wire fails, after the same failover."""
        try:
            direct = self._direct_async
            if direct is None and self._async_direct:
                direct = self._make_direct_async()
            if direct is not None:
                timeout = self.timeout
                status, _reason, reply_headers, content = await direct._exchange(
                    method, url, headers, body, timeout, timeout, timeout, timeout
                )
                if status >= self._outcome_from:  # breaker
                    self._outcome(url, status)
                return status, reply_headers, content
            import asyncio  # loaded: this coroutine runs on its loop

            loop = asyncio.get_running_loop()
            client = self._async_clients.get(loop)
            if client is None:
                client = self._async_clients[loop] = self.make_async_client()
            response = await client.request(method, url, content=body or None, headers=headers)
            if response.status_code >= self._outcome_from:  # breaker
                self._outcome(url, response.status_code)
            return response.status_code, list(response.headers.items()), response.content
        except Exception as exc:
            self._failure(url, exc)  # breaker
            failure = _failed(url, exc)
            if failure is None:
                raise
            if not_sent(exc):
                return await self._fail_over_async(method, url, headers, body, exc, failure)
            raise failure from exc

    async def _send_once_async(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes) -> Reply:
        """What :meth:`request_async` does, without failing over (it raises the client's error)."""
        direct = self._direct_async
        if direct is None and self._async_direct:
            direct = self._make_direct_async()
        if direct is not None:
            timeout = self.timeout
            status, _reason, reply_headers, content = await direct._exchange(
                method, url, headers, body, timeout, timeout, timeout, timeout
            )
            if status >= self._outcome_from:  # breaker
                self._outcome(url, status)
            return status, reply_headers, content
        import asyncio  # loaded: this coroutine runs on its loop

        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            client = self._async_clients[loop] = self.make_async_client()
        response = await client.request(method, url, content=body or None, headers=headers)
        if response.status_code >= self._outcome_from:  # breaker
            self._outcome(url, response.status_code)
        return response.status_code, list(response.headers.items()), response.content

    async def _fail_over_async(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes,
        first: Exception,
        failure: ServiceCommunicationException,
    ) -> Reply:
        """Async :meth:`_fail_over`."""
        base, path = _split(url, self.selector.urls)
        tried: list[tuple[str, Exception]] = [(base, first)]
        for other in self.selector.others(base):
            target = other + path
            try:
                return await self._send_once_async(method, target, headers, body)
            except Exception as exc:
                self._failure(target, exc)  # breaker
                again = _failed(target, exc)
                if again is None:
                    raise
                if not not_sent(exc):
                    raise again from exc
                tried.append((other, exc))
        if len(tried) == 1:
            raise failure from first
        raise self._ejected_too(_none_reached(self.selector.owner, method, path, tried)) from tried[-1][1]

    def post(self, url: str, headers: list[tuple[str, str]], body: bytes) -> Reply:
        """POST ``body`` to ``url``; ServiceCommunicationException when the wire fails."""
        return self.request("POST", url, headers, body)

    async def post_async(self, url: str, headers: list[tuple[str, str]], body: bytes) -> Reply:
        """Async POST of ``body`` to ``url``; ServiceCommunicationException when the wire fails."""
        return await self.request_async("POST", url, headers, body)

    def close(self) -> None:
        if self._direct is not None:
            self._direct.close()
        if self._client is not None:
            self._client.close()
