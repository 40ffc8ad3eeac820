"""A server configured with ``sync_calls="threadpool"`` runs every sync REST implementation in its thread pool."""

from __future__ import annotations

import asyncio
import threading
from abc import abstractmethod

import pytest
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
    get,
    implementation,
    rest,
    service,
)
from warpcall.di import create, module


@service(name="threads")
@rest("/threads")
class ThreadService(Service):
    @get("/sync")
    @abstractmethod
    def sync_name(self) -> str: ...

    @get("/async")
    @abstractmethod
    async def async_name(self) -> str: ...


@component(name="threading-component", services=[ThreadService])
class ThreadComponent(Component):
    pass


@implementation()
class ThreadServiceImpl(ThreadService):
    def sync_name(self) -> str:
        return threading.current_thread().name

    async def async_name(self) -> str:
        return threading.current_thread().name


@implementation()
class ThreadComponentImpl(AbstractComponent, ThreadComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("rest", f"http://127.0.0.1:{port}")]


@module(imports=[ServiceModule])
class ThreadPoolModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry, sync_calls="threadpool")


@pytest.fixture(scope="module")
def threads():
    environment = FastAPIServer.boot(ThreadPoolModule, host="127.0.0.1", port=0)
    yield environment.get(ServiceManager).get_service(ThreadService, "rest")
    environment.destroy()


def test_sync_implementations_run_in_the_threadpool_and_async_ones_on_the_loop(threads):
    assert threads.sync_name().startswith("warpcall-sync")
    assert threads.sync_name().startswith("warpcall-sync")
    assert asyncio.run(threads.async_name()).startswith("warpcall-uvicorn")
