"""Instance "a" of the README's test component, for the channel examples: the README's implementations
and FastAPI server module. Changed: imports; host "0.0.0.0" -> "127.0.0.1", port 8000 -> 0.
README: not in the README, each marked below: the answer names the instance, and a middleware records
the Authorization header each request arrives with."""

from fastapi import FastAPI, Request
from readme_channels_api.api import TestComponent, TestService

from warpcall import (
    AbstractComponent,
    ChannelAddress,
    ComponentRegistry,
    FastAPIServer,
    Server,
    ServiceManager,
    ServiceModule,
    implementation,
)
from warpcall.di import create, module

#: README: the Authorization header of every request this instance received
AUTHORIZATION = []


@implementation()
class TestComponentImpl(AbstractComponent, TestComponent):
    # implement Component

    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://{Server.get_local_ip()}:{port}")]

@implementation()
class TestServiceImpl(TestService):
    def hello(self, message: str) -> str:
        return f"hello {message} from a"  # README: "from a" added


fast_api = FastAPI() # so you can run it with uvicorn from command-line


@fast_api.middleware("http")  # README: added
async def record_authorization(request: Request, call_next):
    AUTHORIZATION.append(request.headers.get("authorization"))
    return await call_next(request)


@module(imports=[ServiceModule])
class Module:
    def __init__(self):
        pass

    @create()
    def create_server(self,  service_manager: ServiceManager, component_registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(fast_api, service_manager, component_registry)


environment = FastAPIServer.boot(Module, host="127.0.0.1", port=0)
