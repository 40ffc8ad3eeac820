"""Issue 19: the health checks' time promises, tested against the clock.

- ``@health_check(cache=N)``: the last result is reused for N seconds after its run began, and a new
  run happens once they are over: the test sees the reuse at once and halfway through, and a new run
  by N + max(0.5 s, 50 %) (the bound of issue 19 for every "within N seconds" promise).
- ``fail_if_slower_than=N`` and the manager's ``health.timeout``: a check with no answer is ERROR by
  N + that slack, while the check itself would hang for 10 s.
- ``LoopWatchdog``: a loop blocked past ``max_lag`` stops being alive by ``interval + max_lag`` + that
  slack, and is alive again ``max_lag`` after it recovered (not at once, not much later).

Each bound is an upper bound on an event (the promise), not a speed figure; N is made small by
configuration so each test takes about a second.
"""

from __future__ import annotations

import asyncio
import threading
import time

from rawhttp import wait_until
from warpcall.health import HealthCheckManager, HealthStatus, LoopWatchdog, health_check

CACHE = 1.0
LIMIT = 0.3


def slack(promise: float) -> float:
    """What a "within ``promise`` seconds" may take on a loaded machine: max(0.5 s, 50 %) more."""
    return max(0.5, promise * 0.5)


def manager_of(instance: object, timeout: float = 10.0) -> HealthCheckManager:
    manager = HealthCheckManager()
    manager.timeout = timeout
    manager.add(instance)
    return manager


def test_a_cached_result_is_reused_for_its_seconds_and_renewed_once_they_are_over() -> None:
    class Counted:
        runs = 0

        @health_check(cache=CACHE)
        def counted(self, result: HealthCheckManager.Result) -> None:
            Counted.runs += 1
            result.set_status(HealthStatus.OK, f"run {Counted.runs}")

    manager = manager_of(Counted())

    async def scenario() -> tuple[list[str], float, float]:
        began = time.monotonic()
        details = [(await manager.check()).results[0].details]
        details.append((await manager.check()).results[0].details)  # at once: cached
        await asyncio.sleep(CACHE / 2)
        details.append((await manager.check()).results[0].details)  # halfway: still cached
        halfway = time.monotonic() - began
        deadline = began + CACHE + slack(CACHE)
        # bounded: polls every 20 ms until the second run or the promise's bound
        while Counted.runs < 2 and time.monotonic() < deadline:
            details.append((await manager.check()).results[0].details)
            await asyncio.sleep(0.02)
        return details, halfway, time.monotonic() - began

    details, halfway, renewed = asyncio.run(scenario())
    assert halfway < CACHE, f"the halfway check came {halfway:.2f} s in: the machine is too slow to tell"
    assert details[:3] == ["run 1"] * 3, details
    assert Counted.runs == 2, f"the cached result was not renewed within {CACHE} s + {slack(CACHE)} s: {details}"
    assert details[-1] == "run 2"
    assert renewed >= CACHE, f"renewed {renewed:.2f} s after the first run, before its {CACHE} s were over"


def test_an_expired_cache_is_not_reused_after_a_slow_run() -> None:
    # the cache counts from the run's start: a run of 0.6 s cached for 1 s is stale 0.4 s after it ended
    class Slow:
        runs = 0

        @health_check(cache=CACHE, fail_if_slower_than=5)
        def slow(self, result: HealthCheckManager.Result) -> None:
            Slow.runs += 1
            time.sleep(0.6 if Slow.runs == 1 else 0)

    manager = manager_of(Slow())

    async def scenario() -> float:
        await manager.check()
        ended = time.monotonic()
        deadline = ended + (CACHE - 0.6) + slack(CACHE)
        while Slow.runs < 2 and time.monotonic() < deadline:  # bounded: every 20 ms until the bound
            await manager.check()
            await asyncio.sleep(0.02)
        return time.monotonic() - ended

    waited = asyncio.run(scenario())
    assert Slow.runs == 2, f"not run again within {waited:.2f} s of a 0.6 s run cached for {CACHE} s"


def _hung_check_is_error_in_time(manager: HealthCheckManager, gate: threading.Event, limit: float) -> None:
    async def scenario() -> tuple[HealthCheckManager.Health, float]:
        began = time.monotonic()
        try:
            health = await manager.check()
        finally:
            gate.set()  # before asyncio.run joins the worker thread
        return health, time.monotonic() - began

    health, took = asyncio.run(scenario())
    assert health.status is HealthStatus.ERROR
    assert health.results[0].details == f"no answer within {limit:g} s"
    assert took <= limit + slack(limit), f"the hung check was reported after {took:.2f} s (limit {limit} s)"


def test_a_check_slower_than_its_limit_is_error_by_the_limit() -> None:
    gate = threading.Event()

    class Hangs:
        @health_check(fail_if_slower_than=LIMIT)
        def hangs(self, result: HealthCheckManager.Result) -> None:
            gate.wait(10)

    _hung_check_is_error_in_time(manager_of(Hangs()), gate, LIMIT)


def test_an_async_check_slower_than_its_limit_is_error_by_the_limit() -> None:
    class Hangs:
        @health_check(fail_if_slower_than=LIMIT)
        async def hangs(self, result: HealthCheckManager.Result) -> None:
            await asyncio.sleep(10)

    gate = threading.Event()
    _hung_check_is_error_in_time(manager_of(Hangs()), gate, LIMIT)


def test_the_managers_timeout_bounds_a_check_without_a_limit() -> None:
    gate = threading.Event()

    class Hangs:
        @health_check()
        def hangs(self, result: HealthCheckManager.Result) -> None:
            gate.wait(10)

    _hung_check_is_error_in_time(manager_of(Hangs(), timeout=LIMIT), gate, LIMIT)


def test_the_loop_watchdog_reports_a_stall_and_the_recovery_within_their_bounds() -> None:
    # LoopWatchdog's promise: a loop blocked longer than max_lag stops being alive at most interval + max_lag
    # after it stopped, and is alive again max_lag after it recovered (not before: one stall does not flap)
    max_lag, interval, block = 0.3, 0.05, 1.2
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    watchdog = LoopWatchdog(loop, max_lag, interval).start()
    unblock = threading.Event()
    blocked = threading.Event()

    def stall() -> None:
        blocked.set()
        unblock.wait(10)  # holds the loop until the test lets go (bounded)

    try:
        assert watchdog.alive()
        loop.call_soon_threadsafe(stall)
        wait_until(blocked.is_set, timeout=2, what="the loop to block")
        stopped = time.monotonic()
        promise = interval + max_lag
        wait_until(lambda: not watchdog.alive(), timeout=promise + slack(promise), what="the stall to be reported")
        assert time.monotonic() - stopped >= max_lag, "reported a stall before the loop was max_lag late"
        wait_until(lambda: time.monotonic() >= stopped + block, timeout=block + 1, what="the stall to last")
        unblock.set()
        recovered = time.monotonic()
        wait_until(lambda: watchdog.last_stall >= block * 0.9, timeout=1, what="the late probe to run")
        assert not watchdog.alive(), "alive again at once after a stall"
        wait_until(watchdog.alive, timeout=max_lag + slack(max_lag), what="the loop to count as alive again")
        assert time.monotonic() - recovered >= max_lag * 0.9, "alive again before max_lag had passed"
    finally:
        unblock.set()
        watchdog.stop()
        loop.call_soon_threadsafe(loop.stop)
        runner.join(5)
        loop.close()
