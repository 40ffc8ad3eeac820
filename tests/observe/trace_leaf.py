"""Service B of the end-to-end trace test: a leaf that reports the trace context its implementation runs in.

A module of its own, so that the environment built from :class:`LeafModule` hosts this component only."""

from __future__ import annotations

from abc import abstractmethod

from fastapi import FastAPI

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
from warpcall.observe import tracing
from warpcall.registry.local import LocalDirectory

#: the directory the test shares between both servers' registries (set before booting)
DIRECTORY = LocalDirectory()
CHANNELS = ["dispatch-json", "dispatch-msgpack"]


def _seen() -> str:
    current = tracing.current.get()
    return "-" if current is None else f"{current.trace_id}/{current.span_id}"


@service(name="leaf")
class LeafService(Service):
    @abstractmethod
    def leaf(self) -> str: ...

    @abstractmethod
    async def leaf_async(self) -> str: ...


@component(name="leaves", services=[LeafService])
class LeafComponent(Component):
    pass


@implementation()
class LeafServiceImpl(LeafService):
    def leaf(self) -> str:
        return _seen()

    async def leaf_async(self) -> str:
        return _seen()


@implementation()
class LeafComponentImpl(AbstractComponent, LeafComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress(channel, f"http://127.0.0.1:{port}") for channel in CHANNELS]


@module(imports=[ServiceModule], packages=[__name__])
class LeafModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry(DIRECTORY)

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry)
