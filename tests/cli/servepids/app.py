"""``warpcall serve servepids.app:PidModule``: a ``pid`` service (``post:pid:pid``, ``post:pid:setting``).

Served by the tests of ``warpcall serve`` in real processes (``tests/cli`` on PYTHONPATH). The registry
is the embedded one (the default), in the directory the test names with ``WARPCALL_REGISTRY_DIR``.
"""

from __future__ import annotations

import os
from abc import abstractmethod

from fastapi import FastAPI

from warpcall import (
    AbstractComponent,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    Service,
    ServiceManager,
    ServiceModule,
    component,
    health,
    implementation,
    service,
)
from warpcall.di import create, module
from warpcall.di.configuration import ConfigurationManager


@service(name="pid")
class PidService(Service):
    @abstractmethod
    def pid(self) -> int:
        """The id of the process that answers."""

    @abstractmethod
    def setting(self, key: str) -> str:
        """The configuration value of ``key`` as this process sees it ('' when unset)."""


@component(name="pids", services=[PidService])
class PidComponent(Component):
    pass


@implementation()
class PidServiceImpl(PidService):
    def __init__(self, configuration: ConfigurationManager) -> None:
        self.configuration = configuration

    def pid(self) -> int:
        return os.getpid()

    def setting(self, key: str) -> str:
        return str(self.configuration.get_raw(key, ""))


@implementation()
@health("/health")
class PidComponentImpl(AbstractComponent, PidComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://127.0.0.1:{port}")]


@module(imports=[ServiceModule])
class PidModule:
    @create()
    def create_server(
        self, service_manager: ServiceManager, component_registry: ComponentRegistry,
        configuration: ConfigurationManager,
    ) -> FastAPIServer:
        # a short drain: the tests stop servers often; app.deregister_delay: how long it serves once deregistered
        delay = configuration.get("app.deregister_delay", float, 0.0)
        return FastAPIServer(FastAPI(), service_manager, component_registry, grace_period=2.0, deregister_delay=delay)
