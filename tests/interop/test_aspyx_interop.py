"""Wire interop with aspyx-service 0.11.6: each side calls the other over dispatch-json and dispatch-msgpack.

The aspyx side runs in its own venv (``conftest.py``) from the scripts in
``aspyx_side/``, which declare the same component (``interop``), service
(``parcels``), methods and field shapes as this module. Each implementation
stamps its own name into what it returns, so every assertion also shows which
framework served the call.
"""

import dataclasses
from abc import abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Optional

import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from warpcall import (
    AbstractComponent,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    LocalComponentRegistry,
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

CHANNELS = ["dispatch-json", "dispatch-msgpack"]


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


@service(name="parcels")
class ParcelService(Service):
    @abstractmethod
    def hello(self, name: str) -> str: ...

    @abstractmethod
    def weigh(self, parcel: Parcel) -> Parcel: ...

    @abstractmethod
    def upgrade(self, customer: Customer) -> Customer: ...

    @abstractmethod
    def fail(self, reason: str) -> str: ...


@component(name="interop", services=[ParcelService])
class InteropComponent(Component):
    pass


def weighed(parcel: Parcel, side: str) -> Parcel:
    """What ``weigh`` answers on either side (aspyx_side/server.py does the same)."""
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
    """What ``upgrade`` answers on either side."""
    return Customer(
        name=customer.name + " (vip)",
        vip=True,
        score=customer.score + 1.5,
        tags=[*customer.tags, f"upgraded-by-{side}"],
        address=Address(street=customer.address.street, city=customer.address.city.upper()),
    )


@implementation()
class ParcelServiceImpl(ParcelService):
    def hello(self, name: str) -> str:
        return f"hello {name} from warpcall"

    def weigh(self, parcel: Parcel) -> Parcel:
        return weighed(parcel, "warpcall")

    def upgrade(self, customer: Customer) -> Customer:
        return upgraded(customer, "warpcall")

    def fail(self, reason: str) -> str:
        raise ValueError(f"refused by warpcall: {reason}")


@implementation()
class InteropComponentImpl(AbstractComponent, InteropComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress(channel, f"http://127.0.0.1:{port}") for channel in CHANNELS]


@module(imports=[ServiceModule])
class InteropServerModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry)


@module(imports=[ServiceModule])
class InteropClientModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()


#: what aspyx_side/client.py sends
ASPYX_PARCEL = Parcel(
    id=7, weight=2.5, fragile=True, label="books", tags=["a", "ü"], items=[Item(sku="b-1", quantity=3)]
)
ASPYX_CUSTOMER = Customer(
    name="ada", vip=False, score=3.25, tags=["early"], address=Address(street="1 Loop Rd", city="Lisbon")
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
CUSTOMER = Customer(
    name="grace", vip=False, score=9.5, tags=[], address=Address(street="2 Ring St", city="Oslo")
)


# warpcall client -> aspyx-service server


@pytest.fixture(scope="module")
def warpcall_client(aspyx_server: Any) -> Iterator[ServiceManager]:
    """A warpcall environment whose registry points component ``interop`` at the aspyx server."""
    environment = Environment(InteropClientModule)
    try:
        registry = environment.get(ComponentRegistry)
        registry.register(
            component_descriptor(InteropComponent),
            [ChannelAddress(channel, aspyx_server.url) for channel in CHANNELS],
        )
        yield environment.get(ServiceManager)
    finally:
        environment.destroy()


@pytest.mark.parametrize("channel", CHANNELS)
def test_warpcall_client_calls_aspyx_server(warpcall_client: ServiceManager, channel: str) -> None:
    parcels = warpcall_client.get_service(ParcelService, channel)

    assert parcels.hello("warpcall client") == "hello warpcall client from aspyx"

    parcel = parcels.weigh(PARCEL)
    assert parcel == weighed(PARCEL, "aspyx")
    assert isinstance(parcel, Parcel) and all(isinstance(item, Item) for item in parcel.items)

    customer = parcels.upgrade(CUSTOMER)
    assert customer == upgraded(CUSTOMER, "aspyx")
    assert isinstance(customer, Customer) and isinstance(customer.address, Address)


@pytest.mark.parametrize("channel", CHANNELS)
def test_warpcall_client_gets_remote_exception_from_aspyx_server(
    warpcall_client: ServiceManager, channel: str
) -> None:
    parcels = warpcall_client.get_service(ParcelService, channel)

    with pytest.raises(RemoteServiceException) as info:
        parcels.fail("too heavy")

    # aspyx sends the exception as a plain string: the message travels, the type name does not
    assert info.value.remote_message == "refused by aspyx: too heavy"
    assert "interop:parcels:fail" in str(info.value)
    # the channel keeps working after a remote failure
    assert parcels.hello("again") == "hello again from aspyx"


# aspyx-service client -> warpcall server


@pytest.fixture(scope="module")
def warpcall_url() -> Iterator[str]:
    """A warpcall server hosting component ``interop`` on a free port of 127.0.0.1."""
    environment = FastAPIServer.boot(InteropServerModule, host="127.0.0.1", port=0)
    try:
        yield environment.get(FastAPIServer).url
    finally:
        environment.destroy()


@pytest.fixture(scope="module")
def aspyx_report(aspyx_client: Callable[[str], dict[str, Any]], warpcall_url: str) -> dict[str, Any]:
    """What aspyx_side/client.py got back from the warpcall server, per channel and call."""
    return aspyx_client(warpcall_url)


@pytest.mark.parametrize("channel", CHANNELS)
def test_aspyx_client_calls_warpcall_server(aspyx_report: dict[str, Any], channel: str) -> None:
    calls = aspyx_report[channel]

    assert calls["hello"] == {"ok": True, "value": "hello aspyx client from warpcall"}

    assert calls["weigh"] == {
        "ok": True,
        "type": "Parcel",
        "item_types": ["Item", "Item"],
        "value": dataclasses.asdict(weighed(ASPYX_PARCEL, "warpcall")),
    }

    assert calls["upgrade"] == {
        "ok": True,
        "type": "Customer",
        "address_type": "Address",
        "value": upgraded(ASPYX_CUSTOMER, "warpcall").model_dump(),
    }


@pytest.mark.parametrize("channel", CHANNELS)
def test_aspyx_client_gets_remote_exception_from_warpcall_server(
    aspyx_report: dict[str, Any], channel: str
) -> None:
    failed = aspyx_report[channel]["fail"]

    assert failed["ok"] is False
    assert failed["error_type"] == "RemoteServiceException" and failed["is_remote_service_exception"]
    # aspyx puts the whole exception entry into its message: warpcall's type name and message both arrive
    assert "refused by warpcall: too heavy" in failed["message"]
    assert "ValueError" in failed["message"]
