"""The local-channel benchmark's service on aspyx-service (the rival), in a module of its own."""

from __future__ import annotations

from abc import abstractmethod

from aspyx.di import create, module
from aspyx_service import (
    AbstractComponent,
    ChannelAddress,
    Component,
    ComponentRegistry,
    Service,
    ServiceModule,
    component,
    implementation,
    service,
)
from aspyx_service.service import LocalComponentRegistry
from aspyx_service.session import SessionManager


@service(name="local-bench")
class AspyxLocalService(Service):
    @abstractmethod
    def hello(self, name: str) -> str: ...


@component(name="local-bench-component", services=[AspyxLocalService])
class AspyxLocalComponent(Component):
    pass


@implementation()
class AspyxLocalServiceImpl(AspyxLocalService):
    def hello(self, name: str) -> str:
        return name


@implementation()
class AspyxLocalComponentImpl(AbstractComponent, AspyxLocalComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return []


@module(imports=[ServiceModule])
class AspyxLocalModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_session_storage(self) -> SessionManager.Storage:
        return SessionManager.InMemoryStorage()
