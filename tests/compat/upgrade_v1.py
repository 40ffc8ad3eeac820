"""Version 1 of the interface of the rolling-upgrade tests (``test_rolling_upgrades.py``).

``upgrade_v2.py`` declares the same component, service, methods, dataclass, model and enum names with
the shapes of the next version; each version's implementation marks what it returns, so a test sees
which version served a call and what crossed the wire.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from enum import Enum

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

VERSION = 1
CHANNELS = ["dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest"]


class Color(Enum):
    RED = "red"
    GREEN = "green"


@dataclass
class Item:
    name: str
    note: str = ""  # removed in version 2 (a field in the middle: protobuf numbers name = 1, note = 2, price = 3)
    price: float = 0.0


class Profile(BaseModel):
    name: str
    nickname: str = ""  # removed in version 2
    age: int = 0


@service(name="shop")
@rest("/shop")
class Shop(Service):
    @get("/greet")
    @abstractmethod
    def greet(self, name: str) -> str: ...

    @get("/greet-async")
    @abstractmethod
    async def greet_async(self, name: str) -> str: ...

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


def greeted(name: str) -> str:
    return f"hello {name} from v1"


def itemised(item: Item) -> Item:
    # the name tells the caller what this version read (a field the caller's version lacks reads as its default)
    return Item(name=f"{item.name.upper()} note={item.note!r}", note=item.note + "+v1", price=item.price * 2)


def profiled(profile: Profile) -> Profile:
    return Profile(
        name=f"{profile.name.upper()} nickname={profile.nickname!r}", nickname=profile.nickname + "+v1", age=profile.age + 1
    )


@implementation()
class ShopImpl(Shop):
    def greet(self, name: str) -> str:
        return greeted(name)

    async def greet_async(self, name: str) -> str:
        return greeted(name)

    def item(self, item: Item) -> Item:
        return itemised(item)

    async def item_async(self, item: Item) -> Item:
        return itemised(item)

    def profile(self, profile: Profile) -> Profile:
        return profiled(profile)

    async def profile_async(self, profile: Profile) -> Profile:
        return profiled(profile)

    def paint(self, color: Color) -> str:
        return f"painted {color.value} by v1"

    async def paint_async(self, color: Color) -> str:
        return f"painted {color.value} by v1"

    def favourite(self, name: str) -> Color:
        return Color.GREEN

    async def favourite_async(self, name: str) -> Color:
        return Color.GREEN


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
