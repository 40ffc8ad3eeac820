"""The README's TestService and TestComponent, shared by the channel examples' servers and clients
(a package without a @module: no environment manages it on its own)."""

from abc import abstractmethod

from warpcall import Component, Service, component, service


@service(name="test-service", description="test service")
class TestService(Service):
    @abstractmethod
    def hello(self, message: str) -> str:
        pass

@component(name="test-component", services =[TestService])
class TestComponent(Component):
    pass
