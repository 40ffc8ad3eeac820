"""The dispatch envelope, wire-compatible with aspyx-service.

Request ``{"method": "<component>:<service>:<method>", "args": [...]}``;
response ``{"result": ..., "exception": null | {"type": ..., "message": ...}}``.
Extra keys are ignored on decode; an old peer's plain-string exception is accepted.

One source for both builds: compiled by Cython with the C types of ``ext/warpcall/core/envelope.pxd``,
or run as it stands.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any, Callable

import msgpack

from warpcall.exceptions import MalformedRequestException, ProtocolException

if TYPE_CHECKING:  # type checkers read the shim: Cython ships no types for its pure-mode names
    from warpcall import _cython_shim as cython
else:
    try:
        import cython
    except ImportError:  # plain Python without Cython installed
        from warpcall import _cython_shim as cython

__all__ = [
    "decode_request_json",
    "decode_request_msgpack",
    "decode_response_json",
    "decode_response_msgpack",
    "encode_request_json",
    "encode_request_msgpack",
    "encode_response_json",
    "encode_response_msgpack",
    "split_method",
]

_orjson_dumps: Callable[..., bytes] | None
try:  # orjson is a dependency where it has wheels; the stdlib covers the rest and what orjson refuses
    import orjson
except ImportError:  # pragma: no cover - exercised where orjson cannot be installed
    _orjson_dumps = None
else:
    # bound once: the per-call path reads module globals, not the module's attributes
    _orjson_dumps = orjson.dumps
    _orjson_loads = orjson.loads
    _orjson_encode_error = orjson.JSONEncodeError
    _orjson_decode_error = orjson.JSONDecodeError
    _orjson_options = orjson.OPT_NON_STR_KEYS

_stdlib_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode
_stdlib_decode = json.loads
_unpackb = msgpack.unpackb
# one Packer per thread: packb() builds (and frees) a Packer and its buffer on every call
_local = threading.local()


def _pack(value: Any) -> bytes:
    try:
        packer = _local.packer
    except AttributeError:
        packer = _local.packer = msgpack.Packer(use_bin_type=True)
    data: bytes = packer.pack(value)
    return data


@cython.locals(text=str)
def _encode_json(value: Any) -> bytes:
    if _orjson_dumps is not None:
        try:
            return _orjson_dumps(value, option=_orjson_options)
        except _orjson_encode_error:  # e.g. integers beyond 64 bits: the stdlib writes them
            pass
    text = _stdlib_encode(value)
    return text.encode()


def _json_decode(body: Any) -> Any:
    if _orjson_dumps is not None:
        try:
            return _orjson_loads(body)
        except _orjson_decode_error:  # the stdlib reads what orjson refuses (big integers) or says why not
            pass
    return _stdlib_decode(body)


@cython.locals(text=str, parts=list)
def split_method(name: object) -> tuple[str, str, str]:
    """Split ``component:service:method`` into its three non-empty parts."""
    if type(name) is not str:
        raise MalformedRequestException(
            f"'method' must be a string 'component:service:method', got {type(name).__name__}"
        )
    text = name
    parts = text.split(":")
    if len(parts) != 3 or not parts[0] or not parts[1] or not parts[2]:
        raise MalformedRequestException(f"'method' must look like 'component:service:method', got {name!r}")
    return parts[0], parts[1], parts[2]


@cython.locals(envelope=dict)
def _check_request(data: object) -> tuple[str, list[Any]]:
    if type(data) is not dict:
        raise MalformedRequestException(
            f"request envelope must be an object with 'method' and 'args', got {type(data).__name__}"
        )
    envelope = data
    method = envelope.get("method")
    if method is None:
        raise MalformedRequestException("request envelope has no 'method'")
    split_method(method)
    args = envelope.get("args", [])
    if type(args) is not list:
        if type(args) is tuple:
            args = list(args)
        else:
            raise MalformedRequestException(f"request 'args' must be a list, got {type(args).__name__}")
    return method, args


@cython.locals(envelope=dict)
def _check_response(data: object) -> tuple[Any, Any]:
    if type(data) is not dict:
        raise ProtocolException("response envelope must be an object with 'result' and 'exception'")
    envelope = data
    if "result" not in envelope and "exception" not in envelope:
        raise ProtocolException("response envelope must be an object with 'result' and 'exception'")
    exception = envelope.get("exception")
    if exception is not None and type(exception) is not dict:
        exception = {"type": "", "message": str(exception)}
    return envelope.get("result"), exception


def encode_request_json(method: str, args: list[Any]) -> bytes:
    """Encode a request envelope as JSON bytes."""
    return _encode_json({"method": method, "args": args})


def decode_request_json(body: bytes) -> tuple[str, list[Any]]:
    """Decode and validate a JSON request envelope into ``(method, args)``."""
    try:
        data = _json_decode(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedRequestException(f"request body is not valid JSON: {exc}") from None
    return _check_request(data)


def encode_response_json(result: Any, exception: dict[str, Any] | None = None) -> bytes:
    """Encode a response envelope as JSON bytes."""
    return _encode_json({"result": result, "exception": exception})


def decode_response_json(body: bytes) -> tuple[Any, dict[str, Any] | None]:
    """Decode a JSON response envelope into ``(result, exception)``."""
    try:
        data = _json_decode(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolException(f"response body is not valid JSON: {exc}") from None
    return _check_response(data)


def encode_request_msgpack(method: str, args: list[Any]) -> bytes:
    """Encode a request envelope as msgpack bytes."""
    return _pack({"method": method, "args": args})


def decode_request_msgpack(body: bytes) -> tuple[str, list[Any]]:
    """Decode and validate a msgpack request envelope into ``(method, args)``."""
    try:
        data = _unpackb(body, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types for bad input
        raise MalformedRequestException(f"request body is not valid msgpack: {exc}") from None
    return _check_request(data)


def encode_response_msgpack(result: Any, exception: dict[str, Any] | None = None) -> bytes:
    """Encode a response envelope as msgpack bytes."""
    return _pack({"result": result, "exception": exception})


def decode_response_msgpack(body: bytes) -> tuple[Any, dict[str, Any] | None]:
    """Decode a msgpack response envelope into ``(result, exception)``."""
    try:
        data = _unpackb(body, raw=False)
    except Exception as exc:
        raise ProtocolException(f"response body is not valid msgpack: {exc}") from None
    return _check_response(data)
