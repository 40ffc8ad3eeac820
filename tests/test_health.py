"""Health checks: declared with decorators, run concurrently by HealthCheckManager, combined in one status."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import pytest

from warpcall.di import Environment, create, injectable, module
from warpcall.health import HealthCheckManager, HealthStatus, health_check, health_checks
from warpcall.registry.local import LocalComponentRegistry

CALLS: Counter[str] = Counter()
RELEASE_HUNG = threading.Event()


@health_checks()
@injectable()
class StoreChecks:
    @health_check()
    def disk(self, result: HealthCheckManager.Result) -> None:
        CALLS["disk"] += 1  # reports nothing: OK

    @health_check(name="database")
    async def db(self, result: HealthCheckManager.Result) -> None:
        result.set_status(HealthStatus.WARNING, "replica lagging by 3 s")

    @health_check(cache=60)
    def expensive(self, result: HealthCheckManager.Result) -> None:
        CALLS["expensive"] += 1
        result.set_status(HealthStatus.OK, f"run {CALLS['expensive']}")

    def not_a_check(self, result: HealthCheckManager.Result) -> None:
        raise AssertionError("only @health_check methods run")


@module()
class HealthyModule:
    # a module of this test file alone; the manager (in ServiceModule for applications) is created here
    @create()
    def health_check_manager(self) -> HealthCheckManager:
        return HealthCheckManager()


@pytest.fixture
def environment():
    environment = Environment(HealthyModule)
    yield environment
    environment.destroy()


def test_checks_of_health_checks_injectables_are_collected(environment: Environment) -> None:
    manager = environment.get(HealthCheckManager)
    assert sorted(check.name for check in manager.checks) == ["database", "disk", "expensive"]
    assert manager.timeout == 10.0  # configuration key health.timeout, default 10 s


def test_overall_status_is_the_worst_check_and_serializes_to_json(environment: Environment) -> None:
    manager = environment.get(HealthCheckManager)
    health = asyncio.run(manager.check())
    assert health.status is HealthStatus.WARNING
    as_dict = health.to_dict()
    assert as_dict["status"] == "WARNING"
    by_name = {check["name"]: check for check in as_dict["checks"]}
    assert by_name["database"] == {
        **by_name["database"],
        "status": "WARNING",
        "details": "replica lagging by 3 s",
    }
    assert by_name["disk"]["status"] == "OK" and by_name["disk"]["details"] == ""
    assert all(isinstance(check["duration"], float) and check["duration"] >= 0 for check in as_dict["checks"])
    # WARNING still serves traffic: 200; ERROR does not: 503
    registry = LocalComponentRegistry()
    assert registry.map_health(health) == 200
    assert registry.map_health(HealthCheckManager.Health(HealthStatus.ERROR)) == 503


def test_cache_reuses_the_last_result(environment: Environment) -> None:
    manager = environment.get(HealthCheckManager)
    before_disk, before_expensive = CALLS["disk"], CALLS["expensive"]
    first = asyncio.run(manager.check())
    second = asyncio.run(manager.check())
    assert CALLS["disk"] == before_disk + 2
    assert CALLS["expensive"] == before_expensive + 1
    details = [next(r.details for r in h.results if r.name == "expensive") for h in (first, second)]
    assert details[0] == details[1]


def make_manager(*instances: object, timeout: float = 10.0) -> HealthCheckManager:
    manager = HealthCheckManager()
    manager.timeout = timeout
    for instance in instances:
        manager.add(instance)
    return manager


def result_of(health: HealthCheckManager.Health, name: str) -> HealthCheckManager.Result:
    return next(result for result in health.results if result.name == name)


def test_a_raising_check_is_error_with_the_exception_as_details() -> None:
    class Broken:
        @health_check()
        def cache(self, result: HealthCheckManager.Result) -> None:
            raise ConnectionError("redis at 127.0.0.1:6379 refused the connection")

    health = asyncio.run(make_manager(Broken()).check())
    assert health.status is HealthStatus.ERROR
    assert (
        result_of(health, "cache").details
        == "ConnectionError: redis at 127.0.0.1:6379 refused the connection"
    )


def test_checks_run_concurrently() -> None:
    # each check waits for the other to have started: run one after the other, both would time out
    class Pair:
        def __init__(self) -> None:
            self.a, self.b = asyncio.Event(), asyncio.Event()

        @health_check(fail_if_slower_than=5)
        async def first(self, result: HealthCheckManager.Result) -> None:
            self.a.set()
            await self.b.wait()

        @health_check(fail_if_slower_than=5)
        async def second(self, result: HealthCheckManager.Result) -> None:
            self.b.set()
            await self.a.wait()

    async def scenario() -> HealthCheckManager.Health:
        return await make_manager(Pair()).check()

    health = asyncio.run(scenario())
    assert [r.status for r in health.results] == [HealthStatus.OK, HealthStatus.OK]


def test_sync_checks_run_off_the_event_loop() -> None:
    # the sync check blocks until the async one runs; on the loop's thread this would deadlock
    class Mixed:
        def __init__(self) -> None:
            self.released = threading.Event()
            self.thread = 0

        @health_check(fail_if_slower_than=5)
        def blocking(self, result: HealthCheckManager.Result) -> None:
            self.thread = threading.get_ident()
            if not self.released.wait(5):
                result.set_status(HealthStatus.ERROR, "the event loop was blocked")

        @health_check()
        async def releasing(self, result: HealthCheckManager.Result) -> None:
            await asyncio.sleep(0)
            self.released.set()

    mixed = Mixed()
    health = asyncio.run(make_manager(mixed).check())
    assert health.status is HealthStatus.OK
    assert mixed.thread != threading.get_ident()


def test_a_check_slower_than_its_limit_is_error_and_a_hung_one_is_not_started_twice() -> None:
    class Hung:
        runs = 0

        @health_check(fail_if_slower_than=0.2)
        def remote(self, result: HealthCheckManager.Result) -> None:
            Hung.runs += 1
            RELEASE_HUNG.wait(10)

    manager = make_manager(Hung())

    async def twice() -> list[HealthCheckManager.Health]:
        return [await manager.check(), await manager.check()]

    async def scenario() -> list[HealthCheckManager.Health]:
        try:
            return await twice()
        finally:
            RELEASE_HUNG.set()  # before asyncio.run joins the worker thread

    RELEASE_HUNG.clear()
    healths = asyncio.run(scenario())
    for health in healths:
        assert health.status is HealthStatus.ERROR
        assert result_of(health, "remote").details == "no answer within 0.2 s"
    assert Hung.runs == 1


def test_a_run_that_finishes_after_its_limit_is_error_with_its_duration() -> None:
    class Slow:
        def __init__(self) -> None:
            self.go = asyncio.Event()

        @health_check(fail_if_slower_than=0.2)
        async def sluggish(self, result: HealthCheckManager.Result) -> None:
            await self.go.wait()

        @health_check(fail_if_slower_than=5)
        async def quick(self, result: HealthCheckManager.Result) -> None:
            pass

    slow = Slow()
    manager = make_manager(slow)

    async def scenario() -> tuple[HealthCheckManager.Health, HealthCheckManager.Health]:
        first = await manager.check()  # gives up after 0.2 s; the run goes on
        second = asyncio.ensure_future(manager.check())  # joins that run instead of starting another
        await asyncio.sleep(0.05)
        slow.go.set()  # the joined run ends now, later than its limit
        return first, await second

    first, second = asyncio.run(scenario())
    assert result_of(first, "sluggish").details == "no answer within 0.2 s"
    late = result_of(second, "sluggish")
    assert late.status is HealthStatus.ERROR and late.duration >= 0.2
    assert late.details.startswith("took ") and late.details.endswith("more than the limit of 0.2 s")
    assert result_of(second, "quick").status is HealthStatus.OK
    assert second.status is HealthStatus.ERROR


def test_no_checks_is_healthy() -> None:
    health = asyncio.run(make_manager().check())
    assert health.status is HealthStatus.OK and health.to_dict() == {"status": "OK", "checks": []}


def test_manager_timeout_applies_without_a_limit() -> None:
    gate = threading.Event()

    class Waits:
        @health_check()
        def forever(self, result: HealthCheckManager.Result) -> None:
            gate.wait(10)

    async def scenario() -> HealthCheckManager.Health:
        try:
            return await make_manager(Waits(), timeout=0.1).check()
        finally:
            gate.set()

    health = asyncio.run(scenario())
    assert result_of(health, "forever").details == "no answer within 0.1 s"
