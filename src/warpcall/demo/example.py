"""The example service and component the demo serves: the interface side, importable by any caller."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel

from warpcall import Component, Service, component, get, post, rest, service


@dataclass
class Order:
    """A dataclass argument and result."""

    id: int
    customer: str
    items: list[str] = field(default_factory=list)
    placed: datetime = datetime(2026, 1, 1)


class Receipt(BaseModel):
    """A pydantic result."""

    order_id: int
    total: float
    lines: int


@service(name="greeter", description="says hello and prices orders")
@rest("/greeter")
class GreeterService(Service):
    """The demo service; the route decorators serve it on the rest channel too."""

    @get("/hello/{name}")
    @abstractmethod
    def hello(self, name: str) -> str:
        """A greeting."""

    @post("/echo")
    @abstractmethod
    def echo(self, order: Order) -> Order:
        """The order, unchanged: a roundtrip of a dataclass."""

    @post("/price")
    @abstractmethod
    def price(self, order: Order) -> Receipt:
        """A receipt for the order."""

    @get("/hello-async/{name}")
    @abstractmethod
    async def hello_async(self, name: str) -> str:
        """A greeting, computed by an async implementation."""


@component(name="demo", description="the warpcall demo component", services=[GreeterService])
class DemoComponent(Component):
    """The demo component."""
