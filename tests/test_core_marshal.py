"""Marshalling on both cores: every supported type round-trips, errors name type and path, plans cache."""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import enum
import json
import math
import subprocess
import sys
import threading
import typing
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, NewType, Optional, TypeVar, Union
from uuid import UUID

import msgpack
import pytest
from pydantic import BaseModel, Field, HttpUrl, field_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from warpcall._compiled import load_variant
from warpcall.core.marshal_plan import NonFiniteFloat, may_take_rounded_integers
from warpcall.exceptions import MarshalException

T = TypeVar("T")


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Mood(str, enum.Enum):  # what enum.StrEnum is, which Python 3.10 lacks
    CALM = "calm"
    ANGRY = "angry"


@dataclass
class Item:
    sku: str
    when: datetime
    qty: int = 1


@dataclass
class Order:
    id: UUID
    items: list[Item]
    total: Decimal
    color: Color
    note: Optional[str] = None
    tags: dict[str, int] = field(default_factory=dict)


@dataclass
class Tree:
    """Recursive through a forward reference resolved against this module."""

    value: int
    children: list[Tree] = field(default_factory=list)


@dataclass
class Early:
    """Refers to a class defined further down the module."""

    late: Late | None


@dataclass
class Late:
    x: int


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    y: float


@dataclass(kw_only=True)
class Counted:
    n: int
    double: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.double = self.n * 2


@dataclass
class Positive:
    n: int

    def __post_init__(self) -> None:
        if self.n <= 0:
            raise ValueError("n must be positive")


@dataclass
class Page(Generic[T]):
    items: list[T]
    total: int


@dataclass
class Data:
    i: int
    f: float
    b: bool
    s: str


@dataclass
class Blob:
    payload: bytes
    day: date
    at: time


class Model(BaseModel):
    i: int
    f: float
    b: bool
    s: str


class RichModel(BaseModel):
    when: datetime
    payload: bytes
    level: Level
    data: Data
    by_level: dict[Level, str] = Field(default_factory=dict)


class Aliased(BaseModel):
    user_name: str = Field(alias="userName")


class ModelPage(BaseModel, Generic[T]):
    items: list[T]


class Node(BaseModel):
    value: int
    children: list[Node] = []


def test_order_roundtrip_and_wire_form(core):
    plan = core.marshal.plan_for(Order)
    when = datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)
    order = Order(
        id=UUID("12345678-1234-5678-1234-567812345678"),
        items=[Item("a", when), Item("b", when, 3)],
        total=Decimal("12.50"),
        color=Color.GREEN,
        tags={"x": 1},
    )
    data = plan.dump(order)
    assert data == {
        "id": "12345678-1234-5678-1234-567812345678",
        "items": [
            {"sku": "a", "when": "2024-05-01T12:30:00+00:00", "qty": 1},
            {"sku": "b", "when": "2024-05-01T12:30:00+00:00", "qty": 3},
        ],
        "total": "12.50",
        "color": "green",
        "note": None,
        "tags": {"x": 1},
    }
    assert json.loads(json.dumps(data)) == data
    assert plan.load(data) == order
    assert plan.load(json.loads(json.dumps(data))) == order


def test_error_names_type_and_path(core):
    plan = core.marshal.plan_for(Order)
    data = {
        "id": "12345678-1234-5678-1234-567812345678",
        "items": [{"sku": "a", "when": "2024-05-01T00:00:00"}] * 2 + [{"sku": "c", "when": 7}],
        "total": "1",
        "color": "red",
    }
    expected = r"^Order\.items\[2\]\.when: expected an ISO datetime string, got int$"
    with pytest.raises(MarshalException, match=expected):
        plan.load(data)
    expected = r"^Order\.color: expected a Color value \('red', 'green'\), got 'blue'$"
    with pytest.raises(MarshalException, match=expected):
        plan.load({**data, "items": [], "color": "blue"})
    with pytest.raises(MarshalException, match=r"^Order\.tags\['x'\]: expected int, got str$"):
        plan.load({**data, "items": [], "tags": {"x": "1"}})


def test_missing_field_is_named_and_unknown_keys_are_ignored(core):
    plan = core.marshal.plan_for(Item)
    with pytest.raises(MarshalException, match=r"^Item\.when: missing required field$"):
        plan.load({"sku": "a"})
    loaded = plan.load({"sku": "a", "when": "2024-01-01T00:00:00", "extra": [1, 2]})
    assert loaded == Item("a", datetime(2024, 1, 1))
    with pytest.raises(MarshalException, match=r"^Item: expected a dict for Item, got list$"):
        plan.load([1])


def test_dump_checks_types_too(core):
    plan = core.marshal.plan_for(Item)
    with pytest.raises(MarshalException, match=r"^Item\.when: expected datetime, got str$"):
        plan.dump(Item("a", "2024-01-01"))  # type: ignore[arg-type]
    with pytest.raises(MarshalException, match=r"^Item: expected Item, got dict$"):
        plan.dump({"sku": "a"})


@pytest.mark.parametrize(
    ("tp", "value"),
    [(str, "grüße"), (int, -3), (float, 2.5), (bool, False), (type(None), None), (int, 10**30)],
)
def test_primitives_roundtrip(core, tp, value):
    plan = core.marshal.plan_for(tp)
    assert plan.dump(value) == value
    assert plan.load(value) == value
    assert type(plan.load(value)) is type(value)


def test_primitives_are_strict_but_int_is_a_float(core):
    m = core.marshal
    assert m.plan_for(float).load(3) == 3.0 and type(m.plan_for(float).load(3)) is float
    with pytest.raises(MarshalException, match=r"^int: expected int, got bool$"):
        m.plan_for(int).load(True)
    with pytest.raises(MarshalException, match=r"^int: expected int, got str$"):
        m.plan_for(int).load("1")
    with pytest.raises(MarshalException, match=r"^bool: expected bool, got int$"):
        m.plan_for(bool).load(1)
    with pytest.raises(MarshalException, match=r"^str: expected str, got bytes$"):
        m.plan_for(str).load(b"x")
    with pytest.raises(MarshalException, match=r"^float: expected float, got bool$"):
        m.plan_for(float).load(True)


def test_bytes_travel_as_base64_and_load_from_raw_msgpack(core):
    plan = core.marshal.plan_for(Blob)
    blob = Blob(b"\x00\xffhi", date(2024, 2, 29), time(23, 59, 1, 5))
    data = plan.dump(blob)
    assert data == {"payload": "AP9oaQ==", "day": "2024-02-29", "at": "23:59:01.000005"}
    assert plan.load(data) == blob
    raw = msgpack.unpackb(msgpack.packb({**data, "payload": b"\x00\xffhi"}))
    assert plan.load(raw) == blob
    with pytest.raises(MarshalException, match=r"^Blob\.payload: invalid base64 string '\*\*\*'$"):
        plan.load({**data, "payload": "***"})


def test_any_and_object_pass_through(core):
    for tp in (Any, object):
        plan = core.marshal.plan_for(tp)
        value = {"a": [1, None, "x"]}
        assert plan.dump(value) is value
        assert plan.load(value) is value


def test_frozen_slots_and_post_init(core):
    point = core.marshal.plan_for(Point)
    assert point.dump(Point(1.0, 2.5)) == {"x": 1.0, "y": 2.5}
    assert point.load({"x": 1, "y": 2.5}) == Point(1.0, 2.5)
    counted = core.marshal.plan_for(Counted)
    loaded = counted.load({"n": 4})
    assert loaded == Counted(n=4) and loaded.double == 8
    assert counted.load(counted.dump(Counted(n=5))) == Counted(n=5)
    expected = r"^Positive: constructor raised ValueError: n must be positive$"
    with pytest.raises(MarshalException, match=expected):
        core.marshal.plan_for(Positive).load({"n": 0})


def test_generic_dataclass(core):
    plan = core.marshal.plan_for(Page[Data])
    page = Page([Data(1, 2.0, True, "s")], total=1)
    assert plan.dump(page) == {"items": [{"i": 1, "f": 2.0, "b": True, "s": "s"}], "total": 1}
    assert plan.load(plan.dump(page)) == page
    assert type(plan.load(plan.dump(page)).items[0]) is Data
    with pytest.raises(MarshalException, match=r"^Page\[Data\]\.items\[0\]\.i: expected int, got str$"):
        plan.load({"items": [{"i": "1", "f": 2.0, "b": True, "s": "s"}], "total": 1})


def test_recursive_types_and_forward_references(core):
    plan = core.marshal.plan_for(Tree)
    tree = Tree(1, [Tree(2), Tree(3, [Tree(4)])])
    assert plan.load(plan.dump(tree)) == tree
    assert plan.dump(Tree(1, [Tree(2)])) == {"value": 1, "children": [{"value": 2, "children": []}]}
    expected = r"^Tree\.children\[1\]\.children\[0\]\.value: expected int, got str$"
    with pytest.raises(MarshalException, match=expected):
        plan.load({"value": 1, "children": [{"value": 2}, {"value": 3, "children": [{"value": "4"}]}]})
    early = core.marshal.plan_for(Early)
    assert early.load({"late": {"x": 1}}) == Early(Late(1))
    assert early.load({"late": None}) == Early(None)


def test_pydantic_model_dumps_like_model_dump_and_loads_validated(core):
    plan = core.marshal.plan_for(Model)
    model = Model(i=1, f=2.5, b=True, s="x")
    assert plan.dump(model) == model.model_dump()
    assert plan.load(plan.dump(model)) == model
    assert plan.load({"i": 1, "f": 2.5, "b": True, "s": "x", "unknown": 0}) == model
    with pytest.raises(MarshalException, match=r"^Model\.i: Input should be a valid integer.*, got str$"):
        plan.load({"i": "one", "f": 2.5, "b": True, "s": "x"})
    with pytest.raises(MarshalException, match=r"^Model\.s: missing required field$"):
        plan.load({"i": 1, "f": 2.5, "b": True})


def test_pydantic_model_with_types_json_cannot_carry(core):
    plan = core.marshal.plan_for(RichModel)
    model = RichModel(
        when=datetime(2024, 1, 2, 3, 4, 5), payload=b"\x00\x01", level=Level.HIGH,
        data=Data(1, 1.5, False, "d"), by_level={Level.LOW: "low"},
    )
    data = plan.dump(model)
    assert data == {
        "when": "2024-01-02T03:04:05", "payload": "AAE=", "level": 2,
        "data": {"i": 1, "f": 1.5, "b": False, "s": "d"}, "by_level": {"1": "low"},
    }
    assert plan.load(json.loads(json.dumps(data))) == model
    with pytest.raises(MarshalException, match=r"^RichModel\.data\.b: expected bool, got str$"):
        plan.load({**data, "data": {"i": 1, "f": 1.5, "b": "no", "s": "d"}})


def test_pydantic_alias_generic_and_recursive(core):
    aliased = core.marshal.plan_for(Aliased)
    assert aliased.dump(Aliased(userName="ann")) == {"user_name": "ann"}
    assert aliased.load({"user_name": "ann"}) == Aliased(userName="ann")
    page = core.marshal.plan_for(ModelPage[Data])
    value = ModelPage[Data](items=[Data(1, 1.0, True, "x")])
    assert page.load(page.dump(value)) == value
    node = core.marshal.plan_for(Node)
    tree = Node(value=1, children=[Node(value=2)])
    assert node.load(node.dump(tree)) == tree


def test_enums_by_value(core):
    m = core.marshal
    assert m.plan_for(Level).dump(Level.HIGH) == 2 and type(m.plan_for(Level).dump(Level.HIGH)) is int
    assert m.plan_for(Level).load(2) is Level.HIGH
    assert m.plan_for(Mood).load("calm") is Mood.CALM
    assert m.plan_for(Color).load("red") is Color.RED
    with pytest.raises(MarshalException, match=r"^Level: expected a Level value \(1, 2\), got True$"):
        m.plan_for(Level).load(True)
    with pytest.raises(MarshalException, match=r"^Color: expected Color, got str$"):
        m.plan_for(Color).dump("red")


def test_datetimes_uuid_decimal(core):
    m = core.marshal
    aware = datetime(2024, 1, 1, 8, tzinfo=timezone(timedelta(hours=2)))
    assert m.plan_for(datetime).load(m.plan_for(datetime).dump(aware)) == aware
    assert m.plan_for(datetime).load("2024-01-01T06:00:00Z") == aware
    assert m.plan_for(date).load("2024-03-01") == date(2024, 3, 1)
    with pytest.raises(MarshalException, match=r"^date: expected date, got datetime$"):
        m.plan_for(date).dump(aware)
    with pytest.raises(MarshalException, match=r"^date: invalid ISO date string 'March'$"):
        m.plan_for(date).load("March")
    uid = UUID(int=5)
    assert m.plan_for(UUID).load(m.plan_for(UUID).dump(uid)) == uid
    assert m.plan_for(Decimal).load("0.1") == Decimal("0.1")
    assert m.plan_for(Decimal).load(3) == Decimal(3)
    with pytest.raises(MarshalException, match=r"^Decimal: invalid decimal string 'abc'$"):
        m.plan_for(Decimal).load("abc")


def test_unions_try_exact_primitives_first_then_declaration_order(core):
    m = core.marshal
    assert m.plan_for(int | str).load("1") == "1"
    assert m.plan_for(int | str).load(1) == 1
    assert type(m.plan_for(float | int).load(1)) is int
    assert type(m.plan_for(Optional[float]).load(1)) is float
    assert m.plan_for(Optional[Data]).load(None) is None
    either = m.plan_for(Union[Item, Data])
    assert either.load({"i": 1, "f": 1.0, "b": True, "s": "x"}) == Data(1, 1.0, True, "x")
    assert either.dump(Data(1, 1.0, True, "x")) == {"i": 1, "f": 1.0, "b": True, "s": "x"}
    with pytest.raises(
        MarshalException,
        match=r"^Item \| Data: expected Item \| Data, got dict "
        r"\(as Item\.when: missing required field; as Data\.f: expected float, got str\)$",
    ):
        either.load({"sku": "a", "i": 1, "f": "x", "b": True, "s": "x"})
    with pytest.raises(MarshalException, match=r"^int \| str: expected int \| str, got bool$"):
        m.plan_for(int | str).load(True)
    with pytest.raises(MarshalException, match=r"^int \| str: expected int \| str, got bool$"):
        m.plan_for(int | str).dump(True)
    assert m.plan_for(int | str).dump(Level.HIGH) == 2 and type(m.plan_for(int | str).dump(Level.HIGH)) is int
    assert type(m.plan_for(int | None | str).dump(Mood.CALM)) is str
    with pytest.raises(MarshalException, match=r"^int \| None: expected int, got str$"):
        m.plan_for(int | None).load("x")


def test_literal(core):
    plan = core.marshal.plan_for(Literal["a", 1, Color.RED])
    assert plan.load("a") == "a" and plan.load(1) == 1 and plan.load("red") is Color.RED
    assert plan.dump(Color.RED) == "red"
    expected = r"^Literal\['a', 1, <Color\.RED: 'red'>\]: expected one of 'a', 1, 'red', got True$"
    with pytest.raises(MarshalException, match=expected):
        plan.load(True)


@pytest.mark.parametrize(
    ("tp", "value", "wire"),
    [
        (list[int], [1, 2], [1, 2]),
        (tuple[int, ...], (1, 2), [1, 2]),
        (tuple[int, str], (1, "a"), [1, "a"]),
        (tuple[()], (), []),
        (set[int], {3}, [3]),
        (frozenset[str], frozenset({"a"}), ["a"]),
        (dict[str, list[int]], {"a": [1]}, {"a": [1]}),
        (dict[int, str], {1: "a", -2: "b"}, {"1": "a", "-2": "b"}),
        (dict[Color, int], {Color.RED: 1}, {"red": 1}),
        (dict[Level, int], {Level.LOW: 1}, {"1": 1}),
        (cabc.Sequence[Data], [Data(1, 1.0, True, "x")], [{"i": 1, "f": 1.0, "b": True, "s": "x"}]),
        (cabc.Mapping[str, float], {"a": 1.5}, {"a": 1.5}),
        (list, [1, "a"], [1, "a"]),
        (dict, {"a": 1}, {"a": 1}),
    ],
)
def test_containers_roundtrip(core, tp, value, wire):
    plan = core.marshal.plan_for(tp)
    assert plan.dump(value) == wire
    assert json.loads(json.dumps(plan.dump(value))) == wire
    loaded = plan.load(wire)
    assert loaded == value
    assert type(loaded) is (type(value) if type(value) is not list else list)


def test_container_errors_and_msgpack_int_keys(core):
    m = core.marshal
    assert m.plan_for(dict[int, str]).load({1: "a"}) == {1: "a"}
    expected = r"^dict\[int, str\]\['x'\]: expected an integer key, got 'x'$"
    with pytest.raises(MarshalException, match=expected):
        m.plan_for(dict[int, str]).load({"x": "a"})
    with pytest.raises(MarshalException, match=r"^tuple\[int, str\]: expected 2 items, got 3$"):
        m.plan_for(tuple[int, str]).load([1, "a", 2])
    with pytest.raises(MarshalException, match=r"^list\[int\]\[1\]: expected int, got str$"):
        m.plan_for(list[int]).load([1, "2"])
    with pytest.raises(MarshalException, match=r"^list\[int\]: expected a list, got dict$"):
        m.plan_for(list[int]).load({})


UserId = NewType("UserId", int)
Tags = NewType("Tags", list[str])


class Link(BaseModel):
    url: HttpUrl
    owner: UserId


def test_newtype_annotated_and_types_only_pydantic_knows(core):
    m = core.marshal
    assert m.plan_for(UserId).load(5) == 5
    assert m.plan_for(Tags).load(["a"]) == ["a"]
    assert m.plan_for(Annotated[int, "meta"]).dump(3) == 3
    url = m.plan_for(HttpUrl)
    assert url.dump(HttpUrl("https://example.com/a")) == "https://example.com/a"
    assert url.load("https://example.com/a") == HttpUrl("https://example.com/a")
    with pytest.raises(MarshalException, match=r"^HttpUrl: Input should be a valid URL.*, got str$"):
        url.load("not a url")
    link = m.plan_for(Link)
    value = Link(url="https://example.com/", owner=UserId(7))
    assert link.dump(value) == {"url": "https://example.com/", "owner": 7}
    assert link.load(link.dump(value)) == value


@pydantic_dataclass
class Checked:
    name: str
    when: datetime

    @field_validator("name")
    @classmethod
    def not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be blank")
        return value


def test_pydantic_dataclass_runs_its_validators(core):
    plan = core.marshal.plan_for(Checked)
    value = Checked("ann", datetime(2024, 1, 1))
    assert plan.dump(value) == {"name": "ann", "when": "2024-01-01T00:00:00"}
    assert plan.load(plan.dump(value)) == value
    expected = r"^Checked\.name: Value error, name must not be blank, got str$"
    with pytest.raises(MarshalException, match=expected):
        plan.load({"name": " ", "when": "2024-01-01T00:00:00"})


class Touchy(BaseModel):
    name: str

    @field_validator("name")
    @classmethod
    def explode(cls, value: str) -> str:
        if value == "boom":
            raise RuntimeError("a validator's own bug")  # pydantic passes such errors through
        return value


@pydantic_dataclass
class TouchyRecord:
    name: str

    def __post_init__(self) -> None:
        if self.name == "boom":
            raise RuntimeError("a __post_init__ bug")


def test_only_pydantic_validation_errors_become_marshal_errors(core):
    model = core.marshal.plan_for(Touchy)
    with pytest.raises(MarshalException, match=r"^Touchy\.name: Input should be a valid string, got int$"):
        model.load({"name": 3})
    with pytest.raises(RuntimeError, match="a validator's own bug"):
        model.load({"name": "boom"})
    record = core.marshal.plan_for(TouchyRecord)
    with pytest.raises(MarshalException, match=r"^TouchyRecord: constructor raised RuntimeError: a __post_init__ bug$"):
        record.load({"name": "boom"})


def test_pydantic_is_imported_only_for_a_type_that_needs_it():
    # a fresh process (WARPCALL_PURE inherited: the build under test): dataclasses never load pydantic;
    # a type speaking pydantic's protocol imports it; a model defined after the marshaller is planned as one
    code = """
import sys
from dataclasses import dataclass
from warpcall.core import marshal

@dataclass
class Point:
    x: int

assert marshal.plan_for(Point).load({"x": 1}) == Point(1)
assert marshal.plan_for(list[Point]).dump([Point(2)]) == [{"x": 2}]
assert "pydantic" not in sys.modules and "pydantic_core" not in sys.modules

from pydantic_core import core_schema

class Cents(int):
    @classmethod
    def __get_pydantic_core_schema__(cls, source, handler):
        return core_schema.no_info_after_validator_function(cls, core_schema.int_schema())

assert "pydantic" not in sys.modules
assert marshal.plan_for(Cents).load(5) == 5 and "pydantic" in sys.modules

from pydantic import BaseModel

class Model(BaseModel):
    point: Point

plan = marshal.plan_for(Model)
assert type(plan).__name__ == "PydanticPlan"
assert plan.load({"point": {"x": 3}}) == Model(point=Point(3))
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


class Opaque:
    pass


@dataclass
class HasOpaque:
    thing: Opaque


def test_unsupported_types_fail_at_plan_time(core):
    with pytest.raises(MarshalException, match=r"^Opaque is not a supported type"):
        core.marshal.plan_for(Opaque)
    with pytest.raises(MarshalException, match=r"^HasOpaque\.thing: Opaque is not a supported type"):
        core.marshal.plan_for(HasOpaque)
    with pytest.raises(MarshalException, match=r"dict keys must be str, int, an enum"):
        core.marshal.plan_for(dict[float, int])
    with pytest.raises(MarshalException):  # unsupported again: nothing half-built was cached
        core.marshal.plan_for(HasOpaque)


def test_plans_are_cached(core):
    m = core.marshal
    assert m.plan_for(Order) is m.plan_for(Order)
    assert m.plan_for(list[Tree]) is m.plan_for(list[Tree])
    assert m.plan_for(Page[Data]) is m.plan_for(Page[Data])
    assert m.plan_for(Order).tp is Order
    assert isinstance(m.plan_for(Order), m.TypePlan)


def test_plan_building_is_thread_safe(core):
    fresh = dataclasses.make_dataclass(
        "Fresh", [("a", int), ("b", "list[Item]")], namespace={"__module__": __name__}
    )
    barrier = threading.Barrier(8)
    plans: list[Any] = []

    def build() -> None:
        barrier.wait(timeout=10)
        plans.append(core.marshal.plan_for(fresh))

    threads = [threading.Thread(target=build) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(plans) == 8
    assert all(plan is plans[0] for plan in plans)
    value = fresh(1, [Item("x", datetime(2024, 1, 1))])
    assert plans[0].load(plans[0].dump(value)) == value


@pytest.mark.c_extension
def test_both_cores_give_identical_results_and_messages():
    try:
        native = load_variant("marshal", native=True)
    except ImportError:
        pytest.skip("the compiled core is not built here")
    pure = load_variant("marshal", native=False)
    order = Order(UUID(int=1), [Item("a", datetime(2024, 1, 1))], Decimal("1.5"), Color.RED, tags={"k": 2})
    assert native.plan_for(Order).dump(order) == pure.plan_for(Order).dump(order)
    bad = {"id": "nope", "items": [], "total": "1", "color": "red"}
    messages = []
    for variant in (native, pure):
        with pytest.raises(MarshalException) as caught:
            variant.plan_for(Order).load(bad)
        messages.append(str(caught.value))
    assert messages[0] == messages[1] == "Order.id: invalid UUID string 'nope'"


def test_wire_compatible_with_aspyx_serializer(core):
    serialization = pytest.importorskip("aspyx.util.serialization")
    plan = core.marshal.plan_for(Data)
    data = Data(1, 2.5, True, "x")
    assert plan.load(serialization.get_serializer(Data)(data)) == data
    assert serialization.get_deserializer(Data)(plan.dump(data)) == data


# ---------------------------------------------------------------- values at the edges (issue 14, point 7)


def test_float_dump_marks_inf_and_nan_for_json_and_load_returns_plain_floats(core):
    plan = core.marshal.plan_for(float)
    for value in (math.inf, -math.inf, math.nan):
        dumped = plan.dump(value)
        assert type(dumped) is NonFiniteFloat and (math.isnan(dumped) if math.isnan(value) else dumped == value)
        loaded = plan.load(value)
        assert type(loaded) is float
    assert type(plan.dump(1.5)) is float and type(plan.dump(2)) is float


def test_inf_and_nan_are_marked_in_fields_containers_and_any(core):
    @dataclasses.dataclass
    class Reading:
        value: float
        spare: typing.Optional[float] = None
        raw: typing.Any = None

    tree = core.marshal.plan_for(list[Reading]).dump([Reading(1.0), Reading(math.inf, -math.inf, [1, {"x": math.nan}])])
    assert type(tree[0]["value"]) is float
    assert type(tree[1]["value"]) is NonFiniteFloat and type(tree[1]["spare"]) is NonFiniteFloat
    assert type(tree[1]["raw"][1]["x"]) is NonFiniteFloat
    untouched = {"a": [1.0, 2]}
    assert core.marshal.plan_for(typing.Any).dump(untouched) is untouched  # nothing to mark: no copy


def test_an_int_beyond_a_double_is_refused_as_a_float(core):
    plan = core.marshal.plan_for(float)
    with pytest.raises(MarshalException, match=r"^float: expected float, got an integer of 1329 bits, beyond a float$"):
        plan.dump(10**400)
    with pytest.raises(MarshalException, match=r"beyond a float"):
        plan.load(10**400)


def test_big_integers_pass_through_int_plans(core):
    assert core.marshal.plan_for(list[int]).load([2**70, -(2**90)]) == [2**70, -(2**90)]
    assert core.marshal.plan_for(dict[int, int]).load({str(2**70): 2**80}) == {2**70: 2**80}


def test_an_any_value_as_deep_as_the_envelopes_nest_is_marked_in_both_builds(core):
    # plain Python recurses less deep than the envelopes nest: its marker goes on with a stack of its own
    value: list = [math.inf]
    for _ in range(1020):
        value = [value]
    plan = core.marshal.plan_for(list[typing.Any])
    dumped = plan.dump([value])[0]
    for _ in range(1020):
        dumped = dumped[0]
    assert type(dumped[0]) is NonFiniteFloat
    deeper: list = []
    for _ in range(5000):
        deeper = [deeper]
    assert plan.dump([deeper])[0] is deeper  # nothing to mark within 1024 levels; the writer refuses the rest


@dataclass
class Chain:
    value: int = 0
    next: Optional[Chain] = None


@dataclass
class Branches:
    children: list[Branches] = field(default_factory=list)


class ChainModel(BaseModel):
    next: Optional[ChainModel] = None


def _chain(depth: int) -> Chain:
    node = None
    for index in range(depth):
        node = Chain(index, node)
    assert node is not None
    return node


CRASH_PROBE = """
import sys
from dataclasses import dataclass, field
from typing import Optional
from warpcall._compiled import load_variant
from warpcall.exceptions import MarshalException
marshal = load_variant("marshal", sys.argv[1] == "native")

@dataclass
class Tree:
    # the whole annotation a string: Python 3.10's get_type_hints leaves a string inside list[...] unresolved
    children: "list[Tree]" = field(default_factory=list)

node = Tree()
for _ in range(int(sys.argv[2])):
    node = Tree([node])
plan = marshal.plan_for(Tree)
if sys.argv[3] == "cycle":
    node = Tree()
    node.children.append(node)
data: dict = {"children": []}
for _ in range(int(sys.argv[2])):
    data = {"children": [data]}
try:
    plan.load(data) if sys.argv[3] == "load" else plan.dump(node)
except MarshalException as exc:
    print("MarshalException:", exc)
"""


@pytest.mark.parametrize(("depth", "kind"), [(20000, "dump"), (1, "cycle"), (200000, "load")])
def test_a_recursive_value_too_deep_or_cyclic_raises_instead_of_crashing(core, depth, kind):
    # in a child process: before the recursion check, the compiled plans overflowed the C stack (SIGSEGV)
    build = "native" if not core.marshal.__file__.endswith(".py") else "pure"
    run = subprocess.run([sys.executable, "-c", CRASH_PROBE, build, str(depth), kind],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    if kind == "cycle":
        assert run.stdout.startswith("MarshalException: Tree.children[0]: the value contains itself (it is the Tree at Tree)")
    else:
        assert run.stdout.startswith("MarshalException: Tree: the value nests deeper than the plans recurse (")
        assert f"{2 * depth + 1} levels of objects and containers" in run.stdout


def test_recursive_types_get_the_checked_plans_and_others_do_not(core):
    m = core.marshal
    assert type(m.plan_for(Chain)) is m.RecursiveDataclassPlan
    assert type(m.plan_for(Branches)) is m.RecursiveDataclassPlan
    assert type(m.plan_for(ChainModel)) is m.RecursivePydanticPlan
    assert type(m.plan_for(Order)) is m.DataclassPlan and type(m.plan_for(Item)) is m.DataclassPlan


def test_recursive_values_round_trip_within_the_limit_and_name_the_problem_beyond(core):
    m = core.marshal
    plan = m.plan_for(Chain)
    shallow = _chain(300)
    assert plan.load(plan.dump(shallow)) == shallow
    with pytest.raises(MarshalException, match=r"^Chain: the value nests deeper than the plans recurse \(20000 levels"):
        plan.dump(_chain(20000))
    cycle = Chain(1, Chain(2))
    assert cycle.next is not None
    cycle.next.next = cycle
    with pytest.raises(MarshalException, match=r"^Chain\.next\.next: the value contains itself \(it is the Chain at Chain\)"):
        plan.dump(cycle)
    data: dict = {"value": 0}
    for _ in range(20000):
        data = {"value": 0, "next": data}
    with pytest.raises(MarshalException, match=r"^Chain: the value nests deeper than the plans recurse \(20001 levels"):
        plan.load(data)
    model = m.plan_for(ChainModel)
    node = ChainModel()
    for _ in range(20000):
        node = ChainModel(next=node)
    with pytest.raises(MarshalException, match=r"^ChainModel: the value nests deeper than the plans recurse"):
        model.dump(node)
    looped = ChainModel()
    looped.next = looped
    with pytest.raises(MarshalException, match=r"^ChainModel\.next: the value contains itself"):
        model.dump(looped)


class Loose(BaseModel, extra="allow"):
    name: str


class Reading2:
    """A type only pydantic knows, serialised by a function of its own (a TypeAdapter's dump)."""

    def __init__(self, value: typing.Any) -> None:
        self.value = value

    @classmethod
    def __get_pydantic_core_schema__(cls, source: typing.Any, handler: typing.Any) -> typing.Any:
        from pydantic_core import core_schema

        return core_schema.no_info_plain_validator_function(
            lambda v: v if isinstance(v, Reading2) else Reading2(v["value"]),
            serialization=core_schema.plain_serializer_function_ser_schema(lambda r: {"value": r.value}),
        )


def test_inf_and_nan_are_marked_in_pydantic_extras_and_adapter_output(core):
    m = core.marshal
    tree = m.plan_for(Loose).dump(Loose(name="a", ratio=math.inf, more=[1.0, {"x": math.nan}]))
    assert tree["name"] == "a" and type(tree["ratio"]) is NonFiniteFloat and type(tree["more"][1]["x"]) is NonFiniteFloat
    fine = m.plan_for(Loose).dump(Loose(name="a", ratio=1.5))
    assert fine == {"name": "a", "ratio": 1.5} and type(fine["ratio"]) is float
    adapter = m.plan_for(Reading2)
    assert type(adapter).__name__ == "AdapterPlan"
    dumped = adapter.dump(Reading2(-math.inf))
    assert type(dumped["value"]) is NonFiniteFloat and dumped["value"] == -math.inf  # not None, as pydantic writes it
    nested = adapter.dump(Reading2([1.0, (2.0, math.nan)]))
    assert type(nested["value"][1][1]) is NonFiniteFloat
    assert adapter.dump(Reading2(2.5)) == {"value": 2.5}


@pytest.mark.parametrize(("tp", "rounds"), [
    (int, False), (float, False), (str, False), (typing.Optional[int], False), (list[int], False),
    (dict[int, str], False), (tuple[int, ...], False), (typing.Any, True), (object, True),
    (typing.Union[int, float], True), (typing.Optional[typing.Union[int, float]], True), (Decimal, True),
    (dict[str, typing.Any], True), (list, True),
])
def test_which_types_take_a_rounded_json_integer_silently(tp, rounds):
    assert may_take_rounded_integers(tp) is rounds
