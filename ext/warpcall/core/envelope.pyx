"""Compiled twin of warpcall._pure.envelope: the dispatch request and response envelopes."""

import json
import threading

import msgpack

from warpcall.exceptions import MalformedRequestException, ProtocolException

try:  # orjson is a dependency where it has wheels; the stdlib covers the rest and what orjson refuses
    import orjson
    _orjson_dumps = orjson.dumps
    _orjson_loads = orjson.loads
    _orjson_encode_error = orjson.JSONEncodeError
    _orjson_decode_error = orjson.JSONDecodeError
    _orjson_options = orjson.OPT_NON_STR_KEYS
except ImportError:
    _orjson_dumps = None

cdef object _stdlib_encode = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), check_circular=False
).encode
cdef object _stdlib_decode = json.loads


cdef bytes _encode_json(object value):
    if _orjson_dumps is not None:
        try:
            return _orjson_dumps(value, option=_orjson_options)
        except _orjson_encode_error:  # e.g. integers beyond 64 bits: the stdlib writes them
            pass
    return (<str>_stdlib_encode(value)).encode()


cdef object _json_decode(object body):
    if _orjson_dumps is not None:
        try:
            return _orjson_loads(body)
        except _orjson_decode_error:  # the stdlib reads what orjson refuses (big integers) or says why not
            pass
    return _stdlib_decode(body)
cdef object _unpackb = msgpack.unpackb
# one Packer per thread: packb() builds (and frees) a Packer and its buffer on every call
cdef object _local = threading.local()


cdef bytes _pack(object value):
    try:
        packer = _local.packer
    except AttributeError:
        packer = _local.packer = msgpack.Packer(use_bin_type=True)
    return packer.pack(value)


cpdef tuple split_method(object name):
    """Split ``component:service:method`` into its three non-empty parts."""
    if type(name) is not str:
        raise MalformedRequestException(
            f"'method' must be a string 'component:service:method', got {type(name).__name__}"
        )
    cdef list parts = (<str>name).split(":")
    if len(parts) != 3 or not parts[0] or not parts[1] or not parts[2]:
        raise MalformedRequestException(f"'method' must look like 'component:service:method', got {name!r}")
    return parts[0], parts[1], parts[2]


cdef tuple _check_request(object data):
    if type(data) is not dict:
        raise MalformedRequestException(
            f"request envelope must be an object with 'method' and 'args', got {type(data).__name__}"
        )
    cdef dict envelope = <dict>data
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


cdef tuple _check_response(object data):
    if type(data) is not dict or ("result" not in data and "exception" not in data):
        raise ProtocolException("response envelope must be an object with 'result' and 'exception'")
    cdef dict envelope = <dict>data
    exception = envelope.get("exception")
    if exception is not None and type(exception) is not dict:
        exception = {"type": "", "message": str(exception)}
    return envelope.get("result"), exception


def encode_request_json(str method, list args):
    """Encode a request envelope as JSON bytes."""
    return _encode_json({"method": method, "args": args})


def decode_request_json(body):
    """Decode and validate a JSON request envelope into ``(method, args)``."""
    try:
        data = _json_decode(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedRequestException(f"request body is not valid JSON: {exc}") from None
    return _check_request(data)


def encode_response_json(result, exception=None):
    """Encode a response envelope as JSON bytes."""
    return _encode_json({"result": result, "exception": exception})


def decode_response_json(body):
    """Decode a JSON response envelope into ``(result, exception)``."""
    try:
        data = _json_decode(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolException(f"response body is not valid JSON: {exc}") from None
    return _check_response(data)


def encode_request_msgpack(str method, list args):
    """Encode a request envelope as msgpack bytes."""
    return _pack({"method": method, "args": args})


def decode_request_msgpack(body):
    """Decode and validate a msgpack request envelope into ``(method, args)``."""
    try:
        data = _unpackb(body, raw=False, strict_map_key=True)
    except Exception as exc:
        raise MalformedRequestException(f"request body is not valid msgpack: {exc}") from None
    return _check_request(data)


def encode_response_msgpack(result, exception=None):
    """Encode a response envelope as msgpack bytes."""
    return _pack({"result": result, "exception": exception})


def decode_response_msgpack(body):
    """Decode a msgpack response envelope into ``(result, exception)``."""
    try:
        data = _unpackb(body, raw=False)
    except Exception as exc:
        raise ProtocolException(f"response body is not valid msgpack: {exc}") from None
    return _check_response(data)
