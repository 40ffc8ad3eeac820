"""Server metrics: a real ``GET /metrics`` on a FastAPIServer with metrics on, parsed with prometheus-client's
parser; counts, latency histogram, errors by type, in-flight gauge, health and registry gauges match the calls."""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from rawhttp import wait_until
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
    blocking,
    component,
    get,
    health,
    health_check,
    health_checks,
    implementation,
    rest,
    service,
)
from warpcall.di import create, module
from warpcall.health import HealthCheckManager, HealthStatus
from warpcall.observe import server as observe_server

TIMEOUT = 5.0
RELEASE = threading.Event()


@service(name="meter")
@rest("/meter")
class MeterService(Service):
    @get("/hello")
    @abstractmethod
    def hello(self, name: str) -> str: ...

    @abstractmethod
    def fail(self) -> str: ...

    @abstractmethod
    def held(self) -> str: ...


@component(name="meters", services=[MeterService])
class MeterComponent(Component):
    pass


@implementation()
class MeterServiceImpl(MeterService):
    def hello(self, name: str) -> str:
        return f"hello {name}"

    def fail(self) -> str:
        raise KeyError("missing")

    @blocking
    def held(self) -> str:
        RELEASE.wait(TIMEOUT)
        return "released"


@implementation()
@health("/health")
class MeterComponentImpl(AbstractComponent, MeterComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://127.0.0.1:{port}")]


@health_checks()
class Checks:
    @health_check(name="disk")
    def disk(self, result: HealthCheckManager.Result) -> None:
        result.set_status(HealthStatus.WARNING, "nearly full")


@module(imports=[ServiceModule], packages=[__name__])
class MeterModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry, metrics=True, metrics_path="/prom")

    @create()
    def create_checks(self) -> Checks:
        return Checks()


@pytest.fixture(scope="module")
def server() -> Iterator[FastAPIServer]:
    environment = FastAPIServer.boot(MeterModule, host="127.0.0.1", port=0)
    try:
        yield environment.get(FastAPIServer)
    finally:
        RELEASE.set()
        environment.destroy()
        observe_server.reset()  # later tests' servers observe nothing unless they ask


def scrape(server: FastAPIServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    reply = httpx.get(f"{server.url}/prom", timeout=TIMEOUT)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def invoke(server: FastAPIServer, method: str, args: list[Any]) -> httpx.Response:
    return httpx.post(
        f"{server.url}/invoke", json={"method": f"meters:meter:{method}", "args": args}, timeout=TIMEOUT
    )


HELLO = "meters:meter:hello"
FAIL = "meters:meter:fail"


def test_calls_latency_and_errors_match_the_calls_made(server: FastAPIServer) -> None:
    before = scrape(server)
    for i in range(5):
        assert invoke(server, "hello", [str(i)]).json()["result"] == f"hello {i}"
    for _ in range(3):
        assert invoke(server, "fail", []).json()["exception"]["type"] == "KeyError"
    for _ in range(2):
        assert httpx.get(f"{server.url}/meter/hello", params={"name": "x"}, timeout=TIMEOUT).json() == "hello x"
    assert invoke(server, "absent", []).status_code == 404
    after = scrape(server)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("warpcall_server_calls_total", method=HELLO, kind="invoke", status="200") == 5
    assert delta("warpcall_server_calls_total", method=FAIL, kind="invoke", status="200") == 3
    assert delta("warpcall_server_calls_total", method=HELLO, kind="rest", status="200") == 2
    assert delta("warpcall_server_calls_total", method="(unknown)", kind="invoke", status="404") == 1
    assert delta("warpcall_server_call_duration_seconds_count", method=HELLO, kind="invoke") == 5
    assert delta("warpcall_server_call_duration_seconds_bucket", method=HELLO, kind="invoke", le="+Inf") == 5
    assert delta("warpcall_server_call_duration_seconds_sum", method=HELLO, kind="invoke") > 0
    assert delta("warpcall_server_errors_total", method=FAIL, kind="invoke", type="KeyError") == 3
    assert delta("warpcall_server_errors_total", method="(unknown)", kind="invoke", type="UnknownMethodException") == 1
    assert delta("warpcall_server_errors_total", method=HELLO, kind="invoke", type="KeyError") == 0
    assert value(after, "warpcall_server_in_flight") == 0


def test_in_flight_gauge_counts_a_call_under_way(server: FastAPIServer) -> None:
    RELEASE.clear()
    result: list[httpx.Response] = []
    caller = threading.Thread(target=lambda: result.append(invoke(server, "held", [])))
    caller.start()
    try:
        wait_until(lambda: value(scrape(server), "warpcall_server_in_flight") == 1, what="one call in flight")
    finally:
        RELEASE.set()
        caller.join(TIMEOUT)
    assert result and result[0].json()["result"] == "released"
    wait_until(lambda: value(scrape(server), "warpcall_server_in_flight") == 0, what="no call in flight")


def test_health_and_registry_gauges(server: FastAPIServer) -> None:
    reply = httpx.get(f"{server.url}/health", timeout=TIMEOUT)
    assert reply.json()["status"] == "WARNING"
    samples = scrape(server)
    assert value(samples, "warpcall_health_status", component="meters", check="disk") == HealthStatus.WARNING.value
    assert value(samples, "warpcall_health_status", component="meters", check="(overall)") == HealthStatus.WARNING.value
    assert value(samples, "warpcall_registry_instances", component="meters", channel="dispatch-json") == 1
    assert value(samples, "warpcall_registry_reachable", registry="LocalComponentRegistry") == 1


def test_metrics_off_by_default_serves_no_route() -> None:
    @module(imports=[ServiceModule], packages=[__name__])
    class PlainModule:
        @create()
        def create_registry(self) -> ComponentRegistry:
            return LocalComponentRegistry()

        @create()
        def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
            return FastAPIServer(FastAPI(), manager, registry)

        @create()
        def create_checks(self) -> Checks:
            return Checks()

    environment = FastAPIServer.boot(PlainModule, host="127.0.0.1", port=0)
    try:
        plain = environment.get(FastAPIServer)
        assert plain.metrics is False and plain.metrics_path == "/metrics"
        assert httpx.get(f"{plain.url}/metrics", timeout=TIMEOUT).status_code == 404
    finally:
        environment.destroy()
