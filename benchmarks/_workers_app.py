"""The application ``benchmarks/workers_wrk.py`` serves with ``warpcall serve``: one small sync method.

``bench:greeter:hello`` answers ``"hello <name>"``; ``bench:greeter:data`` returns the aspyx-service
workload's dataclass (benchmarks/workload.py: ten 123-character strings) it was sent. Served on the
dispatch channels of 127.0.0.1.
"""

from __future__ import annotations

from abc import abstractmethod

from fastapi import FastAPI
from workload import Data

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
    implementation,
    service,
)
from warpcall.di import create, module


@service(name="greeter")
class Greeter(Service):
    @abstractmethod
    def hello(self, name: str) -> str: ...

    @abstractmethod
    def data(self, data: Data) -> Data: ...


@component(name="bench", services=[Greeter])
class BenchComponent(Component):
    pass


@implementation()
class GreeterImpl(Greeter):
    def hello(self, name: str) -> str:
        return f"hello {name}"

    def data(self, data: Data) -> Data:
        return data


@implementation()
class BenchComponentImpl(AbstractComponent, BenchComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://127.0.0.1:{port}")]


@module(imports=[ServiceModule])
class WorkersBenchModule:
    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry, grace_period=1.0)
