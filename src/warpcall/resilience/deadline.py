"""Deadlines: the absolute time by which a call must have its reply, carried across the wire.

A deadline lives in a context variable as a ``time.monotonic()`` instant, so it follows the
code that sets it into every call made beneath, threads and tasks started with a copied
context included. On the wire it travels as the *remaining* time in whole milliseconds in the
``x-rpc-timeout`` request header: each side measures against its own clock, so clock skew
between hosts does not matter. A server that receives the header sets the deadline for the
implementation, so the calls it makes in turn inherit what is left.

::

    with deadline(0.2):
        svc.method(...)       # connect + send + receive within 200 ms, else DeadlineExceeded
        remaining()           # seconds left (None: no deadline set)
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

#: the request header carrying a call's remaining time, in whole milliseconds
DEADLINE_HEADER = "x-rpc-timeout"
DEADLINE_HEADER_BYTES = DEADLINE_HEADER.encode("latin-1")
#: the most digits a received ``x-rpc-timeout`` value may have (more is malformed)
MAX_DIGITS = 12

_current: ContextVar[float | None] = ContextVar("warpcall_deadline", default=None)


def current() -> float | None:
    """The deadline in force here, as a ``time.monotonic()`` instant (None: none)."""
    return _current.get()


def remaining() -> float | None:
    """Seconds left before the deadline in force here (negative once passed; None: no deadline)."""
    at = _current.get()
    return None if at is None else at - time.monotonic()


@contextmanager
def deadline(seconds: float) -> Iterator[float]:
    """Run the block under a deadline ``seconds`` from now; an enclosing earlier deadline stays in force.

    Yields the absolute deadline (``time.monotonic()`` based).
    """
    at = time.monotonic() + seconds
    outer = _current.get()
    if outer is not None and outer < at:
        at = outer
    token = _current.set(at)
    try:
        yield at
    finally:
        _current.reset(token)


@contextmanager
def deadline_at(at: float | None) -> Iterator[float | None]:
    """Run the block under the absolute deadline ``at`` (None: none), as a server does for a request."""
    token = _current.set(at)
    try:
        yield at
    finally:
        _current.reset(token)


def header_value(at: float) -> bytes:
    """The ``x-rpc-timeout`` value for the deadline ``at``: the milliseconds left, at least 0."""
    left = int((at - time.monotonic()) * 1000.0)
    return b"%d" % (left if left > 0 else 0)


def parse_header(value: bytes | str, now: float) -> float | None:
    """The absolute deadline a received ``x-rpc-timeout`` value means, counted from ``now`` (None: malformed)."""
    # ASCII digits only: int() would also take signs, spaces and underscores, which no sender writes (bytes'
    # isdigit() is ASCII's; int() reads the bytes as they are, without a str made of them)
    if isinstance(value, str):
        if not value.isascii():
            return None
        value = value.encode("ascii")
    if not value.isdigit() or len(value) > MAX_DIGITS:
        return None
    return now + int(value) / 1000.0
