"""The aspyx implementation of the benchmark service and its server module."""

# no ``from __future__ import annotations``: aspyx-service's server hands the implementation's annotations to
# FastAPI as they are, and FastAPI cannot resolve string annotations from another module
from aspyx.di import create, module
from aspyx_bench import CHANNELS, AspyxBenchComponent, AspyxBenchService
from aspyx_service import (
    AbstractComponent,
    ChannelAddress,
    ComponentRegistry,
    FastAPIServer,
    Server,
    ServiceManager,
    ServiceModule,
    implementation,
)
from aspyx_service.service import LocalComponentRegistry
from aspyx_service.session import SessionManager
from fastapi import FastAPI
from workload import Data, Pydantic


@implementation()
class AspyxBenchServiceImpl(AspyxBenchService):
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
class AspyxBenchComponentImpl(AbstractComponent, AspyxBenchComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress(name, f"http://127.0.0.1:{Server.port}") for name in CHANNELS]


@module(imports=[ServiceModule])
class AspyxServerModule:
    @create()
    def create_session_storage(self) -> SessionManager.Storage:
        # aspyx-service's ServiceModule needs one, even when no session is used
        return SessionManager.InMemoryStorage()

    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry)
