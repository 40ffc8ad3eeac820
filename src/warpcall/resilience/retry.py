"""Retries: which failed calls go again, where, after how long, and how many the channel may afford.

A call that failed is sent again only when doing so cannot do harm:

- **not sent** (no byte of the request reached the instance: :func:`warpcall.resilience.failures.classify`)
  or **refused** (a 503 ``OverloadedException``: the server's bulkhead or drain turned it away before
  the implementation started): the next instance the selector knows takes it, at once, for any method,
  each instance once. A refusal's ``Retry-After`` is the least time before the call goes to that
  instance again.
- **maybe sent** (reset, closed or timed out while waiting for the reply, a bad reply): only a method
  declared idempotent (:func:`warpcall.service.idempotent` on the service's method, or a name listed in
  ``http.retry.idempotent``) goes again, to the next instance, after an exponential backoff with full
  jitter (a uniform pick in ``[0, min(max_backoff, backoff * 2**n)]`` for the n-th retry), at most
  ``attempts`` sends in all, and only while the channel's :class:`RetryBudget` has a token.

Nothing is sent once the call's deadline has passed, and no backoff sleeps past it: the call ends
with :class:`~warpcall.exceptions.DeadlineExceeded` naming the method, its deadline and the instances tried.

Configuration (per channel ``http.<channel>.retry.<key>`` overrides ``http.retry.<key>``):

==========================  =======  =============================================================
key                         default  meaning
==========================  =======  =============================================================
``attempts``                3        most sends of an idempotent call that may reach a server (1: no retry)
``backoff``                 0.05     seconds: the first retry waits up to this, each next one up to twice more
``max_backoff``             1.0      seconds: no wait is drawn from a longer span than this
``budget``                  0.2      retries may be at most this fraction of the channel's calls
``budget_reserve``          10       retries allowed beyond the fraction (the bucket's size)
``idempotent``              (none)   ``component:service:method`` names, ``fnmatch`` patterns allowed
==========================  =======  =============================================================

The budget is a token bucket per channel: every call deposits ``budget`` tokens (counted lazily
from the channel's URL selector's picks, one per call: the call path counts nothing itself), each retry of a maybe-sent call withdraws one, and the
bucket holds at most ``budget_reserve``, its size at the start. So over any stretch of time,
retries <= ``budget`` x calls + ``budget_reserve``: during an outage the load a client sends grows by
that fraction at most, however many calls fail. Failing over a call that was not sent, or refused
unstarted, takes no token (it added no work anywhere).
"""

from __future__ import annotations

import math
import random
import threading
import time
from fnmatch import fnmatchcase
from typing import Any, Callable, Iterable

from warpcall.exceptions import DeadlineExceeded, ServiceCommunicationException
from warpcall.resilience.failures import NOT_SENT, HandshakeRefused, classify

__all__ = ["Recovery", "RetryBudget", "RetryPolicy", "is_refusal"]

_DEFAULTS: dict[str, float] = {
    "attempts": 3,
    "backoff": 0.05,
    "max_backoff": 1.0,
    "budget": 0.2,
    "budget_reserve": 10,
}


def _number(key: str, value: Any, *, integer: bool = False, at_least: float = 0.0) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{key} must be a number, not {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a number, not {value!r}") from None
    if not math.isfinite(number) or number < at_least or (integer and number != int(number)):
        kind = "a whole number" if integer else "a number"
        raise ValueError(f"{key} must be {kind} >= {at_least:g}, not {value!r}")
    return number


class RetryBudget:
    """A token bucket per channel: calls deposit ``ratio`` tokens each, a retry withdraws one.

    Deposits are counted lazily from the channel's call count (its URL selector's picks, read when a
    retry asks), so a call that does not fail costs nothing here. Thread-safe.
    """

    __slots__ = ("ratio", "reserve", "_tokens", "_seen", "_lock")

    def __init__(self, ratio: float = 0.2, reserve: float = 10.0) -> None:
        self.ratio = _number("budget", ratio)
        self.reserve = _number("budget_reserve", reserve)
        self._tokens = self.reserve
        self._seen = 0
        self._lock = threading.Lock()

    def withdraw(self, calls: int) -> bool:
        """Take a token for one retry; ``calls`` is the channel's call count so far. False when none is left."""
        with self._lock:
            if calls < self._seen:  # the count started again (the channel took a new selector)
                self._seen = calls
            if calls > self._seen:
                self._tokens = min(self.reserve, self._tokens + (calls - self._seen) * self.ratio)
                self._seen = calls
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False

    @property
    def tokens(self) -> float:
        """Tokens in the bucket at the last withdrawal."""
        return self._tokens


class RetryPolicy:
    """What a channel retries: ``attempts``, ``backoff``/``max_backoff`` (seconds), the budget, idempotent names."""

    __slots__ = ("attempts", "backoff", "max_backoff", "budget", "idempotent", "_known", "random")

    def __init__(
        self,
        attempts: int = 3,
        backoff: float = 0.05,
        max_backoff: float = 1.0,
        budget: float = 0.2,
        budget_reserve: float = 10,
        idempotent: Iterable[str] = (),
    ) -> None:
        self.attempts = int(_number("attempts", attempts, integer=True, at_least=1))
        self.backoff = _number("backoff", backoff)
        self.max_backoff = _number("max_backoff", max_backoff)
        self.budget = RetryBudget(budget, budget_reserve)
        if isinstance(idempotent, str):
            idempotent = [part.strip() for part in idempotent.split(",")]
        names = tuple(str(name) for name in idempotent if str(name))
        self.idempotent: tuple[str, ...] = names
        self._known: dict[str, bool] = {}
        self.random: Callable[[float, float], float] = random.uniform

    @classmethod
    def configured(cls, get: Callable[[str], Any], channel: str) -> RetryPolicy:
        """The policy from configuration: ``get(key)`` returns a value or None; the channel's keys win."""
        values: dict[str, Any] = {}
        for key in (*_DEFAULTS, "idempotent"):
            value = get(f"http.{channel}.retry.{key}")
            if value is None:
                value = get(f"http.retry.{key}")
            if value is not None:
                values[key] = value
        try:
            return cls(**values)
        except ValueError as exc:
            raise ValueError(f"http.retry / http.{channel}.retry configuration: {exc}") from None

    def is_idempotent(self, call: Any) -> bool:
        """True when the service method ``call`` (a method descriptor, or None) may be sent more than once."""
        if call is None:
            return False
        if getattr(call.func, "__warpcall_idempotent__", False):
            return True
        if not self.idempotent:
            return False
        qualified: str = call.qualified
        known = self._known.get(qualified)
        if known is None:
            known = self._known[qualified] = any(fnmatchcase(qualified, name) for name in self.idempotent)
        return known

    def delay(self, retry: int) -> float:
        """Seconds to wait before the ``retry``-th retry (1, 2, ...): full jitter over the exponential span."""
        span = min(self.max_backoff, self.backoff * 2.0 ** min(retry - 1, 60))
        return self.random(0.0, span) if span > 0.0 else 0.0


def is_refusal(status: int, content: bytes) -> bool:
    """A 503 whose body names ``OverloadedException``: the server refused the call before running it."""
    return status == 503 and b"OverloadedException" in content


def _retry_after(headers: list[tuple[str, str]]) -> float:
    for name, value in headers:
        if name.lower() == "retry-after":
            try:
                seconds = float(value.strip())
            except ValueError:
                return 0.0  # an HTTP date: not sent by warpcall's servers; no wait is imposed
            return seconds if math.isfinite(seconds) and seconds > 0.0 else 0.0
    return 0.0


class Recovery:
    """One failed call's way on: after each failure, :meth:`next` says where to send it and after how long,
    or raises the error the call ends with (or returns None: the last refusal is the call's reply).

    ``urls`` are the selector's instances, ``others`` where a failed call goes next (the selector's
    order), ``first`` the instance the call went to first; ``name`` names the call in errors;
    ``start`` and ``at`` are its start and deadline (``time.monotonic()``); ``calls`` reads the
    channel's call count; ``annotate`` may add to the error saying no instance was reached.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        urls: tuple[str, ...],
        others: list[str],
        first: str,
        name: str,
        start: float,
        at: float,
        idempotent: bool,
        calls: Callable[[], int],
        owner: str,
        annotate: Callable[[ServiceCommunicationException], ServiceCommunicationException] | None = None,
    ) -> None:
        self.policy = policy
        self.urls = urls
        self.fresh = others  # instances this call has not been sent to, in the selector's order
        self.current = first
        self.annotate = annotate
        self.name = name
        self.start = start
        self.at = at
        self.idempotent = idempotent
        self.calls = calls
        self.owner = owner
        self.tried: list[tuple[str, BaseException | str]] = []
        self.sends = 0  # sends that may have reached a server
        self.retries = 0
        self.resting: dict[str, float] = {}  # instance -> when a refusal's Retry-After has passed

    def next(
        self, error: BaseException | None, failure: ServiceCommunicationException | None, refusal: Any = None
    ) -> tuple[str, float] | None:
        """After a failed send to ``self.current`` (``error`` and what it means for the caller, ``failure``;
        or a ``refusal`` reply): the next instance and the seconds to wait first. Raises the call's final
        error; None when the call's reply is the last refusal."""
        now = time.monotonic()
        base = self.current
        maybe_sent = False
        if error is not None:
            self.tried.append((base, error))
            maybe_sent = classify(error) != NOT_SENT
            if maybe_sent:
                self.sends += 1
        else:
            self.tried.append((base, f"refused: HTTP 503 {refusal[0] if refusal else ''}".strip()))
            self.resting[base] = now + _retry_after(refusal[1] if refusal is not None else [])
        if now >= self.at:
            raise self.deadline_exceeded() from error
        if maybe_sent and not self.idempotent:
            assert error is not None and failure is not None
            raise failure from error  # the server may have run it: only an idempotent method goes again
        target: str | None = None
        wait = 0.0
        if not maybe_sent:
            # not sent or refused unstarted: an instance the call has not been to takes it, if any is ready
            while self.fresh:
                candidate = self.fresh.pop(0)
                if self.resting.get(candidate, 0.0) <= now:
                    target = candidate
                    break
        if target is None:
            if not self.idempotent or self.sends >= self.policy.attempts or isinstance(error, HandshakeRefused):
                self.give_up(error, failure)
                return None
            self.retries += 1
            wait = self.policy.delay(self.retries)
            target = self._after(base, now + wait)
            wait = max(wait, self.resting.get(target, 0.0) - now)
            if now + wait >= self.at:
                self.give_up(error, failure)  # no time left for it: the last failure stands
                return None
            if not self.policy.budget.withdraw(self.calls()):
                self.give_up(error, failure, "the channel's retry budget is spent")
                return None
            if target in self.fresh:
                self.fresh.remove(target)
        self.current = target
        return target, wait

    def _after(self, base: str, when: float) -> str:
        """The instance for a retry: the next one after ``base`` in list order that is ready by ``when``
        (the one ready soonest when none is)."""
        urls = self.urls or (base,)
        start = urls.index(base) + 1 if base in urls else 0
        ordered = [urls[(start + i) % len(urls)] for i in range(len(urls))]
        for url in ordered:
            if self.resting.get(url, 0.0) <= when:
                return url
        return min(ordered, key=lambda url: self.resting.get(url, 0.0))

    def give_up(
        self, error: BaseException | None, failure: ServiceCommunicationException | None, why: str = ""
    ) -> None:
        """End the call with its last failure; returns only when the last refusal is the reply."""
        if error is None:
            return None
        assert failure is not None
        if len(self.tried) > 1 and all(
            isinstance(exc, BaseException) and classify(exc) == NOT_SENT for _, exc in self.tried
        ):
            raise self.none_reached() from error
        if len(self.tried) > 1 or why:
            reasons = "; ".join(self._reason(base, exc) for base, exc in self.tried)
            because = f" ({why})" if why else ""
            raise type(failure)(f"{failure}{because}; tried {len(self.tried)} time(s): {reasons}") from error
        raise failure from error

    def none_reached(self) -> ServiceCommunicationException:
        """Every instance failed the call before it was sent: the error names each, with its reason."""
        instances = ", ".join(base for base, _ in self.tried)
        reasons = "; ".join(f"{type(exc).__name__}: {exc}" for _, exc in self.tried)
        error = ServiceCommunicationException(
            f"{self.owner or 'this channel'}: {self.name} reached none of the {len(self.tried)} instances "
            f"tried ({instances}): {reasons}"
        )
        return error if self.annotate is None else self.annotate(error)

    def deadline_exceeded(self) -> DeadlineExceeded:
        """The call's deadline passed: the error names the method, the deadline and what was tried."""
        reasons = "; ".join(self._reason(base, exc) for base, exc in self.tried)
        taken = time.monotonic() - self.start
        return DeadlineExceeded(
            f"{self.name}: deadline exceeded: {self.at - self.start:.3f} s given, {taken:.3f} s taken "
            f"({self.owner or 'this channel'}; {reasons})"
        )

    @staticmethod
    def expired(name: str, owner: str) -> DeadlineExceeded:
        """A call made when the deadline in force had passed already: nothing is sent."""
        return DeadlineExceeded(f"{name}: its deadline had passed before it was sent ({owner or 'this channel'})")

    @staticmethod
    def _reason(base: str, exc: BaseException | str) -> str:
        return f"{base}: {exc if isinstance(exc, str) else f'{type(exc).__name__}: {exc}'}"
