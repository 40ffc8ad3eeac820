"""One instance of ``failover-shop`` for the failover tests: ``python failover_server.py``.

Boots a FastAPIServer on a free 127.0.0.1 port serving every channel of ``failover_api.CHANNELS``,
prints ``READY <url>`` and serves until stdin closes (or a SIGKILL, or a call to ``crash``).
"""

from __future__ import annotations

import os
import sys

from failover_api import CHANNELS, FailoverShop, PidService
from fastapi import FastAPI

from warpcall import (
    AbstractComponent,
    ChannelAddress,
    ComponentRegistry,
    FastAPIServer,
    LocalComponentRegistry,
    ServiceManager,
    ServiceModule,
)
from warpcall.di import create, module


class PidServiceImpl(PidService):
    def pid(self) -> int:
        return os.getpid()

    async def pid_async(self) -> int:
        return os.getpid()

    def crash(self) -> int:
        os._exit(3)  # no reply, no cleanup: the request was read, and the process is gone

    async def crash_async(self) -> int:
        os._exit(3)


class FailoverShopImpl(AbstractComponent, FailoverShop):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress(name, f"http://127.0.0.1:{port}") for name in CHANNELS]


@module(imports=[ServiceModule])
class InstanceModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_component(self) -> FailoverShopImpl:
        return FailoverShopImpl()

    @create()
    def create_service(self) -> PidServiceImpl:
        return PidServiceImpl()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry)


def main() -> None:
    environment = FastAPIServer.boot(InstanceModule, host="127.0.0.1", port=0)
    try:
        print(f"READY {environment.get(FastAPIServer).url}", flush=True)
        sys.stdin.read()
    finally:
        environment.destroy()


if __name__ == "__main__":
    main()
