"""Serves ``echo_client.py``'s service with FastAPIServer on a free 127.0.0.1 port.

Run: ``python tests/layers/echo_server.py``. It prints ``READY <url>`` once serving, and stops
cleanly when its standard input closes.
"""

from __future__ import annotations

import sys

from echo_client import EchoComponent, EchoService, Message
from fastapi import FastAPI

from warpcall import (
    AbstractComponent,
    ChannelAddress,
    ComponentRegistry,
    FastAPIServer,
    LocalComponentRegistry,
    ServiceManager,
    ServiceModule,
    implementation,
)
from warpcall.di import create, module


@implementation()
class EchoServiceImpl(EchoService):
    def echo(self, message: Message) -> Message:
        return Message(f"echo: {message.text}")


@implementation()
class EchoComponentImpl(AbstractComponent, EchoComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://127.0.0.1:{port}")]


@module(imports=[ServiceModule])
class EchoServerModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_server(self, service_manager: ServiceManager, component_registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), service_manager, component_registry)


if __name__ == "__main__":
    environment = FastAPIServer.boot(EchoServerModule, host="127.0.0.1", port=0)
    try:
        print(f"READY {environment.get(FastAPIServer).url}", flush=True)
        sys.stdin.read()
    finally:
        environment.destroy()
