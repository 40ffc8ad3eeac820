"""httpx's exception types joined with warpcall's: imported by the first such failure, as httpx is.

The HTTP clients raise httpx's types (they sit under ``httpx.Client`` as transports), and a
channel turns httpx's transport errors into ``ServiceCommunicationException``. An error that
is also a warpcall type keeps its meaning on both sides of that line.
"""

from __future__ import annotations

import httpx

from warpcall.exceptions import ResponseTooLargeException
from warpcall.resilience.failures import HandshakeRefused, RequestNotSent


class ResponseTooLargeError(httpx.RemoteProtocolError, ResponseTooLargeException):
    """A response broke one of the client's size limits; the connection was closed, never reused.

    An ``httpx.RemoteProtocolError`` for httpx's callers, a ``ResponseTooLargeException`` (a
    ``ServiceCommunicationException``) for warpcall's.
    """


class RequestNotSentError(httpx.WriteError, RequestNotSent):
    """A new connection failed its first write before the OS took any byte of the request.

    An ``httpx.WriteError`` for httpx's callers; ``warpcall.resilience.failures`` classifies it
    as not sent, so a channel tries the call on its next instance.
    """


class TLSRefusedError(httpx.ConnectError, HandshakeRefused):
    """The TLS handshake failed: the server's certificate did not verify (CA, host name, expiry), or the
    server refused this client's certificate or none. The message says which.

    An ``httpx.ConnectError`` for httpx's callers; no byte of the request went out, so a channel tries the
    call on its other instances, but never this one again (it would refuse the same way).
    """
