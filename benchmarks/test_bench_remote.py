"""Remote calls, warpcall beside aspyx-service, server in a separate process on 127.0.0.1.

Run: ``pytest benchmarks/test_bench_remote.py --benchmark-only --benchmark-group-by=group``.
Groups: ``<payload>-<sync|async>`` holds every channel of both frameworks for that payload;
``throughput-8-threads`` holds the time for 8 client threads x 50 ``data()`` calls.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from bench_api import BenchService
from workload import DATA, PYDANTIC

from conftest import WARPCALL_CHANNELS

ASPYX_CHANNELS = ["dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest"]
PAYLOADS = {"hello": "hello world", "data": DATA, "pydantic": PYDANTIC}
THREADS, CALLS_PER_THREAD = 8, 50


def proxy_for(request: pytest.FixtureRequest, framework: str, channel: str) -> Any:
    if framework == "warpcall":
        return request.getfixturevalue("warpcall_manager").get_service(BenchService, channel)
    manager = request.getfixturevalue("aspyx_manager")  # skips where aspyx-service is not installed
    import aspyx_bench

    return manager.get_service(aspyx_bench.AspyxBenchService, preferred_channel=channel)


CASES = [("warpcall", c) for c in WARPCALL_CHANNELS] + [("aspyx", c) for c in ASPYX_CHANNELS]


@pytest.mark.parametrize("payload", list(PAYLOADS))
@pytest.mark.parametrize(("framework", "channel"), CASES, ids=[f"{f}-{c}" for f, c in CASES])
def test_sync_call(benchmark, request, framework, channel, payload):
    benchmark.group = f"{payload}-sync"
    proxy = proxy_for(request, framework, channel)
    method: Callable[[Any], Any] = getattr(proxy, payload)
    argument = PAYLOADS[payload]
    assert method(argument) == argument
    benchmark(method, argument)


@pytest.mark.parametrize("payload", list(PAYLOADS))
@pytest.mark.parametrize(("framework", "channel"), CASES, ids=[f"{f}-{c}" for f, c in CASES])
def test_async_call(benchmark, request, calls_loop, framework, channel, payload):
    loop = calls_loop
    benchmark.group = f"{payload}-async"
    proxy = proxy_for(request, framework, channel)
    method = getattr(proxy, f"{payload}_async")
    argument = PAYLOADS[payload]
    assert loop.run_until_complete(method(argument)) == argument
    benchmark(lambda: loop.run_until_complete(method(argument)))


@pytest.mark.parametrize(("framework", "channel"), CASES, ids=[f"{f}-{c}" for f, c in CASES])
def test_throughput_8_threads(benchmark, request, framework, channel):
    benchmark.group = "throughput-8-threads"
    proxy = proxy_for(request, framework, channel)

    def burst() -> None:
        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(CALLS_PER_THREAD):
                    proxy.data(DATA)
            except BaseException as exc:  # surfaced below; a thread must not swallow it
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors[0]

    benchmark.extra_info["calls"] = THREADS * CALLS_PER_THREAD
    benchmark.pedantic(burst, rounds=5, warmup_rounds=1)
