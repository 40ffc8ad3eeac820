"""The ``local`` channel: what ``get_service(S, "local")`` hands back costs a plain call.

Group ``local-sync`` puts side by side: a plain method call on an object made without any
framework, a call on what warpcall's ``ServiceManager.get_service(..., "local")`` returns, and
the same with aspyx-service. Each round makes ``CALLS`` calls.

    pytest benchmarks/test_bench_local.py --benchmark-only -q
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from typing import Any

import pytest

from warpcall import (
    AbstractComponent,
    ChannelAddress,
    Component,
    ComponentRegistry,
    LocalComponentRegistry,
    Service,
    ServiceManager,
    ServiceModule,
    component,
    implementation,
    service,
)
from warpcall.di import Environment, create, module

CALLS = 100


@service(name="local-bench")
class LocalBenchService(Service):
    @abstractmethod
    def hello(self, name: str) -> str: ...


@component(name="local-bench-component", services=[LocalBenchService])
class LocalBenchComponent(Component):
    pass


@implementation()
class LocalBenchServiceImpl(LocalBenchService):
    def hello(self, name: str) -> str:
        return name


@implementation()
class LocalBenchComponentImpl(AbstractComponent, LocalBenchComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return []


@module(imports=[ServiceModule])
class LocalBenchModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()


class Plain:
    def hello(self, name: str) -> str:
        return name


def calls(target: Any) -> None:
    hello = target.hello
    for _ in range(CALLS):
        hello("x")


@pytest.fixture(scope="module")
def warpcall_local() -> Iterator[Any]:
    environment = Environment(LocalBenchModule)
    yield environment.get(ServiceManager).get_service(LocalBenchService, "local")
    environment.destroy()


def test_plain_call(benchmark):
    benchmark.group = "local-sync"
    benchmark(calls, Plain())


def test_warpcall_local(benchmark, warpcall_local):
    benchmark.group = "local-sync"
    assert isinstance(warpcall_local, LocalBenchServiceImpl)
    benchmark(calls, warpcall_local)


def test_aspyx_local(benchmark):
    pytest.importorskip("aspyx_service")
    import aspyx_bench  # noqa: F401 - keeps aspyx on loopback
    from aspyx.di import Environment as AspyxEnvironment
    from aspyx_local import AspyxLocalModule, AspyxLocalService
    from aspyx_service import ServiceManager as AspyxServiceManager

    environment = AspyxEnvironment(AspyxLocalModule)
    try:
        local = environment.get(AspyxServiceManager).get_service(AspyxLocalService, preferred_channel="local")
        assert local.hello("x") == "x"
        benchmark.group = "local-sync"
        benchmark(calls, local)
    finally:
        environment.destroy()
