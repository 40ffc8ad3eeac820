"""How much of a server clients may hold: request head size and count, time to send a head, idle time,
connections, and the bulkheads of sync work (worker threads, their share per method, queued calls,
time on the event loop).

:class:`ServerLimits` is a :class:`~warpcall.server.fastapi_server.FastAPIServer` option. Its
defaults are safe for a server on an open network; each limit is enforced by the server's
protocol (:mod:`warpcall.server.protocol`) on every path a request can take: answered inline,
through ASGI (``inline_protocol=False``) or through the user's middleware.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from warpcall.di import ConfigurationException
from warpcall.exceptions import ServiceException

#: the defaults, as the README states them
DEFAULT_MAX_HEAD_SIZE = 16 * 1024
DEFAULT_MAX_HEADERS = 100
DEFAULT_HEAD_TIMEOUT = 10.0
DEFAULT_IDLE_TIMEOUT = 5.0
DEFAULT_MAX_CONNECTIONS = 1000
DEFAULT_MAX_WORKERS = 32
DEFAULT_MAX_QUEUED = 1024
DEFAULT_METHOD_SHARE = 0.5
DEFAULT_RETRY_AFTER = 1
DEFAULT_MAX_LOOP_TIME = 0.02


@dataclass(frozen=True)
class ServerLimits:
    """Bounds on what one connection, and all of them together, may hold of a server.

    - ``max_head_size``: bytes of a request head (request line and header lines, each header
      counted as ``name: value`` plus its line end, and the empty line that ends the head).
      A larger head is refused with ``431 Request Header Fields Too Large`` and the connection
      closes; a head still arriving is refused as soon as it passes the limit.
    - ``max_headers``: header fields in one request; more are refused with 431, connection closed.
    - ``head_timeout``: seconds from the first byte of a request head to its last. A head not
      complete by then is answered ``408 Request Timeout`` and the connection closes (slowloris).
      While an earlier request on the connection is still being answered, the clock starts
      when that answer is out.
    - ``idle_timeout``: seconds a connection may stay open with no request under way and no byte of
      the next one: after a reply (uvicorn's ``timeout_keep_alive``) and, unlike uvicorn, from the
      moment a connection is accepted. It is closed silently, as a keep-alive connection is.
      A request under way (its head, body or reply) is never cut off by this timer.
    - ``max_connections``: connections served at once (``None``: no limit). A request arriving on a
      connection beyond them, or while more than that many requests are under way, is answered
      ``503 Service Unavailable`` with ``connection: close``; this is uvicorn's
      ``limit_concurrency`` (set to ``max_connections + 1``, since uvicorn counts the asking
      connection too) and what nginx's ``limit_conn`` answers. A 503 tells a client or load
      balancer to retry elsewhere or later, where a refused or reset connection looks like a
      network failure; the surplus connection is still bounded, by this reply or by
      ``idle_timeout`` when it sends nothing.

    The bulkheads of sync implementations (``/invoke`` and REST share one pool, each method under its own share):

    - ``max_workers``: threads running sync implementations at once (default 32).
    - ``method_share``: the fraction of ``max_workers`` one method may occupy at once (default 0.5, at
      least one thread): the calls of a method beyond it wait for that method's own calls to finish,
      so one slow method never takes every worker and other methods, ``/invoke`` or REST, still run.
    - ``max_queued``: calls accepted but not yet running (default 1024). A call beyond it is refused
      at once with ``503 Service Unavailable`` and ``Retry-After: <retry_after>``; on ``/invoke`` the
      envelope names ``OverloadedException`` (the client raises it, with ``retry_after`` filled in).
    - ``retry_after``: the whole seconds such a 503 asks the caller to wait (default 1).
    - ``max_loop_time``: seconds a sync implementation may hold the event loop in ``adaptive`` mode
      (default 0.02). A call that takes longer moves its method to the worker pool for good, so no
      method runs on the loop longer than this twice; ``@blocking`` methods never run on the loop.

    A call whose caller's deadline (``x-rpc-timeout``) passes while it waits for a worker is dropped,
    never started: ``504``, ``DeadlineExceeded``.

    Raises :class:`~warpcall.exceptions.ServiceException` for a value that is not positive.

    Each field is also the configuration key ``server.limits.<field>`` (:meth:`configured`), read
    when the server is built and used when ``FastAPIServer(limits=...)`` is not given.
    """

    max_head_size: int = DEFAULT_MAX_HEAD_SIZE
    max_headers: int = DEFAULT_MAX_HEADERS
    head_timeout: float = DEFAULT_HEAD_TIMEOUT
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    max_connections: int | None = DEFAULT_MAX_CONNECTIONS
    max_workers: int = DEFAULT_MAX_WORKERS
    max_queued: int = DEFAULT_MAX_QUEUED
    method_share: float = DEFAULT_METHOD_SHARE
    retry_after: int = DEFAULT_RETRY_AFTER
    max_loop_time: float = DEFAULT_MAX_LOOP_TIME

    def __post_init__(self) -> None:
        for name in (
            "max_head_size", "max_headers", "head_timeout", "idle_timeout", "max_connections", "max_workers",
            "max_queued", "method_share", "retry_after", "max_loop_time",
        ):
            value = getattr(self, name)
            if value is None and name == "max_connections":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ServiceException(f"ServerLimits.{name} must be a positive number, got {value!r}")
        if self.method_share > 1:
            raise ServiceException(f"ServerLimits.method_share must be at most 1, got {self.method_share!r}")
        for name in ("max_head_size", "max_headers", "max_connections", "max_workers", "max_queued", "retry_after"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, int):
                raise ServiceException(f"ServerLimits.{name} must be an integer, got {value!r}")

    @property
    def method_workers(self) -> int:
        """Workers one method may occupy at once: ``method_share`` of ``max_workers``, at least one."""
        return max(1, int(self.max_workers * self.method_share))

    @property
    def limit_concurrency(self) -> int | None:
        """uvicorn's ``limit_concurrency`` for ``max_connections`` (uvicorn refuses at ``>=``, counting the asker)."""
        return None if self.max_connections is None else self.max_connections + 1

    @classmethod
    def configured(cls, get: Callable[..., Any]) -> ServerLimits:
        """The limits of the ``server.limits.*`` keys, built-in defaults for those not set.

        ``get`` is a :func:`checked_getter`: a value that is not a positive number of the field's kind
        raises :class:`~warpcall.di.ConfigurationException` naming its key.
        """
        method_share = get("server.limits.method_share", float, DEFAULT_METHOD_SHARE)
        if method_share > 1:
            raise ConfigurationException(
                f"configuration value 'server.limits.method_share' = {method_share!r} must be at most 1"
            )
        return cls(
            max_head_size=get("server.limits.max_head_size", int, DEFAULT_MAX_HEAD_SIZE),
            max_headers=get("server.limits.max_headers", int, DEFAULT_MAX_HEADERS),
            head_timeout=get("server.limits.head_timeout", float, DEFAULT_HEAD_TIMEOUT),
            idle_timeout=get("server.limits.idle_timeout", float, DEFAULT_IDLE_TIMEOUT),
            max_connections=get("server.limits.max_connections", int, DEFAULT_MAX_CONNECTIONS, unset="none"),
            max_workers=get("server.limits.max_workers", int, DEFAULT_MAX_WORKERS),
            max_queued=get("server.limits.max_queued", int, DEFAULT_MAX_QUEUED),
            method_share=method_share,
            retry_after=get("server.limits.retry_after", int, DEFAULT_RETRY_AFTER),
            max_loop_time=get("server.limits.max_loop_time", float, DEFAULT_MAX_LOOP_TIME),
        )


_MISSING: Any = object()


def checked_getter(get: Callable[..., Any] | None) -> Callable[..., Any]:
    """A reader of the server's numeric settings over ``get`` (``ConfigurationManager.get``; None: no
    configuration, every default applies).

    The reader, ``reader(key, kind, default, zero=False, unset=None)``, returns the key's value as
    ``kind`` (``int``, ``float``; other kinds as ``get`` converts them) or ``default`` when no source sets
    it. A number must be positive (``zero=True``: at least 0); an ``int`` must be whole (``"2.5"`` and
    ``2.5`` are refused, not rounded); ``unset`` names the text (or YAML ``null``) that stands for None
    ("no limit"). Anything else raises :class:`~warpcall.di.ConfigurationException` naming the key.
    """

    def reader(key: str, kind: type, default: Any, zero: bool = False, unset: str | None = None) -> Any:
        if get is None:
            return default
        if kind not in (int, float):
            return get(key, kind, default)  # ConfigurationException naming the key when it does not convert
        value = get(key, object, _MISSING)
        if value is _MISSING:
            return default
        if unset is not None and (value is None or (isinstance(value, str) and value.strip().lower() == unset)):
            return None
        number = _number(value, kind)
        if number is None or not (number >= 0 if zero else number > 0):
            what = "whole number" if kind is int else "number"
            bound = "at least 0" if zero else "above 0"
            alternative = f" or {unset!r}" if unset is not None else ""
            raise ConfigurationException(
                f"configuration value {key!r} = {value!r} is not a {what} {bound}{alternative}; "
                "fix the value in its configuration source"
            )
        return number

    return reader


def _number(value: Any, kind: type) -> int | float | None:
    """``value`` (a number, or its text from a file or the environment) as ``kind``; None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = int(value.strip()) if kind is int else float(value.strip())
        except ValueError:
            return None
    if kind is int:
        return value if isinstance(value, int) else None
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None  # not NaN nor inf
