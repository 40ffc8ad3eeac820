"""The benchmark service as warpcall declares it (the caller's side)."""

from __future__ import annotations

from abc import abstractmethod

from workload import Data, Pydantic

from warpcall import Component, Service, component, get, post, rest, service


@service(name="bench-service")
@rest("/bench")
class BenchService(Service):
    @get("/hello")
    @abstractmethod
    def hello(self, message: str) -> str: ...

    @post("/data")
    @abstractmethod
    def data(self, data: Data) -> Data: ...

    @post("/pydantic")
    @abstractmethod
    def pydantic(self, data: Pydantic) -> Pydantic: ...

    @get("/hello-async")
    @abstractmethod
    async def hello_async(self, message: str) -> str: ...

    @post("/data-async")
    @abstractmethod
    async def data_async(self, data: Data) -> Data: ...

    @post("/pydantic-async")
    @abstractmethod
    async def pydantic_async(self, data: Pydantic) -> Pydantic: ...


@component(name="bench-component", services=[BenchService])
class BenchComponent(Component):
    pass
