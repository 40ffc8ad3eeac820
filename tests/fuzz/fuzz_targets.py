"""The fuzz targets: for each, a hypothesis strategy of inputs and a check that asserts the properties.

Shared by the bounded tests beside this module (``tests/fuzz/test_fuzz_*.py``, a few thousand inputs in
the default run) and the long job at the repository root (``python -m fuzz``, ``fuzz/atheris_*.py``),
so the long job checks exactly what the tests check.

Every check runs one input through both builds of the code under test (the compiled module and the same
source run as plain Python, ``warpcall._compiled.load_compiled``/``load_pure``; under ``WARPCALL_PURE=1``
the plain build alone) and asserts:

- nothing raises but the documented error type of that decoder (anything else is a crash);
- the two builds give the same result, or raise the same type with the same message;
- target-specific properties (the request recogniser against llhttp, the response parser against itself
  fed in other pieces, decoders against what the encoders wrote).

A check returns a short label of what happened (``"accepted"``, ``"MalformedRequestException"``...):
the long job counts them, so a run shows how much of the corpus got past the first refusal.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import struct
import uuid
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from types import ModuleType
from typing import Any, Literal, Optional, Union

import httptools
import msgpack
from hypothesis import strategies as st
from pydantic import BaseModel

from warpcall._compiled import PURE_REQUESTED, load_compiled, load_pure
from warpcall.exceptions import (
    InvalidArgumentsException,
    MalformedRequestException,
    MarshalException,
    ProtocolException,
)
from warpcall.resilience.deadline import parse_header

# ----------------------------------------------------------------------------------------- the builds


def builds(name: str) -> list[tuple[str, ModuleType]]:
    """``[("native", compiled), ("pure", plain Python)]`` of ``warpcall.core.<name>``; the plain one alone
    under ``WARPCALL_PURE=1``. A compiled module that is missing where the core was built is an error."""
    full = f"warpcall.core.{name}"
    pure = ("pure", load_pure(full))
    if PURE_REQUESTED:
        return [pure]
    return [("native", load_compiled(full)), pure]


def outcome(call: Callable[..., Any], *args: Any, allowed: tuple[type[BaseException], ...]) -> tuple[Any, ...]:
    """``("ok", repr of the result)`` or ``("raised", type name, message)``; an exception not in
    ``allowed`` propagates (the fuzzer reports it as a crash). ``repr`` so that NaN equals NaN."""
    try:
        return ("ok", repr(call(*args)))
    except allowed as exc:
        return ("raised", type(exc).__name__, str(exc))


def agree(results: list[tuple[str, tuple[Any, ...]]], what: object) -> tuple[Any, ...]:
    """The builds' common outcome; AssertionError naming both when they differ."""
    first = results[0][1]
    for tag, result in results[1:]:
        assert result == first, (
            f"builds disagree on {_short(what)}: {results[0][0]} {_short(first)} != {tag} {_short(result)}"
        )
    return first


def _short(value: object, most: int = 600) -> str:
    """``repr(value)``, its middle cut out when long (a 3,000-deep input would drown the message)."""
    text = repr(value)
    return text if len(text) <= most else f"{text[:most // 2]}...<{len(text) - most} chars>...{text[-most // 2:]}"


def label(result: tuple[Any, ...], ok: str = "ok") -> str:
    return ok if result[0] == "ok" else str(result[1])


# ---------------------------------------------------------------------------------- shared strategies


class _CachedStrategies:
    """``hypothesis.strategies`` whose strategies are built once per argument list.

    The composites below draw from strategies they name inline; built anew on every draw, hypothesis
    validates each again, which took most of a run's time. Arguments that cannot be hashed build a
    fresh strategy, as before."""

    def __getattr__(self, name: str) -> Callable[..., Any]:
        factory = getattr(st, name)

        def build(*args: Any, **kwargs: Any) -> Any:
            key = (name, tuple(tuple(a) if type(a) is list else a for a in args), tuple(sorted(kwargs.items())))
            try:
                return _strategy_cache[key]
            except KeyError:
                made = _strategy_cache[key] = factory(*args, **kwargs)
                return made
            except TypeError:  # unhashable arguments
                return factory(*args, **kwargs)

        return build


_strategy_cache: dict[Any, Any] = {}
cs = _CachedStrategies()


# bytes a byte-level mutation inserts: the separators and delimiters parsers decide on
MUTATION_BYTES = b"\r\n\t :;,-+.0123456789aAfFxX\"{}[]\x00\x01\x7f\x80\xc0\xff"


@st.composite
def mutated(draw: st.DrawFn, data: bytes, most: int = 3) -> bytes:
    """``data`` with up to ``most`` bytes replaced, deleted or inserted (or left as it is)."""
    out = bytearray(data)
    for _ in range(draw(cs.integers(0, most))):
        if not out:
            out.append(draw(cs.sampled_from(MUTATION_BYTES)))
            continue
        at = draw(cs.integers(0, len(out) - 1))
        action = draw(cs.integers(0, 2))
        byte = draw(cs.one_of(cs.sampled_from(MUTATION_BYTES), cs.integers(0, 255)))
        if action == 0:
            out[at] = byte
        elif action == 1:
            del out[at]
        else:
            out.insert(at, byte)
    return bytes(out)


def mutations_of(inner: st.SearchStrategy[bytes], most: int = 3) -> st.SearchStrategy[bytes]:
    return inner.flatmap(lambda data: mutated(data, most))


# text that decoders and encoders decide on: escapes, surrogates, controls, non-BMP
TEXT = cs.text(
    cs.one_of(
        cs.characters(codec="utf-8"),
        cs.sampled_from(["\ud800", "\udfff", "\x00", "\n", '"', "\\", "\u2028", "\U0001f600", ":"]),
    ),
    max_size=12,
)
SCALARS = cs.one_of(
    cs.none(),
    cs.booleans(),
    cs.integers(-(2**70), 2**70),
    cs.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64, 10**30]),
    cs.floats(allow_nan=True, allow_infinity=True),
    TEXT,
)


@functools.lru_cache(maxsize=None)
def trees(leaves: st.SearchStrategy[Any] = SCALARS, keys: st.SearchStrategy[str] = TEXT) -> st.SearchStrategy[Any]:
    """JSON-shaped trees (lists and str-keyed dicts of ``leaves``), small."""
    return cs.recursive(
        leaves,
        lambda inner: cs.one_of(cs.lists(inner, max_size=4), cs.dictionaries(keys, inner, max_size=4)),
        max_leaves=12,
    )


def nested(depth: int, leaf: Any = 0) -> Any:
    """A list nested ``depth`` deep (built iteratively: the point is a decoder's depth, not ours)."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


# ===================================================================== target 1: the request recogniser

REQUEST_LINES = [
    b"POST /invoke HTTP/1.1", b"POST /invoke HTTP/1.0", b"POST /invoke?x=1 HTTP/1.1", b"GET /invoke HTTP/1.1",
    b"POST /invokes HTTP/1.1", b"POST  /invoke HTTP/1.1", b"post /invoke HTTP/1.1", b"POST /invoke HTTP/1.1 ",
    b"POST http://h/invoke HTTP/1.1", b"POST /invoke HTTP/2.0", b"POST /invoke", b"POST /%69nvoke HTTP/1.1",
]
HEAD_NAMES = [
    b"host", b"content-type", b"Content-Type", b"CONTENT-TYPE", b"content-length", b"Content-Length",
    b"x-rpc-method", b"X-Rpc-Method", b"connection", b"Connection", b"transfer-encoding", b"Transfer-Encoding",
    b"expect", b"upgrade", b"te", b"trailer", b"proxy-connection", b"Proxy-Connection", b"keep-alive",
    b"user-agent", b"accept", b"x-a", b"content-length ", b"content_length", b"content-lengths", b"x-rpc-methods",
    b" content-length", b"Content-Length\t", b"authorization", b"content-encoding", b"content-md5",
    b"x-rpc-timeout", b"X-RPC-Timeout", b"x-rpc-timeouts",
]
HEAD_VALUES = [
    b"", b"application/json", b"application/msgpack", b"application/x-protobuf", b"application/json; charset=utf-8",
    b"fz:fuzz:echo_point", b"fz:fuzz:add", b"keep-alive", b"Keep-Alive", b"close", b"keep-alive, close", b"upgrade",
    b"chunked", b"gzip, chunked", b"100-continue", b"0", b"1", b"-1", b"+1", b"0x10", b"1 1", b"99999999999999999999",
    b"127.0.0.1", b"*/*", b"h2c",
]
PLAIN_NAMES = [b"host", b"content-type", b"Content-Type", b"x-rpc-method", b"X-RPC-METHOD", b"connection",
               b"user-agent", b"accept", b"x-a", b"authorization", b"x-rpc-timeout", b"X-Rpc-Timeout"]
PLAIN_VALUES = [b"", b"application/json", b"application/msgpack", b"application/x-protobuf", b"fz:fuzz:add",
                b"keep-alive", b"Keep-Alive", b"a b", b"*/*", b"x:y:z", b"Bearer t", b"250", b"0",
                b"000999999999999", b"999999999999", b"9999999999999"]
VALUE_BYTES = cs.binary(max_size=8).map(lambda raw: bytes(c for c in raw if c not in (10, 13)))
LINE_ENDS = [b"\r\n"] * 12 + [b"\n", b"\r", b"\r\r\n", b"\n\r"]
SEPARATORS = [b": "] * 6 + [b":", b":\t", b" :", b": \t ", b"::"]
WHITESPACE = [b""] * 6 + [b" ", b"\t", b" \t", b"\t "]


@st.composite
def request_heads(draw: st.DrawFn, body: bytes) -> bytes:
    """A request head for ``body``: mostly a plain ``POST /invoke``, with odd lines, values and framing."""
    line = draw(cs.sampled_from(REQUEST_LINES)) if draw(cs.integers(0, 5)) == 0 else REQUEST_LINES[0]
    lines = [line]
    wants_length = draw(cs.integers(0, 9))
    # half the heads only hold lines a recogniser may accept (with odd spacing and case), half anything
    wild = draw(cs.booleans())
    names = cs.sampled_from(HEAD_NAMES if wild else PLAIN_NAMES)
    values = cs.one_of(cs.sampled_from(HEAD_VALUES), VALUE_BYTES) if wild else cs.sampled_from(PLAIN_VALUES)
    for _ in range(draw(cs.integers(0, 6))):
        name = draw(names)
        value = draw(values)
        lines.append(
            name + draw(cs.sampled_from(SEPARATORS if wild else [b":", b": "])) + draw(cs.sampled_from(WHITESPACE))
            + value + draw(cs.sampled_from(WHITESPACE))
        )
    if wants_length:  # usually a content-length, mostly the right one
        length = len(body) + (draw(cs.sampled_from([-1, 1, 2])) if wants_length == 1 else 0)
        at = draw(cs.integers(1, len(lines)))
        lines.insert(at, b"content-length: %d" % max(length, 0))
    if not wild:
        return b"\r\n".join(lines) + b"\r\n\r\n"
    if draw(cs.integers(0, 3)) == 0:
        lines.insert(draw(cs.integers(1, len(lines))), draw(cs.sampled_from([b" folded", b"\tfolded", b"", b"x"])))
    end = draw(cs.sampled_from(LINE_ENDS))
    return end.join(lines) + end + draw(cs.sampled_from(LINE_ENDS))


def requests(bodies: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """Whole requests: a head from :func:`request_heads` and a body; sometimes mutated, a second request
    appended or the end cut off."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        body = draw(bodies)
        data = draw(request_heads(body)) + body
        shape = draw(cs.integers(0, 11))
        if shape <= 2:
            data = draw(mutated(data))
        elif shape == 3:
            data += draw(cs.sampled_from([REQUEST_LINES[0] + b"\r\ncontent-length: 0\r\n\r\n", b"x", b"\r\n"]))
        elif shape == 4 and data:
            data = data[: draw(cs.integers(0, len(data) - 1))]
        return data

    return build()


INVOKE_LIMITS = cs.sampled_from([1 << 20] * 5 + [64, 0, 10 * 2**20])


class _LLHttp:
    """What llhttp (httptools, the parser uvicorn uses) reads from a request."""

    def __init__(self) -> None:
        self.messages = 0
        self.complete = 0
        self.parser: Any = None  # set by the caller: the method is read from it once the head is in
        self.method = b""
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""

    def on_message_begin(self) -> None:
        self.messages += 1

    def on_headers_complete(self) -> None:
        self.method = self.parser.get_method() if self.parser is not None else b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete += 1

    def values(self, name: bytes) -> list[bytes]:
        """The values of header ``name`` as uvicorn hands them on: llhttp keeps trailing spaces and tabs,
        uvicorn strips them (RFC 9110 5.5 excludes them from the value)."""
        return [value.rstrip(b" \t") for header, value in self.headers if header == name]


def check_invokehead(data: bytes, limit: int) -> str:
    """``invokehead.parse``: the builds agree, and whatever it accepts llhttp reads the same way: one
    complete ``POST /invoke`` HTTP/1.1 request, kept alive, no upgrade, the same body, the same single
    Content-Type and X-Rpc-Method values (missing: ``b""``) and a Content-Length of the body's size."""
    results = [(tag, outcome(module.parse, data, limit, allowed=())) for tag, module in builds("invokehead")]
    result = agree(results, data)
    accepted = load_pure("warpcall.core.invokehead").parse(data, limit)
    if accepted is None:
        return "refused"
    content_type, method, head_length, timeout, authorization, _observed = accepted
    reading = _LLHttp()
    parser = httptools.HttpRequestParser(reading)
    try:
        parser.feed_data(data)
    except httptools.HttpParserUpgrade:
        raise AssertionError(f"accepted an upgrade llhttp sees: {data!r}") from None
    except httptools.HttpParserError as exc:
        raise AssertionError(f"accepted what llhttp refuses ({exc}): {data!r}") from None
    assert reading.messages == 1 and reading.complete == 1, f"llhttp reads {reading.messages} message(s): {data!r}"
    assert parser.get_method() == b"POST" and reading.url == b"/invoke", data
    assert parser.get_http_version() == "1.1", data
    assert parser.should_keep_alive(), f"llhttp would close after it: {data!r}"
    assert reading.body == data[head_length:], f"llhttp reads another body: {reading.body!r} in {data!r}"
    lengths = reading.values(b"content-length")
    assert len(lengths) == 1 and int(lengths[0]) == len(reading.body), f"llhttp reads length {lengths!r}: {data!r}"
    for name, value in ((b"content-type", content_type), (b"x-rpc-method", method), (b"authorization", authorization)):
        seen = reading.values(name)
        assert seen == ([value] if seen else []) and (seen or value == b""), (
            f"{name.decode()}: recognised {value!r}, llhttp reads {seen!r}: {data!r}"
        )
    # the deadline comes as its milliseconds (-1: none): llhttp reads one value of that many, as the server does
    seen = reading.values(b"x-rpc-timeout")
    expected = [] if timeout == -1 else [timeout]
    assert [parse_header(value, 0.0) for value in seen] == [ms / 1000.0 for ms in expected], (
        f"x-rpc-timeout: recognised {timeout!r}, llhttp reads {seen!r}: {data!r}"
    )
    assert not reading.values(b"transfer-encoding") and not reading.values(b"upgrade"), data
    assert result == ("ok", repr(accepted))
    return "accepted"


def invokehead_inputs() -> st.SearchStrategy[tuple[bytes, int]]:
    bodies = cs.one_of(envelope_bodies(), cs.binary(max_size=32))
    return cs.tuples(cs.one_of(requests(bodies), cs.binary(max_size=64)), INVOKE_LIMITS)


# ===================================================================== target 2: the envelope decoders

METHOD_NAMES = cs.one_of(
    cs.sampled_from(["fz:fuzz:echo_point", "c:s:m", "a:b", "a:b:c:d", ":b:c", "a::c", "a:b:", "", "x"]),
    TEXT,
    cs.integers(),
    cs.none(),
    cs.lists(cs.text(max_size=2), max_size=3),
)


@st.composite
def envelope_values(draw: st.DrawFn) -> Any:
    """Envelope-shaped trees (requests and responses, valid or nearly), now and then something else."""
    shape = draw(cs.integers(0, 9))
    if shape <= 3:
        envelope: dict[Any, Any] = {"method": draw(METHOD_NAMES), "args": draw(cs.one_of(cs.lists(trees(), max_size=4),
                                                                                         trees()))}
    elif shape <= 6:
        envelope = {"result": draw(trees()),
                    "exception": draw(cs.one_of(cs.none(), cs.fixed_dictionaries({"type": TEXT, "message": TEXT}),
                                                TEXT, trees()))}
    elif shape == 7:
        return nested(draw(cs.sampled_from([10, 500, 1000, 1100, 3000])))
    else:
        return draw(trees())
    for key in draw(cs.lists(cs.sampled_from(["method", "args", "result", "exception", "extra"]), max_size=2)):
        if draw(cs.booleans()):
            envelope.pop(key, None)
        else:
            envelope[key] = draw(trees())
    return envelope


def _depth(value: Any) -> int:
    depth = 0
    while type(value) is list and len(value) == 1:
        value, depth = value[0], depth + 1
    return depth


def _json_text(value: Any) -> bytes:
    # the stdlib writes what orjson would refuse: NaN, big integers, lone surrogates as \ud800 escapes
    try:
        return json.dumps(value).encode()
    except RecursionError:  # a nested() list: written by hand
        return b"[" * _depth(value) + b"0" + b"]" * _depth(value)


def _packed(value: Any) -> bytes:
    depth = _depth(value)
    if depth > 100:  # a nested() list, deeper than msgpack's packer goes: written by hand
        return b"\x91" * depth + b"\x00"
    try:
        return msgpack.packb(value, use_bin_type=True)
    except (OverflowError, ValueError, TypeError):  # ints beyond 64 bits
        return b"\xc1"


JSON_BODIES = cs.one_of(
    envelope_values().map(_json_text).flatmap(lambda data: mutated(data, 2)),
    cs.sampled_from([b"", b"{", b"[]", b"null", b'{"method":"c:s:m","args":[1e999]}', b"\xef\xbb\xbf{}",
                     b'{"method":"c:s:m","args":[NaN]}', b'{"method":"c:s:m","args":["\\ud800"]}',
                     b'{"result":1' + b"]" * 3]),
    cs.binary(max_size=24),
)
MSGPACK_BODIES = cs.one_of(
    envelope_values().map(_packed).flatmap(lambda data: mutated(data, 2)),
    cs.sampled_from([b"", b"\xc1", b"\x81\xa6method", b"\x82\x01\x02\x03\x04", b"\xdd\xff\xff\xff\xff",
                     b"\xc7\x01\x05x", b"\xd6\xff\x00\x00\x00\x00"]),
    cs.binary(max_size=24),
)


def envelope_bodies() -> st.SearchStrategy[bytes]:
    return cs.one_of(JSON_BODIES, MSGPACK_BODIES)


ENVELOPE_DECODERS = {
    # name: (decoder, its documented error)
    "decode_request_json": MalformedRequestException,
    "decode_request_msgpack": MalformedRequestException,
    "decode_response_json": ProtocolException,
    "decode_response_msgpack": ProtocolException,
}


def check_envelope(kind: str, body: bytes) -> str:
    """Both JSON (or both msgpack) decoders of ``envelope``, on both builds: the documented error or a
    well-formed ``(method, args)`` / ``(result, exception)``, the same on both builds."""
    labels = []
    for name, error in ENVELOPE_DECODERS.items():
        if not name.endswith(kind):
            continue
        results = [(tag, outcome(getattr(module, name), body, allowed=(error,))) for tag, module in builds("envelope")]
        result = agree(results, (name, body))
        if result[0] == "ok":
            first, second = load_pure("warpcall.core.envelope").__dict__[name](body)
            if "request" in name:
                assert type(first) is str and type(second) is list, (name, body)
                assert len(first.split(":")) == 3 and all(first.split(":")), (name, body)
            else:
                assert second is None or type(second) is dict, (name, body)
        labels.append(label(result))
    return "/".join(labels)


def envelope_inputs() -> st.SearchStrategy[tuple[str, bytes]]:
    return cs.one_of(cs.tuples(cs.just("json"), JSON_BODIES), cs.tuples(cs.just("msgpack"), MSGPACK_BODIES))


def _as_json_decoder_reads(value: Any) -> Any:
    """``value`` as the JSON decoders return it: an integer beyond 64 bits as orjson's float.

    By design (f0b9efd): the envelope keeps orjson's reading, and dispatch and the clients read the body
    again exactly where a parameter or result type wants that integer; the server target checks that
    end to end (``fz:fuzz:add`` with integers beyond 64 bits)."""
    if type(value) is int and not -(2**63) <= value < 2**64:
        return float(value)
    if type(value) is list:
        return [_as_json_decoder_reads(item) for item in value]
    if type(value) is dict:
        return {key: _as_json_decoder_reads(item) for key, item in value.items()}
    return value


def check_envelope_roundtrip(method: str, args: list[Any]) -> str:
    """What the encoders write, the decoders read back as it was (requests and responses, both formats,
    both builds), or the encoder refuses it with the documented error (never the decoder failing later)."""
    labels = []
    for kind in ("json", "msgpack"):
        expected = _as_json_decoder_reads(args) if kind == "json" else args
        for tag, module in builds("envelope"):
            for direction, written, read in (
                ("request", (method, args), (method, expected)),
                ("response", (args, None), (expected, None)),
            ):
                try:
                    body = getattr(module, f"encode_{direction}_{kind}")(*written)
                except (TypeError, ValueError, OverflowError, MarshalException) as exc:
                    labels.append(f"{kind} refused {type(exc).__name__}")
                    continue
                got = getattr(module, f"decode_{direction}_{kind}")(body)
                assert repr(got) == repr(read), f"{tag} {kind} {direction} came back changed: {written!r} as {got!r}"
                labels.append(f"{kind} ok")
    return "/".join(sorted(set(labels)))


def roundtrip_inputs() -> st.SearchStrategy[tuple[str, list[Any]]]:
    finite = cs.one_of(cs.none(), cs.booleans(), cs.integers(-(2**100), 2**100), cs.floats(allow_nan=False,
                       allow_infinity=False), cs.text(cs.characters(codec="utf-8"), max_size=8))
    return cs.tuples(cs.just("fz:fuzz:echo_point"), cs.lists(trees(finite, cs.text(cs.characters(codec="utf-8"),
                                                                                     max_size=6)), max_size=4))


# ===================================================================== target 3: the protobuf wire


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass
class Point:
    x: int
    y: int


@dataclasses.dataclass
class Shape:
    name: str
    at: Point
    scale: float = 1.0
    tip: Optional[Point] = None
    color: Color = Color.RED
    flag: bool = False
    raw: bytes = b""


@dataclasses.dataclass
class Chain:
    value: int
    next: Optional[Chain] = None


class Label(BaseModel):
    title: str
    count: int
    where: Point
    weights: Optional[list[float]] = None


# (parameter types, return type): plain layouts the wire fast path carries and layouts it hands to protobuf
PROTOBUF_SIGNATURES: list[tuple[tuple[Any, ...], Any]] = [
    ((int, str, Optional[Point], float, bool), Shape),
    ((Shape,), Optional[int]),
    ((Chain, bytes, datetime, uuid.UUID, Decimal), Chain),
    ((Label, Color, date), Label),
    ((list[int], dict[str, int], Optional[list[str]]), list[Point]),
    ((Any, Union[int, str]), Any),
]
_protobuf_pairs: list[tuple[Any, Any]] = []


def protobuf_codecs() -> list[tuple[Any, Any]]:
    """Per signature, ``(codec with the compiled wire or None, codec with protobuf alone)``, built once."""
    if not _protobuf_pairs:
        from warpcall.wire.protobuf_codec import ProtobufMethodCodec

        wire = None if PURE_REQUESTED else load_compiled("warpcall.core.pbwire")
        for number, (params, returns) in enumerate(PROTOBUF_SIGNATURES):
            names = [f"p{i}" for i in range(len(params))]
            qualified = f"fz:wire:m{number}"
            fast = ProtobufMethodCodec(qualified, names, list(params), returns, wire=wire) if wire else None
            slow = ProtobufMethodCodec(qualified, names, list(params), returns, wire=None)
            _protobuf_pairs.append((fast, slow))
    return _protobuf_pairs


def _varint(value: int) -> bytes:
    value &= (1 << 70) - 1
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


@st.composite
def protobuf_fields(draw: st.DrawFn, depth: int = 0) -> bytes:
    """Wire-level protobuf: fields 1..8 (and odd numbers) of every wire type, nested messages inside."""
    out = bytearray()
    for _ in range(draw(cs.integers(0, 6))):
        number = draw(cs.one_of(cs.integers(1, 8), cs.sampled_from([0, 9, 100, 2**29 - 1, 2**29, 2**32])))
        wire_type = draw(cs.integers(0, 7))
        out += _varint(number << 3 | wire_type)
        if wire_type == 0:
            out += _varint(draw(cs.one_of(cs.integers(0, 2**64 - 1), cs.sampled_from([0, 1, 2, 2**63, 2**64 - 1]))))
        elif wire_type == 1:
            out += struct.pack("<d", draw(cs.floats()))
        elif wire_type == 5:
            out += draw(cs.binary(min_size=4, max_size=4))
        elif wire_type == 2:
            if depth < 3 and draw(cs.booleans()):
                inner = draw(protobuf_fields(depth + 1))
            else:
                inner = draw(cs.one_of(TEXT.map(lambda text: text.encode("utf-8", "surrogatepass")),
                                       cs.binary(max_size=8)))
            out += _varint(len(inner) + draw(cs.sampled_from([0] * 8 + [-1, 1]))) + inner
    return bytes(out)


def _valid_protobuf(request: bool) -> st.SearchStrategy[tuple[int, bytes]]:
    """A body the slow codec writes from generated values of the signature's types."""

    @st.composite
    def build(draw: st.DrawFn) -> tuple[int, bytes]:
        index = draw(cs.integers(0, len(PROTOBUF_SIGNATURES) - 1))
        params, returns = PROTOBUF_SIGNATURES[index]
        slow = protobuf_codecs()[index][1]
        try:
            if request:
                body = slow.encode_request([draw(value_of(tp)) for tp in params])
            else:
                body = slow.encode_response(draw(value_of(returns)))
        except MarshalException:
            body = b""
        return index, body

    return build()


def value_of(tp: Any) -> st.SearchStrategy[Any]:
    """Valid values of ``tp``: hypothesis' own reading of the type, but for the types it cannot read."""
    special = _VALUES.get(tp)
    return special if special is not None else cs.from_type(tp)


_VALUES: dict[Any, st.SearchStrategy[Any]] = {}


def protobuf_inputs() -> st.SearchStrategy[tuple[bool, int, bytes]]:
    def one(request: bool) -> st.SearchStrategy[tuple[bool, int, bytes]]:
        index = cs.integers(0, len(PROTOBUF_SIGNATURES) - 1)
        bodies = cs.one_of(
            cs.tuples(index, protobuf_fields()),
            _valid_protobuf(request).flatmap(lambda pair: cs.tuples(cs.just(pair[0]), mutated(pair[1], 2))),
            cs.tuples(index, cs.binary(max_size=24)),
        )
        return bodies.map(lambda pair: (request, pair[0], pair[1]))

    return cs.one_of(one(True), one(False))


def check_protobuf(request: bool, index: int, body: bytes) -> str:
    """A protobuf body decoded with the compiled wire and with protobuf alone: the same values or the
    same error (MalformedRequestException, or InvalidArgumentsException for a parameter it lacks, a missing
    one or an enum value it lacks, for a request; ProtocolException, or MarshalException for an enum value
    it lacks, for a response)."""
    fast, slow = protobuf_codecs()[index]
    name, errors = (
        ("decode_request", (MalformedRequestException, InvalidArgumentsException)) if request
        else ("decode_response", (ProtocolException, MarshalException))
    )
    results = [("protobuf", outcome(getattr(slow, name), body, allowed=errors))]
    took_wire = False
    if fast is not None:
        results.insert(0, ("pbwire", outcome(getattr(fast, name), body, allowed=errors)))
        took_wire = (fast._request_wire if request else fast._response_wire).decode(body) is not None
    result = agree(results, (name, index, body))
    return f"{'request' if request else 'response'} {label(result)}{' (wire)' if took_wire else ''}"


def protobuf_encode_inputs() -> st.SearchStrategy[tuple[int, list[Any]]]:
    @st.composite
    def build(draw: st.DrawFn) -> tuple[int, list[Any]]:
        index = draw(cs.integers(0, len(PROTOBUF_SIGNATURES) - 1))
        params, _ = PROTOBUF_SIGNATURES[index]
        return index, [draw(cs.one_of(value_of(tp), SCALARS)) if draw(cs.integers(0, 4)) else draw(SCALARS)
                       for tp in params]

    return build()


def check_protobuf_encode(index: int, args: list[Any]) -> str:
    """Arguments encoded with the compiled wire and with protobuf alone: the same bytes or the same
    MarshalException; what was encoded decodes to the same values on both."""
    fast, slow = protobuf_codecs()[index]
    results = [("protobuf", outcome(slow.encode_request, args, allowed=(MarshalException,)))]
    if fast is not None:
        results.insert(0, ("pbwire", outcome(fast.encode_request, args, allowed=(MarshalException,))))
    result = agree(results, (index, args))
    if result[0] == "ok":
        return "encoded " + check_protobuf(True, index, slow.encode_request(args))
    return "refused"


# ===================================================================== target 4: argument loading


class Mood(str, enum.Enum):
    CALM = "calm"
    ANGRY = "angry"


@dataclasses.dataclass
class Item:
    sku: str
    qty: int
    price: Decimal


@dataclasses.dataclass
class Order:
    id: int
    items: list[Item]
    when: datetime
    note: Optional[str] = None
    tags: dict[str, int] = dataclasses.field(default_factory=dict)
    level: Level = Level.LOW


@dataclasses.dataclass(frozen=True, slots=True)
class Frozen:
    a: bytes
    b: tuple[int, str]
    c: frozenset[int] = frozenset()


@dataclasses.dataclass
class Positive:
    n: int

    def __post_init__(self) -> None:
        if self.n <= 0:
            raise ValueError("n must be positive")


class Account(BaseModel):
    owner: str
    balance: float
    mood: Mood = Mood.CALM
    history: list[Point] = []
    last: Optional[date] = None


_VALUES.update({
    Any: trees(),
    int: cs.integers(-(2**63), 2**63 - 1),  # protobuf's sint64; bigger ones are tried as leaves
    Positive: cs.builds(Positive, cs.integers(1, 2**63 - 1)),
})

# the parameter types argument loading is fuzzed with (each with its plan in both builds)
MARSHAL_TYPES: list[Any] = [
    int, float, bool, str, bytes, Optional[int], Any, datetime, date, time, uuid.UUID, Decimal, Color, Level, Mood,
    Literal["a", "b", 1], Union[int, str, Point], list[int], tuple[int, str], tuple[float, ...], set[str],
    dict[str, float], dict[int, str], Optional[list[Optional[Point]]], Point, Shape, Chain, Order, Frozen, Positive,
    Label, Account, list[Account],
]
FIELD_NAMES = cs.sampled_from([
    "x", "y", "name", "at", "scale", "tip", "color", "flag", "raw", "value", "next", "title", "count", "where",
    "weights", "sku", "qty", "price", "id", "items", "when", "note", "tags", "level", "a", "b", "c", "n", "owner",
    "balance", "mood", "history", "last", "extra",
])
MARSHAL_LEAVES = cs.one_of(
    SCALARS,
    cs.binary(max_size=6),
    cs.sampled_from(["2024-02-29T13:45:01", "2024-01-01T06:00:00Z", "2024-13-01", "12:30", "25:00", "1999-12-31",
                     "0.1", "NaN", "-Infinity", "1e400", "red", "calm", "a", "AAEC", "AA=", "1", "00000000-0000-0000-"
                     "0000-000000000000", "x" * 40]),
)


def marshal_inputs() -> st.SearchStrategy[tuple[int, Any]]:
    """(index of a type in MARSHAL_TYPES, a tree to load as it): valid dumps with a leaf changed, trees
    keyed by the types' own field names, plain trees."""
    index = cs.integers(0, len(MARSHAL_TYPES) - 1)

    @st.composite
    def near_valid(draw: st.DrawFn) -> tuple[int, Any]:
        at = draw(index)
        plan = load_pure("warpcall.core.marshal").plan_for(MARSHAL_TYPES[at])
        try:
            tree = plan.dump(draw(value_of(MARSHAL_TYPES[at])))
        except MarshalException:
            tree = None
        return at, draw(_changed(tree))

    return cs.one_of(
        near_valid(),
        cs.tuples(index, trees(MARSHAL_LEAVES, FIELD_NAMES)),
        # deep, but within what a decoder hands on and what repr (the comparison) can print
        cs.tuples(index, cs.sampled_from([nested(400), _chain(50), _chain(400)])),
    )


def _chain(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"value": depth}
    for value in range(depth - 1, -1, -1):
        node = {"value": value, "next": node}
    return node


@st.composite
def _changed(draw: st.DrawFn, tree: Any) -> Any:
    """``tree`` with at most one node replaced by something else (mostly a leaf)."""
    if not draw(cs.integers(0, 2)):
        return tree
    replacement = draw(MARSHAL_LEAVES)
    if type(tree) is dict and tree:
        key = draw(cs.sampled_from(sorted(tree, key=repr)))
        if draw(cs.booleans()):
            return {**tree, key: draw(_changed(tree[key]))}
        return {k: v for k, v in tree.items() if k != key} if draw(cs.booleans()) else {**tree, key: replacement}
    if type(tree) is list and tree:
        at = draw(cs.integers(0, len(tree) - 1))
        return [*tree[:at], draw(_changed(tree[at])), *tree[at + 1:]]
    return replacement


def _same(a: Any, b: Any) -> bool:
    """Equal, or the same repr where NaN (or a signalling Decimal NaN) makes a value unequal to itself."""
    try:
        if a == b:
            return True
    except ArithmeticError:  # comparing Decimal('sNaN') raises
        pass
    return repr(a) == repr(b)


def check_marshal(index: int, tree: Any) -> str:
    """``plan_for(tp).load(tree)`` on both builds: the same value or the same MarshalException, never
    another error; a loaded value dumps and loads back to itself."""
    tp = MARSHAL_TYPES[index]
    results = [
        (tag, outcome(module.plan_for(tp).load, tree, allowed=(MarshalException,))) for tag, module in builds("marshal")
    ]
    result = agree(results, (tp, tree))
    if result[0] == "ok":
        for tag, module in builds("marshal"):
            plan = module.plan_for(tp)
            value = plan.load(tree)
            again = plan.load(plan.dump(value))
            assert _same(again, value), f"{tag}: {value!r} dumps and loads as {again!r}"
        return "loaded"
    return "MarshalException"


# ===================================================================== target 5: the client's response parser

STATUS_LINES = [
    b"HTTP/1.1 200 OK", b"HTTP/1.1 200", b"HTTP/1.1 200 ", b"HTTP/1.0 200 OK", b"HTTP/1.1 204 No Content",
    b"HTTP/1.1 304 Not Modified", b"HTTP/1.1 100 Continue", b"HTTP/1.1 101 Switching Protocols", b"HTTP/1.1 404 x",
    b"HTTP/1.1 500 Internal Server Error", b"HTTP/1.1 999 ?", b"HTTP/1.1 20 OK", b"HTTP/1.1 2000 OK",
    b"HTTP/2.0 200 OK", b"http/1.1 200 OK", b"HTTP/1.1  200 OK", b"HTTP/1.1 -200 OK", b"ICY 200 OK",
]
RESPONSE_NAMES = [
    b"content-length", b"Content-Length", b"transfer-encoding", b"Transfer-Encoding", b"connection", b"Connection",
    b"content-type", b"keep-alive", b"x-a", b"content-length ", b"trailer", b"date", b"set-cookie",
]
RESPONSE_VALUES = [b"0", b"1", b"5", b"-1", b"+5", b"0x5", b"5, 5", b"99999999999999999999", b"chunked",
                   b"gzip, chunked", b"chunked, gzip", b"identity", b"close", b"keep-alive", b"Close", b"upgrade",
                   b"text/plain", b""]


@st.composite
def chunked_body(draw: st.DrawFn, body: bytes) -> bytes:
    out = bytearray()
    rest = body
    while rest:
        size = draw(cs.integers(1, len(rest)))
        digits = b"%x" % size if draw(cs.integers(0, 5)) else b"%X" % size
        out += draw(cs.sampled_from([b"", b"0", b"00"])) + digits
        out += draw(cs.sampled_from([b"", b"", b";ext=1", b" ", b";", b"\t;a"])) + b"\r\n" + rest[:size] + b"\r\n"
        rest = rest[size:]
    out += b"0" + draw(cs.sampled_from([b"", b";x"])) + b"\r\n"
    for _ in range(draw(cs.integers(0, 2))):
        out += draw(cs.sampled_from([b"x-t: 1", b"x: " + b"y" * 100, b"bad trailer", b":"])) + b"\r\n"
    return bytes(out + b"\r\n")


@st.composite
def responses(draw: st.DrawFn) -> bytes:
    """A response: a status line, headers and a body framed by length, chunks or the close."""
    status = draw(cs.sampled_from(STATUS_LINES)) if draw(cs.integers(0, 3)) == 0 else STATUS_LINES[0]
    body = draw(cs.one_of(cs.binary(max_size=20), cs.sampled_from([b"", b"\r\n", b"0\r\n\r\n"])))
    framing = draw(cs.integers(0, 3))
    lines = [status]
    if framing == 0:
        lines.append(b"content-length: %d" % (len(body) + draw(cs.sampled_from([0] * 6 + [-1, 1]))))
        payload = body
    elif framing == 1:
        lines.append(b"transfer-encoding: chunked")
        payload = draw(chunked_body(body))
    else:
        payload = body
    for _ in range(draw(cs.integers(0, 4))):
        name = draw(cs.sampled_from(RESPONSE_NAMES))
        value = draw(cs.one_of(cs.sampled_from(RESPONSE_VALUES), VALUE_BYTES))
        lines.insert(draw(cs.integers(1, len(lines))), name + draw(cs.sampled_from(SEPARATORS)) + value)
    end = draw(cs.sampled_from(LINE_ENDS))
    data = end.join(lines) + end + draw(cs.sampled_from(LINE_ENDS)) + payload
    shape = draw(cs.integers(0, 9))
    if shape <= 2:
        data = draw(mutated(data))
    elif shape == 3:
        data = b"HTTP/1.1 100 Continue\r\n\r\n" + data
    elif shape == 4:
        data += draw(cs.sampled_from([b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", b"x"]))
    return data


def response_inputs() -> st.SearchStrategy[tuple[bytes, list[int], bool, bool, int]]:
    """(response bytes, cut points, whether the peer then closes, a HEAD request's answer, max_body)."""
    data = cs.one_of(responses(), cs.binary(max_size=48))
    return data.flatmap(lambda raw: cs.tuples(
        cs.just(raw),
        cs.lists(cs.integers(0, len(raw)), max_size=4).map(sorted),
        cs.booleans(),
        cs.integers(0, 9).map(lambda n: n == 0),
        cs.sampled_from([64 * 2**20] * 4 + [0, 4, 10]),
    ))


def _parse_response(module: ModuleType, data: bytes, cuts: list[int], eof: bool, head: bool,
                    max_body: int) -> tuple[Any, ...]:
    parser = module.ResponseParser(max_body=max_body, head=head)
    done = False
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)]) if b > a]
    for piece in pieces:
        # bytes after a whole response go on being fed: they tell it the connection cannot be kept
        done = parser.feed(piece)
    if not done and eof:
        done = parser.feed(b"")
    if not done:
        return ("incomplete",)
    return ("done", parser.status, parser.reason, parser.headers, parser.body, parser.keep_alive, parser.complete)


def check_response(data: bytes, cuts: list[int], eof: bool, head: bool, max_body: int) -> str:
    """``transport.ResponseParser`` on both builds: the same response or the same ValueError, whether the
    bytes come in one piece or in the pieces given; a finished response is complete."""
    results = []
    for tag, module in builds("transport"):
        for pieces in ([], cuts):
            results.append((f"{tag} cut at {pieces}",
                            outcome(_parse_response, module, data, pieces, eof, head, max_body, allowed=(ValueError,))))
    result = agree(results, data)
    if result[0] == "raised":
        return "ValueError"
    return "incomplete" if "incomplete" in result[1] else "done"


# ===================================================================== target 6: the server, on raw sockets

SERVER_METHODS = {
    # name: argument strategy (valid values, mostly; trees otherwise)
    "echo_point": cs.tuples(cs.fixed_dictionaries({"x": cs.integers(), "y": cs.integers()})).map(list),
    "add": cs.tuples(cs.integers(-(2**80), 2**80), cs.integers()).map(list),
    "echo_text": cs.tuples(TEXT).map(list),
    "count": cs.tuples(cs.lists(cs.integers(-(2**63), 2**63 - 1), max_size=4)).map(list),
    "describe": cs.tuples(cs.one_of(cs.integers(-(2**63), 2**63 - 1), TEXT)).map(list),
    "label": cs.tuples(cs.fixed_dictionaries(
        {"title": TEXT, "count": cs.integers(), "where": cs.fixed_dictionaries({"x": cs.integers(), "y": cs.integers()})}
    )).map(list),
    "nothing": cs.just([]),
}


@st.composite
def server_bodies(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """(content type, body): envelopes of the fuzz service's methods in every format, valid or not."""
    method = draw(cs.sampled_from(sorted(SERVER_METHODS)))
    args = draw(cs.one_of(SERVER_METHODS[method], cs.lists(trees(), max_size=3)))
    qualified = f"fz:fuzz:{method}" if draw(cs.integers(0, 7)) else draw(METHOD_NAMES.map(str))
    kind = draw(cs.integers(0, 5))
    if kind <= 1:
        return b"application/json", draw(mutations_of(cs.just(_json_text({"method": qualified, "args": args})), 1))
    if kind <= 3:
        return b"application/msgpack", draw(mutations_of(cs.just(_packed({"method": qualified, "args": args})), 1))
    if kind == 4:
        return b"application/x-protobuf", draw(cs.one_of(protobuf_fields(), cs.binary(max_size=16)))
    return draw(cs.sampled_from([b"text/plain", b"", b"application/json;", b"APPLICATION/JSON"])), draw(JSON_BODIES)


@st.composite
def server_requests(draw: st.DrawFn) -> bytes:
    content_type, body = draw(server_bodies())
    method = b"fz:fuzz:" + draw(cs.sampled_from(sorted(SERVER_METHODS))).encode()
    lines = [REQUEST_LINES[0], b"host: 127.0.0.1"]
    if content_type:
        lines.append(b"content-type: " + content_type)
    if content_type == b"application/x-protobuf" or draw(cs.integers(0, 9)) == 0:
        lines.append(b"x-rpc-method: " + method)
    if draw(cs.integers(0, 7)):  # without one the body is read as the next request
        lines.append(b"content-length: %d" % len(body))
    plain = b"\r\n".join(lines) + b"\r\n\r\n" + body
    shape = draw(cs.integers(0, 5))
    if shape == 0:
        return draw(request_heads(body)) + body
    if shape == 1:
        return draw(mutated(plain))
    return plain


def start_fuzz_server() -> Any:
    """The fuzz service's FastAPIServer on a free 127.0.0.1 port; ``.environment.destroy()`` stops it."""
    from fuzz_service import boot  # the service is declared only where a server is wanted

    return boot()


SERVER_TIMEOUT = 5.0


def _llhttp_reads(data: bytes) -> tuple[str, _LLHttp]:
    """How llhttp frames ``data``: ``"error"``, ``"complete"`` (one message or more) or ``"incomplete"``,
    and what it read."""
    reading = _LLHttp()
    parser = reading.parser = httptools.HttpRequestParser(reading)
    try:
        parser.feed_data(data)
    except httptools.HttpParserUpgrade:
        pass
    except httptools.HttpParserError:
        return "error", reading
    return ("complete" if reading.complete else "incomplete"), reading


def _expected_sum(reading: _LLHttp) -> int | None:
    """The result a whole, valid ``fz:fuzz:add`` call must get (integers exactly, however big), else None."""
    if reading.complete != 1 or reading.messages != 1 or reading.url != b"/invoke" or reading.method != b"POST":
        return None
    kinds = reading.values(b"content-type")
    try:
        if kinds == [b"application/json"]:
            envelope = json.loads(reading.body)  # the stdlib reads integers exactly
        elif kinds == [b"application/msgpack"]:
            envelope = msgpack.unpackb(reading.body, raw=False)
        else:
            return None
    except (ValueError, RecursionError, msgpack.UnpackException):
        return None
    if type(envelope) is not dict or envelope.get("method") != "fz:fuzz:add":
        return None
    args = envelope.get("args")
    if type(args) is not list or not 1 <= len(args) <= 2 or any(type(arg) is not int for arg in args):
        return None
    if len(envelope) != 2 or len(reading.body) > 4096:
        return None
    return sum(args)


def check_server(data: bytes, *, port: int) -> str:
    """``data`` sent to the server on a new connection: every reply is a well-formed HTTP/1.1 response,
    2xx or 4xx (1xx first at most), and a request llhttp reads whole gets one; no 5xx, no hang."""
    import socket

    from rawhttp import Reader, connect

    framing, reading = _llhttp_reads(data)
    with connect(port, timeout=SERVER_TIMEOUT) as sock:
        # close with RST: 100,000 connections in TIME_WAIT would exhaust the loopback's ports
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.sendall(data)
        if framing == "incomplete":
            # the server waits for the rest: say there is none (it may answer a head it could read)
            sock.shutdown(socket.SHUT_WR)
        reader = Reader(sock)
        statuses = []
        while True:
            try:
                status_line, headers, body = reader.response()
            except ConnectionError:
                break
            status = _status_of(status_line, data)
            statuses.append(status)
            # a request may carry a deadline that has passed (x-rpc-timeout: 0): refused unrun, 504
            expired = status == 504 and b'"DeadlineExceeded"' in body and b"x-rpc-timeout" in data.lower()
            assert status < 500 or expired, f"{status_line!r} {body[:300]!r} to {data!r}"
            if status >= 200:
                break
        if framing == "complete":
            assert statuses and statuses[-1] >= 200, f"no reply to a whole request: {data!r}"
            expected = _expected_sum(reading)
            if expected is not None:  # big integers travel on every channel, both ways
                assert statuses[-1] == 200, f"{status_line!r} {body[:300]!r} to a valid call {data!r}"
                # read as a client reads it: JSON exactly (the stdlib), msgpack with warpcall's big-integer ext
                if headers.get(b"content-type") == b"application/json":
                    reply = (json.loads(body)["result"], None)
                else:
                    reply = load_pure("warpcall.core.envelope").decode_response_msgpack(body)
                assert reply == (expected, None), f"{reply!r} to {data!r}"
                return f"{framing} {statuses[-1]} add"
    return f"{framing} {statuses[-1] if statuses else 'closed'}"


def _status_of(status_line: bytes, data: bytes) -> int:
    parts = status_line.split(b" ", 2)
    assert len(parts) >= 2 and parts[0] == b"HTTP/1.1" and len(parts[1]) == 3 and parts[1].isdigit(), (
        f"malformed status line {status_line!r} to {data!r}"
    )
    return int(parts[1])


# ===================================================================== the registry of targets


@dataclasses.dataclass(frozen=True)
class Target:
    """One fuzz target: its inputs and the check they go through (which asserts and returns a label)."""

    name: str
    inputs: Callable[[], st.SearchStrategy[Any]]
    check: Callable[..., str]
    doc: str


TARGETS: dict[str, Target] = {
    target.name: target
    for target in [
        Target("invokehead", invokehead_inputs, check_invokehead, "the /invoke request recogniser, against llhttp"),
        Target("envelope", envelope_inputs, check_envelope, "the JSON and msgpack envelope decoders"),
        Target("envelope-roundtrip", roundtrip_inputs, check_envelope_roundtrip,
               "request envelopes written and read back"),
        Target("protobuf", protobuf_inputs, check_protobuf, "protobuf bodies: the compiled wire against protobuf"),
        Target("protobuf-encode", protobuf_encode_inputs, check_protobuf_encode,
               "protobuf arguments written by the compiled wire and by protobuf"),
        Target("marshal", marshal_inputs, check_marshal, "argument loading into typed parameters"),
        Target("response", response_inputs, check_response, "the client's HTTP response parser"),
        Target("server", server_requests, check_server, "/invoke requests to a real server on raw sockets"),
    ]
}

__all__ = ["TARGETS", "Target", "builds", "check_server", "start_fuzz_server"]
