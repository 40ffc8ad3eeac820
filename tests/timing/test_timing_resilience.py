"""Issue 19: the resilience and session time promises, tested against the clock (no injected clocks).

- Circuit breaker: an instance ejected after ``http.breaker.failures`` failures is skipped (a call fails
  at once with ``CircuitOpenException``, nothing sent) for ``open_for`` seconds -- still so halfway --
  and probed by a call by ``open_for`` + max(0.5 s, 50 %); a failed probe ejects it for twice as long
  (still skipped past ``open_for``), and a probe that succeeds after that closes the breaker.
- Failure-rate window: failures older than ``http.breaker.window`` (and its sliding tenth) no longer count.
- Retry backoff: each retry of an idempotent call waits the drawn delay (here always the top of its
  span: ``backoff`` doubling, capped by ``max_backoff``) -- at least that, and at most that + the slack.
- Retry-After: an idempotent call refused with ``Retry-After: 1`` goes to that instance again no sooner than
  1 s later, and by 1 s + the slack.
- Client bulkhead: a call beyond ``http.bulkhead.max_in_flight`` waits for a place until its deadline (not
  less), then fails with ``OverloadedException`` by the deadline + the slack, never sent.
- Sessions: ``SessionManager.InMemoryStorage(ttl=N)`` keeps a session through half of N and forgets it
  by N + the slack.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rawhttp import wait_until
from warpcall import (
    ChannelAddress,
    Component,
    ComponentRegistry,
    LocalComponentRegistry,
    Service,
    ServiceManager,
    ServiceModule,
    component,
    deadline,
    get,
    idempotent,
    rest,
    service,
)
from warpcall.di import Environment, create, module
from warpcall.di.configuration import ConfigurationSource
from warpcall.exceptions import CircuitOpenException, OverloadedException, ServiceCommunicationException
from warpcall.resilience.breaker import OPEN
from warpcall.session import Session, SessionManager

OPEN_FOR = 0.6
BACKOFF = 0.25
RETRY_AFTER = 1
BULKHEAD_WAIT = 0.4


def slack(promise: float) -> float:
    """What a "within ``promise`` seconds" may take on a loaded machine: max(0.5 s, 50 %) more."""
    return max(0.5, promise * 0.5)


@service(name="timing-resilience")
@rest("/timing-resilience")
class ResilienceService(Service):
    @get("/read")
    @idempotent
    @abstractmethod
    def read(self) -> int: ...

    @get("/read-async")
    @idempotent
    @abstractmethod
    async def read_async(self) -> int: ...


@component(name="timing-shop", services=[ResilienceService])
class ResilienceShop(Component):
    pass


class Scripted:
    """A raw HTTP/1.1 server on 127.0.0.1: ``fate(n)`` decides the n-th request (``ok``: 7, ``bad``: 502,
    ``overloaded``: a 503 refusal with ``Retry-After``, ``hang``: nothing for 3 s, ``close``: closed
    unanswered); the arrival time of each request is kept."""

    def __init__(self, fate: Callable[[int], str]) -> None:
        self.fate = fate
        self.arrivals: list[float] = []
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def requests(self) -> int:
        return len(self.arrivals)

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5.0)
        buffer = b""
        with conn:
            for _ in range(1000):  # requests on one connection, bounded
                try:
                    while b"\r\n\r\n" not in buffer:
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        buffer += chunk
                    head, _, buffer = buffer.partition(b"\r\n\r\n")
                    length = 0
                    for line in head.decode("latin-1").split("\r\n")[1:]:
                        name, _, value = line.partition(":")
                        if name.strip().lower() == "content-length":
                            length = int(value)
                    while len(buffer) < length:
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        buffer += chunk
                    buffer = buffer[length:]
                    with self.lock:
                        number = len(self.arrivals)
                        self.arrivals.append(time.monotonic())
                    fate = self.fate(number)
                    if fate == "close":
                        return
                    dispatch = head.startswith(b"POST /invoke")
                    extra = ""
                    if fate == "ok":
                        status, body = "200 OK", json.dumps({"result": 7, "exception": None} if dispatch else 7)
                    elif fate == "hang":
                        self.stopping.wait(3)  # bounded: answers nothing for 3 s, then closes
                        return
                    elif fate == "overloaded":  # refused unstarted, back in RETRY_AFTER s
                        status, extra = "503 Service Unavailable", f"retry-after: {RETRY_AFTER}\r\n"
                        message = "the queue is full"
                        body = json.dumps(
                            {"result": None, "exception": {"type": "OverloadedException", "message": message}}
                            if dispatch else {"detail": message, "type": "OverloadedException"}
                        )
                    else:
                        status, body = "502 Bad Gateway", '{"detail": "upstream gone"}'
                    conn.sendall(
                        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
                        f"content-length: {len(body)}\r\n{extra}\r\n{body}".encode()
                    )
                except OSError:
                    return

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.listener.close()


class Settings(ConfigurationSource):
    values: dict[str, Any] = {}

    def load(self) -> dict[str, Any]:
        return Settings.values


@pytest.fixture
def made() -> Iterator[list[Any]]:
    """Servers and environments a test made, stopped and destroyed after it."""
    things: list[Any] = []
    yield things
    for thing in reversed(things):
        if isinstance(thing, Environment):
            thing.destroy()
        else:
            thing.stop()


def client(made: list[Any], server: Scripted, settings: dict[str, Any], channel: str = "dispatch-json") -> tuple[Any, Any]:
    """(proxy, channel) of ResilienceService on ``channel``, timing-shop known at ``server``'s URL."""
    Settings.values = settings

    @module(imports=[ServiceModule])
    class ResilienceClientModule:
        @create()
        def create_registry(self) -> ComponentRegistry:
            registry = LocalComponentRegistry()
            registry.register_remote("timing-shop", [ChannelAddress(channel, server.url)])
            return registry

        @create()
        def create_settings(self) -> Settings:
            return Settings()

    environment = Environment(ResilienceClientModule)
    made.append(environment)
    manager = environment.get(ServiceManager)
    proxy = manager.get_service(ResilienceService, channel)
    return proxy, manager._channels[("timing-shop", channel)]


def call(proxy: Any, kind: str = "sync") -> Any:
    """The call's result, or the exception it raised."""
    try:
        if kind == "sync":
            return proxy.read()
        return asyncio.run(proxy.read_async())
    except ServiceCommunicationException as exc:
        return exc


def _probe_by(server: Scripted, proxy: Any, kind: str, since: float, promise: float, before: int) -> Any:
    """Call every 20 ms until a call reaches ``server`` (its result), failing past ``promise`` + slack after ``since``;
    every call before it must fail at once with CircuitOpenException."""
    outcome: Any = None

    def probed() -> bool:
        nonlocal outcome
        outcome = call(proxy, kind)
        if server.requests > before:
            return True
        assert isinstance(outcome, CircuitOpenException), outcome
        time.sleep(0.02)  # paces the polling calls
        return False

    bound = since + promise + slack(promise) - time.monotonic()
    wait_until(probed, timeout=max(bound, 0.0), what=f"a probe within {promise} s of the ejection")
    return outcome


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_an_ejected_instance_is_skipped_for_open_for_then_probed(made: list[Any], kind: str) -> None:
    answers = {"fate": "bad"}
    server = Scripted(lambda n: answers["fate"])
    made.append(server)
    settings = {"http": {"timeout": 2.0, "breaker": {"failures": 2, "failure_rate": 0, "open_for": OPEN_FOR,
                                                      "max_open_for": 10}}}
    proxy, channel = client(made, server, settings)
    assert all(isinstance(call(proxy, kind), ServiceCommunicationException) for _ in range(2))
    ejected = time.monotonic()
    assert [channel.breakers.state(url) for url in channel.breakers.ejected()] == [OPEN]
    assert isinstance(call(proxy, kind), CircuitOpenException) and server.requests == 2  # skipped at once

    wait_until(lambda: time.monotonic() >= ejected + OPEN_FOR / 2, timeout=OPEN_FOR, what="half of open_for")
    halfway = call(proxy, kind)
    assert time.monotonic() - ejected < OPEN_FOR, "the halfway call came too late to tell"
    assert isinstance(halfway, CircuitOpenException) and server.requests == 2, halfway  # still skipped

    probe = _probe_by(server, proxy, kind, ejected, OPEN_FOR, 2)  # the probe: 502 again
    reejected = time.monotonic()
    assert isinstance(probe, ServiceCommunicationException) and not isinstance(probe, CircuitOpenException), probe
    assert server.requests == 3

    # ejected again for twice as long: still skipped once open_for has passed, probed by 2 x open_for + slack
    wait_until(lambda: time.monotonic() >= reejected + OPEN_FOR * 1.2, timeout=2 * OPEN_FOR, what="past open_for")
    later = call(proxy, kind)
    assert time.monotonic() - reejected < 2 * OPEN_FOR, "the call past open_for came too late to tell"
    assert isinstance(later, CircuitOpenException) and server.requests == 3, later
    answers["fate"] = "ok"
    assert _probe_by(server, proxy, kind, reejected, 2 * OPEN_FOR, 3) == 7  # the probe succeeds: taken back
    assert call(proxy, kind) == 7 and server.requests == 5


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("channel_name", ["dispatch-json", "rest"])
def test_each_retry_waits_its_backoff_capped_by_max_backoff(made: list[Any], kind: str, channel_name: str) -> None:
    server = Scripted(lambda n: "close" if n < 3 else "ok")
    made.append(server)
    settings = {"http": {"timeout": 5.0, "retry": {"attempts": 4, "backoff": BACKOFF, "max_backoff": BACKOFF}}}
    proxy, channel = client(made, server, settings, channel_name)
    channel.retry.random = lambda low, high: high  # every draw the top of its span: the waits are known
    assert call(proxy, kind) == 7
    assert server.requests == 4
    gaps = [later - earlier for earlier, later in zip(server.arrivals, server.arrivals[1:])]
    # 0.25 s each: the first span, then capped (uncapped the third would be 1 s)
    for gap in gaps:
        assert BACKOFF <= gap <= BACKOFF + slack(BACKOFF), gaps


WINDOW = 0.6


def test_failures_older_than_the_breakers_window_no_longer_count(made: list[Any]) -> None:
    # failure_rate 0.5 of at least 4 calls in the last WINDOW s (consecutive failures off): 3 failures, then
    # one more once the window has slid past them (it slides in tenths), is 1 call in the window: not ejected
    server = Scripted(lambda n: "bad")
    made.append(server)
    breaker = {"failures": 0, "failure_rate": 0.5, "min_calls": 4, "window": WINDOW, "open_for": 30}
    proxy, channel = client(made, server, {"http": {"timeout": 2.0, "breaker": breaker}})
    for _ in range(3):
        assert isinstance(call(proxy), ServiceCommunicationException)
    last = time.monotonic()
    assert channel.breakers.ejected() == []
    slid = WINDOW + WINDOW / 10  # the window and one tenth (its bucket width) past the last failure
    wait_until(lambda: time.monotonic() >= last + slid, timeout=2 * slid, what="the window to slide past")
    outcome = call(proxy)
    assert not isinstance(outcome, CircuitOpenException), outcome
    assert channel.breakers.ejected() == [], "failures older than the window still counted"
    # and within the window they do count: 3 more at once make 4 of 4 failed
    for _ in range(3):
        call(proxy)
    assert [channel.breakers.state(url) for url in channel.breakers.ejected()] == [OPEN]


@pytest.mark.parametrize("channel_name", ["dispatch-json", "rest"])
def test_a_refused_call_goes_again_no_sooner_than_retry_after_and_soon_after(made: list[Any], channel_name: str) -> None:
    # one instance: the refused idempotent call waits out its Retry-After, then goes there again
    server = Scripted(lambda n: "overloaded" if n == 0 else "ok")
    made.append(server)
    proxy, channel = client(made, server, {"http": {"timeout": 5.0, "retry": {"backoff": 0.01}}}, channel_name)
    assert call(proxy) == 7
    gap = server.arrivals[1] - server.arrivals[0]
    assert RETRY_AFTER <= gap <= RETRY_AFTER + slack(RETRY_AFTER), f"sent again {gap:.2f} s after a {RETRY_AFTER} s refusal"


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_call_beyond_the_client_bulkhead_waits_until_its_deadline_then_fails_unsent(
    made: list[Any], kind: str
) -> None:
    server = Scripted(lambda n: "hang")
    made.append(server)
    settings = {"http": {"timeout": 2.0, "bulkhead": {"max_in_flight": 1}, "breaker": {"enabled": False}}}
    proxy, channel = client(made, server, settings)
    holder = threading.Thread(target=call, args=(proxy,), daemon=True)  # holds the one place for its 2 s timeout
    holder.start()
    try:
        wait_until(lambda: server.requests == 1, timeout=2, what="the first call at the server")
        began = time.monotonic()
        with deadline(BULKHEAD_WAIT):
            outcome = call(proxy, kind)
        took = time.monotonic() - began
        assert isinstance(outcome, OverloadedException), outcome
        assert "1 calls already in flight" in str(outcome), outcome
        assert BULKHEAD_WAIT * 0.9 <= took <= BULKHEAD_WAIT + slack(BULKHEAD_WAIT), f"failed after {took:.2f} s"
        assert server.requests == 1  # never sent
    finally:
        holder.join(5)


def test_a_session_is_kept_for_its_ttl_and_forgotten_after_it() -> None:
    storage = SessionManager.InMemoryStorage(max_size=10, ttl=1)
    manager = SessionManager(storage)
    session = Session()
    storage.store("token", session, 3600)  # the storage's ttl (1 s) is the shorter
    stored = time.monotonic()
    assert manager.read_session("token") is session
    wait_until(lambda: time.monotonic() >= stored + 0.5, timeout=1, what="half of the ttl")
    assert manager.read_session("token") is session and len(storage) == 1
    assert time.monotonic() - stored < 1.0, "the halfway read came too late to tell"
    wait_until(lambda: manager.read_session("token") is None, timeout=stored + 1 + slack(1) - time.monotonic(),
               what="the session's expiry within its 1 s ttl")
    assert len(storage) == 0
