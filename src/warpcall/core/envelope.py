"""The dispatch envelope, wire-compatible with aspyx-service.

Request ``{"method": "<component>:<service>:<method>", "args": [...]}``;
response ``{"result": ..., "exception": null | {"type": ..., "message": ...}}``.
Extra keys are ignored on decode; an old peer's plain-string exception is accepted.

What a signature admits and the envelopes carry or refuse (the checks sit where the fast
readers and writers fail, never on the common path):

- integers of any size: JSON writes them as they are; msgpack carries -2**63 .. 2**64-1 natively
  and any other as extension type ``BIG_INT_EXT`` (big-endian two's complement); orjson reads
  JSON integers beyond 64 bits as floats, so :func:`decode_request_json_exact` and
  :func:`decode_response_json_exact` read them exactly (the callers use them where a rounded
  number was refused, or could be taken silently);
- inf and nan: msgpack carries them; JSON has no such numbers, and the plans mark them
  (``NonFiniteFloat``) so the JSON writer refuses them with a ``MarshalException`` naming where
  they are (orjson would write ``null``). ``NaN`` and ``Infinity`` sent by other peers are read;
- strings holding a lone surrogate are not Unicode text: no writer sends them
  (``MarshalException``), and a JSON body holding one (``"\\ud800"``) is refused;
- nesting: an envelope nests at most ``MAX_DEPTH`` arrays and objects (maps) deep, the envelope
  itself counting one; a deeper body is refused (``MalformedRequestException``, 400), a deeper value
  is not sent (``MarshalException``).

One source for both builds: compiled by Cython with the C types of ``ext/warpcall/core/envelope.pxd``,
or run as it stands.
"""

from __future__ import annotations

import json
import re
import threading
from typing import TYPE_CHECKING, Any, Callable

import msgpack

from warpcall.exceptions import MalformedRequestException, MarshalException, ProtocolException

if TYPE_CHECKING:  # type checkers read the shim: Cython ships no types for its pure-mode names
    from warpcall import _cython_shim as cython
else:
    try:
        import cython
    except ImportError:  # plain Python without Cython installed
        from warpcall import _cython_shim as cython

__all__ = [
    "BIG_INT_EXT",
    "MAX_DEPTH",
    "decode_request_json",
    "decode_request_json_exact",
    "decode_request_msgpack",
    "decode_response_json",
    "decode_response_json_exact",
    "decode_response_msgpack",
    "may_round_integers",
    "msgpack_default",
    "msgpack_ext_hook",
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

#: how many arrays and objects (msgpack: arrays and maps) deep an envelope may nest, the envelope itself
#: counting one: orjson's and msgpack's own limit, kept by the stdlib reader too
MAX_DEPTH = 1024
#: the msgpack extension type carrying an integer outside msgpack's -2**63 .. 2**64-1
BIG_INT_EXT = 1

# allow_nan=False: JSON has no inf or nan, and the stdlib would write NaN / Infinity
_stdlib_encode = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), check_circular=False, allow_nan=False
).encode
_stdlib_decode = json.loads
_unpackb = msgpack.unpackb
_stack_error = msgpack.StackError
# one Packer per thread: packb() builds (and frees) a Packer and its buffer on every call
_local = threading.local()
# 19 digits or more: the only integers orjson may have read as floats (beyond -2**63 .. 2**64-1)
_long_digits = re.compile(rb"[0-9]{19}").search


class _Refused(ValueError):
    """A body that parses but is refused: nesting beyond MAX_DEPTH, a lone surrogate."""


def _big_int_ext(value: Any) -> Any:
    # msgpack calls this only for what it cannot pack itself: an int beyond 64 bits, or an unknown type
    if isinstance(value, int):
        return msgpack.ExtType(BIG_INT_EXT, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))
    raise TypeError(f"cannot serialize {type(value).__name__!r} object")


def _read_ext(code: int, data: bytes) -> Any:
    if code == BIG_INT_EXT:
        return int.from_bytes(data, "big", signed=True)
    return msgpack.ExtType(code, data)


#: msgpack's ``default`` and ``ext_hook`` carrying integers beyond 64 bits, for other msgpack writers and readers
msgpack_default: Callable[[Any], Any] = _big_int_ext
msgpack_ext_hook: Callable[[int, bytes], Any] = _read_ext


def _pack(value: Any) -> bytes:
    try:
        packer = _local.packer
    except AttributeError:
        packer = _local.packer = msgpack.Packer(use_bin_type=True, default=_big_int_ext)
    try:
        data: bytes = packer.pack(value)
    except (ValueError, TypeError, OverflowError) as exc:  # a lone surrogate, nesting, an unknown type
        raise _unencodable("msgpack", value, exc) from None
    return data


@cython.locals(text=str)
def _encode_json(value: Any) -> bytes:
    deep = False
    if _orjson_dumps is not None:
        try:
            return _orjson_dumps(value, option=_orjson_options)
        except _orjson_encode_error as exc:
            # integers beyond 64 bits, which the stdlib writes; a value JSON cannot carry; or nesting past
            # orjson's 255 levels, which goes to the writer that counts up to MAX_DEPTH (the stdlib's C
            # encoder nests as deep as the interpreter lets it: on 3.12+ far beyond MAX_DEPTH)
            deep = "ecursion" in str(exc)
    try:
        if deep:
            text = _write_deep(value)
        else:
            try:
                text = _stdlib_encode(value)
            except RecursionError:  # nesting deeper than Python recurses here, yet perhaps within MAX_DEPTH
                text = _write_deep(value)
        return text.encode()
    except (ValueError, TypeError, RecursionError) as exc:
        raise _unencodable("JSON", value, exc) from None


# JSON text of a string, ensure_ascii=False (the stdlib's C function)
_quote = json.encoder.encode_basestring


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is True or key is False or key is None:
        return "true" if key else "false" if key is False else "null"
    if isinstance(key, int):
        return int.__repr__(key)
    if isinstance(key, float) and key - key == 0.0:
        return float.__repr__(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def _write_deep(value: Any) -> str:
    """The stdlib writer's output with a stack of its own: what orjson (255 levels) and the stdlib (Python's
    recursion limit) cannot nest, up to ``MAX_DEPTH`` (the error path of a deep value only).

    ValueError for inf, nan and nesting beyond MAX_DEPTH, TypeError for a type JSON has no form for.
    """
    out: list[str] = []
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth < 0:  # text already written: punctuation, an object's key
            out.append(item)
        elif isinstance(item, str):
            out.append(_quote(item))
        elif item is None or item is True or item is False:
            out.append("null" if item is None else "true" if item else "false")
        elif isinstance(item, int):
            out.append(int.__repr__(item))
        elif isinstance(item, float):
            if item - item != 0.0:
                raise ValueError(f"out of range float value {float(item)!r} is not JSON compliant")
            out.append(float.__repr__(item))
        elif isinstance(item, (list, tuple, dict)):
            if depth > MAX_DEPTH:
                raise ValueError(f"nests deeper than {MAX_DEPTH} arrays and objects")
            if isinstance(item, dict):
                out.append("{")
                stack.append(("}", -1))
                pairs = list(item.items())
                for index in range(len(pairs) - 1, -1, -1):
                    key, child = pairs[index]
                    stack.append((child, depth + 1))
                    stack.append((_quote(_json_key(key)) + ":", -1))
                    if index:
                        stack.append((",", -1))
            else:
                out.append("[")
                stack.append(("]", -1))
                for index in range(len(item) - 1, -1, -1):
                    stack.append((item[index], depth + 1))
                    if index:
                        stack.append((",", -1))
        else:
            raise TypeError(f"Object of type {type(item).__name__} is not JSON serializable")
    return "".join(out)


def _json_decode(body: Any) -> Any:
    if _orjson_dumps is not None:
        try:
            return _orjson_loads(body)
        except _orjson_decode_error:  # the stdlib reads what orjson refuses (NaN, huge numbers) or says why not
            pass
    return _decode_exact(body)


def _decode_exact(body: Any) -> Any:
    """The stdlib's reading (integers exact), refusing what orjson refuses beyond syntax."""
    try:
        data = _stdlib_decode(body)
    except RecursionError:
        raise _Refused(f"nests deeper than {MAX_DEPTH} arrays and objects") from None
    problem = _find_unsendable(data, False)
    if problem is not None:
        raise _Refused(problem)
    return data


def _find_unsendable(value: Any, json_numbers: bool) -> str | None:
    """Where and why ``value`` cannot travel (taken only once a reader or writer failed): None if it can.

    Walks with a stack of its own: a value nested as deep as the limit is deeper than Python recurses.
    ``json_numbers``: inf and nan count as unsendable.
    """
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        item, path, depth = stack.pop()
        kind = type(item)
        if kind is str or isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode()
                except UnicodeEncodeError as exc:
                    return (f"{_where(path) or 'the value'}: a string holding the lone surrogate {item[exc.start]!a} "
                            f"at index {exc.start}, which is not Unicode text")
        elif isinstance(item, float):
            if json_numbers and item - item != 0.0:
                return (f"{_where(path) or 'the value'}: {float(item)!r}, which JSON cannot carry (it has no inf or nan; "
                        "msgpack and protobuf carry them)")
        elif isinstance(item, (dict, list, tuple)):
            if depth > MAX_DEPTH:
                return f"{_where(path) or 'the value'}: nests deeper than {MAX_DEPTH} arrays and objects"
            if isinstance(item, dict):
                for key, child in item.items():
                    stack.append((key, f"{path} key {key!a}" if path else f"key {key!a}", depth))
                    stack.append((child, f"{path}[{key!a}]", depth + 1))
            else:
                for index, child in enumerate(item):
                    stack.append((child, f"{path}[{index}]", depth + 1))
    return None


def _where(path: str) -> str:
    return path if len(path) <= 80 else f"{path[:40]}...{path[len(path) - 30:]}"


def _unencodable(kind: str, value: Any, error: BaseException) -> MarshalException:
    """The error of a value the ``kind`` writer refused, naming what and where (error path only)."""
    problem = _find_unsendable(value, kind == "JSON")
    if problem is None:
        problem = "nests too deeply" if isinstance(error, RecursionError) else f"{type(error).__name__}: {error}"
        problem = problem.encode("ascii", "backslashreplace").decode()
    return MarshalException(f"cannot be written as {kind}: {problem}")


def may_round_integers(body: bytes) -> bool:
    """True when a JSON ``body`` holds a number of 19 digits or more, which orjson may have read as a float.

    For callers whose declared types would take such a float silently (``Any``, ``int | float``,
    ``Decimal``): they then read the body again with the exact reader.
    """
    return _long_digits(body) is not None


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
    """Decode and validate a JSON request envelope into ``(method, args)``.

    Integers beyond 64 bits may come back as floats: see :func:`decode_request_json_exact`.
    """
    try:
        data = _json_decode(body)
    except _Refused as exc:
        raise MalformedRequestException(f"request body is refused: {exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedRequestException(f"request body is not valid JSON: {exc}") from None
    return _check_request(data)


def decode_request_json_exact(body: bytes) -> tuple[str, list[Any]]:
    """:func:`decode_request_json` reading every integer exactly, at the stdlib's pace."""
    try:
        data = _decode_exact(body)
    except _Refused as exc:
        raise MalformedRequestException(f"request body is refused: {exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedRequestException(f"request body is not valid JSON: {exc}") from None
    return _check_request(data)


def encode_response_json(result: Any, exception: dict[str, Any] | None = None) -> bytes:
    """Encode a response envelope as JSON bytes."""
    return _encode_json({"result": result, "exception": exception})


def decode_response_json(body: bytes) -> tuple[Any, dict[str, Any] | None]:
    """Decode a JSON response envelope into ``(result, exception)``.

    Integers beyond 64 bits may come back as floats: see :func:`decode_response_json_exact`.
    """
    try:
        data = _json_decode(body)
    except _Refused as exc:
        raise ProtocolException(f"response body is refused: {exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolException(f"response body is not valid JSON: {exc}") from None
    return _check_response(data)


def decode_response_json_exact(body: bytes) -> tuple[Any, dict[str, Any] | None]:
    """:func:`decode_response_json` reading every integer exactly, at the stdlib's pace."""
    try:
        data = _decode_exact(body)
    except _Refused as exc:
        raise ProtocolException(f"response body is refused: {exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolException(f"response body is not valid JSON: {exc}") from None
    return _check_response(data)


def encode_request_msgpack(method: str, args: list[Any]) -> bytes:
    """Encode a request envelope as msgpack bytes."""
    return _pack({"method": method, "args": args})


def decode_request_msgpack(body: bytes) -> tuple[str, list[Any]]:
    """Decode and validate a msgpack request envelope into ``(method, args)``."""
    try:
        data = _unpackb(body, raw=False, strict_map_key=True, ext_hook=_read_ext)
    except _stack_error:
        raise MalformedRequestException(f"request body is refused: nests deeper than {MAX_DEPTH} arrays and maps") from None
    except Exception as exc:  # msgpack raises several unrelated types for bad input
        raise MalformedRequestException(f"request body is not valid msgpack: {exc}") from None
    return _check_request(data)


def encode_response_msgpack(result: Any, exception: dict[str, Any] | None = None) -> bytes:
    """Encode a response envelope as msgpack bytes."""
    return _pack({"result": result, "exception": exception})


def decode_response_msgpack(body: bytes) -> tuple[Any, dict[str, Any] | None]:
    """Decode a msgpack response envelope into ``(result, exception)``."""
    try:
        data = _unpackb(body, raw=False, ext_hook=_read_ext)
    except _stack_error:
        raise ProtocolException(f"response body is refused: nests deeper than {MAX_DEPTH} arrays and maps") from None
    except Exception as exc:
        raise ProtocolException(f"response body is not valid msgpack: {exc}") from None
    return _check_response(data)
