"""The aspyx-service README's "Implementing Channels": FancyChannel, as the README writes it, in a program.

Changed: the import lines (aspyx_service -> warpcall, aspyx.reflection -> warpcall.reflection);
host "0.0.0.0" -> "127.0.0.1", port 8000 -> 0. Filled in where the README is incomplete, each
marked "README:".
"""

from abc import abstractmethod

import httpx
from fastapi import FastAPI

from warpcall import (
    AbstractComponent,
    Channel,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    Server,
    Service,
    ServiceManager,
    ServiceModule,
    channel,
    component,
    implementation,
    service,
)
from warpcall.di import create, module
from warpcall.reflection import DynamicProxy

#: README: not in the README; what the channel was handed, for the test to look at
SEEN = []


# README: the channel's bodies are `return ...` / `return await ...`; filled in with a call of the
# component's dispatch endpoint that names the method by invocation.method.__name__
@channel("fancy")
class FancyChannel(Channel):
    # constructor

    def __init__(self):
        super().__init__()

    # override

    def invoke(self, invocation: DynamicProxy.Invocation):
        SEEN.append(invocation)
        return httpx.post(f"{self.get_url()}/invoke", json=self.envelope(invocation), timeout=5).json()["result"]

    async def invoke_async(self, invocation: DynamicProxy.Invocation):
        SEEN.append(invocation)
        async with httpx.AsyncClient(timeout=5) as client:
            return (await client.post(f"{self.get_url()}/invoke", json=self.envelope(invocation))).json()["result"]

    # README: a helper of the filled-in bodies
    def envelope(self, invocation: DynamicProxy.Invocation) -> dict:
        return {
            "method": f"{self.component_descriptor.name}:test-service:{invocation.method.__name__}",
            "args": [*invocation.args, *invocation.kwargs.values()],
        }


@service(name="test-service", description="test service")
class TestService(Service):
    @abstractmethod
    def hello(self, message: str) -> str:
        pass

    # README: not in the README's TestService; an async method reaches invoke_async
    @abstractmethod
    async def hello_async(self, message: str) -> str:
        pass

@component(name="test-component", services =[TestService])
class TestComponent(Component):
    pass


@implementation()
class TestComponentImpl(AbstractComponent, TestComponent):
    # implement Component

    def get_addresses(self, port: int) -> list[ChannelAddress]:
        # README: the component exposes the fancy channel too, so clients may choose it
        return [
            ChannelAddress("dispatch-json", f"http://{Server.get_local_ip()}:{port}"),
            ChannelAddress("fancy", f"http://{Server.get_local_ip()}:{port}"),
        ]

@implementation()
class TestServiceImpl(TestService):
    def hello(self, message: str) -> str:
        return f"hello {message}"

    async def hello_async(self, message: str) -> str:
        return f"hello {message} (async)"


fast_api = FastAPI()

@module(imports=[ServiceModule])
class Module:
    def __init__(self):
        pass

    @create()
    def create_server(self,  service_manager: ServiceManager, component_registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(fast_api, service_manager, component_registry)


environment = FastAPIServer.boot(Module, host="127.0.0.1", port=0)
