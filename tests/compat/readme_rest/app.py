"""The aspyx-service README's "Rest Calls" as a program: a @rest service with get/post, Body, and the
QueryParam / PathParam markers the README lists, served by the README's FastAPI server module.

Changed: the import lines; host "0.0.0.0" -> "127.0.0.1", port 8000 -> 0. Filled in where the README
is incomplete, each marked "README:".
"""

from dataclasses import dataclass

from fastapi import FastAPI

from warpcall import (
    AbstractComponent,
    Body,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    PathParam,
    QueryParam,
    Server,
    Service,
    ServiceManager,
    ServiceModule,
    component,
    get,
    implementation,
    post,
    rest,
    service,
)
from warpcall.di import create, module


# README: `Data` is used, not declared
@dataclass
class Data:
    name: str
    count: int


@service()
@rest("/api")
class TestService(Service):
    @get("/hello/{message}")
    def hello(self, message: str) -> str:
        pass

    @post("/post/")
    def set_data(self, data: Body(Data)) -> Data:
        pass

    # README: "Additional annotations are Body ... QueryParam"; 0.11.6 adds PathParam. Two methods
    # using them, and one relying on the heuristic ("You can skip the annotations")
    @get("/items/{item_id}")
    def item(self, item_id: PathParam(int), text: QueryParam(str)) -> str:
        pass

    @post("/guess/{prefix}")
    def guess(self, prefix: str, data: Data, times: int) -> Data:
        pass


# README: the component and implementations of the rest example are not shown; the component is the
# one "Service and Component declaration" writes (no name), its implementation exposes a "rest" address
@component(services =[TestService])
class TestComponent(Component):
    pass


@implementation()
class TestComponentImpl(AbstractComponent, TestComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("rest", f"http://{Server.get_local_ip()}:{port}")]


@implementation()
class TestServiceImpl(TestService):
    def hello(self, message: str) -> str:
        return f"hello {message}"

    def set_data(self, data: Data) -> Data:
        return Data(data.name.upper(), data.count + 1)

    def item(self, item_id: int, text: str) -> str:
        return f"{item_id}:{text}"

    def guess(self, prefix: str, data: Data, times: int) -> Data:
        return Data(prefix + data.name, data.count * times)


fast_api = FastAPI()

@module(imports=[ServiceModule])
class Module:
    def __init__(self):
        pass

    @create()
    def create_server(self,  service_manager: ServiceManager, component_registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(fast_api, service_manager, component_registry)


environment = FastAPIServer.boot(Module, host="127.0.0.1", port=0)
