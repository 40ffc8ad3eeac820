"""What both ends of the wire share: media types, the method header, error names and statuses, codecs.

The client (``warpcall.channels``) and the server (``warpcall.server``) each
import this package and never each other. It holds only constants and the
per-method protobuf codec cache; the codec itself (``warpcall.wire.protobuf_codec``,
which loads protobuf) is imported the first time a protobuf call needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from warpcall.exceptions import (
    AuthorizationException,
    DeadlineExceeded,
    InvalidArgumentsException,
    InvalidTokenException,
    MalformedRequestException,
    MissingTokenException,
    OverloadedException,
    ProtocolException,
    RequestTooLargeException,
    ServiceException,
    TokenException,
    TokenExpiredException,
    UnknownMethodException,
    UnsupportedMediaTypeException,
)
from warpcall.wire.numbers import FieldNumber

if TYPE_CHECKING:
    from warpcall.wire.protobuf_codec import ProtobufMethodCodec

__all__ = [
    "CALLER_ERRORS",
    "FieldNumber",
    "JSON",
    "METHOD_HEADER",
    "METHOD_HEADER_BYTES",
    "MSGPACK",
    "PROTOBUF",
    "REFUSALS",
    "STATUS_ERRORS",
    "codec_of",
    "status_of",
]

JSON = "application/json"
MSGPACK = "application/msgpack"
PROTOBUF = "application/x-protobuf"

#: names the method of a protobuf body (the JSON and msgpack envelopes carry it inside)
METHOD_HEADER = "x-rpc-method"
METHOD_HEADER_BYTES = METHOD_HEADER.encode()

#: the caller-side errors a server may name in a 4xx reply; a fixed table, never an import by name
CALLER_ERRORS: dict[str, type[ServiceException]] = {
    cls.__name__: cls
    for cls in (
        MalformedRequestException,
        UnknownMethodException,
        InvalidArgumentsException,
        RequestTooLargeException,
        UnsupportedMediaTypeException,
        AuthorizationException,
        TokenException,
        MissingTokenException,
        InvalidTokenException,
        TokenExpiredException,
    )
}

#: calls a server refused unstarted, by the status and the name its reply carries (504 past the caller's
#: deadline, 503 for a full queue, with Retry-After): the caller may try again, elsewhere or later
REFUSALS: dict[tuple[int, str], type[ServiceException]] = {
    (504, DeadlineExceeded.__name__): DeadlineExceeded,
    (503, OverloadedException.__name__): OverloadedException,
}

#: what a 4xx means when the reply does not name a warpcall exception (a plain FastAPI route, a proxy)
STATUS_ERRORS: dict[int, type[ServiceException]] = {
    401: TokenException,
    403: AuthorizationException,
    413: RequestTooLargeException,
    415: UnsupportedMediaTypeException,
    422: InvalidArgumentsException,
}


def status_of(exc: BaseException) -> int:
    """The HTTP status a server answers ``exc`` with: the one a protocol or authorization error carries, else 500."""
    if isinstance(exc, (ProtocolException, AuthorizationException)):
        return exc.status
    return 500


def codec_of(method: Any) -> ProtobufMethodCodec:
    """The protobuf codec of a service method descriptor, built on first use and kept in its plans."""
    codec: ProtobufMethodCodec | None = method.plans.get("dispatch-protobuf")
    if codec is None:
        # a component whose peers run aspyx-service speaks its messages instead (warpcall.wire.protobuf_aspyx)
        from warpcall.wire.protobuf_aspyx import aspyx_codec_of

        codec = aspyx_codec_of(method)
    if codec is None:
        # protobuf loads here, on the first protobuf call, not with the package
        from warpcall.wire.protobuf_codec import codec_for

        codec = method.plans["dispatch-protobuf"] = codec_for(
            method.qualified, method.param_names, method.param_types, method.return_type, method
        )
    return codec
