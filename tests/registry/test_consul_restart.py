"""A Consul index that goes backwards: an agent restarted without its data (dev mode) counts from a low
index again, and a restored snapshot moves the index back. warpcall's watcher must start over instead of
holding on to its old index, which Consul would hold for the whole ``wait`` while changes go by.

Both knobs are the emulator's alone (``restart()``, ``rollback_index()``): against a real agent these
tests skip, saying so."""

from __future__ import annotations

import uuid

from registry_support import ConsulTarget, Descriptor, RecordingChannel, wait_until, within

from warpcall.registry.consul import ConsulComponentRegistry, _next_index
from warpcall.registry.contract import ChannelAddress

INTERVAL = 0.2
TIMING = {"check_interval": "200ms", "check_timeout": "500ms", "deregister_critical_after": "30s"}
BACKOFF = 0.2


def test_after_an_agent_restart_the_watcher_starts_over_and_sees_new_instances(
    consul_target: ConsulTarget, health_servers
) -> None:
    emulator = consul_target.emulated("restart() (an agent restarted without its data directory)")
    client = consul_target.client
    component = f"restart-{uuid.uuid4().hex[:8]}"
    a, b = health_servers(), health_servers()
    host_a = ConsulComponentRegistry(0, client, resync_interval=0.2, max_backoff=BACKOFF, **TIMING)
    # a wait far longer than the test: a query held with the old index would not come back in time
    watcher = ConsulComponentRegistry(0, client, wait="60s", max_backoff=BACKOFF, **TIMING)
    try:
        host_a.register(Descriptor(component), [ChannelAddress("dispatch-json", a.url)])
        channel = RecordingChannel(Descriptor(component), "dispatch-json")
        watcher.watch(channel)
        wait_until(lambda: channel.urls == [a.url], timeout=within(INTERVAL))
        before = emulator.index_of(component)
        # the watcher's blocking query is held when the agent goes away (the case to get right: a query
        # sent later with the old index would be held by any agent, restarted or not)
        wait_until(lambda: emulator.held(component) == 1, timeout=within(INTERVAL))

        emulator.restart(index=2)
        # the agent forgot everything and counts from a lower index than the watcher holds
        assert client.agent.services() == {}
        assert emulator.index_of(component) < before

        # a second instance registers with the restarted agent; the first one's registry registers again
        host_b = ConsulComponentRegistry(0, client, max_backoff=BACKOFF, **TIMING)
        try:
            host_b.register(Descriptor(component), [ChannelAddress("dispatch-json", b.url)])
            # the watcher's query was cut: it retries (backoff) with a fresh query, not its old index
            promise = BACKOFF + 0.2 + INTERVAL  # retry, resync of host_a, first check run
            wait_until(lambda: sorted(channel.urls or []) == sorted([a.url, b.url]), timeout=within(promise))
            assert emulator.index_of(component) < before  # it did follow a lower index
            # and it goes on following changes at the new, lower index
            host_b.deregister(Descriptor(component))
            wait_until(lambda: channel.urls == [a.url], timeout=within(0.0))
        finally:
            host_b.close()
    finally:
        host_a.close()
        watcher.close()


def test_an_index_rolled_back_under_a_held_query_is_reset(
    consul_target: ConsulTarget, health_servers
) -> None:
    emulator = consul_target.emulated("rollback_index() (a snapshot restored on the servers)")
    client = consul_target.client
    component = f"rollback-{uuid.uuid4().hex[:8]}"
    a, b = health_servers(), health_servers()
    wait = 1.0
    host_a = ConsulComponentRegistry(0, client, **TIMING)
    host_b = ConsulComponentRegistry(0, client, **TIMING)
    watcher = ConsulComponentRegistry(0, client, wait="1s", max_backoff=BACKOFF, **TIMING)
    try:
        host_a.register(Descriptor(component), [ChannelAddress("dispatch-json", a.url)])
        channel = RecordingChannel(Descriptor(component), "dispatch-json")
        watcher.watch(channel)
        wait_until(lambda: channel.urls == [a.url], timeout=within(INTERVAL))
        wait_until(lambda: emulator.held(component) == 1, timeout=within(INTERVAL))

        emulator.rollback_index(3)
        host_b.register(Descriptor(component), [ChannelAddress("dispatch-json", b.url)])
        assert emulator.index_of(component) < 10  # below what the watcher holds: its query stays held
        # Consul answers the held query when its wait (plus up to 1/16 jitter) runs out, at the lower index
        wait_until(
            lambda: sorted(channel.urls or []) == sorted([a.url, b.url]),
            timeout=within(wait * 17 / 16 + INTERVAL),
        )
        # the watcher started over at the lower index: the next change reaches it at once, not after
        # another wait (a watcher keeping the higher index would be held until the wait ran out again)
        host_b.deregister(Descriptor(component))
        wait_until(lambda: channel.urls == [a.url], timeout=0.5)
    finally:
        for registry in (host_a, host_b, watcher):
            registry.close()


def test_next_index_follows_consuls_advice() -> None:
    assert _next_index(None, "12") == "12"
    assert _next_index("12", "15") == "15"
    assert _next_index("12", "12") == "12"  # a timeout: the same index again
    assert _next_index("12", "5") is None  # backwards: start over
    assert _next_index("12", "0") is None  # never below 1
    assert _next_index("12", None) is None  # no X-Consul-Index header
    assert _next_index("12", "junk") is None
