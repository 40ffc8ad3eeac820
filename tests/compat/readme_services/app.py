"""The aspyx-service README's introduction, "Service and Component declaration / implementation",
"Service Manager" and "FastAPI server" as one program, as the README writes them.

Changed: the import lines (aspyx_service -> warpcall, aspyx.di -> warpcall.di); host "0.0.0.0" ->
"127.0.0.1" and port 8000 -> 0 (a free port). Filled in where the README is incomplete, each marked
"README:" below.
"""

from abc import abstractmethod

from fastapi import FastAPI

from warpcall import (
    AbstractComponent,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    Server,
    Service,
    ServiceManager,
    ServiceModule,
    component,
    implementation,
    inject_service,
    service,
)
from warpcall.di import create, injectable, module


@service(name="test-service", description="test service")
class TestService(Service):
    @abstractmethod
    def hello(self, message: str) -> str:
        pass

@component(name="test-component", services =[TestService])
class TestComponent(Component):
    pass


@implementation()
class TestComponentImpl(AbstractComponent, TestComponent):
    # implement Component

    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://{Server.get_local_ip()}:{port}")]

@implementation()
class TestServiceImpl(TestService):
    def hello(self, message: str) -> str:
        return f"hello {message}"


# README: "Injecting services is also possible via the decorator @inject_service(...)" shows only the
# setter (and without its colon); the injectable class around it is filled in.
@injectable()
class ServiceUser:
    def __init__(self) -> None:
        self.service = None

    @inject_service()
    def set_service(self, service: TestService):
        self.service = service


# The introduction boots with `server = FastAPIServer(host="0.0.0.0", port=8000)` and
# `environment = server.boot(Module)`, an API aspyx-service 0.11.6 no longer has; its "FastAPI server"
# section's module and FastAPIServer.boot(Module, host=..., port=...) are used.
# "FastAPI server". README: the module passes `fastapi` (undefined there) to FastAPIServer; the app
# is the `fast_api` it created one line above. It declares no registry: the embedded one is used.
fast_api = FastAPI() # so you can run it with uvicorn from command-line

@module(imports=[ServiceModule])
class Module:
    def __init__(self):
        pass

    @create()
    def create_server(self,  service_manager: ServiceManager, component_registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(fast_api, service_manager, component_registry)


environment = FastAPIServer.boot(Module, host="127.0.0.1", port=0)
