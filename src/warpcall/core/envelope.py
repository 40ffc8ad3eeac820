"""The dispatch envelope, wire-compatible with aspyx-service.

Request ``{"method": "<component>:<service>:<method>", "args": [...]}``;
response ``{"result": ..., "exception": null | {"type": ..., "message": ...}}``.
Extra keys are ignored on decode; an old peer's plain-string exception is accepted.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import msgpack

from warpcall.exceptions import MalformedRequestException, ProtocolException

try:  # orjson is a dependency where it has wheels; the stdlib covers the rest and what orjson refuses
    import orjson
except ImportError:  # pragma: no cover - exercised where orjson cannot be installed
    orjson = None

_json_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


_local = threading.local()


def _pack(value: Any) -> bytes:
    # one Packer per thread: packb() builds (and frees) a Packer and its buffer on every call
    try:
        packer = _local.packer
    except AttributeError:
        packer = _local.packer = msgpack.Packer(use_bin_type=True)
    return packer.pack(value)


def _encode_json(value: Any) -> bytes:
    if orjson is not None:
        try:
            return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
        except orjson.JSONEncodeError:  # e.g. integers beyond 64 bits: the stdlib writes them
            pass
    return _json_encoder.encode(value).encode()


def _json_decode(body: bytes) -> Any:
    if orjson is not None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:  # the stdlib reads what orjson refuses (big integers) or says why not
            pass
    return json.loads(body)


def split_method(name: object) -> tuple[str, str, str]:
    """Split ``component:service:method`` into its three non-empty parts."""
    if type(name) is not str:
        raise MalformedRequestException(
            f"'method' must be a string 'component:service:method', got {type(name).__name__}"
        )
    parts = name.split(":")
    if len(parts) != 3 or not all(parts):
        raise MalformedRequestException(f"'method' must look like 'component:service:method', got {name!r}")
    return parts[0], parts[1], parts[2]


def _check_request(data: object) -> tuple[str, list[Any]]:
    if type(data) is not dict:
        raise MalformedRequestException(
            f"request envelope must be an object with 'method' and 'args', got {type(data).__name__}"
        )
    method = data.get("method")
    if method is None:
        raise MalformedRequestException("request envelope has no 'method'")
    split_method(method)
    args = data.get("args", [])
    if type(args) is not list:
        if type(args) is tuple:
            args = list(args)
        else:
            raise MalformedRequestException(f"request 'args' must be a list, got {type(args).__name__}")
    return method, args


def _check_response(data: object) -> tuple[Any, Any]:
    if type(data) is not dict or ("result" not in data and "exception" not in data):
        raise ProtocolException("response envelope must be an object with 'result' and 'exception'")
    exception = data.get("exception")
    if exception is not None and type(exception) is not dict:
        exception = {"type": "", "message": str(exception)}
    return data.get("result"), exception


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
        data = msgpack.unpackb(body, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types for bad input
        raise MalformedRequestException(f"request body is not valid msgpack: {exc}") from None
    return _check_request(data)


def encode_response_msgpack(result: Any, exception: dict[str, Any] | None = None) -> bytes:
    """Encode a response envelope as msgpack bytes."""
    return _pack({"result": result, "exception": exception})


def decode_response_msgpack(body: bytes) -> tuple[Any, dict[str, Any] | None]:
    """Decode a msgpack response envelope into ``(result, exception)``."""
    try:
        data = msgpack.unpackb(body, raw=False)
    except Exception as exc:
        raise ProtocolException(f"response body is not valid msgpack: {exc}") from None
    return _check_response(data)
