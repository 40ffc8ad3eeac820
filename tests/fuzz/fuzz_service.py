"""The service the server target fuzzes: a few methods whose parameters cover the envelope's shapes.

Every method returns a value built from its validated arguments, of its declared type, so a reply that
is not 2xx or 4xx is the server's fault, never the implementation's.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Union

from fastapi import FastAPI
from fuzz_targets import Label, Point

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
    implementation,
    service,
)
from warpcall.di import create, module

#: the server's body limit: small, so that generated bodies cross it now and then
MAX_BODY = 4096


@service(name="fuzz")
class FuzzService(Service):
    @abstractmethod
    def echo_point(self, point: Point) -> Point: ...

    @abstractmethod
    def add(self, a: int, b: int = 0) -> int: ...

    @abstractmethod
    def echo_text(self, text: str) -> str: ...

    @abstractmethod
    def count(self, items: list[int]) -> int: ...

    @abstractmethod
    def describe(self, value: Union[int, str]) -> str: ...

    @abstractmethod
    def label(self, label: Label) -> Label: ...

    @abstractmethod
    async def nothing(self) -> None: ...


@component(name="fz", services=[FuzzService])
class FuzzComponent(Component):
    pass


@implementation()
class FuzzServiceImpl(FuzzService):
    def echo_point(self, point: Point) -> Point:
        return point

    def add(self, a: int, b: int = 0) -> int:
        return a + b

    def echo_text(self, text: str) -> str:
        return text

    def count(self, items: list[int]) -> int:
        return len(items)

    def describe(self, value: Union[int, str]) -> str:
        return f"{type(value).__name__} of length {len(str(value))}"

    def label(self, label: Label) -> Label:
        return label

    async def nothing(self) -> None:
        return None


@implementation()
class FuzzComponentImpl(AbstractComponent, FuzzComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://127.0.0.1:{port}")]


@module(imports=[ServiceModule])
class FuzzModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry, max_body=MAX_BODY)


def boot() -> FastAPIServer:
    """The server on a free 127.0.0.1 port, in a thread; ``server.environment.destroy()`` stops it."""
    environment = FastAPIServer.boot(FuzzModule, host="127.0.0.1", port=0)
    server: FastAPIServer = environment.get(FastAPIServer)
    return server
