"""Issue 16, circuit breakers: an instance that hangs is ejected, skipped, probed and taken back.

Three instances of one component, each a process of its own on 127.0.0.1 (failover_server.py), behind
the channels' round robin. One is SIGSTOPped: it accepts connections (the kernel does) and answers
nothing, so calls routed to it time out (0.2 s, by configuration). Its breaker opens after the
configured 3 consecutive failures; later calls never go there; after SIGCONT and the cool-down, one
probe goes there, succeeds and closes the breaker. With every instance stopped, once all are
ejected a call fails with CircuitOpenException naming the three, without waiting for anything.

The breakers' clock is replaced by one the test moves, so "after the cool-down" is a step of the
test, not a sleep; every wait is bounded (timeouts, loop counts).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from failover_api import PidService
from test_failover import Instance

from rawhttp import wait_until
from warpcall import ChannelAddress, ComponentRegistry, LocalComponentRegistry, ServiceManager, ServiceModule
from warpcall.di import Environment, create, module
from warpcall.di.configuration import ConfigurationSource
from warpcall.exceptions import CircuitOpenException, ServiceCommunicationException
from warpcall.resilience.breaker import CLOSED, HALF_OPEN, OPEN

CHANNELS = ["dispatch-json", "rest"]
FAILURES = 3  # http.breaker.failures
TIMEOUT = 0.2  # http.timeout: a call to a stopped instance fails after this
OPEN_FOR = 30.0  # http.breaker.open_for: long; the test moves the breakers' clock past it


class Settings(ConfigurationSource):
    def load(self) -> dict[str, Any]:
        return {"http": {"timeout": TIMEOUT, "breaker": {"failures": FAILURES, "open_for": OPEN_FOR}}}


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


def stop(instance: Instance) -> None:
    """SIGSTOP, and wait until the kernel has stopped it (a signal is delivered, not obeyed, at once)."""
    instance.process.send_signal(signal.SIGSTOP)
    wait_until(lambda: _state(instance.process.pid) == "T", what=f"instance {instance.process.pid} stopped")


def resume(instance: Instance) -> None:
    instance.process.send_signal(signal.SIGCONT)
    wait_until(lambda: _state(instance.process.pid) != "T", what=f"instance {instance.process.pid} running")


class Clock:
    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def instances() -> Iterator[list[Instance]]:
    started = [Instance() for _ in range(3)]
    try:
        for instance in started:
            instance.ready()
        yield started
    finally:
        for instance in started:
            if instance.alive():
                instance.process.send_signal(signal.SIGCONT)
            instance.stop()


@pytest.fixture
def manager(instances: list[Instance]) -> Iterator[ServiceManager]:
    """A fresh client (fresh breakers) whose registry lists the three instances on every channel."""

    @module(imports=[ServiceModule])
    class ClientModule:
        @create()
        def create_registry(self) -> ComponentRegistry:
            registry = LocalComponentRegistry()
            addresses = [ChannelAddress(name, instance.url) for instance in instances for name in CHANNELS]
            registry.register_remote("failover-shop", addresses)
            return registry

        @create()
        def create_settings(self) -> Settings:
            return Settings()

    environment = Environment(ClientModule)
    try:
        yield environment.get(ServiceManager)
    finally:
        for instance in instances:  # every test leaves the instances running
            instance.process.send_signal(signal.SIGCONT)
        environment.destroy()


class Caller:
    """One proxy, called sync or async; each call's pid, or the exception it raised."""

    def __init__(self, manager: ServiceManager, name: str, kind: str) -> None:
        self.proxy = manager.get_service(PidService, name)
        self.channel = manager._channels[("failover-shop", name)]
        self.kind = kind
        self.loop = asyncio.new_event_loop()

    def call(self) -> int | Exception:
        try:
            if self.kind == "sync":
                return int(self.proxy.pid())
            return int(self.loop.run_until_complete(asyncio.wait_for(self.proxy.pid_async(), 10)))
        except ServiceCommunicationException as exc:
            return exc

    def close(self) -> None:
        self.loop.close()


@pytest.fixture(params=[(name, kind) for name in CHANNELS for kind in ("sync", "async")], ids=lambda p: "-".join(p))
def caller(request: Any, manager: ServiceManager) -> Iterator[Caller]:
    name, kind = request.param
    made = Caller(manager, name, kind)
    try:
        yield made
    finally:
        made.close()


def test_a_stopped_instance_is_ejected_skipped_probed_and_taken_back(instances: list[Instance], caller: Caller) -> None:
    pids = [instance.process.pid for instance in instances]
    assert sorted(caller.call() for _ in range(3)) == sorted(pids)  # type: ignore[type-var]
    breakers = caller.channel.breakers
    assert breakers is not None and breakers.settings.failures == FAILURES
    clock = breakers.clock = Clock()
    stopped = instances[1]
    stop(stopped)

    failed: list[Exception] = []
    answered: list[int] = []
    for _ in range(5 * FAILURES):  # round robin: every third call goes to the stopped instance
        result = caller.call()
        (failed if isinstance(result, Exception) else answered).append(result)  # type: ignore[arg-type]
        if breakers.state(stopped.url) == OPEN:
            break
    # ejected after exactly the configured consecutive failures, each a call routed to it that timed out
    assert breakers.state(stopped.url) == OPEN
    assert len(failed) == FAILURES, failed
    assert all(stopped.url in str(exc) for exc in failed), failed
    assert set(answered) <= {pids[0], pids[2]}
    assert caller.channel.selector.live_urls == (instances[0].url, instances[2].url)

    # skipped: no call goes there while it is ejected
    later = [caller.call() for _ in range(12)]
    assert all(isinstance(pid, int) for pid in later), later
    assert set(later) == {pids[0], pids[2]}

    # taken back: after SIGCONT and the cool-down the next call is the probe, it succeeds, the breaker closes
    resume(stopped)
    clock.now += OPEN_FOR
    assert caller.call() == pids[1]
    assert breakers.state(stopped.url) == CLOSED
    assert caller.channel.selector.guard is None
    assert sorted(caller.call() for _ in range(3)) == sorted(pids)  # type: ignore[type-var]


def test_a_probe_to_an_instance_still_stopped_ejects_it_again_for_longer(
    instances: list[Instance], manager: ServiceManager
) -> None:
    caller = Caller(manager, "dispatch-json", "sync")
    try:
        breakers = caller.channel.breakers
        clock = breakers.clock = Clock()
        stopped = instances[2]
        stop(stopped)
        for _ in range(5 * FAILURES):
            caller.call()
            if breakers.state(stopped.url) == OPEN:
                break
        assert breakers.state(stopped.url) == OPEN
        clock.now += OPEN_FOR
        probe = caller.call()  # the probe: it times out on the stopped instance
        assert isinstance(probe, ServiceCommunicationException) and stopped.url in str(probe), probe
        assert breakers.state(stopped.url) == OPEN
        clock.now += OPEN_FOR  # not yet: ejected for twice as long this time
        assert all(isinstance(caller.call(), int) for _ in range(6))
        assert breakers.state(stopped.url) == OPEN
        resume(stopped)
        clock.now += OPEN_FOR
        assert caller.call() == stopped.process.pid
        assert breakers.state(stopped.url) == CLOSED
    finally:
        caller.close()


def test_with_every_instance_ejected_a_call_fails_at_once_naming_them(instances: list[Instance], caller: Caller) -> None:
    breakers = caller.channel.breakers
    breakers.clock = Clock()
    for instance in instances:
        stop(instance)
    results = []
    for _ in range(3 * FAILURES + 3):
        results.append(caller.call())
        if isinstance(results[-1], CircuitOpenException):
            break
    assert all(breakers.state(instance.url) == OPEN for instance in instances)
    assert len(results) == 3 * FAILURES + 1, results  # each ejected after its own failures, then refused
    error = results[-1]
    assert isinstance(error, CircuitOpenException)
    message = str(error)
    assert f"channel '{caller.channel.name}' of component 'failover-shop'" in message, message
    for instance in instances:
        assert f"{instance.url} (next probe in {OPEN_FOR:.3f} s)" in message, message
    # refused without touching the wire: nothing recorded, no probe started
    again = caller.call()
    assert isinstance(again, CircuitOpenException)
    assert [breakers.state(instance.url) for instance in instances] == [OPEN] * 3
    assert HALF_OPEN not in {breakers.state(instance.url) for instance in instances}
