"""The circuit breaker's state machine and the selectors it guards, on both cores, with an injected clock.

Deterministic: time is a number the test moves; the selectors are the real ones (compiled and plain).
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

import httpx
import pytest

from warpcall.channels._http_errors import RequestNotSentError, ResponseTooLargeError
from warpcall.exceptions import (
    CircuitOpenException,
    DeadlineExceeded,
    OverloadedException,
    ServiceCommunicationException,
    ServiceException,
)
from warpcall.resilience import deadline as deadlines
from warpcall.resilience.breaker import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    RECORD_ALL,
    RECORD_FAILURES,
    BreakerSettings,
    CircuitBreakers,
    counts_against,
)
from warpcall.resilience.bulkhead import Bulkhead

A, B, C = "http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Table:
    """A breaker table guarding a real round-robin selector, with the channel's watch flag."""

    def __init__(self, core: Any, settings: BreakerSettings | None = None, kind: str = "RoundRobinURLSelector"):
        self.clock = Clock()
        self.selector = getattr(core.selector, kind)("channel 'dispatch-json' of component 'shop'")
        self.selector.set_urls([A, B, C])
        self.outcome_from = RECORD_FAILURES
        self.breakers = CircuitBreakers(
            settings or BreakerSettings(),
            owner=self.selector.owner,
            selector=lambda: self.selector,
            watch=self.watch,
            probe_timeout=2.0,
            clock=self.clock,
        )

    def watch(self, watching: bool) -> None:
        self.outcome_from = RECORD_ALL if watching else RECORD_FAILURES

    def picks(self, count: int) -> list[str]:
        return [self.selector.select() for _ in range(count)]


# --- settings ---------------------------------------------------------------------------------------------


def test_defaults() -> None:
    settings = BreakerSettings()
    assert (settings.enabled, settings.failures, settings.failure_rate) == (True, 5, 0.5)
    assert (settings.window, settings.min_calls, settings.open_for, settings.max_open_for) == (10.0, 20, 5.0, 60.0)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("failures", -1, "failures must be 0"),
        ("failure_rate", 1.5, "failure_rate must be within 0..1"),
        ("window", 0.0, "window must be a positive"),
        ("min_calls", 0, "min_calls must be 1"),
        ("open_for", 0.0, "open_for must be a positive"),
        ("max_open_for", -1.0, "max_open_for must be a positive"),
    ],
)
def test_bad_settings_are_refused_by_name(field: str, value: Any, words: str) -> None:
    with pytest.raises(ServiceException, match=words):
        BreakerSettings(**{field: value})


# --- consecutive failures ---------------------------------------------------------------------------------


def test_consecutive_failures_open_the_breaker_and_the_selector_skips_the_instance(core: Any) -> None:
    table = Table(core, BreakerSettings(failures=3, failure_rate=0.0))
    breakers = table.breakers
    for _ in range(2):
        breakers.failure(B)
    assert breakers.state(B) == CLOSED and table.outcome_from == RECORD_ALL  # on record: successes count now
    assert table.selector.guard is None  # nothing ejected: the selector picks as ever
    breakers.failure(B)
    assert breakers.state(B) == OPEN
    assert table.selector.urls == (A, B, C)  # the registry's list stays
    assert table.selector.live_urls == (A, C)
    assert table.selector.guard is breakers
    assert set(table.picks(30)) == {A, C}
    assert Counter(table.picks(30)) == Counter({A: 15, C: 15})  # round robin over the live ones
    assert table.selector.others(A) == [C]  # failover skips it too


def test_a_success_between_failures_resets_the_count(core: Any) -> None:
    table = Table(core, BreakerSettings(failures=3, failure_rate=0.0))
    breakers = table.breakers
    breakers.failure(B)
    breakers.failure(B)
    breakers.outcome(B, 200)
    assert not breakers.watching() and table.outcome_from == RECORD_FAILURES  # record dropped: back to free
    breakers.failure(B)
    breakers.failure(B)
    assert breakers.state(B) == CLOSED


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_and_overload_replies_count_as_failures(core: Any, status: int) -> None:
    table = Table(core, BreakerSettings(failures=2, failure_rate=0.0))
    table.breakers.outcome(A, status)
    table.breakers.outcome(A, status)
    assert table.breakers.state(A) == OPEN


@pytest.mark.parametrize("status", [200, 204, 400, 404, 422, 500])
def test_answers_count_as_successes(core: Any, status: int) -> None:
    # a remote implementation's exception (500 with its envelope) and a caller's fault say the instance works
    table = Table(core, BreakerSettings(failures=2, failure_rate=0.0))
    table.breakers.failure(A)
    table.breakers.outcome(A, status)
    table.breakers.failure(A)
    assert table.breakers.state(A) == CLOSED


def test_which_exceptions_count_against_an_instance() -> None:
    assert counts_against(httpx.ConnectError("refused"))
    assert counts_against(httpx.ReadTimeout("no reply"))
    assert counts_against(httpx.ConnectTimeout("no SYN-ACK"))
    assert counts_against(httpx.ReadError("reset"))
    assert counts_against(httpx.RemoteProtocolError("closed without a response"))
    assert counts_against(RequestNotSentError("first write failed"))
    assert counts_against(DeadlineExceeded("the call's deadline passed"))
    assert not counts_against(httpx.LocalProtocolError("bad header"))  # the same on every instance
    assert not counts_against(ResponseTooLargeError("over max_body"))
    assert not counts_against(ValueError("not the wire"))
    assert not counts_against(ServiceCommunicationException("no URL"))


# --- failure rate over the window -------------------------------------------------------------------------


def test_a_failure_rate_over_the_window_opens_the_breaker(core: Any) -> None:
    table = Table(core, BreakerSettings(failures=0, failure_rate=0.5, window=10.0, min_calls=10))
    breakers = table.breakers
    for _ in range(4):  # 4 failures, 5 successes interleaved: under min_calls
        breakers.failure(A)
        breakers.success(A)
        table.clock.now += 0.5
    breakers.success(A)
    assert breakers.state(A) == CLOSED  # 9 calls
    breakers.failure(A)  # 10 calls, 5 failed: 50 %
    assert breakers.state(A) == OPEN


def test_failures_slide_out_of_the_window(core: Any) -> None:
    table = Table(core, BreakerSettings(failures=0, failure_rate=0.5, window=10.0, min_calls=4))
    breakers = table.breakers
    breakers.failure(A)
    breakers.failure(A)
    table.clock.now += 11.0  # both slid out
    breakers.success(A)
    assert not breakers.watching()  # nothing left on record
    breakers.failure(A)
    breakers.success(A)
    breakers.success(A)
    breakers.success(A)
    assert breakers.state(A) == CLOSED  # 1 of 4 in the window


def test_under_min_calls_no_rate_opens(core: Any) -> None:
    table = Table(core, BreakerSettings(failures=0, failure_rate=0.5, min_calls=20))
    for _ in range(19):
        table.breakers.failure(A)
    assert table.breakers.state(A) == CLOSED


# --- cool-down, probe, re-open ----------------------------------------------------------------------------


def test_after_the_cool_down_one_probe_goes_and_its_success_closes(core: Any) -> None:
    table = Table(core, BreakerSettings(failures=1, failure_rate=0.0, open_for=5.0))
    breakers = table.breakers
    breakers.failure(B)
    table.clock.now += 4.9
    assert B not in table.picks(20)
    table.clock.now += 0.2
    picks = table.picks(20)
    assert picks.count(B) == 1 and picks[0] == B  # the first call after the cool-down is the only probe
    assert breakers.state(B) == HALF_OPEN
    breakers.outcome(B, 200)
    assert breakers.state(B) == CLOSED
    assert table.selector.guard is None and table.selector.live_urls == (A, B, C)
    assert table.outcome_from == RECORD_FAILURES
    assert Counter(table.picks(30)) == Counter({A: 10, B: 10, C: 10})


def test_a_failed_probe_ejects_again_for_twice_as_long_up_to_the_cap(core: Any) -> None:
    table = Table(core, BreakerSettings(failures=1, failure_rate=0.0, open_for=1.0, max_open_for=3.0))
    breakers = table.breakers
    breakers.failure(C)
    for cool_down in (1.0, 2.0, 3.0, 3.0):
        table.clock.now += cool_down - 0.01
        assert C not in table.picks(6), cool_down
        table.clock.now += 0.01
        assert table.selector.select() == C  # the probe
        breakers.failure(C)
        assert breakers.state(C) == OPEN
    table.clock.now += 3.0
    assert table.selector.select() == C
    breakers.success(C)  # closed: the next ejection is back to open_for
    breakers.failure(C)
    table.clock.now += 1.0
    assert table.selector.select() == C


def test_a_probe_that_never_reports_is_followed_by_another(core: Any) -> None:
    table = Table(core, BreakerSettings(failures=1, failure_rate=0.0, open_for=1.0))
    table.breakers.failure(A)
    table.clock.now += 1.0
    assert table.selector.select() == A
    table.clock.now += 1.9  # probe_timeout is 2 s
    assert A not in table.picks(9)
    table.clock.now += 0.1
    assert table.selector.select() == A


def test_a_late_answer_while_open_changes_nothing(core: Any) -> None:
    table = Table(core, BreakerSettings(failures=1, failure_rate=0.0))
    table.breakers.failure(A)
    table.breakers.success(A)  # a call sent before the ejection answered late
    table.breakers.failure(A)
    assert table.breakers.state(A) == OPEN


# --- every instance ejected -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["RoundRobinURLSelector", "FirstURLSelector"])
def test_with_every_instance_ejected_a_call_fails_at_once_naming_them(core: Any, kind: str) -> None:
    table = Table(core, BreakerSettings(failures=1, failure_rate=0.0, open_for=5.0), kind)
    for url in (A, B, C):
        table.breakers.failure(url)
        table.clock.now += 1.0
    with pytest.raises(CircuitOpenException) as info:
        table.selector.select()
    message = str(info.value)
    assert "channel 'dispatch-json' of component 'shop'" in message
    assert f"{A} (next probe in 2.000 s)" in message
    assert f"{B} (next probe in 3.000 s)" in message
    assert f"{C} (next probe in 4.000 s)" in message
    assert isinstance(info.value, ServiceCommunicationException)
    table.clock.now += 2.0
    assert table.selector.select() == A  # A's probe
    with pytest.raises(CircuitOpenException, match="probe under way"):
        table.selector.select()


def test_first_url_selector_moves_on_and_back(core: Any) -> None:
    table = Table(core, BreakerSettings(failures=1, failure_rate=0.0, open_for=1.0), "FirstURLSelector")
    table.breakers.failure(A)
    assert table.picks(3) == [B, B, B]
    table.clock.now += 1.0
    assert table.picks(3) == [A, B, B]
    table.breakers.success(A)
    assert table.picks(2) == [A, A]


# --- the registry's list changes --------------------------------------------------------------------------


def test_a_new_url_list_keeps_the_ejected_instance_out(core: Any) -> None:
    table = Table(core, BreakerSettings(failures=1, failure_rate=0.0))
    table.breakers.failure(B)
    D = "http://127.0.0.1:4"
    table.selector.set_urls([A, B, C, D])
    assert table.selector.urls == (A, B, C, D)
    assert table.selector.live_urls == (A, C, D)
    table.selector.set_urls([B])
    with pytest.raises(CircuitOpenException, match="127.0.0.1:2"):
        table.selector.select()
    table.selector.set_urls([])
    with pytest.raises(ServiceCommunicationException, match="no URL available"):
        table.selector.select()


def test_a_pick_from_a_list_older_than_the_ejection_is_moved(core: Any) -> None:
    table = Table(core, BreakerSettings(failures=1, failure_rate=0.0))
    table.breakers.failure(B)
    # a registry push racing the ejection put the full list back without the filter
    table.selector.set_live((A, B, C), table.breakers)
    picks = table.picks(30)
    assert B not in picks and table.selector.live_urls == (A, C)


def test_many_threads_recording_and_picking(core: Any) -> None:
    table = Table(core, BreakerSettings(failures=3, failure_rate=0.0, open_for=1000.0))
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            for _ in range(2000):
                url = table.selector.select()
                if url == B:
                    table.breakers.failure(B)
                else:
                    table.breakers.success(url)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert table.breakers.state(B) == OPEN
    assert table.breakers.ejected() == [B]
    assert B not in table.picks(30)


# --- the bulkhead -----------------------------------------------------------------------------------------


def test_bulkhead_hands_places_over_in_order_and_times_out_clearly() -> None:
    bulkhead = Bulkhead(2, "channel 'rest' of component 'shop'")
    bulkhead.acquire(0.0)
    bulkhead.acquire(0.0)
    assert bulkhead.in_flight == 2
    with pytest.raises(OverloadedException, match=r"channel 'rest' of component 'shop': 2 calls already in flight"):
        bulkhead.acquire(0.01)
    assert bulkhead.waiting == 0  # the one that gave up left the line
    got = threading.Event()

    def waiter() -> None:
        bulkhead.acquire(10.0)
        got.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    from rawhttp import wait_until

    wait_until(lambda: bulkhead.waiting == 1, what="the waiter in line")
    assert not got.is_set()
    bulkhead.release()
    assert got.wait(10)
    thread.join(10)
    assert bulkhead.in_flight == 2  # the place passed on
    bulkhead.release()
    bulkhead.release()
    assert bulkhead.in_flight == 0


def test_bulkhead_async_waiters_beside_sync_ones() -> None:
    bulkhead = Bulkhead(1, "c")

    async def scenario() -> list[str]:
        order: list[str] = []
        bulkhead.acquire(0.0)  # held by "another thread"

        async def call(name: str, wait: float) -> None:
            try:
                await bulkhead.acquire_async(wait)
            except OverloadedException:
                order.append(f"{name} overloaded")
                return
            order.append(name)
            await asyncio.sleep(0)
            bulkhead.release()

        first = asyncio.ensure_future(call("first", 10.0))
        late = asyncio.ensure_future(call("late", 0.05))
        await asyncio.sleep(0)
        assert bulkhead.waiting == 2
        await late
        assert order == ["late overloaded"]
        threading.Thread(target=bulkhead.release).start()  # released from another thread
        await asyncio.wait_for(first, 10)
        return order

    assert asyncio.run(scenario()) == ["late overloaded", "first"]
    assert bulkhead.in_flight == 0 and bulkhead.waiting == 0


def test_a_cancelled_async_waiter_passes_a_handed_place_on() -> None:
    bulkhead = Bulkhead(1, "c")

    async def scenario() -> None:
        bulkhead.acquire(0.0)
        task = asyncio.ensure_future(bulkhead.acquire_async(10.0))
        await asyncio.sleep(0)
        bulkhead.release()  # handed to the task...
        task.cancel()  # ...which is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await task
        assert bulkhead.in_flight == 0 and bulkhead.waiting == 0

    asyncio.run(scenario())


def test_the_wait_is_bounded_by_the_deadline() -> None:
    bulkhead = Bulkhead(1, "c")
    assert bulkhead.timeout_for(10.0) == 10.0
    with deadlines.deadline(0.5):
        assert 0.0 < bulkhead.timeout_for(10.0) <= 0.5
    with deadlines.deadline(20.0):
        assert bulkhead.timeout_for(10.0) == 10.0


def test_bulkhead_limit_must_be_positive() -> None:
    with pytest.raises(ServiceException, match="limit of 1 or more"):
        Bulkhead(0)


def test_the_channels_show_every_reply_only_while_some_breaker_has_a_record(core: Any) -> None:
    import gc

    from warpcall.resilience import breaker as module

    gc.collect()  # tables of earlier tests, dropped with records, give their count back
    assert module.outcome_from == RECORD_FAILURES  # a healthy process: only 502-504 replies reach a breaker
    table = Table(core, BreakerSettings(failures=3, failure_rate=0.0))
    table.breakers.failure(A)
    assert module.outcome_from == RECORD_ALL
    table.breakers.success(A)
    assert module.outcome_from == RECORD_FAILURES
    table.breakers.failure(B)
    del table
    gc.collect()
    assert module.outcome_from == RECORD_FAILURES
