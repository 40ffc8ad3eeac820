"""WorkerPool: the thread pool sync implementations run in."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest

from warpcall.server.workers import WorkerPool

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


@pytest.fixture
def pool():
    workers = WorkerPool(max_workers=4, prefix="test-pool")
    yield workers
    workers.close()


def alive(prefix: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


def test_runs_the_call_in_a_worker_thread_and_returns_its_result(pool):
    async def main() -> tuple[int, str]:
        return await pool.run(lambda a, b: (a + b, threading.current_thread().name), 2, 3)

    value, name = asyncio.run(main())
    assert value == 5
    assert name.startswith("test-pool_")


def test_an_exception_reaches_the_awaiting_coroutine(pool):
    def fail() -> None:
        raise KeyError("missing")

    async def main() -> None:
        await pool.run(fail)

    with pytest.raises(KeyError, match="missing"):
        asyncio.run(main())


def test_context_variables_of_the_caller_reach_the_worker(pool):
    async def main() -> str:
        REQUEST_ID.set("r-17")
        return await pool.run(REQUEST_ID.get)

    assert asyncio.run(main()) == "r-17"


def test_calls_run_concurrently_up_to_max_workers(pool):
    barrier = threading.Barrier(4, timeout=10)  # four calls must be inside at once, or it breaks

    async def main() -> list[int]:
        return list(await asyncio.gather(*(pool.run(barrier.wait) for _ in range(4))))

    assert sorted(asyncio.run(main())) == [0, 1, 2, 3]


def test_never_more_threads_than_max_workers():
    workers = WorkerPool(max_workers=2, prefix="test-bounded")
    names: set[str] = set()

    def work() -> None:
        time.sleep(0.01)
        names.add(threading.current_thread().name)

    async def main() -> None:
        await asyncio.gather(*(workers.run(work) for _ in range(12)))

    try:
        asyncio.run(main())
        assert len(names) == 2
        assert len(alive("test-bounded")) == 2
    finally:
        workers.close()


def test_idle_workers_are_reused_rather_than_new_ones_started(pool):
    async def main() -> set[str]:
        return {await pool.run(lambda: threading.current_thread().name) for _ in range(20)}

    assert len(asyncio.run(main())) == 1


def test_close_waits_for_running_calls_and_stops_every_worker():
    workers = WorkerPool(max_workers=3, prefix="test-close")
    finished: list[bool] = []

    def slow() -> None:
        time.sleep(0.2)
        finished.append(True)

    async def main() -> None:
        futures = [workers.run(slow) for _ in range(3)]
        await asyncio.sleep(0.05)  # the calls are under way
        await asyncio.get_running_loop().run_in_executor(None, workers.close)
        await asyncio.gather(*futures)

    asyncio.run(main())
    assert finished == [True, True, True]
    assert alive("test-close") == []

    # usable again after close: new workers start
    async def again() -> int:
        return await workers.run(lambda: 7)

    assert asyncio.run(again()) == 7
    workers.close()
    assert alive("test-close") == []


def test_a_cancelled_caller_does_not_break_the_worker_or_the_loop(pool):
    release = threading.Event()
    errors: list[dict] = []

    async def main() -> int:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))
        task = asyncio.ensure_future(pool.run(release.wait, 10))
        await asyncio.sleep(0.02)
        task.cancel()
        release.set()
        await asyncio.sleep(0.05)  # the worker's result arrives for a cancelled future
        return await pool.run(lambda: 1)

    assert asyncio.run(main()) == 1
    assert errors == []


def test_a_loop_closed_during_the_call_leaves_the_worker_serving(pool):
    release = threading.Event()

    async def abandon() -> None:
        pool.run(release.wait, 10)  # never awaited: the loop ends first

    asyncio.run(abandon())
    release.set()

    async def main() -> int:
        return await pool.run(lambda: 3)

    assert asyncio.run(main()) == 3


def test_max_workers_must_be_positive():
    with pytest.raises(ValueError, match="max_workers"):
        WorkerPool(max_workers=0)


def test_submit_calls_back_on_the_loop_with_the_token_and_the_outcome(pool):
    def fail(text: str) -> None:
        raise ValueError(text)

    async def main() -> list[tuple]:
        loop = asyncio.get_running_loop()
        seen: list[tuple] = []
        finished = asyncio.Event()

        def done(token: str, outcome: object, failed: bool) -> None:
            # runs on the loop's own thread, like any callback of it
            seen.append((token, outcome if not failed else repr(outcome), failed, threading.current_thread().name))
            if len(seen) == 2:
                finished.set()

        REQUEST_ID.set("submitted")
        pool.submit(loop, lambda: (REQUEST_ID.get(), threading.current_thread().name[:10]), (), done, "first")
        pool.submit(loop, fail, ["no"], done, "second")
        await asyncio.wait_for(finished.wait(), 5)
        return sorted(seen)

    loop_thread = threading.current_thread().name
    assert asyncio.run(main()) == [
        ("first", ("submitted", "test-pool_"), False, loop_thread),
        ("second", "ValueError('no')", True, loop_thread),
    ]


def test_running_counts_the_jobs_under_way(pool):
    release = threading.Event()

    async def main() -> tuple[int, int, int]:
        before = pool.running
        first = pool.run(release.wait, 5)
        second = pool.run(release.wait, 5)
        during = pool.running
        release.set()
        await asyncio.gather(first, second)
        return before, during, pool.running

    assert asyncio.run(main()) == (0, 2, 0)
