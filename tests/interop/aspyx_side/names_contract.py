"""Declarations WITHOUT explicit names, as an aspyx-service program writes them: the names are derived
from the class names (``default-names-component``, ``h-t-t-p-greeting-service``, ``order-lookup-service``).

Run only with the aspyx virtual environment's python (see ``tests/interop/conftest.py``); the warpcall
side declares the same classes in ``test_aspyx_default_names.py``.
"""

from abc import abstractmethod

from aspyx_service import Component, Service, component, service

CHANNELS = ["dispatch-json"]


@service()
class HTTPGreetingService(Service):
    @abstractmethod
    def greet(self, name: str) -> str: ...

    @abstractmethod
    def fail(self, reason: str) -> str: ...


@service(description="no name either: a description alone keeps the derived name")
class OrderLookupService(Service):
    @abstractmethod
    def total(self, quantities: list[int]) -> int: ...


@component(services=[HTTPGreetingService, OrderLookupService])
class DefaultNamesComponent(Component):
    pass
