"""Catalog lag: the agent knows a registration at once, the catalog (what ``/v1/health/service`` answers)
only after the agent's sync. warpcall's watcher follows the catalog with blocking queries and must pick
the change up when it lands, without a new call; its re-registration check reads the agent, so it does
not register again an instance the catalog has not seen yet.

``catalog_lag`` is the emulator's knob: against a real agent (whose sync takes milliseconds) these tests
skip, saying so."""

from __future__ import annotations

import uuid

from registry_support import ConsulTarget, Descriptor, RecordingChannel, wait_until, within

from warpcall.registry.consul import ConsulComponentRegistry
from warpcall.registry.contract import ChannelAddress

INTERVAL = 0.2
TIMING = {"check_interval": "200ms", "check_timeout": "500ms", "deregister_critical_after": "30s"}
LAG = 0.6


def test_a_registration_reaches_the_watcher_when_the_catalog_has_it(
    consul_target: ConsulTarget, health_servers
) -> None:
    emulator = consul_target.emulated("catalog_lag (the agent's anti-entropy sync delay)")
    emulator.catalog_lag = LAG
    client = consul_target.client
    component = f"lag-{uuid.uuid4().hex[:8]}"
    server = health_servers()
    host = ConsulComponentRegistry(0, client, resync_interval=0.1, **TIMING)
    watcher = ConsulComponentRegistry(0, client, wait="30s", **TIMING)
    descriptor = Descriptor(component)
    try:
        channel = RecordingChannel(descriptor, "dispatch-json")
        watcher.watch(channel)
        wait_until(lambda: channel.urls == [], timeout=within(0.0))
        wait_until(lambda: emulator.held(component) == 1, timeout=within(0.0))

        host.register(descriptor, [ChannelAddress("dispatch-json", server.url)])
        # the agent has it at once; the catalog (and so get_addresses) not yet
        assert component in {s["Service"] for s in client.agent.services().values()}
        assert client.health.service(component)[1] == []
        assert watcher.get_addresses(descriptor) == []
        # the held query answers when the catalog syncs; the instance passes at its first check
        wait_until(lambda: channel.urls == [server.url], timeout=within(LAG + INTERVAL))
        assert [u for entry in watcher.get_addresses(descriptor) for u in entry.urls] == [server.url]
        # the registry's resync (every 0.1 s) reads the agent, not the lagging catalog: it registered once
        # (registering again would reset the check to critical and the instance would flap)
        (service_id,) = [sid for sid, s in client.agent.services().items() if s["Service"] == component]
        assert emulator.registrations.count(service_id) == 1

        # a deregistration lags the same way, then reaches the watcher
        host.deregister(descriptor)
        assert component not in {s["Service"] for s in client.agent.services().values()}
        wait_until(lambda: channel.urls == [], timeout=within(LAG))
    finally:
        host.close()
        watcher.close()


def test_the_catalog_answers_after_the_configured_delay(consul_target: ConsulTarget) -> None:
    emulator = consul_target.emulated("catalog_lag (the agent's anti-entropy sync delay)")
    emulator.catalog_lag = LAG
    client = consul_target.client
    client.agent.service.register(
        "lagging", service_id="lagging-1", port=80, check={"TTL": "30s", "Status": "passing"}
    )
    index, entries = client.health.service("lagging")
    assert entries == []
    # a blocking query on the index of the empty answer returns with the instance once the sync ran
    index, entries = client.health.service("lagging", index=index, wait="5s")
    assert [entry["Service"]["ID"] for entry in entries] == ["lagging-1"]
    assert [entry["ServiceID"] for entry in client.catalog.service("lagging")[1]] == ["lagging-1"]
    client.agent.service.deregister("lagging-1")
    assert client.catalog.service("lagging")[1] != []  # still there until the sync
    wait_until(lambda: client.catalog.service("lagging")[1] == [], timeout=within(LAG))
