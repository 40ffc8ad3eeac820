"""HTTPXChannel: the base of HTTP channels, with httpx clients as the customization point."""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING

import httpx

from warpcall.channels._http_common import _check_timeout
from warpcall.channels.base import Channel
from warpcall.channels.transport import AsyncHTTPClient, AsyncWarpTransport, HTTPClient, WarpTransport
from warpcall.di import inject
from warpcall.di.configuration import ConfigurationManager, inject_value
from warpcall.exceptions import ServiceCommunicationException
from warpcall.registry.contract import ChannelInstances

if TYPE_CHECKING:
    from warpcall.service import ComponentDescriptor

DEFAULT_TIMEOUT = 10.0

Reply = tuple[int, list[tuple[str, str]], bytes]


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
        self.configuration: ConfigurationManager | None = None
        self._direct: HTTPClient | None = None
        self._direct_async: AsyncHTTPClient | None = None
        self._client: httpx.Client | None = None
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    @inject_value("http.timeout", default=DEFAULT_TIMEOUT)
    def set_timeout(self, timeout: float) -> None:
        """Seconds every call may take (connect, send, receive), from the ``http.timeout`` configuration key."""
        self.timeout = _check_timeout(timeout)

    @inject()
    def set_configuration(self, configuration: ConfigurationManager) -> None:
        self.configuration = configuration

    def setup(self, component_descriptor: ComponentDescriptor, address: ChannelInstances | None) -> None:
        super().setup(component_descriptor, address)
        # a channel's own key overrides the global one: http.<channel>.timeout, e.g. http.dispatch-json.timeout
        if self.configuration is not None:
            self.timeout = _check_timeout(self.configuration.get(f"http.{self.name}.timeout", float, self.timeout))

    def make_client(self) -> httpx.Client:
        """The sync httpx client this channel sends with; replace it with an ``@around`` advice."""
        return httpx.Client(transport=WarpTransport(), timeout=self.timeout)

    def make_async_client(self) -> httpx.AsyncClient:
        """The async httpx client this channel sends with, one per event loop; replace it with an ``@around`` advice."""
        return httpx.AsyncClient(transport=AsyncWarpTransport(), timeout=self.timeout)

    def _uses_default_client(self, method: str) -> bool:
        # advice (woven into the instance's __dict__) or a subclass replacing the client factory means the
        # client must really be used
        return method not in vars(self) and getattr(type(self), method) is getattr(HTTPXChannel, method)

    def customize(self) -> None:
        super().customize()
        if self._uses_default_client("make_client"):
            self._direct = HTTPClient(timeout=self.timeout)
        if self._uses_default_client("make_async_client"):
            self._direct_async = AsyncHTTPClient(timeout=self.timeout)

    def request(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes) -> Reply:
        """Send one ``method`` request to ``url``; ServiceCommunicationException when the wire fails."""
        try:
            direct = self._direct
            if direct is not None:
                timeout = self.timeout
                status, _reason, reply_headers, content = direct._exchange(
                    method, url, headers, body, timeout, timeout, timeout
                )
                return status, reply_headers, content
            client = self._client
            if client is None:
                client = self._client = self.make_client()
            response = client.request(method, url, content=body or None, headers=headers)
            return response.status_code, list(response.headers.items()), response.content
        except httpx.TransportError as exc:
            raise ServiceCommunicationException(f"calling {url} failed: {type(exc).__name__}: {exc}") from exc

    async def request_async(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes) -> Reply:
        """Async :meth:`request`; ServiceCommunicationException when the wire fails."""
        try:
            direct = self._direct_async
            if direct is not None:
                timeout = self.timeout
                status, _reason, reply_headers, content = await direct._exchange(
                    method, url, headers, body, timeout, timeout, timeout, timeout
                )
                return status, reply_headers, content
            loop = asyncio.get_running_loop()
            client = self._async_clients.get(loop)
            if client is None:
                client = self._async_clients[loop] = self.make_async_client()
            response = await client.request(method, url, content=body or None, headers=headers)
            return response.status_code, list(response.headers.items()), response.content
        except httpx.TransportError as exc:
            raise ServiceCommunicationException(f"calling {url} failed: {type(exc).__name__}: {exc}") from exc

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
