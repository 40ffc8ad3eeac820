"""The README's introduction: the "interface" layer (TestService, TestComponent), as it writes them."""

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
