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

Liveness: a server hands its event loop to :meth:`HealthCheckManager.watch_loop`, which
starts a :class:`LoopWatchdog` on it. The watchdog's thread measures how late the loop
runs a callback; while that lag exceeds ``health.loop.max_lag`` the process counts as
stalled: heartbeating registries stop renewing its registrations (so it leaves the
rotation within their TTL) and the health result carries an ``event-loop`` check that is
ERROR (HTTP 503). The health route itself cannot answer while the loop is stuck; its first
answer after a stall is still ERROR and names the stall, and the lag is in every answer.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

from warpcall.di import (
    Decorators,
    Environment,
    TypeDescriptor,
    inject_environment,
    injectable,
    on_destroy,
    on_init,
)
from warpcall.di.configuration import inject_value

if TYPE_CHECKING:
    import asyncio

    from warpcall.registry.contract import ComponentRegistry

C = TypeVar("C", bound=type)
F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger("warpcall.health")

#: seconds the manager waits for a check that sets no ``fail_if_slower_than``
DEFAULT_TIMEOUT = 10.0
#: seconds the serving event loop may take to run a callback before the process counts as stalled
DEFAULT_MAX_LOOP_LAG = 2.0


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


class LoopWatchdog:
    """Measures, from a thread of its own, how late an event loop runs a callback.

    Every ``interval`` seconds (default: ``max_lag / 4``, at most 0.5 s) the thread schedules
    a no-op on ``loop`` with ``call_soon_threadsafe``, one at a time, and notes when it ran.
    :meth:`lag` is the larger of the last measured delay and the age of the probe still
    waiting. The loop is :meth:`alive` while that is within ``max_lag``, no probe came back
    later than that in the last ``max_lag`` seconds (so one stall does not flap in and out,
    and the first answers after it still report it) and the loop is not closed. A loop
    blocked for longer than ``max_lag`` stops being alive at most ``interval + max_lag``
    after it stopped and is alive again ``max_lag`` after it recovered. Cost while
    healthy: one callback on the loop per interval.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, max_lag: float = DEFAULT_MAX_LOOP_LAG, interval: float = 0.0
    ) -> None:
        if max_lag <= 0:
            raise ValueError(f"max_lag must be positive, not {max_lag!r}")
        self.loop = loop
        self.max_lag = max_lag
        self.interval = interval if interval > 0 else min(max_lag / 4, 0.5)
        #: the delay of the last probe that ran (seconds)
        self.last_lag = 0.0
        #: how late the latest probe beyond ``max_lag`` ran, and when (monotonic); 0.0 / None: none yet
        self.last_stall = 0.0
        self.last_stall_at: float | None = None
        self._sent: float | None = None
        self._closed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> LoopWatchdog:
        """Start probing (a daemon thread); returns self."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="warpcall-loop-watchdog", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop probing and join the thread. Safe to call twice."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def lag(self) -> float:
        """Seconds the loop is behind: the last measured delay, or the wait of the pending probe if longer."""
        sent = self._sent
        pending = time.monotonic() - sent if sent is not None else 0.0
        return max(self.last_lag, pending)

    def alive(self) -> bool:
        """Whether the loop runs callbacks within ``max_lag`` and did so for the last ``max_lag`` seconds
        (False once it is closed)."""
        return not self._closed and self.lag() <= self.max_lag and not self._recovering()

    def _recovering(self) -> bool:
        stalled_at = self.last_stall_at
        return stalled_at is not None and time.monotonic() - stalled_at < self.max_lag

    def probe(self) -> None:
        """Schedule one probe on the loop unless one is still waiting (its age is then the lag)."""
        if self._sent is not None or self._closed:
            return
        sent = self._sent = time.monotonic()
        try:
            self.loop.call_soon_threadsafe(self._answered, sent)
        except RuntimeError:  # the loop is closed: nothing serves any more
            self._closed = True

    def result(self) -> HealthCheckManager.Result:
        """The ``event-loop`` check: ERROR while not alive, with the lag and the latest stall."""
        result = LoopResult(self)
        lag = self.lag()
        details = f"lag {lag * 1000:.1f} ms (bound {self.max_lag:g} s)"
        if self.last_stall_at is not None:
            ago = time.monotonic() - self.last_stall_at
            details += f"; last stall: a callback ran {self.last_stall:.2f} s late, {ago:.1f} s ago"
        if self._closed:
            result.set_status(HealthStatus.ERROR, "the event loop is closed")
        elif lag > self.max_lag:
            result.set_status(HealthStatus.ERROR, f"the event loop is stalled: {details}")
        elif self._recovering():
            result.set_status(HealthStatus.ERROR, f"the event loop was stalled: {details}")
        else:
            result.set_status(HealthStatus.OK, details)
        return result

    def __str__(self) -> str:
        state = "closed" if self._closed else f"lag {self.lag():.3f} s, bound {self.max_lag:g} s"
        return f"event loop watchdog ({state})"

    def _answered(self, sent: float) -> None:
        # runs on the loop
        lag = time.monotonic() - sent
        self.last_lag = lag
        if lag > self.max_lag:
            self.last_stall, self.last_stall_at = lag, time.monotonic()
            log.warning("the event loop ran a callback %.2f s late (bound %g s)", lag, self.max_lag)
        self._sent = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval) and not self._closed:
            self.probe()


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

        def copy_from(self, value: HealthCheckManager.Result) -> None:
            """Take ``value``'s status and details (aspyx-service's way of reusing a cached result)."""
            self.status, self.details = value.status, value.details

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
            # cached from the run's start, as aspyx-service 0.11.6 counts: `cache` seconds after it began
            self._last, self._last_at = result, time.monotonic() - result.duration
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
            # as aspyx-service 0.11.6: only a check that reported OK turns ERROR for being slow
            if 0 < self.fail_if_slower_than < result.duration and result.status is HealthStatus.OK:
                result.set_status(
                    HealthStatus.ERROR,
                    f"took {result.duration:.3f} s, more than the limit of {self.fail_if_slower_than:g} s",
                )
            return result

    def __init__(self) -> None:
        self.environment: Environment | None = None
        self.checks: list[HealthCheckManager.Check] = []
        self.timeout = DEFAULT_TIMEOUT
        self.max_loop_lag = DEFAULT_MAX_LOOP_LAG
        self.loop_probe_interval = 0.0
        #: the serving loop's watchdog, once a server called :meth:`watch_loop`
        self.watchdog: LoopWatchdog | None = None
        self._liveness_registry: ComponentRegistry | None = None
        #: the last combined result of :meth:`check` (the ``warpcall_health_status`` gauges read it when scraped)
        self.last: HealthCheckManager.Health | None = None

    @inject_environment()
    def set_environment(self, environment: Environment) -> None:
        self.environment = environment

    @inject_value("health.timeout", default=DEFAULT_TIMEOUT)
    def set_timeout(self, timeout: float) -> None:
        """Seconds to wait for a check without ``fail_if_slower_than`` (configuration: ``health.timeout``)."""
        self.timeout = timeout

    @inject_value("health.loop.max_lag", default=DEFAULT_MAX_LOOP_LAG)
    def set_max_loop_lag(self, max_lag: float) -> None:
        """Seconds the serving loop may run a callback late before the process counts as stalled
        (configuration: ``health.loop.max_lag``, default 2 s)."""
        if max_lag <= 0:
            raise ValueError(f"health.loop.max_lag must be positive, not {max_lag!r}")
        self.max_loop_lag = max_lag

    @inject_value("health.loop.probe_interval", default=0.0)
    def set_loop_probe_interval(self, interval: float) -> None:
        """Seconds between two probes of the serving loop (configuration: ``health.loop.probe_interval``;
        0, the default: ``max_lag / 4``, at most 0.5 s)."""
        if interval < 0:
            raise ValueError(f"health.loop.probe_interval must not be negative, not {interval!r}")
        self.loop_probe_interval = interval

    def watch_loop(
        self, loop: asyncio.AbstractEventLoop, registry: ComponentRegistry | None = None
    ) -> LoopWatchdog:
        """Start a :class:`LoopWatchdog` on the server's ``loop``; ``registry`` renews registrations
        only while it is alive. Replaces a watchdog started before."""
        self.stop_watching()
        self.watchdog = LoopWatchdog(loop, self.max_loop_lag, self.loop_probe_interval).start()
        if registry is not None:
            registry.set_liveness(self.watchdog)
            self._liveness_registry = registry
        return self.watchdog

    @on_destroy()
    def stop_watching(self) -> None:
        """Stop the watchdog and take it back from the registry (the server stopped)."""
        if self._liveness_registry is not None:
            self._liveness_registry.set_liveness(None)
            self._liveness_registry = None
        if self.watchdog is not None:
            self.watchdog.stop()

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

        results = list(await asyncio.gather(*(check.run(self.timeout) for check in self.checks)))
        watchdog = self.watchdog
        if watchdog is not None and watchdog.loop is asyncio.get_running_loop():
            results.append(watchdog.result())
        health = HealthCheckManager.Health()
        health.results = results
        for result in results:
            if result.status.value > health.status.value:
                health.status = result.status
        self.last = health
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


class LoopResult(HealthCheckManager.Result):
    """The ``event-loop`` check's result; its dict also carries ``lag`` and ``max_lag`` in seconds."""

    def __init__(self, watchdog: LoopWatchdog) -> None:
        super().__init__("event-loop")
        self.lag = watchdog.lag()
        self.max_lag = watchdog.max_lag

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "lag": round(self.lag, 6), "max_lag": self.max_lag}
