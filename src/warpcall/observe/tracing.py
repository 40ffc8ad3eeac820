"""W3C trace context (``traceparent`` / ``tracestate``) carried by every call.

The contract between the client and server sides of tracing (issue #17): the current trace context
lives in a context variable; a channel sends it as ``traceparent`` (and ``tracestate``) with a new span
id for the call, a server reads it from the request and sets it for the implementation, so the calls
the implementation makes continue the same trace. OpenTelemetry spans, where ``opentelemetry-api`` is
installed and a tracer provider is configured, are made on top of this by the client and server sides.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from typing import NamedTuple

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"


class TraceContext(NamedTuple):
    """One position in a trace: W3C ``traceparent`` fields plus the opaque ``tracestate``."""

    trace_id: str  #: 32 lower-case hex digits, not all zero
    span_id: str  #: 16 lower-case hex digits, not all zero (the parent span of what comes next)
    flags: int = 1  #: bit 0: sampled
    tracestate: str = ""

    def traceparent(self) -> str:
        """The ``traceparent`` header value (version 00)."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags:02x}"

    def child(self) -> TraceContext:
        """The same trace with a new span id: what a call sends for the span it opens."""
        return self._replace(span_id=new_span_id())


#: the trace context of the running code (set by the server for an implementation, or by the user)
current: ContextVar[TraceContext | None] = ContextVar("warpcall.trace_context", default=None)

_HEX = frozenset("0123456789abcdef")


def new_trace_id() -> str:
    """A random 128-bit trace id in hex."""
    return os.urandom(16).hex()


def new_span_id() -> str:
    """A random 64-bit span id in hex."""
    return os.urandom(8).hex()


def parse_traceparent(value: str | None, tracestate: str | None = None) -> TraceContext | None:
    """A ``traceparent`` header value -> ``TraceContext``, or ``None`` when it is not a valid one.

    Follows the W3C rules: version ``ff`` is invalid; ids of all zeros are invalid; a higher version
    than 00 is read for its first four fields when the value is at least that long.
    """
    if not value:
        return None
    value = value.strip()
    parts = value.split("-")
    if len(parts) < 4:
        return None
    version, trace_id, span_id, flags = parts[0], parts[1], parts[2], parts[3]
    if len(version) != 2 or not set(version) <= _HEX or version == "ff":
        return None
    if version == "00" and len(parts) != 4:
        return None
    if len(trace_id) != 32 or not set(trace_id) <= _HEX or trace_id == "0" * 32:
        return None
    if len(span_id) != 16 or not set(span_id) <= _HEX or span_id == "0" * 16:
        return None
    if len(flags) != 2 or not set(flags) <= _HEX:
        return None
    return TraceContext(trace_id, span_id, int(flags, 16), (tracestate or "").strip())
