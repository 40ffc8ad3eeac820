"""The protobuf wire fast path (``pbwire``, compiled only), against protobuf's own encoder and parser.

Every case runs the same method's codec twice: once with ``core.pbwire`` under it, once with
protobuf alone. Bytes, values and errors must be the same; the fast path must have been taken
for plain values and bodies, and must have stepped aside for everything else.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import os
import struct
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Optional

import pytest
from pydantic import BaseModel

from warpcall._compiled import load_compiled
from warpcall.wire.protobuf_codec import ProtobufMethodCodec


@dataclasses.dataclass(frozen=True)
class _CompiledWire:
    pbwire: Any


@pytest.fixture(scope="module")
def core(native_expected: bool) -> _CompiledWire:
    """``core.pbwire``: the wire exists only compiled (without it the codec uses protobuf alone)."""
    try:
        return _CompiledWire(load_compiled("warpcall.core.pbwire"))
    except ImportError as exc:
        if native_expected and os.environ.get("WARPCALL_PURE", "") in ("", "0"):
            pytest.fail(f"the compiled wire was built but does not import: {exc}")
        pytest.skip("the compiled wire is not built here, or WARPCALL_PURE is set")

pytestmark = pytest.mark.c_extension  # the wire exists only compiled

LONG = "x" * 20_000  # a length that needs a three-byte varint, inside a nested message too


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Point:
    x: int
    y: int


@dataclasses.dataclass
class Scalars:
    i: int
    f: float
    b: bool
    s: str
    raw: bytes


@dataclasses.dataclass
class Outer:
    name: str
    at: Point
    maybe: Optional[Point] = None
    note: Optional[str] = None


@dataclasses.dataclass
class Chain:
    value: int
    next: Optional[Chain] = None


class Model(BaseModel):
    title: str
    count: int
    where: Point


@dataclasses.dataclass
class WithList:
    items: list[int]


_counter = iter(range(1_000_000))


def pair(core: Any, *param_types: Any, returns: Any = None) -> tuple[ProtobufMethodCodec, ProtobufMethodCodec]:
    """The same method's codec with the wire fast path and without it."""
    qualified = f"comp:svc:wire{next(_counter)}"
    names = [f"p{i}" for i in range(len(param_types))]
    fast = ProtobufMethodCodec(qualified, names, list(param_types), returns, wire=core.pbwire)
    slow = ProtobufMethodCodec(qualified, names, list(param_types), returns, wire=None)
    return fast, slow


def outcome(call: Any, *args: Any) -> Any:
    """A call's result, or the type and message of what it raised."""
    try:
        return ("ok", call(*args))
    except Exception as exc:  # noqa: BLE001 - the point is to compare whatever happens
        return ("raised", type(exc), str(exc))


def chain(depth: int) -> Chain:
    node = Chain(depth)
    for value in range(depth - 1, -1, -1):
        node = Chain(value, node)
    return node


PLAIN = [
    pytest.param(int, 0, id="int-zero"),
    pytest.param(int, -1, id="int-minus-one"),
    pytest.param(int, -(2**63), id="int-min"),
    pytest.param(int, 2**63 - 1, id="int-max"),
    pytest.param(float, 0.0, id="float-zero"),
    pytest.param(float, -0.0, id="float-minus-zero"),
    pytest.param(float, 1e300, id="float-big"),
    pytest.param(float, float("-inf"), id="float-inf"),
    pytest.param(float, 3, id="float-given-int"),
    pytest.param(bool, False, id="bool-false"),
    pytest.param(bool, True, id="bool-true"),
    pytest.param(str, "", id="str-empty"),
    pytest.param(str, "grüße 世界 🙂", id="str-unicode"),
    pytest.param(str, LONG, id="str-long"),
    pytest.param(bytes, b"", id="bytes-empty"),
    pytest.param(bytes, bytes(range(256)), id="bytes"),
    pytest.param(Optional[int], None, id="optional-none"),
    pytest.param(Optional[int], 0, id="optional-zero"),
    pytest.param(Optional[str], "", id="optional-empty-str"),
    pytest.param(Color, Color.BLUE, id="enum"),
    pytest.param(datetime, datetime(2024, 2, 29, 13, 45, 1, 5), id="datetime"),
    pytest.param(date, date(1999, 12, 31), id="date"),
    pytest.param(uuid.UUID, uuid.UUID(int=12345), id="uuid"),
    pytest.param(Decimal, Decimal("-1.50"), id="decimal"),
    pytest.param(Any, {"any": [1, "two"]}, id="any-as-msgpack"),
    pytest.param(Point, Point(0, 0), id="message-empty"),
    pytest.param(Scalars, Scalars(-7, 2.5, True, "s", b"\x00"), id="message-scalars"),
    pytest.param(Scalars, Scalars(0, 0.0, False, "", b""), id="message-defaults"),
    pytest.param(Outer, Outer("n", Point(1, -1)), id="nested-optional-none"),
    pytest.param(Outer, Outer(LONG, Point(1, 2), Point(3, 4), LONG), id="nested-long"),
    pytest.param(Chain, chain(40), id="recursive"),
    pytest.param(Model, Model(title="t", count=-3, where=Point(5, 6)), id="pydantic"),
]


@pytest.mark.parametrize(("tp", "value"), PLAIN)
def test_plain_request_takes_the_fast_path_and_writes_protobufs_bytes(core: Any, tp: Any, value: Any) -> None:
    fast, slow = pair(core, tp)
    body = fast._request_wire.encode([value])
    assert body is not None, "the fast path stepped aside for a plain value"
    assert body == slow.encode_request([value])
    assert fast.encode_request([value]) == body
    values = fast._request_wire.decode(body)
    assert values is not None, "the fast path stepped aside for a plain body"
    assert values == slow.decode_request(body) == [value]


@pytest.mark.parametrize(("tp", "value"), PLAIN)
def test_plain_response_takes_the_fast_path_and_writes_protobufs_bytes(core: Any, tp: Any, value: Any) -> None:
    fast, slow = pair(core, returns=tp)
    body = fast._response_wire.encode([value])
    assert body is not None
    assert body == slow.encode_response(value) == fast.encode_response(value)
    assert fast._response_wire.decode(body) is not None
    assert fast.decode_response(body) == slow.decode_response(body) == (value, None)


def test_nan_travels_as_nan(core: Any) -> None:
    fast, slow = pair(core, float)
    body = fast.encode_request([math.nan])
    assert body == slow.encode_request([math.nan])
    assert math.isnan(fast.decode_request(body)[0])


def test_several_parameters(core: Any) -> None:
    fast, slow = pair(core, int, str, Optional[Point], Scalars)
    args = [5, "five", None, Scalars(1, -1.0, True, "x", b"y")]
    body = fast.encode_request(args)
    assert body == slow.encode_request(args)
    assert fast._request_wire.decode(body) == slow.decode_request(body) == args


def test_exception_response_is_read_by_protobuf(core: Any) -> None:
    fast, slow = pair(core, returns=Point)
    body = slow.encode_response(None, {"type": "ValueError", "message": "no", "code": "7"})
    assert fast._response_wire.decode(body) is None  # the exception field sends it down protobuf's path
    assert fast.decode_response(body) == slow.decode_response(body) == (
        None, {"type": "ValueError", "message": "no", "code": "7"}
    )


def test_method_without_result(core: Any) -> None:
    fast, slow = pair(core, int)
    assert fast.encode_response(None) == slow.encode_response(None) == b""
    assert fast.decode_response(b"") == (None, None)
    error = slow.encode_response(None, {"type": "E", "message": "m"})
    assert fast.decode_response(error) == slow.decode_response(error) == (None, {"type": "E", "message": "m"})


def test_repeated_fields_and_maps_stay_with_protobuf(core: Any) -> None:
    fast, _ = pair(core, WithList, returns=dict[str, int])
    assert not isinstance(fast._request_wire, core.pbwire.MessageWire)
    assert not isinstance(fast._response_wire, core.pbwire.MessageWire)
    assert fast.decode_request(fast.encode_request([WithList([1, 2])])) == [WithList([1, 2])]


BAD_VALUES = [
    pytest.param(int, "1", id="str-for-int"),
    pytest.param(int, True, id="bool-for-int"),
    pytest.param(int, 2**63, id="int-too-big"),
    pytest.param(int, None, id="none-for-int"),
    pytest.param(float, "1.5", id="str-for-float"),
    pytest.param(float, False, id="bool-for-float"),
    pytest.param(float, 10**400, id="int-beyond-double"),
    pytest.param(bool, 1, id="int-for-bool"),
    pytest.param(str, b"x", id="bytes-for-str"),
    pytest.param(str, "\ud800", id="lone-surrogate"),
    pytest.param(bytes, "x", id="str-for-bytes"),
    pytest.param(Color, "red", id="value-for-enum"),
    pytest.param(datetime, "2024-01-01", id="str-for-datetime"),
    pytest.param(Point, {"x": 1, "y": 2}, id="dict-for-dataclass"),
    pytest.param(Point, Point("1", 2), id="bad-field"),
    pytest.param(Outer, Outer("n", None), id="none-in-nested"),  # type: ignore[arg-type]
    pytest.param(Model, Point(1, 2), id="wrong-class"),
]


@pytest.mark.parametrize(("tp", "value"), BAD_VALUES)
def test_values_that_do_not_fit_get_protobufs_error(core: Any, tp: Any, value: Any) -> None:
    fast, slow = pair(core, tp)
    assert fast._request_wire.encode([value]) is None
    assert outcome(fast.encode_request, [value]) == outcome(slow.encode_request, [value])
    assert outcome(fast.encode_request, [value])[0] == "raised"


def test_too_deep_values_step_aside(core: Any) -> None:
    fast, slow = pair(core, Chain)
    deep = chain(150)
    assert fast._request_wire.encode([deep]) is None
    assert outcome(fast.encode_request, [deep]) == outcome(slow.encode_request, [deep])


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _key(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _zigzag(value: int) -> bytes:
    return _varint(((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF)


def _text(number: int, data: bytes) -> bytes:
    return _key(number, 2) + _varint(len(data)) + data


POINT_1_2 = _key(1, 0) + _zigzag(1) + _key(2, 0) + _zigzag(2)
# a request of (a: int, s: str, p: Optional[Point], f: float, flag: bool)
BODIES = [
    pytest.param(b"", True, id="empty"),
    pytest.param(_key(5, 0) + b"\x01" + _key(1, 0) + _zigzag(-3) + _text(2, b"hi"), True, id="out-of-order"),
    pytest.param(_key(1, 0) + _zigzag(1) + _key(1, 0) + _zigzag(9), True, id="scalar-twice-last-wins"),
    pytest.param(_key(5, 0) + _varint(2), True, id="bool-any-nonzero"),
    pytest.param(_key(5, 0) + _varint(2**64 - 1), True, id="bool-ten-byte-varint"),
    pytest.param(_key(1, 0) + _varint(2**64 - 1), True, id="sint64-min"),
    pytest.param(_key(4, 1) + struct.pack("<d", -0.0), True, id="double-minus-zero"),
    # a request's unknown fields (a newer client's parameters) go to protobuf, which refuses them (422); inside a
    # nested message they are skipped, as protobuf skips them (a field a newer peer's dataclass has)
    pytest.param(_key(9, 0) + _varint(300) + _key(10, 1) + b"8bytes!!" + _text(11, b"unknown")
                 + _key(12, 5) + b"4byt" + _key(1, 0) + _zigzag(4), False, id="unknown-fields"),
    pytest.param(_key(2**29 - 1, 0) + b"\x00", False, id="largest-field-number"),
    pytest.param(_text(3, POINT_1_2 + _key(9, 0) + _varint(300) + _key(10, 1) + b"8bytes!!" + _text(11, b"unknown")
                       + _key(12, 5) + b"4byt" + _key(2**29 - 1, 0) + b"\x00"), True, id="nested-unknown-fields"),
    pytest.param(_text(3, POINT_1_2), True, id="nested"),
    pytest.param(_text(3, b""), True, id="nested-empty"),
    pytest.param(_text(3, POINT_1_2) + _text(3, _key(2, 0) + _zigzag(7)), False, id="nested-twice-merges"),
    pytest.param(_key(1, 2) + b"\x00", False, id="wrong-wire-type"),
    pytest.param(_key(1, 0), False, id="missing-value"),
    pytest.param(_key(1, 0) + b"\x80", False, id="truncated-varint"),
    pytest.param(_key(1, 0) + b"\xff" * 11, False, id="eleven-byte-varint"),
    pytest.param(_key(2, 2) + b"\x05ab", False, id="truncated-length"),
    pytest.param(_key(4, 1) + b"\x00" * 7, False, id="truncated-double"),
    pytest.param(_text(2, b"\xc3\x28"), False, id="invalid-utf8"),
    pytest.param(_text(2, b"\xed\xa0\x80"), False, id="encoded-surrogate"),
    pytest.param(_key(9, 3) + _key(9, 4), False, id="group"),
    pytest.param(_key(9, 7) + b"\x00", False, id="invalid-wire-type"),
    pytest.param(b"\x00\x00", False, id="field-zero"),
    pytest.param(_text(3, _key(1, 0)), False, id="truncated-nested"),
    pytest.param(_text(3, _key(1, 2) + b"\x00"), False, id="nested-wrong-wire-type"),
    pytest.param(b"\xff\xff\xff", False, id="garbage"),
]


@pytest.mark.parametrize(("body", "fast_path"), BODIES)
def test_bodies_read_as_protobuf_reads_them(core: Any, body: bytes, fast_path: bool) -> None:
    fast, slow = pair(core, int, str, Optional[Point], float, bool)
    assert (fast._request_wire.decode(body) is not None) == fast_path
    assert outcome(fast.decode_request, body) == outcome(slow.decode_request, body)


def test_missing_required_message_is_protobufs_error(core: Any) -> None:
    fast, slow = pair(core, Point)
    assert fast._request_wire.decode(b"") is None
    assert outcome(fast.decode_request, b"") == outcome(slow.decode_request, b"")
    # a parameter missing from the call is an argument problem, as a short JSON envelope is (422)
    assert outcome(fast.decode_request, b"")[1].__name__ == "InvalidArgumentsException"


def test_decode_accepts_bytes_like_bodies(core: Any) -> None:
    fast, _ = pair(core, Outer)
    value = Outer("n", Point(1, 2), None, "note")
    body = fast.encode_request([value])
    assert fast._request_wire.decode(bytearray(body)) == [value]
    assert fast._request_wire.decode(memoryview(body)) == [value]


def test_a_converter_that_raises_steps_aside(core: Any) -> None:
    wire = core.pbwire.MessageWire()

    def load(value: Any) -> Any:
        raise ValueError("no")

    wire.define([(core.pbwire.STRING, False, False, str.upper, load, None)])
    assert wire.encode(["a"]) == b"\x0a\x01A"
    assert wire.decode(b"\x0a\x01A") is None
    assert wire.encode([1]) is None  # str.upper(1) raises


def test_layouts_that_make_no_sense_are_refused(core: Any) -> None:
    pbwire = core.pbwire
    with pytest.raises(ValueError):
        pbwire.MessageWire().define([(99, False, False, None, None, None)])
    with pytest.raises(ValueError):
        pbwire.MessageWire().define([(pbwire.MESSAGE, True, False, None, None, None)])
    with pytest.raises(ValueError):
        pbwire.MessageWire().define([(pbwire.STRING, False, False, None, None, pbwire.MessageWire())])


def test_an_undefined_layout_and_a_wrong_count_step_aside(core: Any) -> None:
    pbwire = core.pbwire
    assert pbwire.MessageWire().encode([]) is None
    assert pbwire.MessageWire().decode(b"") is None
    wire = pbwire.MessageWire()
    wire.define([(pbwire.SINT64, False, False, None, None, None)])
    assert wire.encode([1, 2]) is None
    assert wire.encode([-1]) == b"\x08\x01"
    assert wire.decode(b"\x08\x01") == [-1]


def test_rejected_field_numbers_step_aside(core: Any) -> None:
    pbwire = core.pbwire
    wire = pbwire.MessageWire()
    wire.define([(pbwire.BOOL, True, True, None, None, None)], reject=[2])
    assert wire.decode(b"\x08\x00") == [False]
    assert wire.decode(b"") == [None]
    assert wire.decode(b"\x12\x00") is None
    assert wire.decode(b"\x18\x00") == [None]  # field 3 is simply unknown
