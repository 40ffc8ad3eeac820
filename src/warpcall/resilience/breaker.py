"""Circuit breakers and outlier ejection, per (component, instance URL).

Every HTTP channel (one per component it calls) keeps a :class:`CircuitBreakers` table keyed by
instance URL. An instance's breaker is

- **closed** while calls to it succeed. It *opens* after ``failures`` consecutive failures, or when
  the failure rate over the last ``window`` seconds reaches ``failure_rate`` with at least
  ``min_calls`` calls in it;
- **open** for ``open_for`` seconds: the channel's URL selector skips the instance (round robin goes
  to the others, failover too). Each time a probe fails the instance is ejected for twice as long
  as the time before, up to ``max_open_for`` (as Envoy's outlier ejection grows its ejection time);
- **half-open** once the cool-down is over: the next call is sent there as the *probe*, and only
  that one. Its success closes the breaker (and resets the ejection time); its failure opens it
  again. A probe that reports nothing within the channel's timeout is followed by another.

When every instance is ejected and none is due a probe, a call fails at once with
:class:`~warpcall.exceptions.CircuitOpenException` naming each instance and the time until its
next probe.

What counts as a failure says something about the instance: the call could not be delivered or
answered (connection refused or reset, a timeout, the call's deadline passing while it waited,
a malformed reply) or the instance answered 502, 503 (overloaded) or 504 (it held the call past
its deadline). A remote implementation's exception and a 4xx caller fault are answers, and count
as successes.

Cost on the plain call path: the channel compares the reply's status with one number
(this module's ``outcome_from``: 502 while no instance of any channel has a failure on record,
0 while one has, so that successes are then recorded too) and the selector compares one pointer (its guard, None while no
instance is ejected). An instance's record starts at its first failure and is dropped once it has
none left in the window: the failure-rate window of an instance therefore counts the calls since
its first recent failure, not those before (they were all successes).

Configuration (``http.breaker.*`` for every channel; ``http.<channel>.breaker.*`` overrides one
channel, e.g. ``http.dispatch-json.breaker.failures``):

===============================  =======  ====================================================
key                              default  meaning
===============================  =======  ====================================================
``http.breaker.enabled``         true     false: no breaker on the channel
``http.breaker.failures``        5        consecutive failures that open it (0: not this way)
``http.breaker.failure_rate``    0.5      failure rate over the window that opens it (0: not this way)
``http.breaker.window``          10.0     seconds of the sliding failure-rate window
``http.breaker.min_calls``       20       calls the window needs before its rate counts
``http.breaker.open_for``        5.0      seconds ejected the first time (doubles on each failed probe)
``http.breaker.max_open_for``    60.0     the longest ejection (never shorter than open_for)
===============================  =======  ====================================================
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Callable

from warpcall.exceptions import (
    CircuitOpenException,
    DeadlineExceeded,
    ResponseTooLargeException,
    ServiceCommunicationException,
    ServiceException,
)
from warpcall.resilience.failures import HandshakeRefused, RequestNotSent

if TYPE_CHECKING:
    from warpcall.di.configuration import ConfigurationManager

__all__ = [
    "BreakerSettings",
    "CircuitBreakers",
    "CLOSED",
    "HALF_OPEN",
    "OPEN",
    "RECORD_ALL",
    "RECORD_FAILURES",
    "RECORD_NONE",
    "counts_against",
]

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half-open"

#: statuses from which a reply counts against its instance (502 bad gateway, 503 overloaded, 504 held too long)
RECORD_FAILURES = 502
#: ``outcome_from`` while an instance has a record: every reply is shown to the breaker
RECORD_ALL = 0
#: ``outcome_from`` with the breaker disabled: no reply status reaches it
RECORD_NONE = 1 << 30

#: the status from which the channels show a reply to their breakers: RECORD_FAILURES while no breaker of the
#: process has a record, RECORD_ALL while one has (each channel's table then drops what is not its own at once).
#: Process-wide, a module attribute: a channel's own attribute would cost its call path a slow instance lookup
outcome_from = RECORD_FAILURES
_watching = 0  # tables holding a record
_WATCH_LOCK = threading.Lock()

_BUCKETS = 10  # the failure-rate window slides in tenths
_KINDS: dict[str, type] = {"enabled": bool, "failures": int, "min_calls": int}  # the others are seconds or a rate


@dataclass(frozen=True)
class BreakerSettings:
    """The thresholds of a channel's circuit breakers (see the module docstring for the keys)."""

    enabled: bool = True
    failures: int = 5
    failure_rate: float = 0.5
    window: float = 10.0
    min_calls: int = 20
    open_for: float = 5.0
    max_open_for: float = 60.0

    def __post_init__(self) -> None:
        if self.failures < 0:
            raise ServiceException(f"http.breaker.failures must be 0 (off) or more, got {self.failures}")
        if not 0.0 <= self.failure_rate <= 1.0:
            raise ServiceException(f"http.breaker.failure_rate must be within 0..1 (0: off), got {self.failure_rate}")
        if not self.window > 0.0:
            raise ServiceException(f"http.breaker.window must be a positive number of seconds, got {self.window}")
        if self.min_calls < 1:
            raise ServiceException(f"http.breaker.min_calls must be 1 or more, got {self.min_calls}")
        if not self.open_for > 0.0:
            raise ServiceException(f"http.breaker.open_for must be a positive number of seconds, got {self.open_for}")
        if not self.max_open_for > 0.0:
            raise ServiceException(
                f"http.breaker.max_open_for must be a positive number of seconds, got {self.max_open_for}"
            )

    @classmethod
    def from_configuration(cls, configuration: ConfigurationManager | None, channel: str) -> BreakerSettings:
        """``http.breaker.<key>``, each overridden by ``http.<channel>.breaker.<key>`` when set."""
        if configuration is None:
            return cls()
        values: dict[str, Any] = {}
        for field in fields(cls):
            kind: type = _KINDS.get(field.name, float)
            value = configuration.get(f"http.breaker.{field.name}", kind, field.default)
            if channel:
                value = configuration.get(f"http.{channel}.breaker.{field.name}", kind, value)
            values[field.name] = value
        return replace(cls(), **values)


class _Instance:
    """One instance URL's breaker: its state and its recent record."""

    __slots__ = ("url", "state", "consecutive", "buckets", "until", "ejections")

    def __init__(self, url: str) -> None:
        self.url = url
        self.state = CLOSED
        self.consecutive = 0
        #: [bucket number, calls, failures], oldest first
        self.buckets: deque[list[int]] = deque()
        #: OPEN: when a probe may go; HALF_OPEN: when the probe counts as lost (another may go)
        self.until = 0.0
        #: how many times in a row it was ejected (the cool-down doubles with each)
        self.ejections = 0

    def count(self, bucket: int, failed: bool) -> None:
        buckets = self.buckets
        while buckets and buckets[0][0] <= bucket - _BUCKETS:  # slid out of the window
            buckets.popleft()
        if buckets and buckets[-1][0] == bucket:
            last = buckets[-1]
        else:
            last = [bucket, 0, 0]
            buckets.append(last)
        last[1] += 1
        if failed:
            last[2] += 1

    def totals(self) -> tuple[int, int]:
        calls = failures = 0
        for _, c, f in self.buckets:
            calls += c
            failures += f
        return calls, failures


class CircuitBreakers:
    """The breakers of one channel (one component), keyed by instance URL.

    ``owner`` names the channel in errors; ``selector`` returns the channel's current URL selector
    (a channel may replace its selector); ``watch`` is told whether any instance has a record
    (the channel then shows every reply to :meth:`outcome`); ``probe_timeout`` is how long a probe
    may take before another goes; ``clock`` is ``time.monotonic`` unless a test injects one.
    """

    def __init__(
        self,
        settings: BreakerSettings,
        owner: str = "",
        selector: Callable[[], Any] | None = None,
        watch: Callable[[bool], None] | None = None,
        probe_timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.owner = owner
        self._selector = selector
        self._watch = watch
        self.probe_timeout = probe_timeout
        #: the time source (``time.monotonic``); a test may replace it to step through cool-downs
        self.clock = clock
        self._lock = threading.Lock()
        self._table: dict[str, _Instance] = {}
        self._bucket_width = settings.window / _BUCKETS
        self._next_due = float("inf")  # the earliest moment an ejected instance may be probed
        self._guarding = False
        self._watching = False  # counted in the module's _watching
        self._spread = 0  # spreads the calls whose pick was ejected meanwhile over the live instances

    def __del__(self) -> None:
        if self._watching:  # a table dropped with a record: the other channels go back to the free path
            self._watching = False
            _count_watching(-1)

    # --- what the table says -------------------------------------------------------------------------------

    def state(self, url: str) -> str:
        """``closed``, ``open`` or ``half-open`` for the instance ``url``."""
        entry = self._table.get(url)
        return CLOSED if entry is None else entry.state

    def ejected(self) -> list[str]:
        """The instances whose breaker is open or half-open, in the order they were recorded."""
        return [url for url, entry in list(self._table.items()) if entry.state != CLOSED]

    def describe_ejected(self) -> str:
        """The ejected instances, each with the time until its next probe (or its probe under way)."""
        now = self.clock()
        return ", ".join(self._describe(url, now) for url in self.ejected()) + " (ejected by their circuit breakers)"

    def _describe(self, url: str, now: float) -> str:
        entry = self._table.get(url)
        if entry is None or entry.state == CLOSED:
            return f"{url} (closed)"  # a race with a state change: say so rather than hide it
        if entry.state == OPEN:
            return f"{url} (next probe in {max(entry.until - now, 0.0):.3f} s)"
        return f"{url} (probe under way)"

    def watching(self) -> bool:
        """Whether any instance has a failure on record (every reply is then shown to :meth:`outcome`)."""
        return bool(self._table)

    # --- outcomes --------------------------------------------------------------------------------------------

    def outcome(self, url: str, status: int) -> None:
        """Record a reply of HTTP ``status`` from the instance ``url`` (502, 503 and 504 count as failures)."""
        if RECORD_FAILURES <= status <= 504:
            self.failure(url)
        else:
            self.success(url)

    def success(self, url: str) -> None:
        """Record a call the instance ``url`` answered."""
        if url not in self._table:
            return  # nothing on record: nothing to change (the plain case while watching another instance)
        with self._lock:
            entry = self._table.get(url)
            if entry is None:
                return
            now = self.clock()
            if entry.state == CLOSED:
                entry.consecutive = 0
                if not self.settings.failure_rate:
                    del self._table[url]  # no window kept: the record goes
                else:
                    entry.count(self._bucket(now), False)
                    if entry.totals()[1] == 0:  # no failure left in the window: the record goes
                        del self._table[url]
            elif entry.state == HALF_OPEN:
                del self._table[url]  # the probe answered: closed, its ejection time back to the first
            # OPEN: a call sent before the ejection answered late; the probe decides
            self._changed(now)

    def failure(self, url: str) -> None:
        """Record a call the instance ``url`` did not answer, or answered 502/503/504."""
        with self._lock:
            now = self.clock()
            entry = self._table.get(url)
            if entry is None:
                entry = self._table[url] = _Instance(url)
            if entry.state == CLOSED:
                entry.consecutive += 1
                if self.settings.failure_rate:
                    entry.count(self._bucket(now), True)
                if self._trips(entry):
                    self._eject(entry, now)
            elif entry.state == HALF_OPEN:
                self._eject(entry, now)  # the probe failed: ejected again, for longer
            self._changed(now)

    def _trips(self, entry: _Instance) -> bool:
        settings = self.settings
        if settings.failures and entry.consecutive >= settings.failures:
            return True
        if settings.failure_rate:
            calls, failures = entry.totals()
            return calls >= settings.min_calls and failures >= settings.failure_rate * calls
        return False

    def _eject(self, entry: _Instance, now: float) -> None:
        settings = self.settings
        longest = max(settings.max_open_for, settings.open_for)  # an open_for set alone is not cut short
        cool_down = min(settings.open_for * (2.0 ** min(entry.ejections, 30)), longest)
        entry.ejections += 1
        entry.state = OPEN
        entry.until = now + cool_down
        entry.consecutive = 0
        entry.buckets.clear()

    def _bucket(self, now: float) -> int:
        return int(now / self._bucket_width)

    # --- the selector's side ----------------------------------------------------------------------------------

    def _changed(self, now: float) -> None:
        """After a change of state (lock held): the selector's live list and guard, the channel's watch."""
        due = float("inf")
        for entry in self._table.values():
            if entry.state != CLOSED and entry.until < due:
                due = entry.until
        self._next_due = due
        guarding = due != float("inf")
        if guarding or self._guarding:
            self._guarding = guarding
            self._refilter()
        watching = bool(self._table)
        if watching != self._watching:
            self._watching = watching
            _count_watching(1 if watching else -1)
        if self._watch is not None:
            self._watch(watching)

    def _refilter(self) -> None:
        selector = self._selector() if self._selector is not None else None
        if selector is None:
            return
        table = self._table
        if not self._guarding:
            selector.set_live(selector.urls, None)
            return
        every = selector.urls
        live = tuple(url for url in every if url not in table or table[url].state == CLOSED)
        selector.set_live(live, self)

    def refilter(self, selector: Any) -> None:
        """The selector took a new URL list from the registry: pick from its instances not ejected."""
        with self._lock:
            if self._selector is not None and self._selector() is selector:
                self._refilter()
            else:  # a selector this table does not guard (replaced): it picks from all
                selector.set_live(selector.urls, None)

    def route(self, selector: Any, picked: str | None) -> str:
        """The URL the selector's pick ``picked`` becomes (None: no instance is live).

        An ejected instance whose cool-down is over takes the call as its probe; a pick that is
        ejected (the selector's list changed under it) goes to a live one; with none live and no
        probe due, CircuitOpenException names every ejected instance.
        """
        now = self.clock()
        if now >= self._next_due:
            with self._lock:
                for entry in self._table.values():
                    if entry.state != CLOSED and entry.until <= now and entry.url in selector.urls:
                        entry.state = HALF_OPEN
                        entry.until = now + self.probe_timeout  # the probe's answer is due by then
                        self._changed(now)
                        return entry.url
        if picked is not None:
            record = self._table.get(picked)
            if record is None or record.state == CLOSED:
                return picked
            with self._lock:  # the selector picked from a list older than the ejection: filter it again
                self._refilter()
                live = selector.live_urls
                if live:
                    self._spread += 1
                    return str(live[self._spread % len(live)])
        raise self._all_open(selector, now)

    def _all_open(self, selector: Any, now: float) -> ServiceCommunicationException:
        every = selector.urls
        if not every:  # the registry knows none: the selector's own words
            return ServiceCommunicationException(
                f"no URL available for {self.owner or 'this channel'}: "
                "the registry knows no running instance; start one or check the registry"
            )
        named = [self._describe(url, now) for url in every]
        return CircuitOpenException(
            f"{self.owner or 'this channel'}: every instance is ejected by its circuit breaker: {', '.join(named)}"
        )


def _count_watching(change: int) -> None:
    global outcome_from, _watching
    with _WATCH_LOCK:
        _watching += change
        outcome_from = RECORD_ALL if _watching else RECORD_FAILURES


def counts_against(exc: BaseException) -> bool:
    """Whether a call's exception says something about the instance's health (then it counts as a failure).

    Counts: the call's deadline passing, a connection refused, reset or closed without an answer, a
    connect, write, read or pool timeout. Not: a request that could not be built (it fails the same
    on every instance), a response over the client's size limits (the answer's fault, not the host's) nor
    a TLS handshake refused (a certificate, configuration not health).
    """
    if isinstance(exc, DeadlineExceeded):
        return True
    if isinstance(exc, HandshakeRefused):  # a certificate (the server's or this client's) is not the host's health
        return False
    httpx = sys.modules.get("httpx")  # none of its errors exist before it is imported
    if httpx is None:
        return isinstance(exc, RequestNotSent)
    if isinstance(exc, ResponseTooLargeException):
        return False
    return isinstance(exc, (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError, RequestNotSent))
