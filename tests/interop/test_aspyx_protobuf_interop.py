"""Wire interop with aspyx-service 0.11.6's protobuf channel: each side calls the other over dispatch-protobuf.

aspyx-service's ``ProtobufChannel`` derives its messages from the signature as warpcall does, with
the same field numbers but other types: ``int`` -> ``int32``, ``float`` -> 32-bit ``float``, the
exception as a ``string``. warpcall's own dispatch-protobuf (``sint64``, ``double``, an exception
message) read with aspyx's schema gives wrong values without any error (an aspyx ``3`` reads as
``-2``, a float as absent), so the component here is named in ``WARPCALL_ASPYX_PROTOBUF``
(``warpcall.wire.protobuf_aspyx``): its calls travel in aspyx-service's messages, on the client and
on the server, sync and async.

The aspyx side runs in its own venv (``conftest.py``) from ``aspyx_side/pb_contract.py``,
``pb_server.py`` and ``pb_client.py``, which declare the same component (``pbinterop``), service
(``pbparcels``), methods and field shapes as this module. Each implementation stamps its own name
into what it returns, so every assertion also shows which framework served the call. Floats are
exactly representable in 32 bits, but where the test shows the precision aspyx's ``float`` keeps.
Where aspyx-service's protobuf cannot carry a type (datetimes, ``Optional[int]``, dicts, recursive
types, ints beyond int32), the tests check the clear refusal: warpcall's before anything is sent,
and aspyx-service's own.
"""

import asyncio
import base64
import dataclasses
import json
import struct
from abc import abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Optional

import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from rawhttp import Reader, connect, request
from warpcall import (
    AbstractComponent,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    LocalComponentRegistry,
    MarshalException,
    RemoteServiceException,
    Service,
    ServiceManager,
    ServiceModule,
    component,
    implementation,
    service,
)
from warpcall.di import Environment, create, module
from warpcall.service import component_descriptor
from warpcall.wire.protobuf_aspyx import ENVIRONMENT_VARIABLE, AspyxProtobufCodec

CHANNEL = "dispatch-protobuf"
COMPONENT = "pbinterop"


@dataclass
class Item:
    sku: str
    quantity: int


@dataclass
class Parcel:
    id: int
    weight: float
    fragile: bool
    label: str
    tags: list[str]
    items: list[Item]
    note: Optional[str] = None


class Address(BaseModel):
    street: str
    city: str


class Customer(BaseModel):
    name: str
    vip: bool
    score: float
    tags: list[str]
    address: Address


class Color(str, Enum):
    RED = "red"
    GREEN = "green"


@dataclass
class Sample:
    count: int
    ratio: float
    flag: bool
    blob: bytes
    color: Color
    names: list[str]
    counts: list[int]
    note: Optional[str] = None


@dataclass
class Node:
    """Recursive: aspyx-service's protobuf builder recurses without end on it."""

    name: str
    children: list["Node"]


@service(name="pbparcels")
class PbParcelService(Service):
    @abstractmethod
    def hello(self, name: str) -> str: ...

    @abstractmethod
    def weigh(self, parcel: Parcel) -> Parcel: ...

    @abstractmethod
    def upgrade(self, customer: Customer) -> Customer: ...

    @abstractmethod
    def mirror(self, sample: Sample) -> Sample: ...

    @abstractmethod
    def fail(self, reason: str) -> str: ...

    @abstractmethod
    def fail_parcel(self, reason: str) -> Parcel: ...

    @abstractmethod
    def stamp(self, when: datetime) -> str: ...

    @abstractmethod
    async def weigh_async(self, parcel: Parcel) -> Parcel: ...

    @abstractmethod
    async def mirror_async(self, sample: Sample) -> Sample: ...

    @abstractmethod
    async def fail_async(self, reason: str) -> str: ...


@service(name="pbshapes")
class PbShapeService(Service):
    """Shapes aspyx-service's protobuf cannot carry; only warpcall declares them (its refusals come first)."""

    @abstractmethod
    def depth(self, node: Node) -> int: ...

    @abstractmethod
    def maybe(self, count: Optional[int]) -> str: ...

    @abstractmethod
    def total(self, counts: dict[str, int]) -> int: ...


@component(name=COMPONENT, services=[PbParcelService, PbShapeService])
class PbInteropComponent(Component):
    pass


def weighed(parcel: Parcel, side: str) -> Parcel:
    """What ``weigh`` answers on either side (aspyx_side/pb_server.py does the same)."""
    return Parcel(
        id=parcel.id,
        weight=parcel.weight * 2,
        fragile=not parcel.fragile,
        label=parcel.label.upper(),
        tags=[*parcel.tags, "weighed"],
        items=[*parcel.items, Item(sku=f"stamp-{len(parcel.items)}", quantity=parcel.items[0].quantity + 1)],
        note=f"weighed by {side}",
    )


def upgraded(customer: Customer, side: str) -> Customer:
    return Customer(
        name=customer.name + " (vip)",
        vip=True,
        score=customer.score + 1.5,
        tags=[*customer.tags, f"upgraded-by-{side}"],
        address=Address(street=customer.address.street, city=customer.address.city.upper()),
    )


def mirrored(sample: Sample, side: str, color_type: str) -> Sample:
    return Sample(
        count=sample.count + 1,
        ratio=sample.ratio * 2,
        flag=not sample.flag,
        blob=sample.blob + b"!",
        color=sample.color,
        names=[*sample.names, side],
        counts=[*sample.counts, len(sample.counts)],
        note=f"mirrored by {side}; color arrived as {color_type}",
    )


@implementation()
class PbParcelServiceImpl(PbParcelService):
    def hello(self, name: str) -> str:
        return f"hello {name} from warpcall"

    def weigh(self, parcel: Parcel) -> Parcel:
        return weighed(parcel, "warpcall")

    def upgrade(self, customer: Customer) -> Customer:
        return upgraded(customer, "warpcall")

    def mirror(self, sample: Sample) -> Sample:
        return mirrored(sample, "warpcall", type(sample.color).__name__)

    def fail(self, reason: str) -> str:
        raise ValueError(f"refused by warpcall: {reason}")

    def fail_parcel(self, reason: str) -> Parcel:
        raise ValueError(f"refused by warpcall: {reason}")

    def stamp(self, when: datetime) -> str:
        return when.isoformat()

    async def weigh_async(self, parcel: Parcel) -> Parcel:
        await asyncio.sleep(0)  # a real suspension: the reply is made after the loop ran something else
        return weighed(parcel, "warpcall")

    async def mirror_async(self, sample: Sample) -> Sample:
        await asyncio.sleep(0)
        return mirrored(sample, "warpcall", type(sample.color).__name__)

    async def fail_async(self, reason: str) -> str:
        await asyncio.sleep(0)
        raise ValueError(f"refused by warpcall (async): {reason}")


@implementation()
class PbShapeServiceImpl(PbShapeService):
    def depth(self, node: Node) -> int:
        return 1 + max((self.depth(child) for child in node.children), default=0)

    def maybe(self, count: Optional[int]) -> str:
        return repr(count)

    def total(self, counts: dict[str, int]) -> int:
        return sum(counts.values())


@implementation()
class PbInteropComponentImpl(AbstractComponent, PbInteropComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress(CHANNEL, f"http://127.0.0.1:{port}")]


@module(imports=[ServiceModule])
class PbInteropServerModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry)


@module(imports=[ServiceModule])
class PbInteropClientModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()


@pytest.fixture(scope="module", autouse=True)
def aspyx_protobuf() -> Iterator[None]:
    """Component ``pbinterop`` speaks aspyx-service's protobuf in this process, as client and as server."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ENVIRONMENT_VARIABLE, COMPONENT)
        yield


#: what aspyx_side/pb_client.py sends
ASPYX_PARCEL = Parcel(
    id=7, weight=2.5, fragile=True, label="books", tags=["a", "ü"], items=[Item(sku="b-1", quantity=3)]
)
ASPYX_CUSTOMER = Customer(
    name="ada", vip=False, score=3.25, tags=["early"], address=Address(street="1 Loop Rd", city="Lisbon")
)
ASPYX_SAMPLE = Sample(
    count=-5, ratio=0.75, flag=True, blob=b"\x00\xff", color=Color.GREEN, names=["x", "ÿ"], counts=[1, -2, 2**31 - 1]
)

PARCEL = Parcel(
    id=41,
    weight=0.75,
    fragile=False,
    label="tea",
    tags=["green", "ß"],
    items=[Item(sku="t-9", quantity=2), Item(sku="t-10", quantity=5)],
    note="handle with care",
)
CUSTOMER = Customer(name="grace", vip=False, score=9.5, tags=[], address=Address(street="2 Ring St", city="Oslo"))
SAMPLE = Sample(
    count=-(2**31), ratio=-1.25, flag=False, blob=b"", color=Color.RED, names=[], counts=[0, -1], note=None
)


def float32(value: float) -> float:
    """``value`` as aspyx-service's protobuf ``float`` field keeps it."""
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


# warpcall client -> aspyx-service server


@pytest.fixture(scope="module")
def warpcall_client(aspyx_protobuf_server: Any) -> Iterator[ServiceManager]:
    """A warpcall environment whose registry points component ``pbinterop`` at the aspyx server."""
    environment = Environment(PbInteropClientModule)
    try:
        environment.get(ComponentRegistry).register(
            component_descriptor(PbInteropComponent), [ChannelAddress(CHANNEL, aspyx_protobuf_server.url)]
        )
        yield environment.get(ServiceManager)
    finally:
        environment.destroy()


def test_warpcall_client_calls_aspyx_server(warpcall_client: ServiceManager) -> None:
    parcels = warpcall_client.get_service(PbParcelService, CHANNEL)

    assert parcels.hello("warpcall client") == "hello warpcall client from aspyx"

    parcel = parcels.weigh(PARCEL)
    assert parcel == weighed(PARCEL, "aspyx")
    assert isinstance(parcel, Parcel) and all(isinstance(item, Item) for item in parcel.items)

    customer = parcels.upgrade(CUSTOMER)
    assert customer == upgraded(CUSTOMER, "aspyx")
    assert isinstance(customer, Customer) and isinstance(customer.address, Address)

    # every int32, negative ones included, an empty bytes and list, an absent Optional[str]; aspyx's
    # implementation gets the enum's value as a str (it does not rebuild enums), warpcall the member again
    sample = parcels.mirror(SAMPLE)
    assert sample == mirrored(SAMPLE, "aspyx", "str")
    assert sample.color is Color.RED


def test_warpcall_async_client_calls_aspyx_server(warpcall_client: ServiceManager) -> None:
    parcels = warpcall_client.get_service(PbParcelService, CHANNEL)

    async def calls() -> tuple[Parcel, Sample]:
        return await parcels.weigh_async(PARCEL), await parcels.mirror_async(ASPYX_SAMPLE)

    parcel, sample = asyncio.run(calls())
    assert parcel == weighed(PARCEL, "aspyx")
    assert sample == mirrored(ASPYX_SAMPLE, "aspyx", "str")


def test_floats_keep_32_bits(warpcall_client: ServiceManager) -> None:
    parcels = warpcall_client.get_service(PbParcelService, CHANNEL)

    sample = parcels.mirror(dataclasses.replace(SAMPLE, ratio=0.1))

    # aspyx declares float fields: 0.1 arrives as the nearest 32-bit float, doubled there exactly
    assert sample.ratio == float32(0.1) * 2 != 0.2


def test_warpcall_client_gets_remote_exception_from_aspyx_server(warpcall_client: ServiceManager) -> None:
    parcels = warpcall_client.get_service(PbParcelService, CHANNEL)

    with pytest.raises(RemoteServiceException) as info:
        parcels.fail("too heavy")
    # aspyx sends str(exception) as text: the message travels, the type name does not (as on dispatch-json)
    assert info.value.remote_message == "refused by aspyx: too heavy"
    assert "pbinterop:pbparcels:fail" in str(info.value)

    # a method returning a message: warpcall reads the exception field (aspyx's own client does not, below)
    with pytest.raises(RemoteServiceException) as info:
        parcels.fail_parcel("too heavy")
    assert info.value.remote_message == "refused by aspyx: too heavy"

    with pytest.raises(RemoteServiceException) as info:
        asyncio.run(parcels.fail_async("too heavy"))
    assert info.value.remote_message == "refused by aspyx (async): too heavy"

    # the channel keeps working after remote failures
    assert parcels.hello("again") == "hello again from aspyx"


def test_warpcall_client_refuses_what_aspyx_protobuf_cannot_carry(warpcall_client: ServiceManager) -> None:
    parcels = warpcall_client.get_service(PbParcelService, CHANNEL)
    shapes = warpcall_client.get_service(PbShapeService, CHANNEL)

    # ints travel as int32: one beyond it is refused by value, naming the parameter and the field
    with pytest.raises(MarshalException, match=r"parameter 'sample': field 'count' of Sample: the integer "
                                               r"2147483648 is outside int32"):
        parcels.mirror(dataclasses.replace(SAMPLE, count=2**31))

    # aspyx declares these as string fields it cannot fill, or (a recursive type) cannot declare at all
    refusals = [
        (lambda: parcels.stamp(datetime(2026, 12, 4)), r"parameter 'when' is datetime, which aspyx-service's "
                                                       r"protobuf cannot carry"),
        (lambda: shapes.maybe(3), r"parameter 'count' is Optional\[int\], which aspyx-service's protobuf cannot "
                                  r"carry"),
        (lambda: shapes.total({"a": 1}), r"parameter 'counts' is dict\[str, int\], which aspyx-service's "
                                         r"protobuf cannot carry"),
        (lambda: shapes.depth(Node("root", [])), r"field 'children' of Node \(an item\) is Node, which "
                                                 r"aspyx-service's protobuf cannot carry: its message builder "
                                                 r"recurses"),
    ]
    for call, reason in refusals:
        with pytest.raises(MarshalException, match=reason):
            call()

    # nothing of it broke the channel
    assert parcels.hello("still") == "hello still from aspyx"


# aspyx-service client -> warpcall server


@pytest.fixture(scope="module")
def warpcall_server() -> Iterator[FastAPIServer]:
    """A warpcall server hosting component ``pbinterop`` on a free port of 127.0.0.1."""
    environment = FastAPIServer.boot(PbInteropServerModule, host="127.0.0.1", port=0)
    try:
        yield environment.get(FastAPIServer)
    finally:
        environment.destroy()


@pytest.fixture(scope="module")
def aspyx_report(aspyx_client: Callable[..., dict[str, Any]], warpcall_server: FastAPIServer) -> dict[str, Any]:
    """What aspyx_side/pb_client.py got back from the warpcall server, per call."""
    return aspyx_client(warpcall_server.url, "pb_client.py")


def as_reported(value: Any) -> Any:
    """A dataclass as pb_client.py reports it (bytes in base64, an enum member by value)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return as_reported(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {key: as_reported(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_reported(item) for item in value]
    if isinstance(value, bytes):
        return {"bytes": base64.b64encode(value).decode()}
    if isinstance(value, Enum):
        return value.value  # aspyx's client gets the str value back, never the member
    return value


@pytest.mark.parametrize("call", ["weigh", "weigh_async"])
def test_aspyx_client_calls_warpcall_server(aspyx_report: dict[str, Any], call: str) -> None:
    assert aspyx_report[call] == {
        "ok": True,
        "type": "Parcel",
        "item_types": ["Item", "Item"],
        "value": as_reported(weighed(ASPYX_PARCEL, "warpcall")),
    }


def test_aspyx_client_calls_warpcall_server_with_strings_and_models(aspyx_report: dict[str, Any]) -> None:
    assert aspyx_report["hello"] == {"ok": True, "value": "hello aspyx client from warpcall"}
    assert aspyx_report["upgrade"] == {
        "ok": True,
        "type": "Customer",
        "address_type": "Address",
        "value": upgraded(ASPYX_CUSTOMER, "warpcall").model_dump(),
    }


@pytest.mark.parametrize("call", ["mirror", "mirror_async"])
def test_aspyx_client_sends_every_scalar_to_warpcall_server(aspyx_report: dict[str, Any], call: str) -> None:
    # warpcall's implementation gets the enum member back ("arrived as Color"); aspyx's client reads a str
    assert aspyx_report[call] == {
        "ok": True,
        "type": "Sample",
        "color_type": "str",
        "value": as_reported(mirrored(ASPYX_SAMPLE, "warpcall", "Color")),
    }


@pytest.mark.parametrize(("call", "message"), [
    ("fail", "ValueError: refused by warpcall: too heavy"),
    ("fail_async", "ValueError: refused by warpcall (async): too heavy"),
])
def test_aspyx_client_gets_remote_exception_from_warpcall_server(
    aspyx_report: dict[str, Any], call: str, message: str
) -> None:
    failed = aspyx_report[call]

    assert failed["ok"] is False
    assert failed["error_type"] == "RemoteServiceException" and failed["is_remote_service_exception"]
    # warpcall writes "<type>: <message>" into aspyx's exception text; aspyx prefixes its own words
    assert failed["message"] == f"server side exception {message}"


def test_aspyx_client_refuses_what_its_protobuf_cannot_carry(aspyx_report: dict[str, Any]) -> None:
    # aspyx-service's own refusals, before anything is sent: an int beyond int32, a datetime for its string field
    assert aspyx_report["too_big"]["ok"] is False
    assert aspyx_report["too_big"]["error_type"] == "ServiceCommunicationException"
    assert "Value out of range: 2147483648" in aspyx_report["too_big"]["message"]
    assert aspyx_report["stamp"]["ok"] is False
    assert aspyx_report["stamp"]["error_type"] == "ServiceCommunicationException"


def test_exception_of_a_message_method_reaches_aspyx_as_its_client_reads_it(
    aspyx_report: dict[str, Any], warpcall_server: FastAPIServer
) -> None:
    # aspyx-service's client reads an absent message result as an empty message, so its caller gets an
    # empty Parcel instead of the exception (its own server answers the same way: aspyx_side shows it)
    assert aspyx_report["fail_parcel"]["ok"] is True
    assert aspyx_report["fail_parcel"]["value"]["id"] is None and aspyx_report["fail_parcel"]["value"]["items"] == []

    # the reply does carry the exception, as aspyx-service's server writes it: field 2, no result
    codec = AspyxProtobufCodec("pbinterop:pbparcels:fail_parcel", ["reason"], [str], Parcel)
    with connect(warpcall_server.port) as sock:
        sock.sendall(request("/invoke", codec.encode_request(["too heavy"]), "application/x-protobuf",
                             extra="x-rpc-method: pbinterop:pbparcels:fail_parcel\r\n"))
        status, headers, body = Reader(sock).response()
    assert status.startswith(b"HTTP/1.1 200")
    assert headers[b"content-type"] == b"application/x-protobuf"
    assert body == b"\x12" + bytes([len(b"ValueError: refused by warpcall: too heavy")]) + \
        b"ValueError: refused by warpcall: too heavy"
    assert codec.decode_response(body) == (None, {"type": "", "message": "ValueError: refused by warpcall: too heavy"})


def invoke(port: int, method: str, body: bytes) -> tuple[bytes, dict[bytes, bytes], bytes]:
    """One dispatch-protobuf request on a raw socket, as aspyx-service's client sends it."""
    with connect(port) as sock:
        sock.sendall(request("/invoke", body, "application/x-protobuf", extra=f"x-rpc-method: {method}\r\n"))
        return Reader(sock).response()


def test_warpcall_server_refuses_clearly(warpcall_server: FastAPIServer) -> None:
    # a method aspyx-service's protobuf cannot carry: 415 naming it and why, never run
    status, headers, body = invoke(warpcall_server.port, "pbinterop:pbshapes:maybe", b"\x08\x03")
    assert status.startswith(b"HTTP/1.1 415")
    assert headers[b"content-type"] == b"application/json"
    assert json.loads(body)["exception"] == {
        "type": "UnsupportedMediaTypeException",
        "message": "pbinterop:pbshapes:maybe: parameter 'count' is Optional[int], which aspyx-service's protobuf "
                   "cannot carry: it declares a union (Optional[X] included) as a string field that only a str "
                   "fills; it carries str, int (int32), float (32 bits), bool, bytes, dataclasses, pydantic "
                   "models, lists of these, str-valued enums and Optional[str]. Call it over dispatch-json or "
                   "dispatch-msgpack",
    }

    # a body that is no request of the method (its one field, a string, missing): 400 naming the field
    status, _, body = invoke(warpcall_server.port, "pbinterop:pbparcels:hello", b"\x10\x01")
    assert status.startswith(b"HTTP/1.1 400")
    assert json.loads(body)["exception"]["type"] == "MalformedRequestException"
    assert "field 'name' of request of pbinterop:pbparcels:hello is missing" in json.loads(body)["exception"]["message"]

    # and the server goes on answering
    status, _, body = invoke(warpcall_server.port, "pbinterop:pbparcels:hello", b"\x0a\x03raw")
    assert status.startswith(b"HTTP/1.1 200") and body == b"\x0a\x17hello raw from warpcall"
