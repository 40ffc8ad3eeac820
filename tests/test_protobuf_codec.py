"""The protobuf codec of dispatch-protobuf: messages derived from method signatures, no .proto files."""

from __future__ import annotations

import dataclasses
import enum
import inspect
import threading
import uuid
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, Generic, Literal, Optional, TypeVar, Union

import pytest
from google.protobuf.descriptor import FieldDescriptor
from pydantic import AliasChoices, BaseModel, Field, field_validator

from warpcall._compiled import load_compiled
from warpcall.exceptions import (
    InvalidArgumentsException,
    MalformedRequestException,
    MarshalException,
    ProtocolException,
)
from warpcall.wire import protobuf_codec
from warpcall.wire.protobuf_codec import ProtobufMethodCodec, codec_for

LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, "
    "sed do eiusmod tempor incididunt ut labore et dolore magna aliqua."
)


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 10


class Shape(enum.Enum):
    SQUARE = 4
    TRIANGLE = 3


@dataclasses.dataclass
class Point:
    x: int
    y: int


@dataclasses.dataclass
class Data:
    i: int
    f: float
    b: bool
    s: str


@dataclasses.dataclass
class Order:
    id: uuid.UUID
    placed: datetime
    price: Decimal
    color: Color
    points: list[Point]
    tags: set[str]
    note: Optional[str] = None
    origin: Optional[Point] = None


@dataclasses.dataclass
class Node:
    value: int
    children: list[Node] = dataclasses.field(default_factory=list)
    next: Optional[Node] = None
    named: dict[str, Node] = dataclasses.field(default_factory=dict)


class Address(BaseModel):
    street: str
    zip: int


class Person(BaseModel):
    name: str
    age: int
    address: Address
    previous: list[Address] = []
    nickname: Optional[str] = None
    born: date


class Aliased(BaseModel):
    full_name: str = Field(alias="fullName")


class Chosen(BaseModel):
    user_id: int = Field(validation_alias=AliasChoices("userId", "uid"))
    label: str = Field(alias="Label")


class Positive(BaseModel):
    n: int

    @field_validator("n")
    @classmethod
    def must_be_positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("n must be positive")
        return value


@dataclasses.dataclass(frozen=True)
class Frozen:
    a: int
    b: str = dataclasses.field(default="x", kw_only=True)
    c: int = dataclasses.field(default=0, init=False)


T = TypeVar("T")


@dataclasses.dataclass
class Box(Generic[T]):
    item: T
    items: list[T]


_counter = iter(range(1_000_000))


@pytest.fixture(
    autouse=True, params=[pytest.param("native-wire", marks=pytest.mark.c_extension), "no-wire"]
)
def wire(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every codec test twice: with the compiled wire fast path, and with protobuf alone (its fallback)."""
    module = None
    if request.param == "native-wire":
        try:
            module = load_compiled("warpcall.core.pbwire")
        except ImportError:
            pytest.skip("the compiled wire is not built here, or WARPCALL_PURE is set")
    monkeypatch.setattr(protobuf_codec, "DEFAULT_WIRE", module)


def codec(*param_types: Any, returns: Any = None) -> ProtobufMethodCodec:
    """A fresh codec for a method taking ``param_types`` (parameters p0, p1, ...)."""
    names = [f"p{i}" for i in range(len(param_types))]
    return ProtobufMethodCodec(f"comp:svc:m{next(_counter)}", names, list(param_types), returns)


def roundtrip_request(tp: Any, value: Any) -> Any:
    c = codec(tp)
    body = c.encode_request([value])
    assert isinstance(body, bytes)
    # the other side builds its own codec from the same signature
    other = ProtobufMethodCodec(c.qualified, ["p0"], [tp], None)
    (decoded,) = other.decode_request(body)
    return decoded


def roundtrip_response(tp: Any, value: Any) -> Any:
    c = codec(returns=tp)
    result, exception = c.decode_response(c.encode_response(value))
    assert exception is None
    return result


CASES = [
    pytest.param(int, 0, id="int-zero"),
    pytest.param(int, -(2**63), id="int-min"),
    pytest.param(int, 2**63 - 1, id="int-max"),
    pytest.param(float, -2.5, id="float"),
    pytest.param(float, float("inf"), id="float-inf"),
    pytest.param(bool, True, id="bool"),
    pytest.param(str, "grüße, 世界 🙂", id="str-unicode"),
    pytest.param(bytes, b"\x00\xff\x10", id="bytes"),
    pytest.param(datetime, datetime(2024, 2, 29, 13, 45, 1, 123456), id="datetime-naive"),
    pytest.param(
        datetime, datetime(2024, 2, 29, 13, 45, tzinfo=timezone(timedelta(hours=-5))), id="datetime-aware"
    ),
    pytest.param(date, date(1999, 12, 31), id="date"),
    pytest.param(time, time(23, 59, 58, 1000), id="time"),
    pytest.param(uuid.UUID, uuid.UUID("12345678-1234-5678-1234-567812345678"), id="uuid"),
    pytest.param(Decimal, Decimal("-1234.5678901234567890"), id="decimal"),
    pytest.param(Color, Color.GREEN, id="enum-str"),
    pytest.param(Level, Level.HIGH, id="enum-int"),
    pytest.param(Shape, Shape.TRIANGLE, id="enum-plain-int"),
    pytest.param(Point, Point(0, 0), id="dataclass-zero"),
    pytest.param(Data, Data(1, 2.5, True, LOREM), id="dataclass"),
    pytest.param(
        Order,
        Order(uuid.uuid4(), datetime(2020, 1, 2, 3, 4, 5), Decimal("9.99"), Color.RED,
              [Point(1, 2), Point(-3, 4)], {"a", "b"}, "fragile", Point(0, 0)),
        id="dataclass-nested",
    ),
    pytest.param(
        Order,
        Order(uuid.uuid4(), datetime(2020, 1, 2), Decimal("0"), Color.GREEN, [], set()),
        id="dataclass-nested-defaults",
    ),
    pytest.param(
        Node,
        Node(1, [Node(2), Node(3, [Node(4)])], Node(5, next=Node(6)),
             {"left": Node(7), "right": Node(8, [Node(9)])}),
        id="recursive",
    ),
    pytest.param(
        Person,
        Person(name="Ann", age=41, address=Address(street="Main 1", zip=12345),
               previous=[Address(street="Old 2", zip=1)], born=date(1983, 5, 1)),
        id="pydantic-nested",
    ),
    pytest.param(Aliased, Aliased(fullName="Ann Smith"), id="pydantic-alias"),
    pytest.param(Chosen, Chosen(uid=7, Label="x"), id="pydantic-alias-choices"),
    pytest.param(Frozen, Frozen(1, b="y"), id="dataclass-frozen-kw-only"),
    pytest.param(Box[int], Box(3, [1, 2]), id="generic-dataclass"),
    pytest.param(Box[Point], Box(Point(1, 1), [Point(2, 2)]), id="generic-dataclass-of-dataclass"),
    pytest.param(list[int], [3, -1, 0, 2**40], id="list-int"),
    pytest.param(list[str], [], id="list-empty"),
    pytest.param(tuple[str, ...], ("a", "b"), id="tuple"),
    pytest.param(set[int], {1, 2, 3}, id="set"),
    pytest.param(frozenset[str], frozenset({"x"}), id="frozenset"),
    pytest.param(Sequence[float], [1.5, 2.0], id="sequence"),
    pytest.param(list[Point], [Point(1, 2), Point(0, 0)], id="list-dataclass"),
    pytest.param(list[datetime], [datetime(2001, 1, 1), datetime(2002, 2, 2)], id="list-datetime"),
    pytest.param(list[Color], [Color.RED, Color.GREEN, Color.RED], id="list-enum"),
    pytest.param(dict[str, int], {"a": 1, "b": 0, "": -5}, id="map-str-int"),
    pytest.param(dict[int, str], {1: "one", -2: "minus two"}, id="map-int-str"),
    pytest.param(dict[bool, float], {True: 1.0, False: 0.5}, id="map-bool-float"),
    pytest.param(dict[str, Point], {"origin": Point(0, 0), "p": Point(1, 2)}, id="map-dataclass"),
    pytest.param(dict[str, list[int]], {"a": [1, 2], "empty": []}, id="map-list"),
    pytest.param(dict[str, dict[str, int]], {"outer": {"inner": 1}, "none": {}}, id="map-map"),
    pytest.param(dict[str, Optional[int]], {"set": 0, "unset": None}, id="map-optional"),
    pytest.param(dict[str, Color], {"c": Color.GREEN}, id="map-enum"),
    pytest.param(dict[str, Decimal], {"d": Decimal("1.10")}, id="map-decimal"),
]


@pytest.mark.parametrize(("tp", "value"), CASES)
def test_request_roundtrip(tp: Any, value: Any) -> None:
    decoded = roundtrip_request(tp, value)
    assert decoded == value
    assert type(decoded) is type(value)


@pytest.mark.parametrize(("tp", "value"), CASES)
def test_response_roundtrip(tp: Any, value: Any) -> None:
    decoded = roundtrip_response(tp, value)
    assert decoded == value
    assert type(decoded) is type(value)


def test_nested_values_come_back_as_their_declared_types() -> None:
    order = roundtrip_request(
        Order, Order(uuid.uuid4(), datetime(2020, 1, 1), Decimal("1"), Color.RED, [Point(1, 2)], {"t"})
    )
    assert isinstance(order.id, uuid.UUID) and isinstance(order.price, Decimal)
    assert order.color is Color.RED and type(order.points[0]) is Point and type(order.tags) is set
    person = roundtrip_request(
        Person, Person(name="A", age=1, address=Address(street="s", zip=1), born=date(2000, 1, 1))
    )
    assert type(person.address) is Address and type(person.born) is date


def test_frozen_dataclass_keeps_non_init_field() -> None:
    value = Frozen(5, b="q")
    object.__setattr__(value, "c", 42)
    decoded = roundtrip_request(Frozen, value)
    assert (decoded.a, decoded.b, decoded.c) == (5, "q", 42)


def test_several_parameters_in_order() -> None:
    c = codec_for(
        "comp:svc:several", ["name", "count", "point", "when"], [str, int, Point, Optional[datetime]], str
    )
    args = ["x", 7, Point(1, 2), datetime(2021, 3, 4, 5, 6, 7)]
    assert c.decode_request(c.encode_request(args)) == args
    assert c.decode_request(c.encode_request(("y", 0, Point(0, 0), None))) == ["y", 0, Point(0, 0), None]
    names = [f.name for f in c.request_type.DESCRIPTOR.fields]
    assert names == ["name", "count", "point", "when"]
    assert [f.number for f in c.request_type.DESCRIPTOR.fields] == [1, 2, 3, 4]


def test_method_without_parameters() -> None:
    c = codec_for("comp:svc:nothing", [], [], None)
    assert c.encode_request([]) == b""
    assert c.decode_request(b"") == []
    assert c.decode_response(c.encode_response(None)) == (None, None)


def test_scalar_mapping_uses_declared_protobuf_types() -> None:
    c = codec(int, float, bool, str, bytes, datetime, Level, Color, list[int], dict[str, int], Point)
    fields = c.request_type.DESCRIPTOR.fields
    assert [f.type for f in fields] == [
        FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_BOOL,
        FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES, FieldDescriptor.TYPE_STRING,
        FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_MESSAGE,
    ]
    # protobuf 7 dropped FieldDescriptor.label for is_repeated; older releases only have label
    repeated = getattr(fields[8], "is_repeated", None)
    assert repeated if repeated is not None else fields[8].label == FieldDescriptor.LABEL_REPEATED
    assert fields[9].message_type.GetOptions().map_entry
    assert fields[10].message_type.name == "Point"


def test_negative_ints_are_zigzag_encoded() -> None:
    # sint64 keeps small negative numbers short (int64 would spend ten bytes)
    assert len(codec(int).encode_request([-1])) == 2


@pytest.mark.parametrize(
    ("tp", "zero"),
    [(int, 0), (str, ""), (bool, False), (float, 0.0), (bytes, b""), (Point, Point(0, 0)),
     (list[int], []), (dict[str, int], {}), (Color, Color.RED), (datetime, datetime(1970, 1, 1))],
)
def test_optional_keeps_none_apart_from_zero_values(tp: Any, zero: Any) -> None:
    for value in (None, zero):
        assert roundtrip_request(Optional[tp], value) == value
        assert roundtrip_response(Optional[tp], value) == value
    assert roundtrip_request(Optional[tp], None) is None
    assert roundtrip_request(Optional[tp], zero) is not None


def test_optional_fields_inside_messages() -> None:
    @dataclasses.dataclass
    class Maybe:
        n: Optional[int] = None
        s: Optional[str] = None
        items: Optional[list[int]] = None
        point: Optional[Point] = None

    for value in (Maybe(), Maybe(0, "", [], Point(0, 0)), Maybe(3, "x", [1], Point(1, 1))):
        assert roundtrip_request(Maybe, value) == value


def test_pipe_union_with_none_is_optional() -> None:
    c = codec(int | None)
    assert c.request_type.DESCRIPTOR.fields[0].has_presence
    assert c.decode_request(c.encode_request([None])) == [None]
    assert c.decode_request(c.encode_request([0])) == [0]


@pytest.mark.parametrize(
    ("tp", "value"),
    [
        pytest.param(Union[int, str], "text", id="union-str"),
        pytest.param(Union[int, str], 5, id="union-int"),
        pytest.param(Any, {"free": [1, "form", None]}, id="any"),
        pytest.param(list[list[int]], [[1, 2], [], [3]], id="list-of-lists"),
        pytest.param(tuple[int, str], (1, "a"), id="fixed-tuple"),
        pytest.param(Optional[Union[int, str]], None, id="optional-union-none"),
        pytest.param(list[Union[Point, str]], [Point(1, 2), "x"], id="list-of-union"),
        pytest.param(Literal["on", "off"], "off", id="literal"),
    ],
)
def test_fallback_field_carries_the_marshallers_tree(tp: Any, value: Any) -> None:
    c = codec(tp, returns=tp)
    assert c.request_type.DESCRIPTOR.fields[0].type == FieldDescriptor.TYPE_BYTES
    assert c.decode_request(c.encode_request([value])) == [value]
    assert c.decode_response(c.encode_response(value)) == (value, None)


def test_fallback_inside_a_dataclass() -> None:
    @dataclasses.dataclass
    class Loose:
        id: int
        payload: Union[int, str, list[str]]

    assert roundtrip_request(Loose, Loose(1, ["a", "b"])) == Loose(1, ["a", "b"])
    assert roundtrip_request(Loose, Loose(2, 7)) == Loose(2, 7)


def test_fallback_value_that_does_not_fit_names_the_parameter() -> None:
    c = ProtobufMethodCodec("comp:svc:loose", ["choice"], [Union[int, str]], None)
    with pytest.raises(MarshalException, match="choice"):
        c.encode_request([[1, 2]])


def test_fallback_none_only_where_the_type_allows_it() -> None:
    c = ProtobufMethodCodec("comp:svc:nullable", ["strict", "loose"], [Union[int, str], Any], None)
    assert c.decode_request(c.encode_request([1, None])) == [1, None]
    with pytest.raises(MarshalException, match="parameter 'strict'"):
        c.encode_request([None, 1])


def test_unannotated_parameter_travels_as_any() -> None:
    c = ProtobufMethodCodec("comp:svc:bare", ["x"], [inspect.Parameter.empty], inspect.Signature.empty)
    assert c.decode_request(c.encode_request([{"k": [1, 2]}])) == [{"k": [1, 2]}]
    assert c.decode_response(c.encode_response("anything")) == ("anything", None)


# -- responses and exceptions


def test_exception_response() -> None:
    c = codec(returns=Point)
    body = c.encode_response(None, {"type": "ValueError", "message": "no such point"})
    assert c.decode_response(body) == (None, {"type": "ValueError", "message": "no such point"})


def test_exception_response_wins_over_result_and_keeps_extra_keys() -> None:
    c = codec(returns=int)
    body = c.encode_response(0, {"type": "KeyError", "message": "'k'", "traceback": "line 1"})
    assert c.decode_response(body) == (None, {"type": "KeyError", "message": "'k'", "traceback": "line 1"})


def test_result_none_and_zero_are_distinct() -> None:
    c = codec(returns=int)
    assert c.decode_response(c.encode_response(None)) == (None, None)
    assert c.decode_response(c.encode_response(0)) == (0, None)
    assert c.response_type.DESCRIPTOR.fields_by_name["result"].has_presence


def test_method_returning_none() -> None:
    c = codec(int, returns=type(None))
    assert c.decode_response(c.encode_response(None)) == (None, None)
    with pytest.raises(MarshalException, match="result"):
        c.encode_response(5)


def test_result_that_does_not_fit_raises_marshal_exception() -> None:
    c = ProtobufMethodCodec("comp:svc:typed", [], [], Point)
    with pytest.raises(MarshalException, match=r"comp:svc:typed.*result"):
        c.encode_response("not a point")


# -- encode errors


@pytest.mark.parametrize(
    ("tp", "value"),
    [
        pytest.param(int, "1", id="str-for-int"),
        pytest.param(int, 1.5, id="float-for-int"),
        pytest.param(int, True, id="bool-for-int"),
        pytest.param(int, 2**63, id="int-out-of-range"),
        pytest.param(bool, 1, id="int-for-bool"),
        pytest.param(str, b"bytes", id="bytes-for-str"),
        pytest.param(str, "\udc80", id="lone-surrogate"),
        pytest.param(bytes, "text", id="str-for-bytes"),
        pytest.param(int, None, id="none-for-int"),
        pytest.param(Point, None, id="none-for-dataclass"),
        pytest.param(Point, {"x": 1, "y": 2}, id="dict-for-dataclass"),
        pytest.param(datetime, date(2020, 1, 1), id="date-for-datetime"),
        pytest.param(date, datetime(2020, 1, 1), id="datetime-for-date"),
        pytest.param(Color, "red", id="value-for-enum"),
        pytest.param(list[int], [1, "2"], id="bad-list-item"),
        pytest.param(list[int], [1, None], id="none-list-item"),
        pytest.param(list[int], "123", id="str-for-list"),
        pytest.param(list[Point], [Point(1, 1), 3], id="bad-list-message"),
        pytest.param(dict[str, int], {1: 1}, id="bad-map-key"),
        pytest.param(dict[str, int], {"a": "1"}, id="bad-map-value"),
        pytest.param(dict[str, Point], {"a": None}, id="none-map-value"),
        pytest.param(dict[str, int], [("a", 1)], id="list-for-map"),
    ],
)
def test_value_that_does_not_fit_names_the_parameter(tp: Any, value: Any) -> None:
    c = ProtobufMethodCodec("comp:svc:strict", ["first", "target"], [int, tp], None)
    with pytest.raises(MarshalException, match=r"comp:svc:strict: parameter 'target'"):
        c.encode_request([1, value])


def test_nested_error_names_the_field() -> None:
    c = ProtobufMethodCodec("comp:svc:nested", ["order"], [Order], None)
    points = [Point(1, "2")]  # type: ignore[arg-type]
    bad = Order(uuid.uuid4(), datetime(2020, 1, 1), Decimal("1"), Color.RED, points, set())
    with pytest.raises(MarshalException, match=r"'order'.*'points'.*item 0.*'y'.*expected int, got str"):
        c.encode_request([bad])


def test_cyclic_value_raises_marshal_exception() -> None:
    node = Node(1)
    node.next = node
    with pytest.raises(MarshalException, match="parameter 'p0'.*contains itself"):
        codec(Node).encode_request([node])


def test_unresolvable_type_hints_fail_at_startup() -> None:
    @dataclasses.dataclass
    class Dangling:
        other: Missing  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(MarshalException, match="Dangling"):
        codec(Dangling)


def test_marshal_exception_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        codec(int).encode_request(["x"])


def test_wrong_number_of_arguments() -> None:
    c = ProtobufMethodCodec("comp:svc:two", ["a", "b"], [int, int], None)
    with pytest.raises(MarshalException, match=r"comp:svc:two takes 2 argument"):
        c.encode_request([1])


def test_float_parameter_accepts_int() -> None:
    assert roundtrip_request(float, 3) == 3.0
    assert roundtrip_request(Data, Data(1, 2, False, "")) == Data(1, 2.0, False, "")


# -- decode errors


@pytest.mark.parametrize("body", [b"\xff\xff\xff", b"\x0a\x05ab", b"\x08", b"\x12\x02\xc3\x28"])
def test_malformed_request_body(body: bytes) -> None:
    c = ProtobufMethodCodec("comp:svc:parse", ["n", "s"], [int, str], None)
    with pytest.raises(MalformedRequestException, match="comp:svc:parse"):
        c.decode_request(body)


@pytest.mark.parametrize("text", ["\rnfinity", "1.2.3", "", "one"])
def test_decimal_text_that_is_no_number_is_a_malformed_request(text: str) -> None:
    # found by tests/fuzz: Decimal() raises decimal.InvalidOperation (an ArithmeticError), which escaped the
    # decoder instead of the documented MalformedRequestException
    sender = ProtobufMethodCodec("comp:svc:price", ["p"], [str], None)
    receiver = ProtobufMethodCodec("comp:svc:price", ["p"], [Decimal], None)
    with pytest.raises(MalformedRequestException, match="comp:svc:price.*not a decimal number"):
        receiver.decode_request(sender.encode_request([text]))


def test_malformed_request_values() -> None:
    # well-formed protobuf whose strings do not parse as the declared types
    sender = ProtobufMethodCodec("comp:svc:values", ["when", "color", "id"], [str, str, str], None)
    receiver = ProtobufMethodCodec(
        "comp:svc:values", ["when", "color", "id"], [datetime, Color, uuid.UUID], None
    )
    ok = ["2020-01-01T00:00:00", "red", str(uuid.uuid4())]
    assert receiver.decode_request(sender.encode_request(ok))[1] is Color.RED
    for position, garbage in enumerate(["yesterday", "purple", "not-a-uuid"]):
        args = list(ok)
        args[position] = garbage
        # an enum value the receiver's enum lacks (a newer peer's) is an argument it refuses by name (422, as on
        # JSON); text that is no date or UUID at all is a malformed body
        expected = InvalidArgumentsException if garbage == "purple" else MalformedRequestException
        with pytest.raises(expected, match="comp:svc:values") as info:
            receiver.decode_request(sender.encode_request(args))
        if garbage == "purple":
            assert "parameter 'color'" in str(info.value) and "'purple'" in str(info.value)


def test_malformed_fallback_bytes() -> None:
    sender = ProtobufMethodCodec("comp:svc:fb", ["v"], [bytes], None)
    receiver = ProtobufMethodCodec("comp:svc:fb", ["v"], [Union[int, str]], None)
    with pytest.raises(MalformedRequestException, match="comp:svc:fb"):
        receiver.decode_request(sender.encode_request([b"\xc1"]))  # 0xc1 is never valid msgpack


def test_pydantic_validators_run_on_decode() -> None:
    sender = ProtobufMethodCodec("comp:svc:pos", ["p"], [Point], None)
    receiver = ProtobufMethodCodec("comp:svc:pos", ["p"], [Positive], None)
    assert receiver.decode_request(sender.encode_request([Point(5, 0)])) == [Positive(n=5)]
    with pytest.raises(MalformedRequestException, match="n must be positive"):
        receiver.decode_request(sender.encode_request([Point(-1, 0)]))


def test_malformed_response_body() -> None:
    c = ProtobufMethodCodec("comp:svc:resp", [], [], int)
    with pytest.raises(ProtocolException, match="comp:svc:resp") as info:
        c.decode_response(b"\xff\xff")
    assert not isinstance(info.value, MalformedRequestException)


def test_missing_required_message_is_invalid_arguments() -> None:
    # a parameter missing from the call is an argument problem, as a short JSON envelope is (422)
    sender = ProtobufMethodCodec("comp:svc:missing", ["n"], [int], None)
    receiver = ProtobufMethodCodec("comp:svc:missing", ["n", "point"], [int, Point], None)
    with pytest.raises(InvalidArgumentsException, match=r"comp:svc:missing.*'point'.*missing"):
        receiver.decode_request(sender.encode_request([1]))
    optional = ProtobufMethodCodec("comp:svc:missing", ["n", "point"], [int, Optional[Point]], None)
    assert optional.decode_request(sender.encode_request([1])) == [1, None]


def test_a_newer_parameter_left_at_its_default_is_not_sent() -> None:
    # a newer client with one more parameter (declared with a default) still talks to an older server while the
    # caller leaves it alone; a value the older server would silently drop is refused there, naming the field
    newer = ProtobufMethodCodec("comp:svc:evolve", ["a", "b"], [int, str], None, param_defaults=[inspect.Parameter.empty, "-"])
    older = ProtobufMethodCodec("comp:svc:evolve", ["a"], [int], None)
    assert older.decode_request(newer.encode_request([4, "-"])) == [4]
    with pytest.raises(InvalidArgumentsException, match=r"comp:svc:evolve.*field number 2\b"):
        older.decode_request(newer.encode_request([4, "extra"]))
    # and the newer server reads the older client's call with the default
    assert newer.decode_request(older.encode_request([4])) == [4, "-"]


def test_deeply_nested_body_is_rejected() -> None:
    deep = Node(0)
    for i in range(1, 200):
        deep = Node(i, next=deep)
    c = ProtobufMethodCodec("comp:svc:deep", ["n"], [Node], None)
    body = c.encode_request([deep])
    with pytest.raises(MalformedRequestException, match="comp:svc:deep"):
        c.decode_request(body)


# -- caching and naming


def test_codec_for_is_cached() -> None:
    first = codec_for("comp:svc:cached", ["a"], [int], int)
    assert codec_for("comp:svc:cached", ["a"], [int], int) is first


def test_one_codec_serves_many_threads() -> None:
    c = codec_for("comp:svc:shared", ["order", "n"], [Order, int], Node)
    failures: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            for i in range(200):
                points = [Point(seed, i)]
                order = Order(uuid.uuid4(), datetime(2020, 1, 1), Decimal(seed), Color.RED, points, set())
                node = Node(i, [Node(seed)])
                assert c.decode_request(c.encode_request([order, i])) == [order, i]
                assert c.decode_response(c.encode_response(node)) == (node, None)
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures
    assert not any(thread.is_alive() for thread in threads)


def test_codec_for_is_thread_safe() -> None:
    results: list[ProtobufMethodCodec] = []
    barrier = threading.Barrier(8)

    def build() -> None:
        barrier.wait(timeout=10)
        results.append(codec_for("comp:svc:raced", ["order"], [Order], Node))

    threads = [threading.Thread(target=build) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 8
    assert all(result is results[0] for result in results)


def test_message_names_are_unique_per_method() -> None:
    a = codec_for("comp:svc:first", ["p"], [Point], Point)
    b = codec_for("comp:svc:second", ["p"], [Point], Point)
    c = codec_for("comp:other:first", ["p"], [Point], Point)
    names = {x.request_type.DESCRIPTOR.full_name for x in (a, b, c)}
    names |= {x.response_type.DESCRIPTOR.full_name for x in (a, b, c)}
    assert len(names) == 6
    assert "first" in a.request_type.DESCRIPTOR.full_name
    assert a.request_type is not b.request_type


def test_qualified_names_are_sanitized_and_stay_unique() -> None:
    a = codec_for("my-comp:svc.v2:do it", ["p"], [int], int)
    b = codec_for("my_comp:svc_v2:do_it", ["p"], [int], int)
    assert a.request_type.DESCRIPTOR.full_name != b.request_type.DESCRIPTOR.full_name
    assert a.decode_request(a.encode_request([3])) == [3]


def test_types_with_the_same_name_get_distinct_messages() -> None:
    def make() -> type:
        @dataclasses.dataclass
        class Point:  # same name as the module-level Point, different type
            label: str

        return Point

    Other = make()
    c = codec(Point, Other)
    fields = c.request_type.DESCRIPTOR.fields
    assert fields[0].message_type.full_name != fields[1].message_type.full_name
    assert c.decode_request(c.encode_request([Point(1, 2), Other("a")])) == [Point(1, 2), Other("a")]


def test_field_names_that_sanitize_alike_stay_distinct() -> None:
    @dataclasses.dataclass
    class Accents:
        café: int
        caf_: str

    c = codec(Accents, returns=Accents)
    names = [f.name for f in c.request_type.DESCRIPTOR.fields[0].message_type.fields]
    assert len(set(names)) == 2
    assert c.decode_request(c.encode_request([Accents(1, "x")])) == [Accents(1, "x")]
    assert c.decode_response(c.encode_response(Accents(0, ""))) == (Accents(0, ""), None)


def test_one_message_per_type_within_a_method() -> None:
    c = codec(Point, list[Point], dict[str, Point])
    fields = c.request_type.DESCRIPTOR.fields
    assert fields[0].message_type is fields[1].message_type
    assert fields[2].message_type.fields_by_name["value"].message_type is fields[0].message_type


# ---------------------------------------------------------------- values at the edges (issue 14, point 7)


@pytest.mark.parametrize("n", [2**63, -(2**63) - 1, 2**64, 2**100])
def test_ints_beyond_sint64_are_refused_naming_the_parameter_and_the_rule(n: int) -> None:
    c = codec(int, Point)
    with pytest.raises(MarshalException, match=rf"^{c.qualified}: parameter 'p0': the integer {n} is outside sint64 "
                                               r"\(-2\*\*63 \.\. 2\*\*63-1\), the range dispatch-protobuf carries"):
        c.encode_request([n, Point(1, 2)])
    with pytest.raises(MarshalException, match=rf"parameter 'p1': the integer {n} is outside sint64"):
        c.encode_request([1, Point(n, 2)])
    returning = codec(returns=int)
    with pytest.raises(MarshalException, match=rf"^{returning.qualified}: result: the integer {n} is outside sint64"):
        returning.encode_response(n)


@pytest.mark.parametrize("n", [2**63 - 1, -(2**63)])
def test_sint64_bounds_travel(n: int) -> None:
    assert roundtrip_request(int, n) == n
    assert roundtrip_response(int, n) == n


@pytest.mark.parametrize("n", [2**64, -(2**70), 10**300])
def test_ints_inside_msgpack_carried_fields_travel_whatever_their_size(n: int) -> None:
    assert roundtrip_request(Any, {"n": [n]}) == {"n": [n]}
    assert roundtrip_response(Union[int, str], n) == n


@pytest.mark.parametrize("value", [float("inf"), float("-inf")])
def test_inf_travels_in_double_fields(value: float) -> None:
    assert roundtrip_request(float, value) == value
    assert roundtrip_response(Optional[float], value) == value
    assert roundtrip_request(Any, [value]) == [value]


def test_nan_travels_in_double_fields() -> None:
    assert str(roundtrip_request(float, float("nan"))) == "nan"
    assert str(roundtrip_response(list[float], [float("nan")])) == "[nan]"


def test_a_lone_surrogate_is_refused_by_name() -> None:
    c = codec(str, returns=str)
    with pytest.raises(MarshalException, match=r"parameter 'p0': a string holding the lone surrogate '\\ud800', "
                                               r"which is not Unicode text"):
        c.encode_request(["ab\ud800"])
    with pytest.raises(MarshalException, match=r"result: a string holding the lone surrogate '\\udc00'"):
        c.encode_response("\udc00")
