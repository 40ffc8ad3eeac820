"""The server the README's introduction calls through Consul: its implementations and the FastAPI server
module, with the Consul registry of the introduction's module.

Changed: the import lines; host "0.0.0.0" -> "127.0.0.1", port 8000 -> 0; Consul at localhost:8500
-> the emulator. README: the introduction's module has no create_server (the "FastAPI server"
section's is added), and its registry here checks every 200 ms (the agent's check must pass before a
client sees the instance; Consul's default interval is 10 s).
"""

from consul import Consul
from fastapi import FastAPI
from readme_consul.interface import TestComponent, TestService
from readme_support import consul_port

from warpcall import (
    AbstractComponent,
    ChannelAddress,
    ComponentRegistry,
    ConsulComponentRegistry,
    FastAPIServer,
    Server,
    ServiceManager,
    ServiceModule,
    implementation,
)
from warpcall.di import create, module


@implementation()
class TestComponentImpl(AbstractComponent, TestComponent):
    # implement Component

    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://{Server.get_local_ip()}:{port}")]

@implementation()
class TestServiceImpl(TestService):
    def hello(self, message: str) -> str:
        return f"hello {message}"


fast_api = FastAPI()

@module(imports=[ServiceModule])
class Module:
    @create()
    def create_registry(self) -> ConsulComponentRegistry:
        return ConsulComponentRegistry(Server.port, Consul(host="127.0.0.1", port=consul_port()), check_interval="200ms")  # README: check_interval

    @create()
    def create_server(self,  service_manager: ServiceManager, component_registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(fast_api, service_manager, component_registry)


environment = FastAPIServer.boot(Module, host="127.0.0.1", port=0)
