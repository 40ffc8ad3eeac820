"""The httpx transports on warpcall's HTTP/1.1 clients: the one module of the clients that imports httpx.

``WarpTransport`` puts ``HTTPClient`` under an ``httpx.Client``, ``AsyncWarpTransport``
puts ``AsyncHTTPClient`` under an ``httpx.AsyncClient``. A channel builds them only when
advice or a subclass asks for an httpx client; otherwise it calls the clients directly.
"""

from __future__ import annotations

import ssl

import httpx

from warpcall.channels._http_async import AsyncHTTPClient
from warpcall.channels._http_common import ClientTLS, _response, _timeouts
from warpcall.channels._http_sync import HTTPClient
from warpcall.core.transport import DEFAULT_KEEPALIVE_EXPIRY
from warpcall.resilience.deadline import current


class WarpTransport(httpx.BaseTransport):
    """An ``httpx.BaseTransport`` on ``HTTPClient``: ``httpx.Client(transport=WarpTransport())``.

    httpx's per-request timeouts apply (``None`` means this client's default), and the
    deadline in force (:func:`warpcall.resilience.deadline.deadline`, or the call's own when a
    channel sends) bounds the whole exchange and goes out as ``x-rpc-timeout``.
    Response bodies are read whole (up to ``max_body``) before httpx sees them.
    ``keepalive_expiry``: seconds a pooled connection may stay idle and still be reused.
    ``tls``: how ``https://`` servers are checked (see :class:`HTTPClient`).
    """

    def __init__(
        self,
        client: HTTPClient | None = None,
        *,
        timeout: float = 10.0,
        max_body: int = 64 * 2**20,
        keepalive_expiry: float = DEFAULT_KEEPALIVE_EXPIRY,
        tls: ClientTLS | ssl.SSLContext | None = None,
    ) -> None:
        self._owns = client is None
        self.client = (
            client
            if client is not None
            else HTTPClient(timeout=timeout, max_body=max_body, keepalive_expiry=keepalive_expiry, tls=tls)
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        client = self.client
        connect_t, write_t, read_t, _pool_t = _timeouts(request.extensions, client.timeout)
        body = request.read()
        status, reason, headers, content = client._exchange(
            request.method, str(request.url), request.headers.raw, body, connect_t, write_t, read_t,
            current() or 0.0,
        )
        return _response(status, reason, headers, content)

    def close(self) -> None:
        if self._owns:
            self.client.close()


class AsyncWarpTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` on ``AsyncHTTPClient``.

    Use: ``httpx.AsyncClient(transport=AsyncWarpTransport())``.

    httpx's per-request timeouts apply (``None`` means this client's default), and the
    deadline in force bounds the whole exchange and goes out as ``x-rpc-timeout``.
    Response bodies are read whole (up to ``max_body``) before httpx sees them.
    ``keepalive_expiry``: seconds a pooled connection may stay idle and still be reused.
    ``tls``: how ``https://`` servers are checked (see :class:`AsyncHTTPClient`).
    """

    def __init__(
        self,
        client: AsyncHTTPClient | None = None,
        *,
        timeout: float = 10.0,
        max_body: int = 64 * 2**20,
        keepalive_expiry: float = DEFAULT_KEEPALIVE_EXPIRY,
        tls: ClientTLS | ssl.SSLContext | None = None,
    ) -> None:
        self._owns = client is None
        self.client = (
            client
            if client is not None
            else AsyncHTTPClient(timeout=timeout, max_body=max_body, keepalive_expiry=keepalive_expiry, tls=tls)
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        client = self.client
        connect_t, write_t, read_t, pool_t = _timeouts(request.extensions, client.timeout)
        body = await request.aread()
        status, reason, headers, content = await client._exchange(
            request.method, str(request.url), request.headers.raw, body, connect_t, write_t, read_t, pool_t,
            current() or 0.0,
        )
        return _response(status, reason, headers, content)

    async def aclose(self) -> None:
        if self._owns:
            await self.client.aclose()
