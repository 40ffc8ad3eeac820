"""The @health route: overall status and each check as JSON, 200 when healthy, 503 when not."""

from __future__ import annotations

import time
from abc import abstractmethod

import httpx
import pytest
from fastapi import FastAPI

from warpcall import (
    AbstractComponent,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    HealthCheckManager,
    HealthStatus,
    LocalComponentRegistry,
    Service,
    ServiceManager,
    ServiceModule,
    component,
    health,
    health_check,
    health_checks,
    implementation,
    service,
)
from warpcall.di import create, injectable, module

STATE = {"database": True}


@service(name="pinger")
class PingService(Service):
    @abstractmethod
    def ping(self) -> str: ...


@component(name="monitored", services=[PingService])
class MonitoredComponent(Component):
    pass


@implementation()
class PingServiceImpl(PingService):
    def ping(self) -> str:
        return "pong"


@implementation()
@health("/health")
class MonitoredComponentImpl(AbstractComponent, MonitoredComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://127.0.0.1:{port}")]


@health_checks()
@injectable()
class Checks:
    @health_check(name="database")
    def database(self, result: HealthCheckManager.Result) -> None:
        if not STATE["database"]:
            result.set_status(HealthStatus.ERROR, "connection refused")

    @health_check(name="slow", fail_if_slower_than=1)
    def slow(self, result: HealthCheckManager.Result) -> None:
        time.sleep(0.01)


@module(imports=[ServiceModule])
class MonitoredModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry)


@pytest.fixture(scope="module")
def server():
    environment = FastAPIServer.boot(MonitoredModule, host="127.0.0.1", port=0)
    yield environment.get(FastAPIServer)
    environment.destroy()


def test_healthy_component_answers_200_with_every_check(server):
    STATE["database"] = True
    response = httpx.get(f"{server.url}/health", timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "OK"
    checks = {check["name"]: check for check in body["checks"]}
    # the component's own checks, and the server's watch on its event loop (warpcall.health.LoopWatchdog)
    assert set(checks) == {"database", "slow", "event-loop"}
    assert checks["slow"]["status"] == "OK" and checks["slow"]["duration"] >= 0.01
    assert checks["event-loop"]["status"] == "OK"


def test_failing_check_answers_503_naming_it(server):
    STATE["database"] = False
    try:
        response = httpx.get(f"{server.url}/health", timeout=5)
        assert response.status_code == 503
        body = response.json()
        database = next(check for check in body["checks"] if check["name"] == "database")
        assert body["status"] == "ERROR" and database["status"] == "ERROR"
        assert database["details"] == "connection refused"
    finally:
        STATE["database"] = True
    assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200
