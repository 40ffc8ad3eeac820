"""Version 2 of the interface of the rolling-upgrade tests (``test_rolling_upgrades.py``).

The same names as ``upgrade_v1.py``, one version on: ``greet`` has a parameter added with a default,
``Item`` and ``Profile`` lost a field (``note``, ``nickname``) and gained one with a default
(``quantity``, ``level``), ``Color`` has a value more (``BLUE``). Where a field was removed from the
middle, the field after it keeps its protobuf number with ``FieldNumber``.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from enum import Enum
from typing import Annotated

from fastapi import FastAPI
from pydantic import BaseModel

from warpcall import (
    AbstractComponent,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    LocalComponentRegistry,
    Service,
    ServiceManager,
    ServiceModule,
    component,
    get,
    implementation,
    post,
    rest,
    service,
)
from warpcall.di import create, module
from warpcall.wire import FieldNumber

VERSION = 2
CHANNELS = ["dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest"]


class Color(Enum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"  # added


@dataclass
class Item:
    name: str
    # note (number 2) removed: price keeps number 3, the field added after it takes 4
    price: Annotated[float, FieldNumber(3)] = 0.0
    quantity: int = 1  # added, with a default other than protobuf's zero


class Profile(BaseModel):
    name: str
    # nickname (number 2) removed
    age: Annotated[int, FieldNumber(3)] = 0
    level: int = 1  # added


@service(name="shop")
@rest("/shop")
class Shop(Service):
    @get("/greet")
    @abstractmethod
    def greet(self, name: str, punctuation: str = "!") -> str: ...

    @get("/greet-async")
    @abstractmethod
    async def greet_async(self, name: str, punctuation: str = "!") -> str: ...

    @post("/item")
    @abstractmethod
    def item(self, item: Item) -> Item: ...

    @post("/item-async")
    @abstractmethod
    async def item_async(self, item: Item) -> Item: ...

    @post("/profile")
    @abstractmethod
    def profile(self, profile: Profile) -> Profile: ...

    @post("/profile-async")
    @abstractmethod
    async def profile_async(self, profile: Profile) -> Profile: ...

    @get("/paint")
    @abstractmethod
    def paint(self, color: Color) -> str: ...

    @get("/paint-async")
    @abstractmethod
    async def paint_async(self, color: Color) -> str: ...

    @get("/favourite")
    @abstractmethod
    def favourite(self, name: str) -> Color: ...

    @get("/favourite-async")
    @abstractmethod
    async def favourite_async(self, name: str) -> Color: ...


@component(name="shop", services=[Shop])
class ShopComponent(Component):
    pass


def greeted(name: str, punctuation: str) -> str:
    return f"hello {name} from v2{punctuation}"


def itemised(item: Item) -> Item:
    # the name tells the caller what this version read (a field the caller's version lacks reads as its default)
    return Item(name=f"{item.name.upper()} quantity={item.quantity}", price=item.price * 2, quantity=item.quantity + 10)


def profiled(profile: Profile) -> Profile:
    return Profile(name=f"{profile.name.upper()} level={profile.level}", age=profile.age + 1, level=profile.level + 10)


@implementation()
class ShopImpl(Shop):
    def greet(self, name: str, punctuation: str = "!") -> str:
        return greeted(name, punctuation)

    async def greet_async(self, name: str, punctuation: str = "!") -> str:
        return greeted(name, punctuation)

    def item(self, item: Item) -> Item:
        return itemised(item)

    async def item_async(self, item: Item) -> Item:
        return itemised(item)

    def profile(self, profile: Profile) -> Profile:
        return profiled(profile)

    async def profile_async(self, profile: Profile) -> Profile:
        return profiled(profile)

    def paint(self, color: Color) -> str:
        return f"painted {color.value} by v2"

    async def paint_async(self, color: Color) -> str:
        return f"painted {color.value} by v2"

    def favourite(self, name: str) -> Color:
        return Color.BLUE if name == "new" else Color.GREEN

    async def favourite_async(self, name: str) -> Color:
        return Color.BLUE if name == "new" else Color.GREEN


@implementation()
class ShopComponentImpl(AbstractComponent, ShopComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress(channel, f"http://127.0.0.1:{port}") for channel in CHANNELS]


@module(imports=[ServiceModule])
class ServerModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry)


@module(imports=[ServiceModule])
class ClientModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()
