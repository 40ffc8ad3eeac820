"""An aspyx-service server hosting the component of ``names_contract.py`` (declared without names):
``python names_server.py PORT``. Serves on 127.0.0.1:PORT over dispatch-json, prints ``READY`` once
uvicorn accepts connections and shuts down when its stdin closes.

With ``NAMES_CONSUL_PORT`` set, it registers in the Consul (emulator) on 127.0.0.1 at that port with
aspyx-service's own ConsulComponentRegistry, under the name aspyx derives for the component.
"""

import os
import sys

from _harness import ServerModuleBase, loopback_addresses, serve
from aspyx.di import create, module
from aspyx_service import (
    AbstractComponent,
    ChannelAddress,
    ComponentRegistry,
    ServiceManager,
    ServiceModule,
    health,
    implementation,
)
from aspyx_service.registries import ConsulComponentRegistry
from aspyx_service.service import Server
from consul import Consul
from names_contract import CHANNELS, DefaultNamesComponent, HTTPGreetingService, OrderLookupService

CONSUL_PORT = int(os.environ.get("NAMES_CONSUL_PORT", "0"))


class QuickConsulRegistry(ConsulComponentRegistry):
    """aspyx's Consul registry, its health check run every 200 ms (aspyx's 10 s would make the emulator's
    first check, run within one interval, keep the test waiting)."""

    def register_service(self, name, service_id, health, tags=None, meta=None) -> None:
        self.healthcheck_interval = "200ms"
        super().register_service(name, service_id, health, tags=tags, meta=meta)


@implementation()
class HTTPGreetingServiceImpl(HTTPGreetingService):
    def greet(self, name: str) -> str:
        return f"hello {name} from aspyx"

    def fail(self, reason: str) -> str:
        raise ValueError(f"refused by aspyx: {reason}")


@implementation()
class OrderLookupServiceImpl(OrderLookupService):
    def total(self, quantities: list[int]) -> int:
        return sum(quantities) + 1000  # + 1000: says which side answered


@implementation()
@health("/health")
class DefaultNamesComponentImpl(AbstractComponent, DefaultNamesComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return loopback_addresses(port, CHANNELS)


@module(imports=[ServiceModule])
class NamesServerModule(ServerModuleBase):
    @create()
    def create_registry(self) -> ComponentRegistry:
        if CONSUL_PORT:
            # aspyx asks a UDP socket "towards" 8.8.8.8 for its address; the server binds 127.0.0.1 only
            Server.get_local_ip = classmethod(lambda cls: "127.0.0.1")
            return QuickConsulRegistry(int(sys.argv[1]), Consul(host="127.0.0.1", port=CONSUL_PORT))
        return super().create_registry()


def announce_names() -> None:
    names = [ServiceManager.get_descriptor(t).name
             for t in (DefaultNamesComponent, HTTPGreetingService, OrderLookupService)]
    print("NAMES " + " ".join(names), flush=True)


if __name__ == "__main__":
    sys.exit(serve(NamesServerModule, announce_names))
