"""The Consul registry against the emulator (and a real agent when CONSUL_HTTP_ADDR is set); the emulator's
fidelity to Consul's documented API."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator

import consul
import httpx
import pytest
from consul_emulator import ConsulEmulator, parse_duration
from registry_support import (
    CONSUL_TIMING,
    Descriptor,
    RecordingChannel,
    consul_client,
    wait_until,
    within,
)

from warpcall.di import Environment, create, module
from warpcall.di.configuration import ConfigurationSource
from warpcall.registry.consul import ConsulComponentRegistry, decode_channels, encode_channels
from warpcall.registry.contract import ChannelAddress

AGENTS = ["emulator"] + (["agent"] if os.environ.get("CONSUL_HTTP_ADDR") else [])


@pytest.fixture(params=AGENTS)
def agent_address(request: pytest.FixtureRequest) -> str:
    """``host:port`` of a Consul HTTP API: the emulator, or the real agent named by CONSUL_HTTP_ADDR."""
    if request.param == "agent":
        return os.environ["CONSUL_HTTP_ADDR"].split("//")[-1]
    return request.getfixturevalue("consul_emulator").address


@pytest.fixture
def client(agent_address: str) -> Iterator[consul.Consul]:
    made = consul_client(agent_address)
    yield made
    made.http.session.close()


def name() -> str:
    return f"billing-{uuid.uuid4().hex[:8]}"


def test_registration_carries_id_address_meta_and_health_check(client: consul.Consul, health_servers) -> None:
    billing = Descriptor(name(), health="/health")
    server = health_servers()
    registry = ConsulComponentRegistry(0, client, **CONSUL_TIMING)
    try:
        registry.register(
            billing,
            [ChannelAddress("dispatch-json", server.url), ChannelAddress("rest", server.url + "/api")],
        )
        services = {sid: s for sid, s in client.agent.services().items() if s["Service"] == billing.name}
        assert len(services) == 1
        ((service_id, service),) = services.items()
        assert service_id.startswith(billing.name)
        assert service["Address"] == "127.0.0.1"
        assert service["Port"] == int(server.url.rsplit(":", 1)[1])
        assert decode_channels(service["Meta"]["channels"]) == [
            ChannelAddress("dispatch-json", server.url),
            ChannelAddress("rest", server.url + "/api"),
        ]
        checks = [c for c in client.agent.checks().values() if c["ServiceID"] == service_id]
        assert [c["Type"] for c in checks] == ["http"]
        # the agent runs the check against base URL + health path and the instance turns passing
        wait_until(
            lambda: (
                [e["Service"]["ID"] for e in client.health.service(billing.name, passing=True)[1]]
                == [service_id]
            )
        )

        registry.deregister(billing)
        assert billing.name not in {s["Service"] for s in client.agent.services().values()}
    finally:
        registry.close()


def test_two_registries_get_distinct_service_ids(client: consul.Consul, health_servers) -> None:
    billing = Descriptor(name())
    first, second = (
        ConsulComponentRegistry(0, client, **CONSUL_TIMING),
        ConsulComponentRegistry(0, client, **CONSUL_TIMING),
    )
    try:
        first.register(billing, [ChannelAddress("dispatch-json", health_servers().url)])
        second.register(billing, [ChannelAddress("dispatch-json", health_servers().url)])
        ids = [sid for sid, s in client.agent.services().items() if s["Service"] == billing.name]
        assert len(set(ids)) == 2
    finally:
        first.close()
        second.close()


def test_failing_health_check_takes_instance_out_and_back_in(client: consul.Consul, health_servers) -> None:
    billing = Descriptor(name())
    sick, well = health_servers(), health_servers()
    hosts = [ConsulComponentRegistry(0, client, **CONSUL_TIMING) for _ in range(2)]
    watcher = ConsulComponentRegistry(0, client, wait="5s", **CONSUL_TIMING)
    try:
        hosts[0].register(billing, [ChannelAddress("dispatch-json", sick.url)])
        hosts[1].register(billing, [ChannelAddress("dispatch-json", well.url)])
        channel = RecordingChannel(billing, "dispatch-json")
        watcher.watch(channel)
        wait_until(lambda: sorted(channel.urls or []) == sorted([sick.url, well.url]))

        # the next check run (every check_interval) sees the change; the held query answers at once
        interval = parse_duration(CONSUL_TIMING["check_interval"])
        sick.status = 503
        wait_until(lambda: channel.urls == [well.url], timeout=within(interval))
        sick.status = 200
        wait_until(
            lambda: sorted(channel.urls or []) == sorted([sick.url, well.url]), timeout=within(interval)
        )
    finally:
        for registry in (*hosts, watcher):
            registry.close()


def test_component_without_health_endpoint_gets_a_tcp_check(client: consul.Consul, health_servers) -> None:
    billing = Descriptor(name(), health="")
    server = health_servers()
    registry = ConsulComponentRegistry(0, client, **CONSUL_TIMING)
    try:
        registry.register(billing, [ChannelAddress("dispatch-json", server.url)])
        checks = [c for c in client.agent.checks().values() if c["ServiceName"] == billing.name]
        assert [c["Type"] for c in checks] == ["tcp"]
        wait_until(lambda: len(client.health.service(billing.name, passing=True)[1]) == 1)
        server.stop()  # the port closes: the TCP check fails (refused: at its next run)
        wait_until(
            lambda: client.health.service(billing.name, passing=True)[1] == [],
            timeout=within(parse_duration(CONSUL_TIMING["check_interval"])),
        )
    finally:
        registry.close()


def test_blocking_query_holds_until_a_change(client: consul.Consul, health_servers) -> None:
    billing = Descriptor(name())
    index, entries = client.health.service(billing.name, passing=True)
    assert entries == [] and int(index) > 0
    registry = ConsulComponentRegistry(0, client, **CONSUL_TIMING)
    answered: list[float] = []
    started = time.monotonic()

    def block() -> None:
        client.health.service(billing.name, index=index, wait="10s")
        answered.append(time.monotonic() - started)

    waiter = threading.Thread(target=block)
    waiter.start()
    try:
        time.sleep(0.5)
        assert answered == []  # still held
        registry.register(billing, [ChannelAddress("dispatch-json", health_servers().url)])
        waiter.join(timeout=5)
        assert answered and answered[0] < 5
    finally:
        waiter.join(timeout=15)
        registry.close()


def test_watch_survives_an_unknown_component_and_sees_it_appear(
    client: consul.Consul, health_servers
) -> None:
    billing = Descriptor(name())
    watcher = ConsulComponentRegistry(0, client, wait="5s", **CONSUL_TIMING)
    host = ConsulComponentRegistry(0, client, **CONSUL_TIMING)
    try:
        channel = RecordingChannel(billing, "dispatch-json")
        watcher.watch(channel)
        wait_until(lambda: channel.urls == [])
        server = health_servers()
        host.register(billing, [ChannelAddress("dispatch-json", server.url)])
        wait_until(lambda: channel.urls == [server.url])
    finally:
        watcher.close()
        host.close()


def test_a_service_the_agent_forgot_is_registered_again(client: consul.Consul, health_servers) -> None:
    billing = Descriptor(name())
    registry = ConsulComponentRegistry(0, client, resync_interval=0.2, **CONSUL_TIMING)
    try:
        registry.register(billing, [ChannelAddress("dispatch-json", health_servers().url)])
        (service_id,) = [sid for sid, s in client.agent.services().items() if s["Service"] == billing.name]
        # as after an agent restart without its data directory
        client.agent.service.deregister(service_id)
        wait_until(lambda: service_id in client.agent.services(), timeout=within(0.2))  # resync_interval
        registry.deregister(billing)
        time.sleep(0.5)  # a few resync rounds: a deregistered service stays away
        assert service_id not in client.agent.services()
    finally:
        registry.close()


def test_channels_meta_is_the_aspyx_service_format() -> None:
    addresses = [
        ChannelAddress("dispatch-json", "http://10.0.0.1:8000"),
        ChannelAddress("rest", "http://10.0.0.1:8000/api"),
    ]
    assert encode_channels(addresses) == "dispatch-json(http://10.0.0.1:8000),rest(http://10.0.0.1:8000/api)"
    assert decode_channels(encode_channels(addresses)) == addresses
    assert decode_channels("garbage,rest(http://x)") == [ChannelAddress("rest", "http://x")]


# -- the emulator follows Consul's documented behaviour -----------------------------------------


@pytest.fixture
def emulator() -> Iterator[ConsulEmulator]:
    with ConsulEmulator(reap_interval=0.1, deregister_minimum=0.0) as running:
        yield running


def test_emulator_checks_start_critical_and_reap_after_deregister_critical_after(
    emulator: ConsulEmulator, health_servers
) -> None:
    client = consul_client(emulator.address)
    try:
        dead_url = "http://127.0.0.1:9/health"  # discard port: refused
        client.agent.service.register(
            "ghost",
            service_id="ghost-1",
            address="127.0.0.1",
            port=9,
            check=consul.Check.http(dead_url, "100ms", timeout="1s", deregister="500ms"),
        )
        (entry,) = client.health.service("ghost")[1]
        assert entry["Service"]["ID"] == "ghost-1"
        assert [c["Status"] for c in entry["Checks"]] == [
            "passing",
            "critical",
        ]  # serfHealth, then the new check
        assert client.health.service("ghost", passing=True)[1] == []
        wait_until(lambda: "ghost-1" not in client.agent.services(), timeout=5)
    finally:
        client.http.session.close()


def test_emulator_answers_like_consul(emulator: ConsulEmulator) -> None:
    base = f"http://{emulator.address}"
    with httpx.Client(base_url=base, timeout=5) as http:
        assert http.put("/v1/agent/service/register", json={"ID": "x"}).status_code == 400  # no name
        assert (
            http.put(
                "/v1/agent/service/register", json={"Name": "x", "Check": {"HTTP": "http://127.0.0.1:9"}}
            ).status_code
            == 400
        )
        assert http.put("/v1/agent/service/deregister/nope").status_code == 404
        registered = http.put(
            "/v1/agent/service/register",
            json={
                "name": "svc",
                "id": "svc-1",
                "port": 80,
                "meta": {"k": "v"},
                "check": {"ttl": "30s", "status": "passing"},
            },
        )
        assert registered.status_code == 200
        answer = http.get("/v1/health/service/svc", params={"passing": ""})
        assert int(answer.headers["X-Consul-Index"]) > 0
        (entry,) = answer.json()
        assert set(entry) == {"Node", "Service", "Checks"}
        assert entry["Service"]["Meta"] == {"k": "v"} and entry["Service"]["Port"] == 80
        catalog = http.get("/v1/catalog/service/svc").json()
        assert catalog[0]["ServiceID"] == "svc-1" and catalog[0]["ServiceMeta"] == {"k": "v"}
        assert http.put("/v1/agent/check/fail/service:svc-1").status_code == 200
        assert http.get("/v1/health/service/svc", params={"passing": ""}).json() == []


AGENT_FOR_DI: list[str] = []


class Configured(ConfigurationSource):
    def load(self) -> dict:
        return {"consul": {"healthcheck": {"interval": "2s", "timeout": "1s", "deregister": "90s"}}}


@module()
class ConfiguredModule:
    @create()
    def source(self) -> Configured:
        return Configured()

    @create()
    def registry(self) -> ConsulComponentRegistry:
        return ConsulComponentRegistry(0, consul_client(AGENT_FOR_DI[-1]), check_interval="7s")


def test_aspyx_service_configuration_keys_set_the_health_check(agent_address: str) -> None:
    AGENT_FOR_DI.append(agent_address)
    environment = Environment(ConfiguredModule)
    registry = environment.get(ConsulComponentRegistry)
    try:
        assert (registry.check_interval, registry.check_timeout, registry.deregister_critical_after) == (
            "2s",
            "1s",
            "90s",
        )
        assert registry.detection_window == 3.0
    finally:
        environment.destroy()
        registry.consul.http.session.close()
    # without configuration the constructor's arguments stand
    plain = ConsulComponentRegistry(0, consul_client(agent_address), check_interval="7s")
    plain.set_healthcheck_interval(None)  # what the container calls when the key is not configured
    assert plain.check_interval == "7s"
    plain.close()
    plain.consul.http.session.close()
