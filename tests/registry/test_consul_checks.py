"""Consul health checks as warpcall's Consul registry meets them: TTL checks that expire and are updated,
``?passing`` read as Consul reads it, ``FailuresBeforeCritical`` / ``SuccessBeforePassing`` on the
registry's HTTP check, and ``DeregisterCriticalServiceAfter`` removing a dead instance.

Every test runs against the emulator and, when ``CONSUL_HTTP_ADDR`` is set, against that real agent
(``consul_target``); a test that needs an emulator-only knob skips there, saying which."""

from __future__ import annotations

import time
import uuid

import consul
import httpx
import pytest
from registry_support import ConsulTarget, Descriptor, RecordingChannel, wait_until, within

from warpcall.registry.consul import META_CHANNELS, ConsulComponentRegistry, encode_channels
from warpcall.registry.contract import ChannelAddress

#: short on purpose: the tests wait near these promises
INTERVAL, TIMEOUT = 0.2, 0.5
TIMING = {"check_interval": "200ms", "check_timeout": "500ms", "deregister_critical_after": "30s"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def register_ttl_instance(client: consul.Consul, component: str, url: str, ttl: str) -> str:
    """An instance registered the way a framework reporting its own health does (a TTL check, passing)."""
    service_id = unique(component)
    client.agent.service.register(
        component,
        service_id=service_id,
        address="127.0.0.1",
        port=int(url.rsplit(":", 1)[1]),
        meta={META_CHANNELS: encode_channels([ChannelAddress("dispatch-json", url)])},
        check={"TTL": ttl, "Status": "passing", "CheckID": f"ttl:{service_id}"},
    )
    return service_id


def check_of(client: consul.Consul, check_id: str) -> dict:
    return client.agent.checks()[check_id]


def test_a_ttl_check_not_updated_expires_and_the_watcher_drops_the_instance(
    consul_target: ConsulTarget,
) -> None:
    client = consul_target.client
    component, url = unique("ttl"), "http://127.0.0.1:7001"
    ttl = 0.6
    watcher = ConsulComponentRegistry(0, client, wait="5s", max_backoff=0.2, **TIMING)
    service_id = register_ttl_instance(client, component, url, f"{int(ttl * 1000)}ms")
    check_id = f"ttl:{service_id}"
    try:
        channel = RecordingChannel(Descriptor(component), "dispatch-json")
        watcher.watch(channel)
        wait_until(lambda: channel.urls == [url], timeout=within(0.0))
        # kept passing by updates every ttl/3 (bounded in count), the instance never leaves
        for round_ in range(6):
            kind = ("pass", "update")[round_ % 2]
            if kind == "pass":
                client.agent.check.ttl_pass(check_id, notes=f"round {round_}")
            else:
                httpx.put(
                    f"http://{consul_target.address}/v1/agent/check/update/{check_id}",
                    json={"Status": "passing", "Output": f"round {round_}"},
                    timeout=5,
                ).raise_for_status()
            assert check_of(client, check_id)["Output"] == f"round {round_}"
            _pause(ttl / 3)
        assert all(pushed is not None and list(pushed.urls) == [url] for pushed in channel.pushes)
        # no update any more: critical once the TTL runs out, and the watcher follows
        wait_until(lambda: channel.urls == [], timeout=within(ttl))
        check = check_of(client, check_id)
        assert check["Status"] == "critical"
        assert check["Output"].startswith("TTL expired")
        # an update brings it back at once
        client.agent.check.ttl_pass(check_id)
        wait_until(lambda: channel.urls == [url], timeout=within(0.0))
    finally:
        watcher.close()
        client.agent.service.deregister(service_id)


def _pause(seconds: float) -> None:
    """Pace a bounded loop of updates (not a wait for a state)."""
    time.sleep(seconds)


def test_warn_and_fail_take_the_instance_out_of_the_passing_answer(consul_target: ConsulTarget) -> None:
    client = consul_target.client
    component, url = unique("ttl"), "http://127.0.0.1:7002"
    service_id = register_ttl_instance(client, component, url, "30s")
    check_id = f"ttl:{service_id}"
    registry = ConsulComponentRegistry(0, client, **TIMING)
    descriptor = Descriptor(component)

    def listed() -> list[str]:
        return [url for entry in registry.get_addresses(descriptor) for url in entry.urls]

    try:
        assert listed() == [url]
        client.agent.check.ttl_warn(check_id, notes="degraded")
        # ?passing leaves out warning as well as critical
        assert check_of(client, check_id)["Status"] == "warning"
        assert listed() == []
        client.agent.check.ttl_pass(check_id)
        assert listed() == [url]
        client.agent.check.ttl_fail(check_id, notes="down")
        assert check_of(client, check_id)["Output"] == "down"
        assert listed() == []
    finally:
        registry.close()
        client.agent.service.deregister(service_id)


def test_check_update_answers_errors_as_the_agent_does(consul_target: ConsulTarget, health_servers) -> None:
    client = consul_target.client
    base = f"http://{consul_target.address}/v1/agent/check"
    component = unique("upd")
    service_id = register_ttl_instance(client, component, "http://127.0.0.1:7003", "30s")
    registry = ConsulComponentRegistry(0, client, **TIMING)
    try:
        registry.register(Descriptor(component), [ChannelAddress("dispatch-json", health_servers().url)])
        (http_check,) = [
            cid
            for cid, c in client.agent.checks().items()
            if c["ServiceName"] == component and c["Type"] == "http"
        ]
        with httpx.Client(timeout=5) as http:
            bad = http.put(f"{base}/update/ttl:{service_id}", json={"Status": "sleepy"})
            assert bad.status_code == 400 and "Invalid check status" in bad.text
            assert http.put(f"{base}/update/no-such-check", json={"Status": "passing"}).status_code == 404
            # only a TTL check takes a status from outside: the agent runs an HTTP check itself
            refused = http.put(f"{base}/pass/{http_check}")
            assert refused.status_code >= 400 and "TTL" in refused.text
            if consul_target.emulator is not None:
                assert refused.status_code == 500
    finally:
        registry.close()
        client.agent.service.deregister(service_id)


def test_passing_is_a_boolean_and_false_does_not_filter(consul_target: ConsulTarget, health_servers) -> None:
    client = consul_target.client
    component = unique("passing")
    well = health_servers()
    up = ConsulComponentRegistry(0, client, **TIMING)
    down_id = register_ttl_instance(client, component, "http://127.0.0.1:7004", "30s")
    client.agent.check.ttl_fail(f"ttl:{down_id}")
    try:
        up.register(Descriptor(component), [ChannelAddress("dispatch-json", well.url)])
        # warpcall lists the passing instance only
        wait_until(
            lambda: [u for e in up.get_addresses(Descriptor(component)) for u in e.urls] == [well.url],
            timeout=within(INTERVAL),
        )
        with httpx.Client(base_url=f"http://{consul_target.address}", timeout=5) as http:

            def ids(value: str | None) -> int:
                params = {} if value is None else {"passing": value}
                answer = http.get(f"/v1/health/service/{component}", params=params)
                answer.raise_for_status()
                return len(answer.json())

            assert ids(None) == 2
            for value in ("false", "0", "f", "False"):
                assert ids(value) == 2, value  # not filtered, as Go's ParseBool reads them
            for value in ("", "true", "1", "t", "True"):
                assert ids(value) == 1, value
            wrong = http.get(f"/v1/health/service/{component}", params={"passing": "yes-please"})
            assert wrong.status_code == 400
    finally:
        up.close()
        client.agent.service.deregister(down_id)


def test_failures_before_critical_keeps_the_instance_through_fewer_failures(
    consul_target: ConsulTarget, health_servers
) -> None:
    client = consul_target.client
    component = unique("flaky")
    server = health_servers()
    failures, successes = 3, 2
    host = ConsulComponentRegistry(
        0, client, failures_before_critical=failures, success_before_passing=successes, **TIMING
    )
    watcher = ConsulComponentRegistry(0, client, wait="5s", max_backoff=0.2, **TIMING)
    assert host.detection_window == pytest.approx(failures * INTERVAL + TIMEOUT)
    try:
        host.register(Descriptor(component), [ChannelAddress("dispatch-json", server.url)])
        channel = RecordingChannel(Descriptor(component), "dispatch-json")
        watcher.watch(channel)
        # a new check starts critical and needs `successes` consecutive passes before it counts
        wait_until(lambda: channel.urls == [server.url], timeout=within(successes * INTERVAL))
        assert server.answered.count(200) >= successes

        seen = len(server.answered)
        server.status = 503
        wait_until(lambda: channel.urls == [], timeout=within(host.detection_window))
        # it left only after `failures` failed checks in a row, not at the first
        assert server.answered[seen:].count(503) >= failures

        seen = len(server.answered)
        server.status = 200
        wait_until(lambda: channel.urls == [server.url], timeout=within(successes * INTERVAL))
        assert server.answered[seen:].count(200) >= successes
    finally:
        host.close()
        watcher.close()


def test_deregister_critical_service_after_removes_a_dead_instance(
    consul_target: ConsulTarget, health_servers
) -> None:
    emulator = consul_target.emulated("deregister_minimum and reap_interval (the agent waits at least 1 min)")
    client = consul_target.client
    component = unique("dead")
    server = health_servers()
    deregister_after = 0.4
    host = ConsulComponentRegistry(
        0, client, check_interval="200ms", check_timeout="500ms", deregister_critical_after="400ms"
    )
    try:
        host.register(Descriptor(component), [ChannelAddress("dispatch-json", server.url)])
        wait_until(
            lambda: len(client.health.service(component, passing=True)[1]) == 1, timeout=within(INTERVAL)
        )
        server.stop()  # dead: connections refused, the check turns critical at its next run
        # the agent removes it: one interval to fail, DeregisterCriticalServiceAfter, one reaper round
        promise = INTERVAL + deregister_after + emulator.reap_interval
        wait_until(
            lambda: component not in {s["Service"] for s in client.agent.services().values()},
            timeout=within(promise),
        )
        assert client.health.service(component)[1] == []
    finally:
        host.close()
