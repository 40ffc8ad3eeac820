"""Per-call phase records: what a profiled call spent where, on the client and on the server.

The contract between the parts of observability (issue #17): channels produce one ``CallRecord`` per
profiled call and hand it to ``emit``; collectors (``warpcall.profile()``, the pytest plugin, the
``warpcall profile`` command) subscribe. ``wanted()`` is what a channel asks before doing any of the
work, so a process that profiles nothing pays one call per remote call.

Phase names (monotonic nanoseconds, ``time.perf_counter_ns``; each value is the phase's duration):

- client, in order: ``proxy`` (proxy entry to channel), ``marshal`` (arguments to primitives),
  ``encode`` (envelope bytes), ``acquire`` (pooled connection or connect), ``send`` (request written),
  ``first_byte`` (waiting for the reply's first byte), ``receive`` (rest of the reply read),
  ``decode`` (envelope parsed), ``unmarshal`` (result to the declared type).
- server, from its ``Server-Timing`` header (only sent when the request carries
  ``x-rpc-timing: 1``): ``head`` (head parsed), ``body`` (body read), ``decode``, ``args``
  (argument load), ``impl`` (the implementation), ``encode``, and ``write`` where known.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

CLIENT_PHASES = ("proxy", "marshal", "encode", "acquire", "send", "first_byte", "receive", "decode", "unmarshal")
SERVER_PHASES = ("head", "body", "decode", "args", "impl", "encode", "write")

#: the request header asking the server for its phases, and the reply header carrying them
TIMING_REQUEST_HEADER = "x-rpc-timing"
SERVER_TIMING_HEADER = "server-timing"


@dataclass(slots=True)
class CallRecord:
    """One profiled call: the client's phases and, when the server sent them, the server's."""

    method: str  #: ``component:service:method``
    channel: str  #: the channel name, e.g. ``dispatch-msgpack``
    url: str  #: the instance called
    total_ns: int  #: proxy entry to result returned, on the client
    client: dict[str, int] = field(default_factory=dict)  #: phase -> nanoseconds
    server: dict[str, int] = field(default_factory=dict)  #: phase -> nanoseconds (from Server-Timing)
    status: int = 0  #: HTTP status, 0 when none arrived
    error: str | None = None  #: the exception type name when the call failed
    trace_id: str | None = None  #: the W3C trace id the call carried, if any

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "method": self.method,
            "channel": self.channel,
            "url": self.url,
            "total_ns": self.total_ns,
            "client": dict(self.client),
            "server": dict(self.server),
            "status": self.status,
            "error": self.error,
            "trace_id": self.trace_id,
        }


Sink = Callable[[CallRecord], None]

#: collectors of the current context (``warpcall.profile()`` pushes onto it)
_context_sinks: ContextVar[tuple[Sink, ...]] = ContextVar("warpcall.profile_sinks", default=())
#: collectors of the whole process (configuration ``profile.enabled``, the pytest plugin)
_global_sinks: list[Sink] = []
_lock = threading.Lock()


def wanted() -> bool:
    """True when some collector would receive a record made now (cheap: a list and a context variable)."""
    return bool(_global_sinks) or bool(_context_sinks.get())


def emit(record: CallRecord) -> None:
    """Hand ``record`` to every collector of this context and of the process."""
    for sink in _context_sinks.get():
        sink(record)
    for sink in tuple(_global_sinks):
        sink(record)


def add_global_sink(sink: Sink) -> None:
    """Receive every record of the process until ``remove_global_sink``."""
    with _lock:
        _global_sinks.append(sink)


def remove_global_sink(sink: Sink) -> None:
    """Stop receiving the records of the process."""
    with _lock:
        if sink in _global_sinks:
            _global_sinks.remove(sink)


def push_context_sink(sink: Sink) -> object:
    """Receive the records made in this context (and tasks it starts); returns a token for ``pop``."""
    return _context_sinks.set((*_context_sinks.get(), sink))


def pop_context_sink(token: object) -> None:
    """Undo ``push_context_sink``."""
    _context_sinks.reset(token)  # type: ignore[arg-type]


def parse_server_timing(value: str) -> dict[str, int]:
    """``head;dur=0.012, impl;dur=0.031`` (milliseconds, as the header's spec) -> phase -> nanoseconds."""
    phases: dict[str, int] = {}
    for item in value.split(","):
        name, _, params = item.strip().partition(";")
        for param in params.split(";"):
            key, _, number = param.strip().partition("=")
            if key == "dur" and name:
                try:
                    phases[name] = int(round(float(number) * 1_000_000))
                except ValueError:
                    pass
    return phases


def format_server_timing(phases: dict[str, int]) -> str:
    """phase -> nanoseconds -> a ``Server-Timing`` value in milliseconds with nanosecond digits."""
    return ", ".join(f"{name};dur={ns / 1_000_000:.6f}" for name, ns in phases.items())
