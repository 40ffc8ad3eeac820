"""Remote calls paired call by call with a reference, so machine load hits both alike.

Dispatch channels are paired with the raw-HTTP floor: one floor call (the same JSON envelope
bytes POSTed over a kept-alive socket to a bare uvicorn ASGI echo in its own process) and one
proxy call, alternating which goes first. Sync calls are paired with a blocking socket, async
calls with an asyncio stream on the same event loop (``floors.raw_http_async``). The rest channel is paired the same way with
aspyx-service's rest channel on the same workload, and dispatch-protobuf with aspyx-service's
dispatch-protobuf. Async calls are awaited inside the event
loop, 20 pairs per loop run. ``extra_info`` holds both medians and ``ratio`` = proxy / reference
(``speedup`` = reference / proxy for the rest pairs); the README quotes these.

    pytest benchmarks/test_bench_remote_paired.py --benchmark-only -q
"""

from __future__ import annotations

import asyncio
import inspect
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import floors
import pytest
from bench_api import BenchService
from workload import DATA, FIELDS, PYDANTIC

from warpcall.core.envelope import encode_request_json

ROUNDS, WARMUP = 1000, 100
DISPATCH_CHANNELS = ["dispatch-json", "dispatch-msgpack", "dispatch-protobuf"]
ASPYX_CHANNELS = ["dispatch-json", "dispatch-msgpack", "dispatch-protobuf"]
PAYLOADS = {"hello": "hello world", "data": DATA, "pydantic": PYDANTIC}
TREES = {"hello": "hello world", "data": FIELDS, "pydantic": FIELDS}


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    process, url = floors.launch("_echo_server.py", "http")
    yield url + "/echo"
    floors.stop(process)


PAIRS_PER_LOOP_RUN = 20  # async pairs per run_until_complete, so entering the loop stays out of the figures


def paired(benchmark: Any, floor: Callable[[], Any], call: Callable[[], Any], loop: asyncio.AbstractEventLoop | None) -> None:
    times: dict[str, list[float]] = {"floor": [], "call": []}
    order = [True]

    def timed_floor() -> None:
        started = time.perf_counter()
        floor()
        times["floor"].append(time.perf_counter() - started)

    def one_pair() -> None:
        order[0] = not order[0]
        if order[0]:
            timed_floor()
        started = time.perf_counter()
        call()
        times["call"].append(time.perf_counter() - started)
        if not order[0]:
            timed_floor()

    async def timed_floor_async() -> None:
        started = time.perf_counter()
        result = floor()
        if inspect.isawaitable(result):  # an async reference (aspyx's rest channel) is awaited in the same loop
            await result
        times["floor"].append(time.perf_counter() - started)

    async def pairs() -> None:
        for _ in range(PAIRS_PER_LOOP_RUN):
            order[0] = not order[0]
            if order[0]:
                await timed_floor_async()
            started = time.perf_counter()
            await call()
            times["call"].append(time.perf_counter() - started)
            if not order[0]:
                await timed_floor_async()

    if loop is None:
        benchmark.pedantic(one_pair, rounds=ROUNDS, warmup_rounds=WARMUP, iterations=1)
    else:
        benchmark.pedantic(
            lambda: loop.run_until_complete(pairs()),
            rounds=ROUNDS // PAIRS_PER_LOOP_RUN,
            warmup_rounds=WARMUP // PAIRS_PER_LOOP_RUN,
            iterations=1,
        )
    floor_us = statistics.median(times["floor"][WARMUP:] or times["floor"]) * 1e6
    call_us = statistics.median(times["call"][WARMUP:] or times["call"]) * 1e6
    benchmark.extra_info.update(floor_us=round(floor_us, 1), call_us=round(call_us, 1), ratio=round(call_us / floor_us, 3))
    benchmark.extra_info["speedup"] = round(floor_us / call_us, 2)


def run_case(benchmark: Any, echo_url: str, proxy: Any, payload: str, mode: str, loop: asyncio.AbstractEventLoop) -> None:
    benchmark.group = f"paired-{payload}-{mode}"
    argument = PAYLOADS[payload]
    body = encode_request_json(f"bench-component:bench-service:{payload}", [TREES[payload]])
    if mode == "sync":
        floor, sock = floors.raw_http(echo_url, body)
        try:
            method = getattr(proxy, payload)
            assert method(argument) == argument
            paired(benchmark, floor, lambda: method(argument), None)
        finally:
            sock.close()
    else:
        # async calls against the async floor: the same bytes over a kept-alive asyncio stream, same loop
        async_floor, writer = loop.run_until_complete(floors.raw_http_async(echo_url, body))
        try:
            method = getattr(proxy, f"{payload}_async")
            assert loop.run_until_complete(method(argument)) == argument
            assert loop.run_until_complete(async_floor()) == body
            paired(benchmark, async_floor, lambda: method(argument), loop)
        finally:
            writer.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("payload", list(PAYLOADS))
@pytest.mark.parametrize("channel", DISPATCH_CHANNELS)
def test_warpcall_paired(benchmark, echo_url, warpcall_manager, channel, payload, mode, calls_loop):
    proxy = warpcall_manager.get_service(BenchService, channel)
    run_case(benchmark, echo_url, proxy, payload, mode, calls_loop)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("payload", list(PAYLOADS))
@pytest.mark.parametrize("channel", ASPYX_CHANNELS)
def test_aspyx_paired(benchmark, echo_url, aspyx_manager, channel, payload, mode, calls_loop):
    import aspyx_bench

    proxy = aspyx_manager.get_service(aspyx_bench.AspyxBenchService, preferred_channel=channel)
    run_case(benchmark, echo_url, proxy, payload, mode, calls_loop)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_rest_paired_with_aspyx_rest(benchmark, warpcall_manager, aspyx_manager, payload, mode, calls_loop):
    """warpcall's rest channel, each call paired with one of aspyx-service's rest channel (the "floor" here)."""
    benchmark.group = f"rest-vs-aspyx-{payload}-{mode}"
    paired_with_aspyx(benchmark, warpcall_manager, aspyx_manager, "rest", payload, mode, calls_loop)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_protobuf_paired_with_aspyx_protobuf(benchmark, warpcall_manager, aspyx_manager, payload, mode, calls_loop):
    """warpcall's dispatch-protobuf, each call paired with one of aspyx-service's dispatch-protobuf (its
    ``ProtobufChannel``, since 0.11.0), same workload: ``speedup`` = aspyx's median / warpcall's."""
    benchmark.group = f"protobuf-vs-aspyx-{payload}-{mode}"
    paired_with_aspyx(benchmark, warpcall_manager, aspyx_manager, "dispatch-protobuf", payload, mode, calls_loop)


def paired_with_aspyx(benchmark: Any, warpcall_manager: Any, aspyx_manager: Any, channel: str, payload: str,
                      mode: str, calls_loop: asyncio.AbstractEventLoop) -> None:
    """One channel of both frameworks, each warpcall call paired with one aspyx-service call (the reference)."""
    import aspyx_bench

    mine = warpcall_manager.get_service(BenchService, channel)
    theirs = aspyx_manager.get_service(aspyx_bench.AspyxBenchService, preferred_channel=channel)
    argument = PAYLOADS[payload]
    name = payload if mode == "sync" else f"{payload}_async"
    method, reference = getattr(mine, name), getattr(theirs, name)
    if mode == "sync":
        assert method(argument) == argument and reference(argument) == argument
        paired(benchmark, lambda: reference(argument), lambda: method(argument), None)
    else:
        assert calls_loop.run_until_complete(method(argument)) == argument
        assert calls_loop.run_until_complete(reference(argument)) == argument
        paired(benchmark, lambda: reference(argument), lambda: method(argument), calls_loop)
