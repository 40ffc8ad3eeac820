"""The interface side of the end-to-end failover tests: a service that says which process answered."""

from __future__ import annotations

from abc import abstractmethod

from warpcall import Component, Service, component, service


@service(name="whoami")
class WhoAmI(Service):
    @abstractmethod
    def pid(self) -> int:
        """The process id of the instance that served the call."""


@component(name="failover-e2e", services=[WhoAmI])
class FailoverComponent(Component):
    pass
