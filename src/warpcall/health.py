"""Health checks: ``@health_check(...)`` methods of ``@health_checks()`` classes, run by HealthCheckManager.

A check is a method ``(self, result: HealthCheckManager.Result)``, plain or
``async def``. It reports by calling ``result.set_status(status, details)``;
if it does not, it is OK. A check that raises is ERROR with the exception as
details; one that takes longer than ``fail_if_slower_than`` seconds is ERROR
(the manager stops waiting for it then); ``cache`` seconds reuse the last
result. All checks run concurrently; plain ones in worker threads, so the
event loop serving the health endpoint never blocks. A check still running
from an earlier call is joined, not started twice, so a hung check costs at
most one thread.

The coroutines import asyncio where they use it (it is loaded by then): every environment
with ServiceModule has a HealthCheckManager, and a process that never checks never loads it.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

from warpcall.di import Decorators, Environment, TypeDescriptor, inject_environment, injectable, on_init
from warpcall.di.configuration import inject_value

if TYPE_CHECKING:
    import asyncio

C = TypeVar("C", bound=type)
F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger("warpcall.health")

#: seconds the manager waits for a check that sets no ``fail_if_slower_than``
DEFAULT_TIMEOUT = 10.0


class HealthStatus(Enum):
    """How healthy a check or a component is; a component is as healthy as its worst check."""

    OK = 1
    WARNING = 2
    ERROR = 3

    def __str__(self) -> str:
        return self.name


def health_checks() -> Callable[[C], C]:
    """Mark an injectable class whose ``@health_check`` methods the ``HealthCheckManager`` runs."""

    def decorator(cls: C) -> C:
        Decorators.add(cls, health_checks)
        return cls

    return decorator


def health_check(name: str = "", cache: float = 0, fail_if_slower_than: float = 0) -> Callable[[F], F]:
    """Mark a method ``(self, result)`` as a health check.

    ``name``: reported name (default: the method's name). ``cache``: seconds
    during which the last result is reused. ``fail_if_slower_than``: seconds
    after which the check is ERROR (0: the manager's timeout applies).
    """

    def decorator(func: F) -> F:
        Decorators.add(func, health_check, name, cache, fail_if_slower_than)
        return func

    return decorator


@injectable()
class HealthCheckManager:
    """Runs every ``@health_check`` of the environment's ``@health_checks`` injectables and combines them."""

    class Result:
        """What one check reported: status, details and how long it took (seconds)."""

        def __init__(self, name: str) -> None:
            self.name = name
            self.status = HealthStatus.OK
            self.details = ""
            self.duration = 0.0

        def set_status(self, status: HealthStatus, details: str = "") -> None:
            """Report the check's status, with details a human can act on."""
            self.status = status
            self.details = details

        def copy(self) -> HealthCheckManager.Result:
            """An independent copy (cached results are handed out as copies)."""
            copied = HealthCheckManager.Result(self.name)
            copied.status, copied.details, copied.duration = self.status, self.details, self.duration
            return copied

        def to_dict(self) -> dict[str, Any]:
            return {
                "name": self.name,
                "status": str(self.status),
                "details": self.details,
                "duration": round(self.duration, 6),
            }

    class Health:
        """The overall status (the worst of the checks) and every check's result."""

        def __init__(self, status: HealthStatus = HealthStatus.OK) -> None:
            self.status = status
            self.results: list[HealthCheckManager.Result] = []

        def to_dict(self) -> dict[str, Any]:
            return {"status": str(self.status), "checks": [result.to_dict() for result in self.results]}

    class Check:
        """One registered check: bound method, settings, cached result and the run in progress."""

        def __init__(
            self, name: str, method: Callable[..., Any], cache: float, fail_if_slower_than: float
        ) -> None:
            self.name = name
            self.method = method
            self.is_async = inspect.iscoroutinefunction(method)
            self.cache = cache
            self.fail_if_slower_than = fail_if_slower_than
            self._last: HealthCheckManager.Result | None = None
            self._last_at = 0.0
            self._running: asyncio.Future[HealthCheckManager.Result] | None = None

        async def run(self, timeout: float) -> HealthCheckManager.Result:
            """This check's result: cached, joined from a run in progress, or from a new run."""
            if self.cache > 0 and self._last is not None and time.monotonic() - self._last_at < self.cache:
                return self._last.copy()
            import asyncio

            loop = asyncio.get_running_loop()
            running = self._running
            if running is None or running.done() or running.get_loop() is not loop:
                running = self._running = asyncio.ensure_future(self._execute())
            limit = self.fail_if_slower_than if self.fail_if_slower_than > 0 else timeout
            started = time.monotonic()
            try:
                result = (await asyncio.wait_for(asyncio.shield(running), limit)).copy()
            except asyncio.TimeoutError:
                result = HealthCheckManager.Result(self.name)
                result.set_status(HealthStatus.ERROR, f"no answer within {limit:g} s")
                result.duration = time.monotonic() - started
                return result  # not cached: the next call joins the run in progress
            self._last, self._last_at = result, time.monotonic()
            return result.copy()

        async def _execute(self) -> HealthCheckManager.Result:
            result = HealthCheckManager.Result(self.name)
            started = time.monotonic()
            try:
                if self.is_async:
                    await self.method(result)
                else:
                    import asyncio

                    await asyncio.to_thread(self.method, result)
            except Exception as exc:  # noqa: BLE001 - whatever a check raises is its health result
                result.set_status(HealthStatus.ERROR, f"{type(exc).__name__}: {exc}")
            result.duration = time.monotonic() - started
            if 0 < self.fail_if_slower_than < result.duration and result.status is not HealthStatus.ERROR:
                result.set_status(
                    HealthStatus.ERROR,
                    f"took {result.duration:.3f} s, more than the limit of {self.fail_if_slower_than:g} s",
                )
            return result

    def __init__(self) -> None:
        self.environment: Environment | None = None
        self.checks: list[HealthCheckManager.Check] = []
        self.timeout = DEFAULT_TIMEOUT

    @inject_environment()
    def set_environment(self, environment: Environment) -> None:
        self.environment = environment

    @inject_value("health.timeout", default=DEFAULT_TIMEOUT)
    def set_timeout(self, timeout: float) -> None:
        """Seconds to wait for a check without ``fail_if_slower_than`` (configuration: ``health.timeout``)."""
        self.timeout = timeout

    @on_init()
    def setup(self) -> None:
        """Collect the checks of every ``@health_checks`` class the environment provides."""
        if self.environment is None:
            return
        environment = self.environment
        types = environment.registered_types(
            lambda candidate: (
                isinstance(candidate, type) and Decorators.has_decorator(candidate, health_checks)
            )
        )
        for cls in types:
            self.add(environment.get(cls))

    def add(self, instance: Any) -> None:
        """Register the ``@health_check`` methods of ``instance``."""
        for method in TypeDescriptor.for_type(type(instance)).get_methods():
            decorator = method.get_decorator(health_check)
            if decorator is None:
                continue
            name, cache, fail_if_slower_than = decorator.args
            bound = getattr(instance, method.get_name())
            self.checks.append(
                HealthCheckManager.Check(name or method.get_name(), bound, cache, fail_if_slower_than)
            )

    async def check(self) -> HealthCheckManager.Health:
        """Run every check concurrently and combine them: the overall status is the worst one."""
        import asyncio

        results = await asyncio.gather(*(check.run(self.timeout) for check in self.checks))
        health = HealthCheckManager.Health()
        health.results = list(results)
        for result in results:
            if result.status.value > health.status.value:
                health.status = result.status
        if health.status is not HealthStatus.OK:
            log.warning(
                "health %s: %s",
                health.status,
                ", ".join(
                    f"{r.name}={r.status} {r.details}".strip()
                    for r in results
                    if r.status is not HealthStatus.OK
                ),
            )
        return health
