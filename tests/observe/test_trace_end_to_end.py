"""One trace across a caller, a service and the service it calls: OpenTelemetry's in-memory exporter holds
client span -> server span A -> client span A->B -> server span B, one trace id, each the parent of the next.

Two FastAPIServers on 127.0.0.1 (separate environments sharing one in-process registry directory); service
A's implementation calls service B through a warpcall proxy. Without OpenTelemetry, the W3C trace context
alone reaches B's implementation through A.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from collections.abc import Iterator
from typing import Any

import pytest
import trace_leaf
from fastapi import FastAPI
from trace_leaf import LeafService

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
    implementation,
    service,
)
from warpcall.di import create, inject, module
from warpcall.observe import server as observe_server
from warpcall.observe import tracing
from warpcall.observe.client import refresh
from warpcall.registry.local import LocalDirectory

DIRECTORY = LocalDirectory()
CHANNELS = ["dispatch-json", "dispatch-msgpack"]


@service(name="relay")
class RelayService(Service):
    @abstractmethod
    def relay(self, channel: str) -> str: ...

    @abstractmethod
    async def relay_async(self, channel: str) -> str: ...

    @abstractmethod
    def relay_pooled(self, channel: str) -> str: ...


@component(name="relays", services=[RelayService])
class RelayComponent(Component):
    pass


@implementation()
class RelayServiceImpl(RelayService):
    manager: ServiceManager

    @inject()
    def set_manager(self, manager: ServiceManager) -> None:
        self.manager = manager

    def relay(self, channel: str) -> str:
        return self.manager.get_service(LeafService, channel).leaf()

    async def relay_async(self, channel: str) -> str:
        return await self.manager.get_service(LeafService, channel).leaf_async()

    @blocking
    def relay_pooled(self, channel: str) -> str:
        return self.manager.get_service(LeafService, channel).leaf()


@implementation()
class RelayComponentImpl(AbstractComponent, RelayComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress(channel, f"http://127.0.0.1:{port}") for channel in CHANNELS]


@module(imports=[ServiceModule], packages=[__name__])
class RelayModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry(DIRECTORY)

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry)


def boot_both() -> list[Any]:
    trace_leaf.DIRECTORY = DIRECTORY
    leaf = FastAPIServer.boot(trace_leaf.LeafModule, host="127.0.0.1", port=0)
    try:
        relay = FastAPIServer.boot(RelayModule, host="127.0.0.1", port=0)
    except BaseException:
        leaf.destroy()
        raise
    return [leaf, relay]


def test_trace_context_alone_crosses_both_services() -> None:
    """No OpenTelemetry provider: the caller's W3C context reaches B through A (same trace id)."""
    from opentelemetry import trace as otel_trace
    from opentelemetry.sdk.trace import TracerProvider

    if isinstance(otel_trace.get_tracer_provider(), TracerProvider):
        pytest.skip("an OpenTelemetry provider is configured in this process: the span test covers it")
    observe_server.reset()
    environments = boot_both()
    try:
        relay = environments[1].get(ServiceManager).get_service(RelayService, "dispatch-json")
        caller = tracing.TraceContext(tracing.new_trace_id(), tracing.new_span_id())
        token = tracing.current.set(caller)
        try:
            seen = relay.relay("dispatch-msgpack")
        finally:
            tracing.current.reset(token)
        trace_id, parent = seen.split("/")
        assert trace_id == caller.trace_id
        assert parent != caller.span_id  # each hop sends a span of its own
    finally:
        for environment in reversed(environments):
            environment.destroy()


@pytest.fixture(scope="module")
def spans() -> Iterator[Any]:
    from opentelemetry import trace as otel_trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    ours = not isinstance(otel_trace.get_tracer_provider(), TracerProvider)
    if ours:
        otel_trace.set_tracer_provider(TracerProvider())
    provider = otel_trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    refresh()  # client channels set up before the provider existed
    yield exporter
    exporter.shutdown()
    if ours:
        # OpenTelemetry's global provider is set once per process: back to its unset state (as its own test
        # utilities do), so later tests see a process without one
        from opentelemetry.util._once import Once

        otel_trace._TRACER_PROVIDER = None
        otel_trace._TRACER_PROVIDER_SET_ONCE = Once()
        refresh()


@pytest.fixture(scope="module")
def environments(spans: Any) -> Iterator[list[Any]]:
    observe_server.reset()
    booted = boot_both()  # the servers start with the provider configured: they make SERVER spans
    yield booted
    for environment in reversed(booted):
        environment.destroy()
    observe_server.reset()


def call(environments: list[Any], method: str, channel: str) -> str:
    relay = environments[1].get(ServiceManager).get_service(RelayService, "dispatch-json")
    if method == "relay_async":
        return asyncio.run(relay.relay_async(channel))
    return str(getattr(relay, method)(channel))


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("method", ["relay", "relay_async", "relay_pooled"])
def test_one_trace_spans_caller_service_and_the_service_it_calls(
    spans: Any, environments: list[Any], method: str, channel: str
) -> None:
    from opentelemetry.trace import SpanKind

    spans.clear()
    seen = call(environments, method, channel)
    finished = spans.get_finished_spans()
    by_kind = {(span.kind, span.attributes.get("rpc.service")): span for span in finished}
    assert len(finished) == 4, [(s.name, s.kind) for s in finished]
    client = by_kind[(SpanKind.CLIENT, "relays:relay")]
    server_a = by_kind[(SpanKind.SERVER, "relays:relay")]
    client_ab = by_kind[(SpanKind.CLIENT, "leaves:leaf")]
    server_b = by_kind[(SpanKind.SERVER, "leaves:leaf")]
    trace_id = client.context.trace_id
    assert {span.context.trace_id for span in finished} == {trace_id}
    assert client.parent is None
    assert server_a.parent.span_id == client.context.span_id
    assert client_ab.parent.span_id == server_a.context.span_id
    assert server_b.parent.span_id == client_ab.context.span_id
    for span in (server_a, server_b):
        assert span.attributes["rpc.system"] == "warpcall"
        assert span.attributes["http.response.status_code"] == 200
    assert server_a.attributes["rpc.method"] == method
    assert server_a.attributes["warpcall.component"] == "relays"
    assert server_b.attributes["rpc.method"] == ("leaf_async" if method == "relay_async" else "leaf")
    # B's implementation saw its own server span as the current trace context
    assert seen == f"{trace_id:032x}/{server_b.context.span_id:016x}"
