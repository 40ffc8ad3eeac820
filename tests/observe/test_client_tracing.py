"""W3C trace context from the client, on every channel sync and async, and OpenTelemetry client spans."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from client_app import CHANNELS, Greeter, seen_since, serving

from warpcall import RemoteServiceException, ServiceManager
from warpcall.observe import tracing
from warpcall.observe.client import refresh
from warpcall.observe.tracing import TraceContext, new_span_id, new_trace_id, parse_traceparent

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def environment() -> Iterator[Any]:
    with serving() as environment:
        yield environment


@pytest.fixture(scope="module")
def manager(environment: Any) -> ServiceManager:
    manager: ServiceManager = environment.get(ServiceManager)
    return manager


def call(proxy: Greeter, asynchronous: bool, name: str) -> str:
    if asynchronous:
        return asyncio.run(proxy.hello_async(name))
    return proxy.hello(name)


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("channel", CHANNELS)
def test_the_callers_trace_context_arrives_as_a_child(manager: ServiceManager, channel: str, asynchronous: bool) -> None:
    greeter = manager.get_service(Greeter, channel)
    parent = TraceContext(new_trace_id(), new_span_id(), 1, "vendor=abc")
    before = len(seen_since(0))
    token = tracing.current.set(parent)
    try:
        assert call(greeter, asynchronous, "t1") == "hello t1"
        assert call(greeter, asynchronous, "t2") == "hello t2"
    finally:
        tracing.current.reset(token)
    seen = seen_since(before)
    assert len(seen) == 2
    children = [parse_traceparent(headers.get("traceparent"), headers.get("tracestate")) for _path, headers in seen]
    for child in children:
        assert child is not None, seen
        assert child.trace_id == parent.trace_id  # the same trace
        assert child.span_id != parent.span_id  # a span of its own for the call
        assert child.flags & 1 == 1
        assert "vendor=abc" in child.tracestate
    assert children[0].span_id != children[1].span_id  # one span per call


def test_tracing_disabled_sends_no_trace_context(environment: Any, tmp_path: Any) -> None:
    from client_app import client

    from warpcall import FastAPIServer

    port = environment.get(FastAPIServer).port
    with client(port, tmp_path / "c.yaml", "tracing:\n  enabled: false\n") as caller:
        token = tracing.current.set(TraceContext(new_trace_id(), new_span_id()))
        try:
            before = len(seen_since(0))
            for channel in CHANNELS:
                assert caller.get_service(Greeter, channel).hello("d") == "hello d"
        finally:
            tracing.current.reset(token)
        seen = seen_since(before)
    assert len(seen) == len(CHANNELS)
    assert all("traceparent" not in headers for _path, headers in seen), seen


def test_without_a_trace_context_or_opentelemetry_nothing_is_added() -> None:
    """In a fresh interpreter (no tracer provider configured anywhere): no traceparent, no timing header, and the
    channels never left their plain path."""
    script = f"""
import asyncio, json, sys
sys.path[:0] = [{str(HERE)!r}, {str(HERE.parent)!r}]
from client_app import CHANNELS, Greeter, seen_since, serving
from warpcall import ServiceManager
with serving() as environment:
    manager = environment.get(ServiceManager)
    for channel in CHANNELS:
        greeter = manager.get_service(Greeter, channel)
        assert greeter.hello("a") == "hello a"
        assert asyncio.run(greeter.hello_async("a")) == "hello a"
    observed = [c._observed for c in manager._channels.values()]
    print(json.dumps({{"seen": [h for _p, h in seen_since(0)], "observed": observed}}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(result["seen"]) == 2 * len(CHANNELS)
    for headers in result["seen"]:
        assert "traceparent" not in headers and "tracestate" not in headers and "x-rpc-timing" not in headers
    assert result["observed"] == [False] * len(CHANNELS)


# --- OpenTelemetry -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spans() -> Iterator[Any]:
    """An SDK tracer provider (the process's, set here if none is) exporting to memory; channels re-detect it."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    mine = not isinstance(trace.get_tracer_provider(), TracerProvider)
    if mine:
        trace.set_tracer_provider(TracerProvider())
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    refresh()  # channels set up before the provider existed
    yield exporter
    exporter.shutdown()
    if mine:
        # OpenTelemetry's global provider is set once per process: put back its unset state (as its own test
        # utilities do), so that the tests after these see a process without a provider again
        from opentelemetry.util._once import Once

        from warpcall.observe import server as observe_server

        trace._TRACER_PROVIDER = None
        trace._TRACER_PROVIDER_SET_ONCE = Once()
        refresh()
        observe_server.reset()


def client_spans(exporter: Any, name: str) -> list[Any]:
    from opentelemetry.trace import SpanKind

    return [s for s in exporter.get_finished_spans() if s.kind == SpanKind.CLIENT and s.name == name]


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("channel", CHANNELS)
def test_opentelemetry_client_spans(manager: ServiceManager, environment: Any, spans: Any, channel: str,
                                    asynchronous: bool) -> None:
    from opentelemetry import trace
    from opentelemetry.trace import StatusCode

    from warpcall import FastAPIServer

    greeter = manager.get_service(Greeter, channel)
    spans.clear()
    before = len(seen_since(0))
    with trace.get_tracer("test").start_as_current_span("caller") as caller:
        assert call(greeter, asynchronous, "o") == "hello o"
        with pytest.raises(RemoteServiceException):
            if asynchronous:
                asyncio.run(greeter.pay_async(500.0))
            else:
                greeter.pay(500.0)
    method = "hello_async" if asynchronous else "hello"
    [ok] = client_spans(spans, f"obs:greeter:{method}")
    [failed] = client_spans(spans, f"obs:greeter:pay{'_async' if asynchronous else ''}")
    caller_context = caller.get_span_context()
    port = environment.get(FastAPIServer).port
    for span in (ok, failed):
        assert span.context.trace_id == caller_context.trace_id
        assert span.parent is not None and span.parent.span_id == caller_context.span_id
        assert span.attributes["rpc.system"] == "warpcall"
        assert span.attributes["rpc.service"] == "obs:greeter"
        assert span.attributes["warpcall.channel"] == channel
        assert span.attributes["server.address"] == "127.0.0.1"
        assert span.attributes["url.full"] == f"http://127.0.0.1:{port}"
    assert ok.attributes["rpc.method"] == method
    assert ok.attributes["http.response.status_code"] == 200
    assert ok.status.status_code == StatusCode.UNSET
    assert failed.status.status_code == StatusCode.ERROR
    assert failed.attributes["error.type"] == "RemoteServiceException"
    # what reached the server is the client span's own position in the trace
    seen = [parse_traceparent(h.get("traceparent")) for _p, h in seen_since(before)]
    assert [(c.trace_id, c.span_id) for c in seen if c is not None] == [
        (f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}") for s in (ok, failed)
    ]


def test_opentelemetry_continues_a_warpcall_trace_context(manager: ServiceManager, spans: Any) -> None:
    """No OpenTelemetry span is current, but warpcall's trace context is (a served call, or set by the caller)."""
    greeter = manager.get_service(Greeter, "dispatch-msgpack")
    spans.clear()
    parent = TraceContext(new_trace_id(), new_span_id())
    token = tracing.current.set(parent)
    try:
        assert greeter.hello("w") == "hello w"
    finally:
        tracing.current.reset(token)
    [span] = client_spans(spans, "obs:greeter:hello")
    assert f"{span.context.trace_id:032x}" == parent.trace_id
    assert span.parent is not None and f"{span.parent.span_id:016x}" == parent.span_id


def test_client_log_records_carry_the_trace_id(manager: ServiceManager, caplog: Any) -> None:
    import logging

    from warpcall.channels import _http_common

    assert _http_common.logger.name == "warpcall.client"  # the channels' messages: the documented client logger
    parent = TraceContext(new_trace_id(), new_span_id())
    with caplog.at_level(logging.INFO, logger="warpcall.client"):
        logging.getLogger("warpcall.client").info("outside a trace")
        token = tracing.current.set(parent)
        try:
            logging.getLogger("warpcall.client").info("inside a trace")
        finally:
            tracing.current.reset(token)
    ids = {record.getMessage(): getattr(record, "trace_id", None) for record in caplog.records}
    assert ids == {"outside a trace": "", "inside a trace": parent.trace_id}
