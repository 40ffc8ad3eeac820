"""``warpcall.profile()``: collect the phase records of calls and summarise them as percentiles.

::

    with warpcall.profile() as p:
        for _ in range(1000):
            proxy.data(DATA)
    print(p.table())            # per (method, channel): total, client and server phases, p50/p90/p99/max
    report = p.to_json()        # the same for tools (nanoseconds)

Scope: by default a profile receives the records of calls made in its *context*: the code inside the
``with`` block and the asyncio tasks it starts (they copy the context). A thread started inside does
not inherit the context (``threading.Thread`` starts from an empty one): run it with
``contextvars.copy_context().run`` or use ``profile(process=True)``, which receives every record of the
process, from any thread, while it is active. The configuration key ``profile.enabled`` (default false)
turns on one process-wide profile, ``process_profile()``, from the moment a channel reads it.

Memory is bounded: summaries come from histograms (every record counts), and at most ``max_records``
(default 10,000) records are kept in ``records`` (the rest are counted in ``dropped``).

Cost (callgrind, ``python -m benchmarks.instructions profile_collector``): a record arriving is queued,
about 5,000 instructions on the profiled call's path (well under a microsecond); the queue is folded
into the histograms when a summary is asked for, or every ``FOLD_AT`` (4096) records of one (method,
channel), about 40,000 instructions per record (15 phase values) in bulk, in whichever thread
delivers the 4096th record (a pause of a few tens of milliseconds between two calls, never inside one).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from warpcall.observe.hdr import Histogram
from warpcall.observe.records import (
    CLIENT_PHASES,
    SERVER_PHASES,
    CallRecord,
    add_global_sink,
    pop_context_sink,
    push_context_sink,
    remove_global_sink,
)

__all__ = ["CallSummary", "PhaseStats", "Summary", "process_profile", "profile"]

#: the percentiles every summary reports
PERCENTILES = (50.0, 90.0, 99.0)
DEFAULT_MAX_RECORDS = 10_000  # a record with both ends' phases holds ~1.5 KB


@dataclass(frozen=True, slots=True)
class PhaseStats:
    """Percentiles of one phase (nanoseconds); ``count`` is how many calls reported the phase."""

    count: int
    min: int
    mean: float
    p50: int
    p90: int
    p99: int
    max: int

    @classmethod
    def of(cls, histogram: Histogram) -> PhaseStats:
        """The statistics of ``histogram``."""
        return cls(
            histogram.count,
            histogram.min,
            histogram.mean,
            histogram.percentile(50),
            histogram.percentile(90),
            histogram.percentile(99),
            histogram.max,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (nanoseconds; ``mean`` rounded to a nanosecond)."""
        return {
            "count": self.count,
            "min": self.min,
            "mean": round(self.mean),
            "p50": self.p50,
            "p90": self.p90,
            "p99": self.p99,
            "max": self.max,
        }


@dataclass(frozen=True, slots=True)
class CallSummary:
    """Every record of one (method, channel): the total, the client's phases and the server's."""

    method: str
    channel: str
    count: int
    errors: int
    total: PhaseStats
    client: dict[str, PhaseStats] = field(default_factory=dict)
    server: dict[str, PhaseStats] = field(default_factory=dict)
    #: the exact histogram of ``total`` (what a percentile curve draws)
    histogram: Histogram = field(default_factory=Histogram, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (nanoseconds)."""
        return {
            "method": self.method,
            "channel": self.channel,
            "count": self.count,
            "errors": self.errors,
            "total": self.total.to_dict(),
            "client": {name: stats.to_dict() for name, stats in self.client.items()},
            "server": {name: stats.to_dict() for name, stats in self.server.items()},
        }


def _columns(rows: list[dict[str, int]]) -> Iterator[tuple[str, list[int]]]:
    """phase -> its values, from per-call dicts: the calls of one channel name the same phases in the
    same order, so grouping by the names and transposing the values (zip, in C) does the work."""
    groups: dict[tuple[str, ...], list[Any]] = {}
    for row in rows:
        names = tuple(row)
        group = groups.get(names)
        if group is None:
            group = groups[names] = []
        group.append(row.values())
    for names, values in groups.items():
        for name, column in zip(names, zip(*values)):
            yield name, list(column)


def _ordered(names: set[str], order: tuple[str, ...]) -> list[str]:
    # the contract's phases in call order, then any other phase a side reported, by name
    return [n for n in order if n in names] + sorted(names - set(order))


def _micros(ns: float) -> str:
    return f"{ns / 1000:.1f}"


class Summary:
    """The summaries of a profile, one per (method, channel), in the order the calls first came."""

    def __init__(self, calls: list[CallSummary], dropped: int = 0) -> None:
        self.calls = calls
        self.dropped = dropped

    def __getitem__(self, key: tuple[str, str]) -> CallSummary:
        for call in self.calls:
            if (call.method, call.channel) == key:
                return call
        raise KeyError(key)

    def __len__(self) -> int:
        return len(self.calls)

    def __iter__(self) -> Any:
        return iter(self.calls)

    def to_dict(self) -> dict[str, Any]:
        """``{"unit": "ns", "percentiles": [...], "calls": [...]}``."""
        return {
            "unit": "ns",
            "percentiles": list(PERCENTILES),
            "calls": [call.to_dict() for call in self.calls],
        }

    def rows(self) -> list[tuple[str, str, str, PhaseStats]]:
        """``(method, channel, phase, stats)`` per table row: ``total``, then ``client.<phase>``, ``server.<phase>``."""
        rows = []
        for call in self.calls:
            rows.append((call.method, call.channel, "total", call.total))
            rows.extend((call.method, call.channel, f"client.{n}", s) for n, s in call.client.items())
            rows.extend((call.method, call.channel, f"server.{n}", s) for n, s in call.server.items())
        return rows

    def table(self) -> str:
        """A text table in microseconds: one row per phase of every (method, channel)."""
        header = ("method", "channel", "phase", "calls", "p50 µs", "p90 µs", "p99 µs", "max µs", "mean µs")
        lines = [header]
        for method, channel, phase, stats in self.rows():
            lines.append(
                (
                    method,
                    channel,
                    phase,
                    str(stats.count),
                    _micros(stats.p50),
                    _micros(stats.p90),
                    _micros(stats.p99),
                    _micros(stats.max),
                    _micros(stats.mean),
                )
            )
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        text = []
        for number, line in enumerate(lines):
            cells = [cell.ljust(w) if i < 3 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths))]
            text.append("  ".join(cells).rstrip())
            if number == 0:
                text.append("  ".join("-" * w for w in widths))
        if not self.calls:
            text.append("(no calls recorded)")
        if self.dropped:
            text.append(f"({self.dropped} records not kept in .records; every one is in the figures)")
        return "\n".join(text)


#: records an aggregate holds before folding them into its histograms (bounds the memory they pin)
FOLD_AT = 4096


class _Aggregate:
    """Histograms of one (method, channel). A record is only queued when it arrives (the profiled
    call pays a list append); the queue is folded into the histograms when a summary is asked for or
    when it holds ``FOLD_AT`` records."""

    __slots__ = ("count", "errors", "total", "client", "server", "pending")

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0
        self.total = Histogram()
        self.client: dict[str, Histogram] = {}
        self.server: dict[str, Histogram] = {}
        self.pending: list[CallRecord] = []

    def add(self, record: CallRecord) -> None:
        pending = self.pending
        pending.append(record)
        if len(pending) >= FOLD_AT:
            self.fold()

    def fold(self) -> None:
        pending, self.pending = self.pending, []
        if not pending:
            return
        # values gathered per phase, then counted in bulk: a third of the cost of one record() per value
        self.count += len(pending)
        self.errors += sum(1 for record in pending if record.error is not None)
        self.total.record_many([record.total_ns for record in pending])
        for phases, histograms in (
            (_columns([record.client for record in pending]), self.client),
            (_columns([record.server for record in pending]), self.server),
        ):
            for name, numbers in phases:
                histogram = histograms.get(name)
                if histogram is None:
                    histogram = histograms[name] = Histogram()
                histogram.record_many(numbers)

    def summary(self, method: str, channel: str) -> CallSummary:
        self.fold()
        total = Histogram()
        total.merge(self.total)
        return CallSummary(
            method,
            channel,
            self.count,
            self.errors,
            PhaseStats.of(self.total),
            {n: PhaseStats.of(self.client[n]) for n in _ordered(set(self.client), CLIENT_PHASES)},
            {n: PhaseStats.of(self.server[n]) for n in _ordered(set(self.server), SERVER_PHASES)},
            total,
        )


class profile:  # noqa: N801 - used as ``warpcall.profile()``, like a function
    """Collect the ``CallRecord`` of every call made while active; summarise them as percentiles.

    ``process=False`` (default): the calls of this context (the ``with`` block and the tasks it
    starts). ``process=True``: every call of the process, any thread. ``max_records``: how many
    records ``records`` keeps (the summary counts all of them). A profile can be entered again after
    it exits; it keeps what it collected until ``clear()``.
    """

    def __init__(self, *, process: bool = False, max_records: int = DEFAULT_MAX_RECORDS) -> None:
        if max_records < 0:
            raise ValueError(f"max_records must be >= 0, not {max_records!r}")
        self.process = process
        self.max_records = max_records
        self.records: list[CallRecord] = []
        self.dropped = 0
        self._aggregates: dict[tuple[str, str], _Aggregate] = {}
        self._lock = threading.Lock()
        self._token: object | None = None
        self._active = False

    # collecting

    def add(self, record: CallRecord) -> None:
        """Receive one record (the sink the channels' ``emit`` calls; also usable directly)."""
        key = (record.method, record.channel)
        with self._lock:
            aggregate = self._aggregates.get(key)
            if aggregate is None:
                aggregate = self._aggregates[key] = _Aggregate()
            aggregate.add(record)
            if len(self.records) < self.max_records:
                self.records.append(record)
            else:
                self.dropped += 1

    def start(self) -> profile:
        """Start receiving records (what ``with`` does); returns self."""
        if self._active:
            raise RuntimeError("this profile is already active")
        if self.process:
            add_global_sink(self.add)
        else:
            self._token = push_context_sink(self.add)
        self._active = True
        return self

    def stop(self) -> None:
        """Stop receiving records (in the context that started a context-local profile)."""
        if not self._active:
            return
        self._active = False
        if self.process:
            remove_global_sink(self.add)
        elif self._token is not None:
            token, self._token = self._token, None
            pop_context_sink(token)

    @property
    def active(self) -> bool:
        """True between ``start`` and ``stop``."""
        return self._active

    def __enter__(self) -> profile:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def clear(self) -> None:
        """Forget every record and figure."""
        with self._lock:
            self.records = []
            self.dropped = 0
            self._aggregates = {}

    # reporting

    def summary(self) -> Summary:
        """Per (method, channel): count, errors and percentiles of the total and of every phase."""
        with self._lock:
            calls = [aggregate.summary(*key) for key, aggregate in self._aggregates.items()]
            return Summary(calls, self.dropped)

    def to_json(self, *, records: bool = False, indent: int | None = None) -> str:
        """The summary as JSON (nanoseconds); ``records=True`` adds every kept record."""
        document = self.summary().to_dict()
        if records:
            with self._lock:
                document["records"] = [record.to_dict() for record in self.records]
        return json.dumps(document, indent=indent)

    def table(self) -> str:
        """The summary as a text table (microseconds)."""
        return self.summary().table()


_process_profile: profile | None = None
_process_lock = threading.Lock()


def process_profile() -> profile:
    """The process-wide profile of ``profile.enabled``: started on first use, active until ``stop()``."""
    global _process_profile
    with _process_lock:
        if _process_profile is None or not _process_profile.active:
            _process_profile = _process_profile or profile(process=True)
            _process_profile.start()
        return _process_profile
