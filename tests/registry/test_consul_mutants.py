"""Consul registry behaviour mutation testing found unchecked (mutation/, area ``registries``).

Against the Consul emulator: the detection window and the other figures derived from Go durations, a
blocking query held for its whole wait not being taken for an unreachable agent, answers that come back
at once not turning the watcher into a busy loop, the resync of this process's services outliving an
agent that was away, ``get_addresses`` answering from the watched list during an outage, and the capped
exponential backoff (with jitter) between retries against an agent that cannot be reached.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import consul
import pytest
from consul_emulator import ConsulEmulator
from registry_support import Descriptor, RecordingChannel, consul_client, free_port, wait_until, within

from warpcall.exceptions import ServiceCommunicationException
from warpcall.registry.consul import (
    META_CHANNELS,
    ConsulComponentRegistry,
    _HttpxTransport,
    encode_channels,
)
from warpcall.registry.contract import ChannelAddress, ChannelInstances

TIMING = {"check_interval": "200ms", "check_timeout": "500ms", "deregister_critical_after": "30s"}
#: the pause after an answer that came back at once (consul.py's guard against a busy loop)
QUIET = 0.05
LOGGER = "warpcall.registry.consul"
#: the bound on waits for a state the test then measures from (not a promise under test)
SETTLE = 5.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def client(consul_emulator: ConsulEmulator) -> Iterator[consul.Consul]:
    made = consul_client(consul_emulator.address)
    yield made
    made.http.session.close()


def register_ttl_instance(client: consul.Consul, component: str, url: str) -> str:
    """An instance with a passing TTL check the test flips itself; returns the check id."""
    service_id = unique(component)
    client.agent.service.register(
        component,
        service_id=service_id,
        address="127.0.0.1",
        port=int(url.rsplit(":", 1)[1]),
        meta={META_CHANNELS: encode_channels([ChannelAddress("dispatch-json", url)])},
        check={"TTL": "30s", "Status": "passing", "CheckID": f"ttl:{service_id}"},
    )
    return f"ttl:{service_id}"


# -- figures derived from the settings ----------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "timeout", "failures", "window"),
    [
        ("10s", "3s", 0, 13.0),  # the defaults
        ("500ms", "1m", 0, 60.5),
        ("1m30s", "250ms", 2, 180.25),
        ("2s", "1h", 3, 3606.0),
    ],
)
def test_consul_detection_window_reads_go_durations(
    interval: str, timeout: str, failures: int, window: float
) -> None:
    client = consul_client("127.0.0.1:9")  # never contacted here
    registry = ConsulComponentRegistry(
        0, client, check_interval=interval, check_timeout=timeout, failures_before_critical=failures
    )
    try:
        assert registry.detection_window == pytest.approx(window)
    finally:
        registry.close()
        client.http.session.close()


def test_consul_defaults_time_requests_out_after_ten_seconds_and_detect_within_thirteen() -> None:
    client = consul_client("127.0.0.1:9")  # never contacted here
    registry = ConsulComponentRegistry(0, client)
    try:
        assert registry.timeout == 10.0
        assert registry.detection_window == 13.0
    finally:
        registry.close()
        client.http.session.close()


@pytest.mark.parametrize(("wait", "read"), [("16s", 2.0 + 17.0), ("1m", 2.0 + 63.75), ("800ms", 2.0 + 0.85)])
def test_a_consul_blocking_query_may_be_read_for_its_wait_and_the_agents_jitter(
    wait: str, read: float
) -> None:
    # Consul holds a blocking query for its wait plus up to wait/16 of random jitter; only an answer at the
    # very top of that range would tell a read timeout missing the jitter apart, so the figure is read
    # from the transport the watcher's queries go through
    transport = _HttpxTransport("127.0.0.1", 9, "http", True, None, 2.0)
    try:
        held = transport._timeout([("index", "7"), ("wait", wait), ("passing", "1")])
        assert (held.connect, held.read) == (2.0, pytest.approx(read))
        assert transport._timeout([("passing", "1")]).read == 2.0  # not blocking: the plain timeout
        assert transport._timeout(None).read == 2.0
    finally:
        asyncio.run(transport.close())


# -- the watcher's blocking queries -------------------------------------------------------------


def test_a_consul_query_held_for_its_whole_wait_is_not_a_failure(
    consul_emulator: ConsulEmulator, client: consul.Consul, caplog: pytest.LogCaptureFixture
) -> None:
    component, url = unique("held"), "http://127.0.0.1:7101"
    register_ttl_instance(client, component, url)
    # a request timeout shorter than the wait: the read timeout of a blocking query must cover the wait
    watcher = ConsulComponentRegistry(0, client, wait="500ms", timeout=0.3, **TIMING)
    try:
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            channel = RecordingChannel(Descriptor(component), "dispatch-json")
            watcher.watch(channel)
            wait_until(lambda: channel.urls == [url], timeout=SETTLE)
            wait_until(lambda: consul_emulator.held(component) == 1, timeout=SETTLE)
            # a query of our own, sent after the watcher's and held the same way, is the clock: when it
            # answers, the watcher's query has been held at least its whole wait
            index = consul_emulator.index_of(component)
            started = time.monotonic()
            client.health.service(component, index=str(index), wait="500ms")
            assert time.monotonic() - started >= 0.5
            assert [r.getMessage() for r in caplog.records if r.name == LOGGER] == []
        assert channel.urls == [url]
    finally:
        watcher.close()


def test_consul_answers_that_come_back_at_once_are_paced(
    consul_emulator: ConsulEmulator, client: consul.Consul
) -> None:
    component, url = unique("flap"), "http://127.0.0.1:7102"
    check_id = register_ttl_instance(client, component, url)
    watcher = ConsulComponentRegistry(0, client, wait="5s", **TIMING)
    flips = 8
    try:
        channel = RecordingChannel(Descriptor(component), "dispatch-json")
        watcher.watch(channel)
        wait_until(lambda: channel.urls == [url], timeout=SETTLE)
        wait_until(lambda: consul_emulator.held(component) == 1, timeout=SETTLE, interval=0.001)
        started = time.monotonic()
        # a flapping check: each flip answers the held query at once; the watcher sees it and queries again
        for flip in range(flips):
            if flip % 2 == 0:
                client.agent.check.ttl_fail(check_id)
            else:
                client.agent.check.ttl_pass(check_id)
            expected = [] if flip % 2 == 0 else [url]
            wait_until(lambda: channel.urls == expected, timeout=SETTLE, interval=0.001)  # noqa: B023
            # the emulator counts a query as held until it answers, so once the push is seen, held is the next one
            wait_until(lambda: consul_emulator.held(component) == 1, timeout=SETTLE, interval=0.001)
        elapsed = time.monotonic() - started
        # consecutive queries start at least QUIET apart (an answer that came back sooner is followed by a
        # pause): the first flip may meet a query held for long, every later one a paced one
        assert elapsed >= (flips - 1) * QUIET
    finally:
        watcher.close()


# -- an agent that goes away -------------------------------------------------------------------


def test_consul_resync_outlives_an_unreachable_agent_and_registers_again(
    consul_emulator: ConsulEmulator, client: consul.Consul, health_servers, caplog: pytest.LogCaptureFixture
) -> None:
    component = unique("resync")
    server = health_servers()
    addresses = [ChannelAddress("dispatch-json", server.url)]
    host = ConsulComponentRegistry(0, client, resync_interval=0.1, max_backoff=0.1, **TIMING)
    try:
        host.register(Descriptor(component), addresses)
        (service_id,) = [sid for sid, s in client.agent.services().items() if s["Service"] == component]
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            consul_emulator.stop()
            # a resync round meets the agent away (and must go on afterwards)
            wait_until(
                lambda: any(
                    "cannot verify this process's services" in r.getMessage() for r in caplog.records
                ),
                timeout=within(0.1),
            )
        # back as a dev agent: everything it knew is lost, and the next resync round registers it again
        consul_emulator.restart()
        wait_until(lambda: service_id in client.agent.services(), timeout=within(0.1 + 0.1))
        assert consul_emulator.registrations.count(service_id) == 2
        assert client.agent.services()[service_id]["Meta"] == {META_CHANNELS: encode_channels(addresses)}
    finally:
        host.close()


def test_consul_get_addresses_answers_from_the_watched_list_while_the_agent_is_away(
    consul_emulator: ConsulEmulator, client: consul.Consul
) -> None:
    component, url = unique("away"), "http://127.0.0.1:7103"
    register_ttl_instance(client, component, url)
    watcher = ConsulComponentRegistry(0, client, wait="5s", max_backoff=0.2, **TIMING)
    try:
        channel = RecordingChannel(Descriptor(component), "dispatch-json")
        watcher.watch(channel)
        wait_until(lambda: channel.urls == [url], timeout=SETTLE)
        consul_emulator.stop()
        assert watcher.get_addresses(Descriptor(component)) == [
            ChannelInstances(component, "dispatch-json", [url])
        ]
        # a component nobody watches has no last list to fall back on
        with pytest.raises(ServiceCommunicationException, match="cannot read"):
            watcher.get_addresses(Descriptor(unique("unwatched")))
    finally:
        watcher.close()


def test_consul_retries_an_unreachable_agent_with_capped_exponential_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = consul_client(f"127.0.0.1:{free_port()}")  # nothing listens: every call is refused at once
    watcher = ConsulComponentRegistry(0, client, max_backoff=0.5, **TIMING)
    component = unique("unreachable")

    def retries() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == LOGGER and "retry in" in r.getMessage()]

    try:
        with caplog.at_level(logging.DEBUG, logger=LOGGER):
            watcher.watch(RecordingChannel(Descriptor(component), "dispatch-json"))
            wait_until(lambda: len(retries()) >= 3, timeout=5)
        first, second, third = retries()[:3]
        # the record's arguments carry the exact delay (the message rounds it): message, delay, failure, error
        delays: list[Any] = [record.args[1] for record in (first, second, third)]  # type: ignore[index]
        assert [record.args[2] for record in (first, second, third)] == [1, 2, 3]  # type: ignore[index]
        # from 0.2 s, doubling, capped at max_backoff, each shortened by up to a fifth of jitter
        assert 0.16 <= delays[0] <= 0.2
        assert 0.32 <= delays[1] <= 0.4
        assert 0.4 <= delays[2] <= 0.5
        # and they are waited: the next attempt comes no sooner
        assert second.created - first.created >= delays[0] - 0.01
        assert third.created - second.created >= delays[1] - 0.01
        # a long outage does not flood the log: the first failure of a streak is a warning, the rest debug
        assert [first.levelno, second.levelno, third.levelno] == [
            logging.WARNING,
            logging.DEBUG,
            logging.DEBUG,
        ]
    finally:
        watcher.close()
        client.http.session.close()
