"""HTTP/1.1 keep-alive clients on the compiled core, and the httpx transports built on them.

``HTTPClient`` (sync) and ``AsyncHTTPClient`` are the direct path: one call is a
request written by ``warpcall.core.transport.build_request``, one ``send`` and as many
``recv`` as the response needs, parsed by ``warpcall.core.transport.ResponseParser``.
``WarpTransport`` / ``AsyncWarpTransport`` put the same machinery under an
``httpx.Client`` / ``httpx.AsyncClient``, so whatever the httpx client does to a
request (event hooks, auth, default headers) still reaches the server.

Both paths raise httpx's exception types with messages that name the URL:
``ConnectError``/``ConnectTimeout`` (connect), ``WriteError``/``WriteTimeout``
(send), ``ReadError``/``ReadTimeout`` (receive), ``RemoteProtocolError`` (the server
broke HTTP/1.1), ``LocalProtocolError`` (a header or method that cannot be sent),
``PoolTimeout`` (async: every connection busy).

A response over a size limit raises ``ResponseTooLargeError``: both httpx's
``RemoteProtocolError`` and warpcall's ``ResponseTooLargeException`` (which a channel
raises in turn), and its connection is closed, never reused. The limits
(``warpcall.core.transport``): the head, interim 1xx heads included, 64 KiB and 100
header lines; a status line, chunk-size line or trailer line 8 KiB; chunk extensions
and trailers 64 KiB together and 100 trailer lines; the body ``max_body`` (64 MiB).

A server that answers before it has read the whole request (a 413 to a body over its
limit) and then closes, or stops reading, has that answer returned as the reply: the
async client stops sending once it has it, the sync one when its send fails or times out.
On httpx's own transports (below) these are httpx's limits and behaviour.

Every call is bounded: connect, each send and each receive wait at most the
timeout (``None`` anywhere means the client's default, never "forever").
Connections are pooled per thread (sync) and per event loop (async), per
(scheme, host, port). A pooled connection that the server closed while it was idle
is noticed before reuse and replaced; a call whose first send fails on a reused
connection (no byte went out) is retried once on a new one. ``https`` URLs take the
same path over TLS (``ssl.SSLSocket``; ``ClientTLS`` says how servers are checked:
certificates and host names verified by default; a refused handshake raises
``TLSRefusedError``, an ``httpx.ConnectError``). Async calls on an event loop that cannot
watch sockets (Windows' proactor) are delegated to httpx's ``AsyncHTTPTransport``.

The sync client lives in ``_http_sync``, the async one in ``_http_async``, the httpx
transports in ``_httpx_transport``, what they share in ``_http_common``; this module is
their public import path, each name imported on first use (PEP 562): the sync client
alone loads neither asyncio nor httpx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

_EXPORTS = {
    "AsyncHTTPClient": "warpcall.channels._http_async",
    "AsyncWarpTransport": "warpcall.channels._httpx_transport",
    "ClientTLS": "warpcall.channels._http_common",
    "HTTPClient": "warpcall.channels._http_sync",
    "ResponseTooLargeError": "warpcall.channels._http_errors",
    "WarpTransport": "warpcall.channels._httpx_transport",
}

if TYPE_CHECKING:
    from warpcall.channels._http_async import AsyncHTTPClient
    from warpcall.channels._http_common import ClientTLS
    from warpcall.channels._http_errors import ResponseTooLargeError
    from warpcall.channels._http_sync import HTTPClient
    from warpcall.channels._httpx_transport import AsyncWarpTransport, WarpTransport
else:
    from warpcall._lazy import export_lazily

    __getattr__, __dir__ = export_lazily(__name__, _EXPORTS)

__all__ = ["AsyncHTTPClient", "AsyncWarpTransport", "ClientTLS", "HTTPClient", "ResponseTooLargeError", "WarpTransport"]
