"""Every exception warpcall raises, in one hierarchy.

::

    WarpcallError
    ├── ServiceException                      service layer: lookup, configuration, calls
    │   ├── ServiceCommunicationException     the wire failed: refused, reset, timed out, no URL
    │   │   ├── ResponseTooLargeException     a response over the client's limits (head, trailers, body)
    │   │   ├── DeadlineExceeded              the call's deadline passed (client side, or the server's 504)
    │   │   ├── CircuitOpenException          every instance of the component is ejected by its breaker
    │   │   └── OverloadedException           a bulkhead is full: the server's 503 + Retry-After, or the client's
    │   ├── RemoteServiceException            the remote implementation raised; carries its type and message
    │   ├── ProtocolException                 a peer sent something that is not a valid call (HTTP 4xx)
    │   │   ├── MalformedRequestException     body is not a valid envelope             (400)
    │   │   ├── UnknownMethodException        no registered service declares the method (404)
    │   │   ├── InvalidArgumentsException     arguments do not match the signature     (422)
    │   │   ├── RequestTooLargeException      body over the configured size limit      (413)
    │   │   └── UnsupportedMediaTypeException content type is not understood           (415)
    │   └── AuthorizationException            the caller may not do this (403)
    │       └── TokenException                (401)
    │           ├── MissingTokenException
    │           ├── InvalidTokenException
    │           └── TokenExpiredException
    ├── MarshalException (also TypeError)     a value does not fit its declared type
    └── warpcall.di.DIException               the container cannot be built (defined in warpcall.di)

Messages name the thing (service, method, URL, type) and what the user can do.
"""

from __future__ import annotations


class WarpcallError(Exception):
    """Root of every exception raised by warpcall."""


class ServiceException(WarpcallError):
    """A service cannot be found, configured or called."""


class ServiceCommunicationException(ServiceException):
    """The transport failed: connection refused or reset, timeout, or no URL to call."""


class DeadlineExceeded(ServiceCommunicationException):
    """The call's deadline passed before its reply arrived (raised by the caller), or before the server
    started the work (the server's 504, which says the implementation did not run)."""


class CircuitOpenException(ServiceCommunicationException):
    """Every instance of a component is ejected by its circuit breaker; the message names them."""


class OverloadedException(ServiceCommunicationException):
    """A bulkhead is full: the server refused with 503 (its ``Retry-After`` in :attr:`retry_after`), or the
    client's limit on calls in flight to a component stayed full until the call's deadline."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        #: seconds the server asked the caller to wait before trying it again (None: not said)
        self.retry_after = retry_after


class ResponseTooLargeException(ServiceCommunicationException):
    """A response broke one of the HTTP client's size limits: its head (64 KiB, 1xx heads included), header
    or trailer lines (100 each), a status, chunk-size or trailer line (8 KiB), chunk extensions and trailers
    together (64 KiB), or the body (``max_body``). The connection is closed, never reused."""


class RemoteServiceException(ServiceException):
    """The remote implementation raised; ``remote_type`` and ``remote_message`` say what."""

    def __init__(self, message: str, remote_type: str = "", remote_message: str = "") -> None:
        super().__init__(message)
        self.remote_type = remote_type
        self.remote_message = remote_message


class ProtocolException(ServiceException):
    """A peer sent something that is not a valid call. ``status`` is the HTTP status to answer with."""

    status: int = 400


class MalformedRequestException(ProtocolException):
    """The body is not a valid request envelope."""

    status = 400


class UnknownMethodException(ProtocolException):
    """No registered service declares the requested method."""

    status = 404


class InvalidArgumentsException(ProtocolException):
    """The arguments do not match the method's signature."""

    status = 422


class RequestTooLargeException(ProtocolException):
    """The body is larger than the configured limit."""

    status = 413


class UnsupportedMediaTypeException(ProtocolException):
    """The content type of the body is not one the endpoint speaks."""

    status = 415


class AuthorizationException(ServiceException):
    """The caller is not allowed to do this."""

    status: int = 403


class TokenException(AuthorizationException):
    """A problem with the caller's token."""

    status = 401


class MissingTokenException(TokenException):
    """No token was sent."""


class InvalidTokenException(TokenException):
    """The token could not be verified."""


class TokenExpiredException(TokenException):
    """The token has expired."""


class MarshalException(WarpcallError, TypeError):
    """A value does not match its declared type, so it cannot be marshalled or unmarshalled."""
