"""The interop contract as an aspyx-service program declares it.

Run only with the aspyx virtual environment's python (see ``tests/interop/conftest.py``).
Names (component ``interop``, service ``parcels``, its methods) and field
shapes match the warpcall declarations in ``test_aspyx_interop.py``. The
annotations stay real types (no ``from __future__ import annotations``)
because aspyx reads dataclass field types at runtime.
"""

from abc import abstractmethod
from dataclasses import dataclass
from typing import Optional

from aspyx_service import Component, Service, component, service
from pydantic import BaseModel

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
