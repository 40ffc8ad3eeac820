"""The benchmark service on aspyx-service, the rival: declarations, implementation, server and client.

Imported only where aspyx-service is installed (its pins differ from warpcall's; see README).
"""

from __future__ import annotations

import socket
import time
from abc import abstractmethod
from typing import Any

from aspyx.di import Environment, create, module
from aspyx_service import (
    Body,
    Component,
    ComponentRegistry,
    FastAPIServer,
    Server,
    Service,
    ServiceManager,
    ServiceModule,
    component,
    get,
    post,
    rest,
    service,
)
from aspyx_service.service import LocalComponentRegistry
from aspyx_service.session import SessionManager
from workload import Data, Pydantic

# aspyx asks the OS for a route to a public address to find its own IP; keep everything on loopback
Server.get_local_ip = classmethod(lambda cls: "127.0.0.1")  # type: ignore[method-assign]

CHANNELS = ("dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest")


# aspyx-service's server finds a POST body only when it is marked Body(...)
@service(name="bench-service")
@rest("/bench")
class AspyxBenchService(Service):
    @get("/hello")
    @abstractmethod
    def hello(self, message: str) -> str: ...

    @post("/data")
    @abstractmethod
    def data(self, data: Body(Data)) -> Data: ...

    @post("/pydantic")
    @abstractmethod
    def pydantic(self, data: Body(Pydantic)) -> Pydantic: ...

    @get("/hello-async")
    @abstractmethod
    async def hello_async(self, message: str) -> str: ...

    @post("/data-async")
    @abstractmethod
    async def data_async(self, data: Body(Data)) -> Data: ...

    @post("/pydantic-async")
    @abstractmethod
    async def pydantic_async(self, data: Body(Pydantic)) -> Pydantic: ...


@component(name="bench-component", services=[AspyxBenchService])
class AspyxBenchComponent(Component):
    pass


class FixedRegistry(LocalComponentRegistry):
    """Knows the one benchmark server's URL, for callers in another process."""

    url = ""

    def get_addresses(self, descriptor: Any) -> list[Any]:
        from aspyx_service import ChannelInstances

        return [ChannelInstances(descriptor.name, name, [self.url]) for name in CHANNELS] if self.url else []


@module(imports=[ServiceModule])
class AspyxClientModule:
    @create()
    def create_session_storage(self) -> SessionManager.Storage:
        # aspyx-service's ServiceModule needs one, even when no session is used
        return SessionManager.InMemoryStorage()

    @create()
    def create_registry(self) -> ComponentRegistry:
        return FixedRegistry()


def client(url: str) -> tuple[Environment, ServiceManager]:
    """An aspyx environment whose ServiceManager calls the server at ``url``."""
    FixedRegistry.url = url
    environment = Environment(AspyxClientModule)
    return environment, environment.get(ServiceManager)


def boot_server() -> tuple[Environment, str]:
    """Serve the aspyx implementation on a free 127.0.0.1 port (in this process, uvicorn in a thread)."""
    import aspyx_bench_impl

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = FastAPIServer.boot(aspyx_bench_impl.AspyxServerModule, host="127.0.0.1", port=port)
    server = environment.get(FastAPIServer)
    deadline = time.monotonic() + 15
    while not (server.server and server.server.started):
        if time.monotonic() > deadline:
            raise RuntimeError("aspyx server did not start")
        time.sleep(0.01)
    return environment, f"http://127.0.0.1:{port}"
