"""The client's Prometheus metrics per (component, channel, instance), read back from prometheus_client's REGISTRY."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from client_app import CHANNELS, RELEASE, Greeter, client, serving, wait_for
from prometheus_client import REGISTRY

from warpcall import FastAPIServer, RemoteServiceException, ServiceCommunicationException


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with serving() as environment:
        yield int(environment.get(FastAPIServer).port)


def value(name: str, **labels: str) -> float:
    found = REGISTRY.get_sample_value(name, labels)
    return 0.0 if found is None else found


@pytest.mark.parametrize("channel", CHANNELS)
def test_calls_latency_and_errors_per_component_channel_and_instance(port: int, tmp_path: Any, channel: str) -> None:
    instance = f"http://127.0.0.1:{port}"
    labels = {"component": "obs", "channel": channel, "instance": instance}
    calls, count = value("warpcall_client_calls_total", **labels), value("warpcall_client_call_duration_seconds_count", **labels)
    errors = value("warpcall_client_errors_total", type="RemoteServiceException", **labels)
    with client(port, tmp_path / "c.yaml", "metrics:\n  enabled: true\n") as caller:
        greeter = caller.get_service(Greeter, channel)
        assert greeter.hello("m") == "hello m"
        assert asyncio.run(greeter.hello_async("m")) == "hello m"
        with pytest.raises(RemoteServiceException):
            greeter.pay(500.0)
    assert value("warpcall_client_calls_total", **labels) == calls + 3
    assert value("warpcall_client_call_duration_seconds_count", **labels) == count + 3
    assert value("warpcall_client_call_duration_seconds_sum", **labels) > 0
    # every call is under the largest bucket and counted in +Inf
    assert value("warpcall_client_call_duration_seconds_bucket", le="+Inf", **labels) == count + 3
    assert value("warpcall_client_errors_total", type="RemoteServiceException", **labels) == errors + 1
    assert value("warpcall_client_in_flight", component="obs", channel=channel) == 0


def test_a_call_under_way_is_in_flight(port: int, tmp_path: Any) -> None:
    RELEASE.clear()
    outcome: list[bool] = []
    with client(port, tmp_path / "c.yaml", "metrics:\n  enabled: true\n") as caller:
        greeter = caller.get_service(Greeter, "dispatch-json")
        before = value("warpcall_client_in_flight", component="obs", channel="dispatch-json")
        worker = threading.Thread(target=lambda: outcome.append(greeter.hold(5.0)))
        worker.start()
        try:
            wait_for(lambda: value("warpcall_client_in_flight", component="obs", channel="dispatch-json") == before + 1)
        finally:
            RELEASE.set()
            worker.join(10)
    assert outcome == [True]
    assert value("warpcall_client_in_flight", component="obs", channel="dispatch-json") == before


def test_a_failed_wire_counts_as_an_error_of_its_type(tmp_path: Any) -> None:
    import socket

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # bound, not listening: refused
        labels = {"component": "obs", "channel": "rest", "instance": f"http://127.0.0.1:{port}"}
        with client(port, tmp_path / "c.yaml", "metrics:\n  enabled: true\n") as caller:
            with pytest.raises(ServiceCommunicationException):
                caller.get_service(Greeter, "rest").hello("x")
    assert value("warpcall_client_errors_total", type="ServiceCommunicationException", **labels) == 1
    assert value("warpcall_client_calls_total", **labels) == 1


def test_metrics_off_by_default(port: int, tmp_path: Any) -> None:
    with client(port, tmp_path / "c.yaml") as caller:
        greeter = caller.get_service(Greeter, "dispatch-msgpack")
        channel = caller._channels[("obs", "dispatch-msgpack")]
        assert channel._obs_metrics is None
        before = value("warpcall_client_calls_total", component="obs", channel="dispatch-msgpack",
                       instance=f"http://127.0.0.1:{port}")
        assert greeter.hello("q") == "hello q"
    assert value("warpcall_client_calls_total", component="obs", channel="dispatch-msgpack",
                 instance=f"http://127.0.0.1:{port}") == before
