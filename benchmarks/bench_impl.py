"""The benchmark service's warpcall implementation and server module."""

from __future__ import annotations

from bench_api import BenchComponent, BenchService
from fastapi import FastAPI
from workload import Data, Pydantic

from warpcall import (
    AbstractComponent,
    ChannelAddress,
    ComponentRegistry,
    FastAPIServer,
    LocalComponentRegistry,
    ServiceManager,
    ServiceModule,
    implementation,
)
from warpcall.di import create, module

CHANNELS = ("dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest")


@implementation()
class BenchServiceImpl(BenchService):
    def hello(self, message: str) -> str:
        return message

    def data(self, data: Data) -> Data:
        return data

    def pydantic(self, data: Pydantic) -> Pydantic:
        return data

    async def hello_async(self, message: str) -> str:
        return message

    async def data_async(self, data: Data) -> Data:
        return data

    async def pydantic_async(self, data: Pydantic) -> Pydantic:
        return data


@implementation()
class BenchComponentImpl(AbstractComponent, BenchComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress(name, f"http://127.0.0.1:{port}") for name in CHANNELS]


#: serve.py turns this off for the ASGI-only server of ``test_bench_server.py``
INLINE_PROTOCOL = True


@module(imports=[ServiceModule])
class BenchServerModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry, inline_protocol=INLINE_PROTOCOL)
