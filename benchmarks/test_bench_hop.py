"""The thread hop a sync implementation costs: warpcall's WorkerPool beside run_in_executor and anyio.

Each round awaits 20 hops in a row on one event loop (uvloop, as uvicorn runs, where installed;
asyncio as well), so entering the loop stays out of the figures: divide by 20 for one hop.

    pytest benchmarks/test_bench_hop.py --benchmark-only --benchmark-group-by=group
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio.to_thread
import pytest

from warpcall.server.workers import WorkerPool

HOPS_PER_ROUND = 20


def loops() -> list[str]:
    names = ["asyncio"]
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return names
    return names + ["uvloop"]


@pytest.fixture(params=loops())
def loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    if request.param == "uvloop":
        import uvloop

        event_loop = uvloop.new_event_loop()
    else:
        event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


def answer() -> int:
    return 42


def hop_factories(loop: asyncio.AbstractEventLoop) -> dict[str, tuple[Callable[[], Any], Callable[[], None]]]:
    executor = ThreadPoolExecutor(8)
    pool = WorkerPool(8)
    return {
        "warpcall-WorkerPool": (lambda: pool.run(answer), pool.close),
        "run_in_executor": (lambda: loop.run_in_executor(executor, answer), executor.shutdown),
        "anyio-to_thread": (lambda: anyio.to_thread.run_sync(answer), lambda: None),
    }


@pytest.mark.parametrize("kind", ["warpcall-WorkerPool", "run_in_executor", "anyio-to_thread"])
def test_thread_hop(benchmark, loop, kind):
    benchmark.group = f"thread-hop-x{HOPS_PER_ROUND}-{type(loop).__module__.split('.')[0]}"
    hop, close = hop_factories(loop)[kind]

    async def hops() -> int:
        total = 0
        for _ in range(HOPS_PER_ROUND):
            total += await hop()
        return total

    try:
        assert loop.run_until_complete(hops()) == 42 * HOPS_PER_ROUND
        benchmark.pedantic(lambda: loop.run_until_complete(hops()), rounds=200, warmup_rounds=10)
    finally:
        close()
