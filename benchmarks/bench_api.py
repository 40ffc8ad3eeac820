"""The benchmark service as warpcall declares it (the caller's side)."""

from __future__ import annotations

from abc import abstractmethod

from workload import Data, Pydantic

from warpcall import Component, Service, component, service


@service(name="bench-service")
class BenchService(Service):
    @abstractmethod
    def hello(self, message: str) -> str: ...

    @abstractmethod
    def data(self, data: Data) -> Data: ...

    @abstractmethod
    def pydantic(self, data: Pydantic) -> Pydantic: ...

    @abstractmethod
    async def hello_async(self, message: str) -> str: ...

    @abstractmethod
    async def data_async(self, data: Data) -> Data: ...

    @abstractmethod
    async def pydantic_async(self, data: Pydantic) -> Pydantic: ...


@component(name="bench-component", services=[BenchService])
class BenchComponent(Component):
    pass
