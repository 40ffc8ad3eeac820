"""aspyx-service 0.11's protobuf messages (warpcall.wire.protobuf_aspyx): wire bytes, round trips, refusals.

The calls across the wire with a real aspyx-service are in tests/interop/test_aspyx_protobuf_interop.py;
these pin the bytes and every refusal without it.
"""

from __future__ import annotations

import struct
from abc import abstractmethod
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import Any, Optional

import pytest
from pydantic import BaseModel

from warpcall import Component, Service, component, service
from warpcall.exceptions import (
    MalformedRequestException,
    MarshalException,
    ProtocolException,
    UnsupportedMediaTypeException,
)
from warpcall.service import component_descriptor
from warpcall.wire import codec_of, protobuf_aspyx
from warpcall.wire.protobuf_aspyx import (
    ENVIRONMENT_VARIABLE,
    AspyxProtobufCodec,
    speaks_aspyx,
    use_aspyx_protobuf,
)
from warpcall.wire.protobuf_codec import ProtobufMethodCodec


class Color(str, Enum):
    RED = "red"
    GREEN = "green"


class Level(IntEnum):
    LOW = 1


@dataclass
class Item:
    sku: str
    quantity: int


@dataclass
class Parcel:
    id: int
    weight: float
    items: list[Item]
    note: Optional[str] = None
    seen: bool = field(default=False, init=False)


class Owner(BaseModel):
    name: str
    parcels: list[Parcel]
    color: Color


@dataclass
class Node:
    name: str
    children: list[Node]


def codec(types: list[Any], returns: Any = str) -> AspyxProtobufCodec:
    names = [f"p{i}" for i in range(len(types))]
    return AspyxProtobufCodec("c:s:m", names, types, returns)


def test_scalars_are_written_as_aspyx_declares_them() -> None:
    c = codec([int, float, bool, str, bytes])

    body = c.encode_request([-1, 2.5, False, "é", b"\x00"])

    # int32 -1: a 10-byte varint (field 1); float: fixed32 (field 2); False is written (proto2 presence)
    assert body == (
        b"\x08" + b"\xff" * 9 + b"\x01"
        + b"\x15" + struct.pack("<f", 2.5)
        + b"\x18\x00"
        + b"\x22\x02" + "é".encode()
        + b"\x2a\x01\x00"
    )
    assert c.decode_request(body) == [-1, 2.5, False, "é", b"\x00"]


def test_structures_lists_enums_and_optional_str_round_trip() -> None:
    c = codec([Owner, list[int], Color, Optional[str]], Parcel)
    owner = Owner(name="o", parcels=[Parcel(1, 0.5, [Item("a", 2)], "n"), Parcel(2, -1.0, [])], color=Color.GREEN)
    owner.parcels[0].seen = True

    values = c.decode_request(c.encode_request([owner, [3, -4], Color.RED, None]))

    assert values == [owner, [3, -4], Color.RED, None]
    assert values[0].parcels[0].seen is True and values[2] is Color.RED
    parcel = Parcel(5, 1.25, [Item("x", 1)])
    assert c.decode_response(c.encode_response(parcel)) == (parcel, None)


def test_floats_keep_32_bits() -> None:
    c = codec([float])

    (value,) = c.decode_request(c.encode_request([0.1]))

    assert value == struct.unpack("<f", struct.pack("<f", 0.1))[0] != 0.1


def test_the_exception_is_text_in_field_2() -> None:
    c = codec([str], int)

    body = c.encode_response(None, {"type": "ValueError", "message": "no"})

    assert body == b"\x12\x0eValueError: no"
    assert c.decode_response(body) == (None, {"type": "", "message": "ValueError: no"})
    # what aspyx-service's server writes: str(exception), no type name
    assert c.decode_response(b"\x12\x02no") == (None, {"type": "", "message": "no"})
    assert c.decode_response(c.encode_response(7)) == (7, None)


def test_a_method_returning_none() -> None:
    c = codec([str], None)

    assert c.encode_response(None) == b""
    assert c.decode_response(b"") == (None, None)
    with pytest.raises(MarshalException, match=r"c:s:m: result: declared to return None, got int"):
        c.encode_response(3)


@pytest.mark.parametrize(("tp", "reason"), [
    (dict[str, int], r"parameter 'p0' is dict\[str, int\], which aspyx-service's protobuf cannot carry: it declares "
                     r"it as a string field and cannot send its values"),
    (Optional[int], r"parameter 'p0' is Optional\[int\], which aspyx-service's protobuf cannot carry: it declares a "
                    r"union"),
    (int | str, r"parameter 'p0' is int \| str, which aspyx-service's protobuf cannot carry"),
    (tuple[int, ...], r"parameter 'p0' is tuple\[int, \.\.\.\], which aspyx-service's protobuf cannot carry"),
    (Level, r"parameter 'p0' is Level, which aspyx-service's protobuf cannot carry: it declares an enum as a string "
            r"field, and only str values fit it"),
    (list[list[int]], r"parameter 'p0' is list\[list\[int\]\], which aspyx-service's protobuf cannot carry: it has "
                      r"no lists of lists"),
    (list[Optional[str]], r"parameter 'p0' is list\[Optional\[str\]\], which aspyx-service's protobuf cannot carry"),
    (Node, r"field 'children' of Node \(an item\) is Node, which aspyx-service's protobuf cannot carry: its message "
           r"builder recurses without end"),
    (Any, r"parameter 'p0' is Any, which aspyx-service's protobuf cannot carry"),
])
def test_types_aspyx_cannot_carry_are_refused_by_name(tp: Any, reason: str) -> None:
    with pytest.raises(MarshalException, match=r"^c:s:m: " + reason) as info:
        codec([tp])
    assert "it carries str, int (int32), float (32 bits)" in str(info.value)


def test_a_refused_result_type_is_named() -> None:
    with pytest.raises(MarshalException, match=r"c:s:m: the result is dict\[str, str\]"):
        codec([str], dict[str, str])


ITEM = Item("a", 1)


@pytest.mark.parametrize(("args", "reason"), [
    ([2**31, 1.0, ITEM], r"c:s:m: parameter 'p0': the integer 2147483648 is outside int32"),
    ([-(2**31) - 1, 1.0, ITEM], r"c:s:m: parameter 'p0': the integer -2147483649 is outside int32"),
    ([True, 1.0, ITEM], r"c:s:m: parameter 'p0': expected int, got bool"),
    ([None, 1.0, ITEM], r"c:s:m: parameter 'p0': expected int, got None"),
    ([1, "1.0", ITEM], r"c:s:m: parameter 'p1': expected float, got str"),
    ([1, 1.0, Item("a", 2**40)], r"c:s:m: parameter 'p2': field 'quantity' of Item: the integer 1099511627776 is "
                                 r"outside int32"),
    ([1, 1.0, Item(None, 1)], r"c:s:m: parameter 'p2': field 'sku' of Item: expected str, got None"),  # type: ignore[arg-type]
    ([1, 1.0, "item"], r"c:s:m: parameter 'p2': expected Item, got str"),
])
def test_values_that_do_not_fit_are_refused_naming_the_parameter(args: list[Any], reason: str) -> None:
    c = codec([int, float, Item])

    with pytest.raises(MarshalException, match=reason):
        c.encode_request(args)


def test_lists_name_the_item_and_strings_their_lone_surrogate() -> None:
    c = codec([list[Item], str])

    with pytest.raises(MarshalException, match=r"parameter 'p0': item 1: expected Item, got int"):
        c.encode_request([[Item("a", 1), 3], "s"])
    with pytest.raises(MarshalException, match=r"parameter 'p0': item 0: expected Item, got None"):
        c.encode_request([[None], "s"])
    with pytest.raises(MarshalException, match=r"parameter 'p1': a string holding the lone surrogate '\\ud800'"):
        c.encode_request([[], "\ud800"])
    with pytest.raises(MarshalException, match=r"c:s:m takes 2 argument\(s\) \['p0', 'p1'\], got 1"):
        c.encode_request([[]])


@pytest.mark.parametrize("body", [
    b"\xff\xff\xff",  # no valid tag
    b"\x0a\x05ab",  # a length past the end
    b"\x12\x03red",  # field 2 only: field 1 (an int) is missing
    b"\x08\x01\x12\x02re",  # a color that is no member ("red" is)
    b"\x08\x01\x12\x03red\x1a\x02\xff\xfe",  # an Optional[str] that is no UTF-8
])
def test_bodies_that_are_no_aspyx_request_are_malformed(body: bytes) -> None:
    c = codec([int, Color, Optional[str]])
    assert c.decode_request(b"\x08\x01\x12\x03red") == [1, Color.RED, None]

    with pytest.raises(MalformedRequestException, match=r"body is not a valid aspyx-service protobuf request for c:s:m"):
        c.decode_request(body)


def test_a_missing_field_is_named() -> None:
    c = codec([int, Color])

    with pytest.raises(MalformedRequestException, match=r"field 'p1' of request of c:s:m is missing"):
        c.decode_request(b"\x08\x01")


def test_a_body_that_is_no_response_is_a_protocol_error() -> None:
    c = codec([str], Parcel)

    with pytest.raises(ProtocolException, match=r"body is not a valid aspyx-service protobuf response of c:s:m"):
        c.decode_response(b"\x0a\x03\xff\xff\xff")


def test_components_are_named_by_environment_variable_or_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protobuf_aspyx, "_components", set())
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, " a , b ")

    assert speaks_aspyx("a:s:m") and speaks_aspyx("b:s:m") and not speaks_aspyx("c:s:m")
    use_aspyx_protobuf("c")
    assert speaks_aspyx("c:s:m") and not speaks_aspyx("d:s:m")
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "*")
    assert speaks_aspyx("d:s:m")
    with pytest.raises(ValueError, match="a component name or '\\*' is expected"):
        use_aspyx_protobuf("")


@service(name="aspyx-codec-choice")
class ChoiceService(Service):
    @abstractmethod
    def echo(self, value: int) -> int: ...


@component(name="aspyx-speaker", services=[ChoiceService])
class SpeakerComponent(Component):
    pass


@service(name="warpcall-codec-choice")
class OtherChoiceService(Service):
    @abstractmethod
    def echo(self, value: int) -> int: ...


@component(name="warpcall-speaker", services=[OtherChoiceService])
class OtherComponent(Component):
    pass


def test_codec_of_gives_the_named_component_aspyx_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protobuf_aspyx, "_components", set())
    monkeypatch.delenv(ENVIRONMENT_VARIABLE, raising=False)
    use_aspyx_protobuf("aspyx-speaker")
    speaker = component_descriptor(SpeakerComponent).services[0].methods["echo"]
    other = component_descriptor(OtherComponent).services[0].methods["echo"]

    assert isinstance(codec_of(speaker), AspyxProtobufCodec)
    assert isinstance(codec_of(other), ProtobufMethodCodec)
    # int32 against sint64: the same 3, other bytes (which is why both ends must speak the same)
    assert codec_of(speaker).encode_request([3]) == b"\x08\x03"
    assert codec_of(other).encode_request([3]) == b"\x08\x06"


def test_a_method_aspyx_cannot_carry_gets_a_refusing_codec() -> None:
    codec = protobuf_aspyx.aspyx_codec_for("c:s:refused", ["when"], [dict[str, int]], str)

    assert isinstance(codec, protobuf_aspyx.RefusingCodec)
    assert protobuf_aspyx.aspyx_codec_for("c:s:refused", ["when"], [dict[str, int]], str) is codec
    # the caller: before anything is sent
    with pytest.raises(MarshalException, match=r"c:s:refused: parameter 'when' is dict\[str, int\]"):
        codec.encode_request([{"a": 1}])
    # a server: 415, naming the method, the type and the channels that carry it
    with pytest.raises(UnsupportedMediaTypeException, match=r"c:s:refused: parameter 'when' is dict\[str, int\].*"
                                                            r"Call it over dispatch-json or dispatch-msgpack"):
        codec.decode_request(b"")
    with pytest.raises(MarshalException):
        codec.encode_response(1)
    with pytest.raises(ProtocolException):
        codec.decode_response(b"")
