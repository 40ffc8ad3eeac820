"""What a failed call did to the server: the first question any retry asks.

A call that failed before any byte of its request reached a server (the connection was
refused or timed out, the pool had no connection for it, a fresh connection failed the
very first write) did nothing there: it can be sent to another instance, whatever the
method does. Any other failure (reset or closed while waiting for the reply, a read
timeout, a bad response) may have come after the server started the work: only a method
declared idempotent may be sent again.

``classify`` says which; ``not_sent`` is its boolean form. Both read httpx's exception
types (the channels' clients raise them, and an advice's httpx client does too) and the
``ServiceCommunicationException`` a channel raises with one of them as its cause. They run
on failures only: httpx is imported already whenever one of its errors exists.
"""

from __future__ import annotations

import sys
from typing import Literal

__all__ = ["MAYBE_SENT", "NOT_SENT", "HandshakeRefused", "RequestNotSent", "Sent", "classify", "not_sent"]

Sent = Literal["not-sent", "maybe-sent"]

#: no byte of the request reached a server: it may go to another instance, always
NOT_SENT: Sent = "not-sent"
#: the server may have received the request, and may have run it: only an idempotent method may go again
MAYBE_SENT: Sent = "maybe-sent"


class RequestNotSent(Exception):
    """Marks a transport error raised before the OS took any byte of the request (a base of such errors)."""


class HandshakeRefused(RequestNotSent):
    """Marks a failed TLS handshake: not sent, so another instance may take the call, but the same instance
    would refuse it again (a certificate does not change between retries): it is not retried, and says
    nothing of the instance's health (a circuit breaker does not count it)."""


def classify(exc: BaseException) -> Sent:
    """``NOT_SENT`` when ``exc`` proves that no byte of the request reached a server, else ``MAYBE_SENT``.

    Not sent: ``httpx.ConnectError`` and ``httpx.ConnectTimeout`` (no connection was made; a
    TLS handshake that failed included), ``httpx.PoolTimeout`` (no connection was free), and
    the clients' ``RequestNotSentError`` (a new connection failed its first write before the
    OS took one byte). A ``ServiceCommunicationException`` is classified by its cause. A
    request that could not be built (``httpx.LocalProtocolError``, an unsupported URL) is
    ``MAYBE_SENT`` too: it fails the same way on any instance, so it is no reason to go to another.
    """
    httpx = sys.modules.get("httpx")  # none of its errors exist before it is imported
    if httpx is None:
        return NOT_SENT if isinstance(exc, RequestNotSent) else MAYBE_SENT
    seen = 0
    error: BaseException | None = exc
    while error is not None and seen < 8:  # a channel's exception carries the client's as its cause
        if isinstance(error, (RequestNotSent, httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
            return NOT_SENT
        if isinstance(error, httpx.TransportError):
            return MAYBE_SENT  # the transport's own verdict: the wrapping exception cannot know better
        error = error.__cause__
        seen += 1
    return MAYBE_SENT


def not_sent(exc: BaseException) -> bool:
    """True when ``exc`` proves that no byte of the request reached a server (see :func:`classify`)."""
    return classify(exc) == NOT_SENT
