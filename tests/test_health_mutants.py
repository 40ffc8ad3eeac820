"""Health behaviour mutation testing found unchecked (mutation/, area ``health``).

The watchdog is driven by hand on a clock of the test's own (``warpcall.health.time`` replaced), so
every boundary is exact and nothing waits on real time except the one test of its thread.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from rawhttp import wait_until
from warpcall.di import Environment, create, module
from warpcall.di.configuration import EnvConfigurationSource
from warpcall.health import HealthCheckManager, HealthStatus, LoopWatchdog

health = importlib.import_module("warpcall.health")  # the package exports a function of that name


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(health, "time", fake)
    return fake


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    created = asyncio.new_event_loop()
    try:
        yield created
    finally:
        created.close()


def run_pending(loop: asyncio.AbstractEventLoop) -> None:
    """Run the callbacks already scheduled on a loop that is not running."""
    loop.call_soon(loop.stop)
    loop.run_forever()


def test_health_status_values_are_aspyx_services() -> None:
    assert [(s.name, s.value) for s in HealthStatus] == [("OK", 1), ("WARNING", 2), ("ERROR", 3)]
    assert str(HealthStatus.ERROR) == "ERROR"


@pytest.mark.parametrize("max_lag", [0, -0.5, -2])
def test_a_watchdog_needs_a_positive_max_lag(loop: asyncio.AbstractEventLoop, max_lag: float) -> None:
    with pytest.raises(ValueError, match="max_lag must be positive"):
        LoopWatchdog(loop, max_lag=max_lag)


@pytest.mark.parametrize(
    ("max_lag", "interval", "expected"),
    [
        (0.4, 0.0, 0.1),
        (1.0, 0.0, 0.25),
        (2.0, 0.0, 0.5),
        (8.0, 0.0, 0.5),
        (1.0, 0.05, 0.05),
        (1.0, -1.0, 0.25),
    ],
)
def test_the_probe_interval_defaults_to_a_quarter_of_max_lag_at_most_half_a_second(
    loop: asyncio.AbstractEventLoop, max_lag: float, interval: float, expected: float
) -> None:
    assert LoopWatchdog(loop, max_lag=max_lag, interval=interval).interval == expected


def test_a_fresh_watchdog_reports_no_lag_and_no_stall(loop: asyncio.AbstractEventLoop, clock: Clock) -> None:
    watchdog = LoopWatchdog(loop, max_lag=1.0)
    assert (watchdog.last_lag, watchdog.last_stall, watchdog.last_stall_at) == (0.0, 0.0, None)
    assert watchdog.lag() == 0.0 and watchdog.alive()
    result = watchdog.result()
    assert (result.status, result.details) == (HealthStatus.OK, "lag 0.0 ms (bound 1 s)")


def test_the_lag_is_the_age_of_the_waiting_probe_then_its_delay(
    loop: asyncio.AbstractEventLoop, clock: Clock
) -> None:
    watchdog = LoopWatchdog(loop, max_lag=1.0)
    watchdog.probe()
    clock.now += 0.25
    assert watchdog.lag() == 0.25
    watchdog.probe()  # one probe at a time: the waiting one keeps its age
    clock.now += 0.25
    assert watchdog.lag() == 0.5
    run_pending(loop)
    assert watchdog.last_lag == 0.5 and watchdog.lag() == 0.5
    clock.now += 3.0
    assert watchdog.lag() == 0.5  # nothing waits: the last delay


def test_alive_up_to_max_lag_and_not_beyond(loop: asyncio.AbstractEventLoop, clock: Clock) -> None:
    watchdog = LoopWatchdog(loop, max_lag=1.0)
    watchdog.probe()
    clock.now += 1.0
    assert watchdog.alive()  # exactly the bound
    result = watchdog.result()
    assert (result.status, result.details) == (HealthStatus.OK, "lag 1000.0 ms (bound 1 s)")
    clock.now += 0.5
    assert not watchdog.alive()
    result = watchdog.result()
    assert result.status is HealthStatus.ERROR
    assert result.details == "the event loop is stalled: lag 1500.0 ms (bound 1 s)"


def test_after_a_stall_the_loop_counts_as_stalled_for_max_lag_more(
    loop: asyncio.AbstractEventLoop, clock: Clock
) -> None:
    watchdog = LoopWatchdog(loop, max_lag=1.0)
    watchdog.probe()
    clock.now += 1.5
    run_pending(loop)  # the probe ran 1.5 s late
    stalled_at = clock.now
    assert (watchdog.last_lag, watchdog.last_stall, watchdog.last_stall_at) == (1.5, 1.5, stalled_at)
    clock.now = stalled_at + 0.25
    watchdog.probe()
    clock.now = stalled_at + 0.25 + 1 / 1024
    run_pending(loop)  # the loop answers at once again
    clock.now = stalled_at + 0.5
    assert watchdog.lag() == 1 / 1024 and not watchdog.alive()
    result = watchdog.result()
    assert result.status is HealthStatus.ERROR
    assert result.details == (
        "the event loop was stalled: lag 1.0 ms (bound 1 s); last stall: a callback ran 1.50 s late, 0.5 s ago"
    )
    clock.now = stalled_at + 1.0  # max_lag after the stall: alive again
    assert watchdog.alive()
    assert watchdog.result().status is HealthStatus.OK


def test_a_probe_within_max_lag_is_no_stall(loop: asyncio.AbstractEventLoop, clock: Clock) -> None:
    watchdog = LoopWatchdog(loop, max_lag=1.0)
    watchdog.probe()
    clock.now += 1.0
    run_pending(loop)
    assert (watchdog.last_lag, watchdog.last_stall_at) == (1.0, None)
    assert watchdog.alive()


def test_a_closed_loop_is_not_alive(clock: Clock) -> None:
    closed = asyncio.new_event_loop()
    closed.close()
    watchdog = LoopWatchdog(closed, max_lag=1.0)
    watchdog.probe()
    assert not watchdog.alive()
    result = watchdog.result()
    assert (result.status, result.details) == (HealthStatus.ERROR, "the event loop is closed")
    assert str(watchdog) == "event loop watchdog (closed)"
    watchdog.probe()  # closed: no probe any more


def test_the_watchdog_thread_probes_a_running_loop_and_stops() -> None:
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    watchdog = LoopWatchdog(loop, max_lag=1.0, interval=0.01)
    answered: list[float] = []
    original = watchdog._answered

    def counting(sent: float) -> None:
        answered.append(sent)
        original(sent)

    watchdog._answered = counting  # type: ignore[method-assign]
    try:
        assert watchdog.start() is watchdog
        thread = watchdog._thread
        assert watchdog.start()._thread is thread  # started once
        wait_until(lambda: len(answered) >= 3, timeout=5.0, what="three probes answered")
        watchdog.stop()
        assert thread is not None and not thread.is_alive()
        watchdog.stop()  # twice is fine
    finally:
        watchdog.stop()
        loop.call_soon_threadsafe(loop.stop)
        runner.join(5.0)
        loop.close()


def test_result_dicts_round_to_microseconds(loop: asyncio.AbstractEventLoop, clock: Clock) -> None:
    result = HealthCheckManager.Result("db")
    result.duration = 0.12345678
    assert result.to_dict() == {"name": "db", "status": "OK", "details": "", "duration": 0.123457}
    watchdog = LoopWatchdog(loop, max_lag=2.0)
    watchdog.probe()
    clock.now += 0.12345678
    loop_result = watchdog.result().to_dict()
    assert (loop_result["lag"], loop_result["max_lag"]) == (0.123457, 2.0)


# --- one check: cache, duration, slowness ------------------------------------------------------


def _check(clock: Clock, takes: float, cache: float = 0.0, limit: float = 0.0) -> tuple[Any, list[float]]:
    """A check that takes ``takes`` seconds of the test clock; the list records when it ran."""
    runs: list[float] = []

    async def probe(result: HealthCheckManager.Result) -> None:
        runs.append(clock.now)
        clock.now += takes

    return HealthCheckManager.Check("probe", probe, cache, limit), runs


def test_a_check_measures_its_duration(clock: Clock) -> None:
    check, runs = _check(clock, 0.25)
    result = asyncio.run(check.run(10.0))
    assert (result.status, result.duration, len(runs)) == (HealthStatus.OK, 0.25, 1)


@pytest.mark.parametrize(
    ("takes", "status"), [(0.125, HealthStatus.OK), (0.25, HealthStatus.OK), (0.375, HealthStatus.ERROR)]
)
def test_a_check_slower_than_its_limit_is_error(clock: Clock, takes: float, status: HealthStatus) -> None:
    check, _ = _check(clock, takes, limit=0.25)
    result = asyncio.run(check.run(10.0))
    assert (result.status, result.duration) == (status, takes)
    if status is HealthStatus.ERROR:
        assert result.details == "took 0.375 s, more than the limit of 0.25 s"


def test_a_cached_result_is_reused_for_cache_seconds_from_the_runs_start(clock: Clock) -> None:
    check, runs = _check(clock, 0.125, cache=0.5)
    start = clock.now
    asyncio.run(check.run(10.0))
    clock.now = start + 0.5 - 1 / 1024
    cached = asyncio.run(check.run(10.0))
    assert len(runs) == 1 and cached.duration == 0.125
    clock.now = start + 0.5  # cache seconds after the run began: run again
    asyncio.run(check.run(10.0))
    assert runs == [start, start + 0.5]


def test_without_cache_every_call_runs_the_check(clock: Clock) -> None:
    check, runs = _check(clock, 0.0, cache=0.0)
    asyncio.run(check.run(10.0))
    asyncio.run(check.run(10.0))
    assert len(runs) == 2


# --- the manager's settings ----------------------------------------------------------------------


def test_the_managers_loop_settings_are_checked() -> None:
    manager = HealthCheckManager()
    assert (manager.timeout, manager.max_loop_lag, manager.loop_probe_interval) == (10.0, 2.0, 0.0)
    for bad in (0, -0.5):
        with pytest.raises(ValueError, match="health.loop.max_lag must be positive"):
            manager.set_max_loop_lag(bad)
    for bad in (-0.5, -2.0):
        with pytest.raises(ValueError, match="health.loop.probe_interval must not be negative"):
            manager.set_loop_probe_interval(bad)
    manager.set_loop_probe_interval(0.0)
    manager.set_max_loop_lag(0.5)
    assert (manager.max_loop_lag, manager.loop_probe_interval) == (0.5, 0.0)


# --- the manager in an environment ---------------------------------------------------------------


@module()
class _ConfiguredModule:
    @create()
    def configuration(self) -> EnvConfigurationSource:
        return EnvConfigurationSource()

    @create()
    def health_check_manager(self) -> HealthCheckManager:
        return HealthCheckManager()


def test_the_loop_settings_come_from_configuration_and_default_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("health.loop.probe_interval", raising=False)
    monkeypatch.setenv("health.loop.max_lag", "0.75")
    environment = Environment(_ConfiguredModule)
    try:
        manager = environment.get(HealthCheckManager)
        assert (manager.max_loop_lag, manager.loop_probe_interval) == (0.75, 0.0)
    finally:
        environment.destroy()


def test_destroying_the_environment_stops_the_watchdog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("health.loop.max_lag", "1.0")
    environment = Environment(_ConfiguredModule)
    loop = asyncio.new_event_loop()
    try:
        watchdog = environment.get(HealthCheckManager).watch_loop(loop)
        thread = watchdog._thread
        assert thread is not None and thread.is_alive()
        assert watchdog.interval == 0.25  # max_lag / 4, no probe interval configured
    finally:
        environment.destroy()
    try:
        assert not thread.is_alive()  # stopped and joined by the manager's on_destroy
    finally:
        watchdog.stop()
        loop.close()


# --- a clock read shortly after its reference point -------------------------------------------------
# time.monotonic's reference point is unspecified: just after boot, or in a fresh container, it reads a
# few seconds. Elapsed times must be differences, right also when they exceed the earlier reading.


@pytest.fixture
def early_clock(clock: Clock) -> Clock:
    clock.now = 1.0
    return clock


def test_the_waiting_probes_age_is_its_lag_on_an_early_clock(
    loop: asyncio.AbstractEventLoop, early_clock: Clock
) -> None:
    watchdog = LoopWatchdog(loop, max_lag=5.0)
    watchdog.probe()
    early_clock.now = 3.5
    assert watchdog.lag() == 2.5


def test_a_stall_is_over_max_lag_after_it_on_an_early_clock(
    loop: asyncio.AbstractEventLoop, early_clock: Clock
) -> None:
    watchdog = LoopWatchdog(loop, max_lag=0.5)
    watchdog.probe()
    early_clock.now = 2.0
    run_pending(loop)  # answered 1 s late: a stall at 2.0
    assert watchdog.last_stall_at == 2.0 and not watchdog.alive()
    early_clock.now = 4.25  # 2.25 s after the stall, far beyond max_lag
    watchdog.probe()
    run_pending(loop)  # and the loop answers at once again
    assert watchdog.last_lag == 0.0 and watchdog.alive()


def test_a_cache_expires_cache_seconds_after_the_run_on_an_early_clock(early_clock: Clock) -> None:
    check, runs = _check(early_clock, 0.0, cache=2.0)
    asyncio.run(check.run(10.0))
    early_clock.now = 3.5  # 2.5 s after the run: expired
    asyncio.run(check.run(10.0))
    assert runs == [1.0, 3.5]


def test_a_checks_duration_is_its_own_time_on_an_early_clock(early_clock: Clock) -> None:
    check, _ = _check(early_clock, 2.5)
    assert asyncio.run(check.run(10.0)).duration == 2.5


def test_a_check_without_an_answer_reports_the_time_it_was_given(early_clock: Clock) -> None:
    async def hangs(result: HealthCheckManager.Result) -> None:
        early_clock.now = 3.5  # the test clock moves while the check hangs
        await asyncio.Event().wait()

    check = HealthCheckManager.Check("hangs", hangs, 0.0, 0.05)

    async def run() -> HealthCheckManager.Result:
        try:
            return await check.run(10.0)
        finally:
            assert check._running is not None
            check._running.cancel()  # the run in progress would otherwise outlive the loop

    result = asyncio.run(run())
    assert (result.status, result.details, result.duration) == (
        HealthStatus.ERROR,
        "no answer within 0.05 s",
        2.5,
    )


@pytest.mark.parametrize("limit", [0.0, -1.0])
def test_a_limit_of_zero_or_less_means_no_limit(clock: Clock, limit: float) -> None:
    check, _ = _check(clock, 0.5, limit=limit)
    result = asyncio.run(check.run(10.0))
    assert (result.status, result.duration) == (HealthStatus.OK, 0.5)
