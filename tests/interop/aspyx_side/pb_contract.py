"""The protobuf interop contract as an aspyx-service program declares it.

Run only with the aspyx virtual environment's python (see ``tests/interop/conftest.py``).
Names (component ``pbinterop``, service ``pbparcels``, its methods) and field
shapes match the warpcall declarations in ``test_aspyx_protobuf_interop.py``;
the dataclasses and models of ``contract.py`` are reused. Floats are chosen
exactly representable in 32 bits: aspyx-service's protobuf declares ``float``.
"""

from abc import abstractmethod
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Optional

from aspyx_service import Component, Service, component, service
from contract import Customer, Parcel

CHANNELS = ["dispatch-protobuf"]


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


@component(name="pbinterop", services=[PbParcelService])
class PbInteropComponent(Component):
    pass
