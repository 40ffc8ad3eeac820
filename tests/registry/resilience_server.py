"""A warpcall server process for the self-healing and liveness tests.

``python resilience_server.py <kind> <json config>`` boots a FastAPIServer on a free 127.0.0.1
port hosting ``Resilience`` (health at /health), registered with the registry ``kind`` names
(embedded or etcd, see registry_instance.make_registry). It prints ``READY <url>`` and serves
until stdin closes. The liveness bound comes from the environment (``health.loop.max_lag``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

from fastapi import FastAPI
from registry_instance import make_registry
from resilience_api import Resilience, Staller, Who

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
from warpcall.di.configuration import EnvConfigurationSource

KIND, CONFIG = sys.argv[1], json.loads(sys.argv[2])


@implementation()
class WhoImpl(Who):
    def pid(self) -> int:
        return os.getpid()


@implementation()
class StallerImpl(Staller):
    async def block(self, seconds: float) -> float:
        time.sleep(seconds)  # on purpose: the event loop does nothing else meanwhile
        return seconds


@implementation()
@health("/health")
class ResilienceImpl(AbstractComponent, Resilience):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://127.0.0.1:{port}")]


@module(imports=[ServiceModule])
class ServerModule:
    @create()
    def create_configuration(self) -> EnvConfigurationSource:
        # health.loop.max_lag and health.loop.probe_interval come from the test, through the environment
        return EnvConfigurationSource()

    @create()
    def create_registry(self) -> ComponentRegistry:
        return make_registry(KIND, CONFIG)

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry)


def main() -> None:
    # what the registry and the watchdog report lands in the test's log of this process
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(name)s %(message)s")
    environment = FastAPIServer.boot(ServerModule, host="127.0.0.1", port=0)
    try:
        print(f"READY {environment.get(FastAPIServer).url}", flush=True)
        sys.stdin.read()
    finally:
        environment.destroy()


if __name__ == "__main__":
    main()
