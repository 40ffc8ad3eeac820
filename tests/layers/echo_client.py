"""A process that only calls: it declares a service (its messages dataclasses), builds an Environment
with ServiceModule and a LocalComponentRegistry, and calls the service over dispatch-json at the URL
it is given.

Run: ``python tests/layers/echo_client.py <server url>``. It prints one JSON object: the reply,
the heavy modules it found in ``sys.modules``, and how long its imports, its environment's
build (which imports what ServiceModule provides: the manager and the channels) and its first
call (which loads what calling needs: the proxy's plans, the HTTP client) took.
``echo_server.py`` serves the same declarations; ``tests/test_layers.py`` runs both.
"""

from __future__ import annotations

import time

started = time.perf_counter()

import json  # noqa: E402
import sys  # noqa: E402
from abc import abstractmethod  # noqa: E402
from dataclasses import dataclass  # noqa: E402

from warpcall import (  # noqa: E402
    ChannelAddress,
    Component,
    ComponentRegistry,
    LocalComponentRegistry,
    Service,
    ServiceManager,
    ServiceModule,
    component,
    service,
)
from warpcall.di import Environment, create, module  # noqa: E402

imported = time.perf_counter()

#: what this process should not load: the server, the Consul client, the embedded registry's database;
#: and, as it calls over dispatch-json with dataclasses and never awaits, pydantic (it marshals no model),
#: httpx (the channel sends with warpcall's own client) and asyncio
HEAVY = (
    "fastapi", "uvicorn", "starlette", "consul", "requests", "sqlite3", "pydantic", "pydantic_core", "httpx", "asyncio"
)


@dataclass
class Message:
    text: str


@service(name="echo")
class EchoService(Service):
    @abstractmethod
    def echo(self, message: Message) -> Message: ...


@component(name="echo-component", services=[EchoService])
class EchoComponent(Component):
    pass


@module(imports=[ServiceModule])
class EchoClientModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()


def main(url: str) -> None:
    building = time.perf_counter()
    environment = Environment(EchoClientModule)
    built = time.perf_counter()
    try:
        # the registry is in-process: tell it where the server is, as the server would tell a shared one
        registry = environment.get(ComponentRegistry)
        assert isinstance(registry, LocalComponentRegistry)
        registry.register_remote("echo-component", [ChannelAddress("dispatch-json", url)])
        echo = environment.get(ServiceManager).get_service(EchoService)
        reply = echo.echo(Message("hello")).text
        called = time.perf_counter()
    finally:
        environment.destroy()
    print(json.dumps({
        "reply": reply,
        "heavy": [name for name in HEAVY if name in sys.modules],
        "imports": imported - started,
        "build": built - building,
        "call": called - built,
    }))


if __name__ == "__main__":
    main(sys.argv[1])
