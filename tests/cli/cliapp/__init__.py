"""The application ``warpcall call``, ``services`` and ``health`` are tested against (in-process and as a child).

Component ``shapes`` (services ``geometry`` on dispatch and ``greeter`` with REST routes) and component
``vault`` (methods needing a JWT role, one public). Settings come from environment variables read when the
server is made, so the same module serves every case: ``CLIAPP_EXPOSE`` (the expose allow-list),
``CLIAPP_JWT=1`` (the JWT factory guards every method), ``CLIAPP_HEALTH`` (what the ``store`` check reports:
``OK``, ``WARNING`` or ``ERROR``).
"""

from __future__ import annotations

import asyncio
import os
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from warpcall import (
    AbstractComponent,
    AuthorizationManager,
    ChannelAddress,
    Component,
    ComponentRegistry,
    EmbeddedComponentRegistry,
    FastAPIServer,
    Service,
    ServiceManager,
    ServiceModule,
    component,
    health,
    implementation,
    service,
)
from warpcall.auth import JWTAuthorizationFactory, public, roles
from warpcall.di import create, injectable, module
from warpcall.health import HealthCheckManager, HealthStatus, health_check, health_checks
from warpcall.routes import get, post, rest

SECRET = "a-secret-of-32-bytes-or-more-for-hs256!"
AUDIENCE = "cliapp"


@dataclass
class Point:
    x: int
    y: int


@service(name="geometry", description="plane geometry")
class GeometryService(Service):
    @abstractmethod
    def mirror(self, point: Point) -> Point:
        """Swap x and y."""

    @abstractmethod
    def add(self, a: int, b: int = 1) -> int: ...

    @abstractmethod
    def scale(self, points: list[Point], factor: float = 2.0, label: str = "scaled") -> dict[str, list[Point]]: ...

    @abstractmethod
    def fail(self, message: str) -> str: ...

    @abstractmethod
    async def slow(self, seconds: float) -> str: ...


@service(name="greeter")
@rest("/api")
class GreeterService(Service):
    @get("/hello/{name}")
    @abstractmethod
    def hello(self, name: str, polite: bool = False) -> str: ...

    @post("/shift")
    @abstractmethod
    def shift(self, point: Point, by: int = 1) -> Point: ...


@service(name="vault")
class VaultService(Service):
    @roles("admin")
    @abstractmethod
    def secret(self) -> str: ...

    @public()
    @abstractmethod
    def ping(self) -> str: ...


@component(name="shapes", services=[GeometryService, GreeterService])
class ShapesComponent(Component):
    pass


@component(name="vault", services=[VaultService])
class VaultComponent(Component):
    pass


@implementation()
class GeometryServiceImpl(GeometryService):
    def mirror(self, point: Point) -> Point:
        return Point(point.y, point.x)

    def add(self, a: int, b: int = 1) -> int:
        return a + b

    def scale(self, points: list[Point], factor: float = 2.0, label: str = "scaled") -> dict[str, list[Point]]:
        return {label: [Point(int(p.x * factor), int(p.y * factor)) for p in points]}

    def fail(self, message: str) -> str:
        raise ValueError(message)

    async def slow(self, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "done"


@implementation()
class GreeterServiceImpl(GreeterService):
    def hello(self, name: str, polite: bool = False) -> str:
        return f"{'Good day' if polite else 'hi'}, {name}"

    def shift(self, point: Point, by: int = 1) -> Point:
        return Point(point.x + by, point.y + by)


@implementation()
class VaultServiceImpl(VaultService):
    def secret(self) -> str:
        return "the gold is in the basement"

    def ping(self) -> str:
        return "pong"


CHANNELS = ("dispatch-json", "dispatch-msgpack", "rest")


@implementation()
@health("/health")
class ShapesComponentImpl(AbstractComponent, ShapesComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress(name, f"http://127.0.0.1:{port}") for name in CHANNELS]


@implementation()
@health("/vault-health")
class VaultComponentImpl(AbstractComponent, VaultComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://127.0.0.1:{port}")]


@health_checks()
@injectable()
class StoreChecks:
    @health_check(name="store")
    def store(self, result: HealthCheckManager.Result) -> None:
        wanted = os.environ.get("CLIAPP_HEALTH", "OK")
        result.set_status(HealthStatus[wanted], f"store says {wanted.lower()}")

    @health_check(name="disk")
    def disk(self, result: HealthCheckManager.Result) -> None:
        pass  # reports nothing: OK


@module(imports=[ServiceModule])
class Module:
    @create()
    def create_registry(self) -> ComponentRegistry:
        # CLIAPP_REGISTRY: consul://HOST:PORT or etcd://HOST:PORT (short timings, as the registry tests use)
        where = os.environ.get("CLIAPP_REGISTRY", "")
        if where.startswith("consul://"):
            import consul

            from warpcall.registry.consul import ConsulComponentRegistry

            host, _, port = where.removeprefix("consul://").rpartition(":")
            client = consul.Consul(host=host, port=int(port), connections_timeout=5)
            return ConsulComponentRegistry(
                0, client, check_interval="300ms", check_timeout="1s", deregister_critical_after="30s", wait="5s"
            )
        if where.startswith("etcd://"):
            from warpcall.registry.etcd import EtcdComponentRegistry

            return EtcdComponentRegistry("http://" + where.removeprefix("etcd://"), ttl=5)
        return EmbeddedComponentRegistry()

    @create()
    def create_server(
        self, manager: ServiceManager, registry: ComponentRegistry, authorization: AuthorizationManager
    ) -> FastAPIServer:
        if os.environ.get("CLIAPP_JWT"):
            authorization.register_factory(JWTAuthorizationFactory(SECRET, audience=AUDIENCE))
        app = FastAPI()
        if os.environ.get("CLIAPP_MIDDLEWARE"):  # a user middleware: every request goes through FastAPI

            @app.middleware("http")
            async def passthrough(request: Any, call_next: Any) -> Any:
                return await call_next(request)

        return FastAPIServer(
            app, manager, registry, expose=os.environ.get("CLIAPP_EXPOSE") or None,
            inline_protocol=not os.environ.get("CLIAPP_ASGI"),
        )
