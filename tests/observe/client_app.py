"""A service served over every channel by a real FastAPIServer on 127.0.0.1, for the client's observability tests.

The user app has a middleware that keeps the observability headers of every request it sees (traceparent,
tracestate, x-rpc-timing), so a test reads what really arrived at the server.
"""

from __future__ import annotations

import threading
import time
from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI, Request

from warpcall import (
    AbstractComponent,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    LocalComponentRegistry,
    Service,
    ServiceManager,
    ServiceModule,
    component,
    get,
    implementation,
    rest,
    service,
)
from warpcall.di import Environment, create, module
from warpcall.di.configuration import YamlConfigurationSource
from warpcall.service import component_descriptor

CHANNELS = ["dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest"]


#: what ``hold`` waits for
RELEASE = threading.Event()


class Declined(RuntimeError):
    pass


@service(name="greeter")
@rest("/api/greeter")
class Greeter(Service):
    @get("/hello")
    @abstractmethod
    def hello(self, name: str) -> str: ...

    @get("/pay")
    @abstractmethod
    def pay(self, amount: float) -> bool: ...

    @get("/hold")
    @abstractmethod
    def hold(self, seconds: float) -> bool: ...

    @get("/hello_async")
    @abstractmethod
    async def hello_async(self, name: str) -> str: ...

    @get("/pay_async")
    @abstractmethod
    async def pay_async(self, amount: float) -> bool: ...


@component(name="obs", services=[Greeter])
class ObsComponent(Component):
    pass


@implementation()
class GreeterImpl(Greeter):
    def hello(self, name: str) -> str:
        return f"hello {name}"

    def pay(self, amount: float) -> bool:
        if amount > 100:
            raise Declined(f"{amount} is over the limit")
        return True

    def hold(self, seconds: float) -> bool:
        """Wait (at most ``seconds``) until a test sets RELEASE: a call that stays in flight."""
        return RELEASE.wait(seconds)

    async def hello_async(self, name: str) -> str:
        return f"hello {name}"

    async def pay_async(self, amount: float) -> bool:
        return self.pay(amount)


@implementation()
class ObsComponentImpl(AbstractComponent, ObsComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress(name, f"http://127.0.0.1:{port}") for name in CHANNELS]


#: (path, headers) of every request the app saw, headers lower-cased
SEEN: list[tuple[str, dict[str, str]]] = []
_seen_lock = threading.Lock()


def make_app() -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def keep_headers(request: Request, call_next: Any) -> Any:
        with _seen_lock:
            SEEN.append((request.url.path, {k.lower(): v for k, v in request.headers.items()}))
        return await call_next(request)

    return app


def seen_since(count: int) -> list[tuple[str, dict[str, str]]]:
    with _seen_lock:
        return list(SEEN[count:])


@module(imports=[ServiceModule])
class ObsModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(make_app(), manager, registry)


@contextmanager
def serving() -> Iterator[Any]:
    """The environment of a FastAPIServer serving ObsComponent on a free 127.0.0.1 port."""
    environment = FastAPIServer.boot(ObsModule, host="127.0.0.1", port=0)
    try:
        yield environment
    finally:
        environment.destroy()


def wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition never held")
        time.sleep(0.002)


#: what the next caller environment reads: the server's port and the YAML configuration's path
_CALLER: dict[str, Any] = {}


@module(imports=[ServiceModule])
class CallerModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        registry = LocalComponentRegistry()
        registry.register(
            component_descriptor(ObsComponent),
            [ChannelAddress(name, f"http://127.0.0.1:{_CALLER['port']}") for name in CHANNELS],
        )
        return registry

    @create()
    def create_configuration(self) -> YamlConfigurationSource:
        return YamlConfigurationSource(str(_CALLER["config"]))


@contextmanager
def client(port: int, config: Any, yaml: str = "") -> Iterator[ServiceManager]:
    """A separate caller's environment: its own registry pointing at ``port``, configured by ``yaml`` (written to
    the path ``config``), so channel settings read at setup apply to it alone."""
    config.write_text(yaml or "http:\n  timeout: 5\n")
    _CALLER.update(port=port, config=config)
    environment = Environment(CallerModule)
    try:
        yield environment.get(ServiceManager)
    finally:
        environment.destroy()
