"""The interface side of the self-healing and liveness tests: who answered, and a way to stall the loop."""

from __future__ import annotations

from abc import abstractmethod

from warpcall import Component, Service, component, service


@service(name="resilience-whoami")
class Who(Service):
    @abstractmethod
    def pid(self) -> int:
        """The process id of the instance that served the call."""


@service(name="resilience-staller")
class Staller(Service):
    @abstractmethod
    async def block(self, seconds: float) -> float:
        """Block the server's event loop for ``seconds`` (an async method that sleeps synchronously)."""


@component(name="resilience", services=[Who, Staller])
class Resilience(Component):
    pass
