"""The registries' time promises, tested against time: every wait is bounded at the promise plus
max(0.5 s, 50 %) (``within``), with TTLs, poll and check intervals made small by configuration, so a
mechanism that is missing or lazy (a TTL read twice as long, a deregistration that leaves its row to
expire) fails the test instead of hiding behind a generous timeout.

- a dead instance (SIGKILLed, or SIGSTOPped: alive, its sockets open, answering nothing) leaves every
  watcher's list within the registry's promise: embedded ``ttl + poll_interval`` after its last heartbeat;
  etcd the granted lease TTL plus etcd's expiry sweep (0.5 s); Consul (emulator) one check interval plus
  the check timeout;
- a deregistration reaches watchers within the poll interval (embedded; the TTL is long on purpose) or
  at once (etcd watch, Consul blocking query).
"""

from __future__ import annotations

import base64
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from process_support import Children
from registry_support import Descriptor, RecordingChannel, consul_client, etcd_granted_ttl, wait_until, within

from warpcall.registry.contract import ChannelAddress, ComponentRegistry

INSTANCE = Path(__file__).with_name("registry_instance.py")
#: the Consul health check of these tests (the emulator runs it)
CHECK_INTERVAL, CHECK_TIMEOUT = 0.2, 0.3
CONSUL = {"check_interval": "200ms", "check_timeout": "300ms", "deregister_critical_after": "30s"}
#: etcd's lessor looks for expired leases every 500 ms
ETCD_SWEEP = 0.5


@pytest.fixture
def children(tmp_path: Path) -> Iterator[Children]:
    started = Children(tmp_path)
    try:
        yield started
    finally:
        for process in started.processes:
            # a stopped child would never read its stdin's EOF
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
        started.stop()


@pytest.fixture(params=["embedded", "etcd", "consul"])
def dead_instance_setup(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, dict, ComponentRegistry, float]]:
    """(child kind, child config, watcher in this process, seconds promised for a dead instance to leave)."""
    component = f"timing-{uuid.uuid4().hex[:8]}"
    watcher: ComponentRegistry
    if request.param == "embedded":
        from warpcall.registry.embedded import EmbeddedComponentRegistry

        ttl, poll = 1.0, 0.1
        config = {"component": component, "directory": str(tmp_path), "ttl": ttl, "poll": poll}
        watcher = EmbeddedComponentRegistry(tmp_path, ttl=ttl, poll_interval=poll)
        # the last heartbeat came at or before the death; the row is ignored a TTL later, seen at the next poll
        promise = ttl + poll
    elif request.param == "etcd":
        from warpcall.registry.etcd import EtcdComponentRegistry

        etcd = request.getfixturevalue("fast_etcd")
        prefix = f"/timing-{uuid.uuid4().hex[:8]}/"
        config = {"component": component, "endpoint": etcd.endpoint, "prefix": prefix, "ttl": 1}
        watcher = EtcdComponentRegistry(etcd.endpoint, prefix=prefix, ttl=1)
        # kept alive every TTL/3, the lease runs out at most the granted TTL after the death
        promise = etcd_granted_ttl(etcd.endpoint, 1) + ETCD_SWEEP
    else:
        from warpcall.registry.consul import ConsulComponentRegistry

        emulator = request.getfixturevalue("consul_emulator")
        config = {"component": component, "address": emulator.address, "timing": CONSUL}
        client = consul_client(emulator.address)
        request.addfinalizer(client.http.session.close)
        watcher = ConsulComponentRegistry(0, client, wait="30s", **CONSUL)
        # the next check run fails: at once when refused (killed), after the timeout when frozen (stopped)
        promise = CHECK_INTERVAL + CHECK_TIMEOUT
        assert watcher.detection_window == pytest.approx(promise)
    try:
        yield request.param, config, watcher, promise
    finally:
        watcher.close()


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGSTOP], ids=["sigkill", "sigstop"])
def test_a_dead_instance_leaves_the_watchers_within_the_promise(
    dead_instance_setup: tuple[str, dict, ComponentRegistry, float],
    children: Children,
    signum: signal.Signals,
    record_property,
) -> None:
    kind, config, watcher, promise = dead_instance_setup
    urls = [children.start(INSTANCE, kind, config, ready="") for _ in range(2)]
    channel = RecordingChannel(Descriptor(config["component"]), "dispatch-json")
    watcher.watch(channel)
    wait_until(lambda: sorted(channel.urls or []) == sorted(urls), timeout=15)

    if kind == "etcd":
        # the lease the instance holds is the TTL it was configured with (a lazy, longer lease would
        # otherwise pass whenever the kill comes late in its keep-alive period)
        assert etcd_lease_ttls(config) == [etcd_granted_ttl(config["endpoint"], config["ttl"])] * 2

    victim = children.processes[0]
    os.kill(victim.pid, signum)
    signalled = time.monotonic()
    wait_until(lambda: channel.urls == [urls[1]], timeout=within(promise), interval=0.01)
    # (the survivor, still renewing and answering its checks, stayed: the list is exactly it)
    record_property("left_after_seconds", round(time.monotonic() - signalled, 3))


def etcd_lease_ttls(config: dict) -> list[float]:
    """The granted TTL of the lease of every key under the config's prefix."""
    prefix = config["prefix"]
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    kvs = (
        httpx.post(
            f"{config['endpoint']}/v3/kv/range",
            json={
                "key": base64.b64encode(prefix.encode()).decode(),
                "range_end": base64.b64encode(end.encode()).decode(),
            },
            timeout=5,
        )
        .json()
        .get("kvs", [])
    )
    return [
        float(
            httpx.post(
                f"{config['endpoint']}/v3/lease/timetolive", json={"ID": kv["lease"]}, timeout=5
            ).json()["grantedTTL"]
        )
        for kv in kvs
    ]


@pytest.fixture(params=["embedded", "etcd", "consul"])
def live_setup(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[ComponentRegistry, ComponentRegistry, float]]:
    """(host, watcher, seconds promised for a deregistration to reach the watcher); TTLs long on purpose."""
    if request.param == "embedded":
        from warpcall.registry.embedded import EmbeddedComponentRegistry

        poll = 0.2
        host: ComponentRegistry = EmbeddedComponentRegistry(tmp_path, ttl=10.0, poll_interval=poll)
        watcher: ComponentRegistry = EmbeddedComponentRegistry(tmp_path, ttl=10.0, poll_interval=poll)
        promise = poll
    elif request.param == "etcd":
        from warpcall.registry.etcd import EtcdComponentRegistry

        etcd = request.getfixturevalue("etcd_server")
        prefix = f"/dereg-{uuid.uuid4().hex[:8]}/"
        host = EtcdComponentRegistry(etcd.endpoint, prefix=prefix, ttl=10)
        watcher = EtcdComponentRegistry(etcd.endpoint, prefix=prefix, ttl=10)
        promise = 0.0  # the delete is pushed on the watch stream
    else:
        from warpcall.registry.consul import ConsulComponentRegistry

        emulator = request.getfixturevalue("consul_emulator")
        clients = [consul_client(emulator.address) for _ in range(2)]
        for client in clients:
            request.addfinalizer(client.http.session.close)
        host = ConsulComponentRegistry(0, clients[0], **CONSUL)
        watcher = ConsulComponentRegistry(0, clients[1], wait="30s", **CONSUL)
        promise = 0.0  # the held blocking query answers on the change
    try:
        yield host, watcher, promise
    finally:
        host.close()
        watcher.close()


def test_a_deregistration_reaches_watchers_within_the_poll_interval(
    live_setup: tuple[ComponentRegistry, ComponentRegistry, float], health_servers
) -> None:
    host, watcher, promise = live_setup
    descriptor = Descriptor(f"dereg-{uuid.uuid4().hex[:8]}")
    server = health_servers()
    host.register(descriptor, [ChannelAddress("dispatch-json", server.url)])
    channel = RecordingChannel(descriptor, "dispatch-json")
    watcher.watch(channel)
    wait_until(lambda: channel.urls == [server.url], timeout=5)
    for _ in range(2):  # twice: the second time is a re-registration by the same registry
        host.deregister(descriptor)
        wait_until(lambda: channel.urls == [], timeout=within(promise), interval=0.01)
        host.register(descriptor, [ChannelAddress("dispatch-json", server.url)])
        wait_until(lambda: channel.urls == [server.url], timeout=5)
