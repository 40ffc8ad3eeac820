"""Remote calls through warpcall's pytest plugin: each row's phase breakdown in ``extra_info["warpcall"]``,
and the cost of profiling and of tracing.

Run: ``pytest benchmarks/test_bench_profiled.py --benchmark-only --benchmark-group-by=group
--benchmark-json=profiled.json``. The server is ``bench_impl:BenchServerModule`` booted by the plugin's
``warpcall_service`` fixture in a child process on 127.0.0.1 (the same server ``test_bench_remote.py``
runs through ``serve.py``). Groups ``<payload>-modes``: each channel three times,

- ``plain``: profiling and tracing off (the figure to compare with ``test_bench_remote.py``); the
  plugin then profiles ``warpcall_profile_calls`` (200) more calls and stores their phase percentiles
  (client and server phases, nanoseconds) in ``extra_info["warpcall"]``;
- ``profiling-on``: every measured call profiled (``warpcall_profile``: phase timestamps on both ends,
  the server's ``Server-Timing`` header, one record per call): the cost of profiling;
- ``tracing-on``: every measured call inside a W3C trace context (``traceparent`` sent, the server sets
  it for the implementation): the cost of propagation without an OpenTelemetry SDK.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from bench_api import BenchService
from workload import DATA, PYDANTIC

from conftest import WARPCALL_CHANNELS
from warpcall.observe import tracing

pytestmark = pytest.mark.warpcall_server("bench_impl:BenchServerModule")

PAYLOADS = {"hello": "hello world", "data": DATA, "pydantic": PYDANTIC}


@pytest.fixture
def in_a_trace() -> Iterator[tracing.TraceContext]:
    context = tracing.TraceContext(tracing.new_trace_id(), tracing.new_span_id())
    token = tracing.current.set(context)
    yield context
    tracing.current.reset(token)


def method_of(warpcall_service: Any, channel: str, payload: str) -> Any:
    method = getattr(warpcall_service(BenchService, channel), payload)
    assert method(PAYLOADS[payload]) == PAYLOADS[payload]
    return method


@pytest.mark.parametrize("payload", list(PAYLOADS))
@pytest.mark.parametrize("channel", WARPCALL_CHANNELS)
def test_plain(benchmark, warpcall_service, channel, payload):
    benchmark.group = f"{payload}-modes"
    benchmark(method_of(warpcall_service, channel, payload), PAYLOADS[payload])


@pytest.mark.parametrize("payload", list(PAYLOADS))
@pytest.mark.parametrize("channel", WARPCALL_CHANNELS)
def test_profiling_on(benchmark, warpcall_service, warpcall_profile, channel, payload):
    benchmark.group = f"{payload}-modes"
    benchmark(method_of(warpcall_service, channel, payload), PAYLOADS[payload])
    assert warpcall_profile.records and all(not r.error for r in warpcall_profile.records)


@pytest.mark.parametrize("payload", list(PAYLOADS))
@pytest.mark.parametrize("channel", WARPCALL_CHANNELS)
def test_tracing_on(benchmark, warpcall_service, in_a_trace, channel, payload):
    benchmark.group = f"{payload}-modes"
    benchmark(method_of(warpcall_service, channel, payload), PAYLOADS[payload])
