"""A warpcall server process for the end-to-end failover tests.

``python registry_server.py <kind> <json config>`` boots a FastAPIServer on a free 127.0.0.1
port hosting ``FailoverComponent`` (health at /health), registered with the registry ``kind``
names (embedded, consul or etcd). It prints ``READY <url>`` and serves until stdin closes.
"""

from __future__ import annotations

import json
import os
import sys

from fastapi import FastAPI
from registry_e2e_api import FailoverComponent, WhoAmI
from registry_instance import make_registry

from warpcall import (
    AbstractComponent,
    ChannelAddress,
    ComponentRegistry,
    FastAPIServer,
    ServiceManager,
    ServiceModule,
    health,
    implementation,
)
from warpcall.di import create, module

KIND, CONFIG = sys.argv[1], json.loads(sys.argv[2])


@implementation()
class WhoAmIImpl(WhoAmI):
    def pid(self) -> int:
        return os.getpid()


@implementation()
@health("/health")
class FailoverComponentImpl(AbstractComponent, FailoverComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://127.0.0.1:{port}")]


@module(imports=[ServiceModule])
class ServerModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return make_registry(KIND, CONFIG)

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry)


def main() -> None:
    environment = FastAPIServer.boot(ServerModule, host="127.0.0.1", port=0)
    try:
        print(f"READY {environment.get(FastAPIServer).url}", flush=True)
        sys.stdin.read()
    finally:
        environment.destroy()


if __name__ == "__main__":
    main()
