"""httpx stays the customization point: advice replacing the clients changes what reaches the server."""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from warpcall import (
    AbstractComponent,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    HTTPXChannel,
    LocalComponentRegistry,
    Service,
    ServiceManager,
    ServiceModule,
    component,
    implementation,
    service,
)
from warpcall.di import create, module
from warpcall.di.aop import Invocation, advice, around, methods

CHANNELS = ["dispatch-json", "dispatch-msgpack", "dispatch-protobuf"]
SEEN: list[dict[str, str]] = []


@service(name="whoami")
class WhoAmIService(Service):
    @abstractmethod
    def ping(self, text: str) -> str: ...

    @abstractmethod
    async def ping_async(self, text: str) -> str: ...


@component(name="advised", services=[WhoAmIService])
class AdvisedComponent(Component):
    pass


@implementation()
class WhoAmIServiceImpl(WhoAmIService):
    def ping(self, text: str) -> str:
        return text

    async def ping_async(self, text: str) -> str:
        return text


@implementation()
class AdvisedComponentImpl(AbstractComponent, AdvisedComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress(name, f"http://127.0.0.1:{port}") for name in CHANNELS]


CLIENTS_MADE: list[str] = []


@advice
class AuthHeaderAdvice:
    """How users add auth: wrap the client factory and decorate what it returns."""

    @around(methods().named("make_client").of_type(HTTPXChannel))
    def with_auth(self, invocation: Invocation) -> httpx.Client:
        client = invocation.proceed()
        client.headers["Authorization"] = "Bearer sync-token"
        CLIENTS_MADE.append("sync")
        return client

    @around(methods().named("make_async_client").of_type(HTTPXChannel))
    def with_async_auth(self, invocation: Invocation) -> httpx.AsyncClient:
        client = invocation.proceed()
        client.headers["Authorization"] = "Bearer async-token"
        CLIENTS_MADE.append("async")
        return client


def make_app() -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def record(request: Request, call_next: Any) -> Any:
        SEEN.append(dict(request.headers))
        return await call_next(request)

    return app


@module(imports=[ServiceModule])
class AdvisedModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(make_app(), manager, registry)


@pytest.fixture(scope="module")
def manager():
    environment = FastAPIServer.boot(AdvisedModule, host="127.0.0.1", port=0)
    yield environment.get(ServiceManager)
    environment.destroy()


@pytest.mark.parametrize("channel", CHANNELS)
def test_advice_on_the_client_factories_reaches_the_server(manager, channel):
    proxy = manager.get_service(WhoAmIService, channel)
    SEEN.clear()
    assert proxy.ping("sync") == "sync"
    assert asyncio.run(proxy.ping_async("async")) == "async"
    # a second event loop gets a client of its own, made by the advised factory too
    assert asyncio.run(proxy.ping_async("again")) == "again"
    assert [headers.get("authorization") for headers in SEEN] == [
        "Bearer sync-token",
        "Bearer async-token",
        "Bearer async-token",
    ]


def test_one_sync_client_per_channel_and_one_async_client_per_loop(manager):
    CLIENTS_MADE.clear()
    proxy = manager.get_service(WhoAmIService, "dispatch-json")
    for _ in range(3):
        proxy.ping("x")

    async def twice() -> None:
        await proxy.ping_async("a")
        await proxy.ping_async("b")

    asyncio.run(twice())
    assert CLIENTS_MADE.count("sync") <= 1
    assert CLIENTS_MADE.count("async") == 1
