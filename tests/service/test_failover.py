"""Issue 16, failover: a call that failed before any byte of its request reached a server goes to the next instance.

Three instances of one component, each a process of its own on 127.0.0.1 (failover_server.py), behind
the channels' round robin. One is SIGKILLed: the registry still lists it (nothing tells it yet), so
every third call is routed to it, finds its pooled connection closed and its port refusing, and is
sent to the next instance: no call fails, through the sync and async clients of every channel. With
all three down, a call fails with a ServiceCommunicationException naming each instance tried. A call
that may have reached a server (the instance read it and died) is not sent again (that is for the
retry policy of idempotent methods): the other instances never see it.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from failover_api import CHANNELS, PidService

from rawhttp import wait_until
from warpcall import ChannelAddress, ComponentRegistry, LocalComponentRegistry, ServiceManager, ServiceModule
from warpcall.channels._http_errors import RequestNotSentError
from warpcall.channels.http import _split
from warpcall.di import Environment, create, module
from warpcall.exceptions import ServiceCommunicationException
from warpcall.resilience.failures import MAYBE_SENT, NOT_SENT, classify, not_sent

SERVER = Path(__file__).with_name("failover_server.py")
CALLS = 30  # per channel, sync and async, while two instances remain
BOOT_TIMEOUT = 30.0


# --- which failures were not sent -------------------------------------------------------------------------


def wrapped(cause: BaseException) -> ServiceCommunicationException:
    """What a channel raises for a client error: a ServiceCommunicationException caused by it."""
    try:
        raise ServiceCommunicationException(f"calling http://x failed: {cause}") from cause
    except ServiceCommunicationException as exc:
        return exc


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        (httpx.ConnectError("refused"), NOT_SENT),
        (httpx.ConnectTimeout("no answer to the SYN"), NOT_SENT),
        (httpx.PoolTimeout("every connection busy"), NOT_SENT),
        (RequestNotSentError("the first write failed"), NOT_SENT),
        (httpx.WriteError("half the body went out"), MAYBE_SENT),
        (httpx.WriteTimeout("stopped reading"), MAYBE_SENT),
        (httpx.ReadError("reset while waiting"), MAYBE_SENT),
        (httpx.ReadTimeout("no reply"), MAYBE_SENT),
        (httpx.RemoteProtocolError("closed without a response"), MAYBE_SENT),
        (httpx.LocalProtocolError("bad header"), MAYBE_SENT),  # fails the same on every instance
        (ServiceCommunicationException("no URL"), MAYBE_SENT),
        (ValueError("not a transport error"), MAYBE_SENT),
    ],
)
def test_failures_are_classified_by_whether_the_request_may_have_left(error: Exception, verdict: str) -> None:
    assert classify(error) == verdict
    assert classify(wrapped(error)) == verdict  # a channel's exception is classified by its cause
    assert not_sent(error) is (verdict == NOT_SENT)


def test_a_refused_connection_is_classified_not_sent() -> None:
    from warpcall.channels._http_sync import HTTPClient

    port = _closed_port()
    with pytest.raises(httpx.ConnectError) as info:
        HTTPClient(timeout=2).request("GET", f"http://127.0.0.1:{port}/", [], b"")
    assert classify(info.value) == NOT_SENT


def test_a_url_splits_into_its_instance_and_the_rest() -> None:
    bases = ("http://127.0.0.1:81", "http://127.0.0.1:8", "http://h:1/prefix")
    assert _split("http://127.0.0.1:8/invoke", bases) == ("http://127.0.0.1:8", "/invoke")
    assert _split("http://127.0.0.1:81/a?b=1", bases) == ("http://127.0.0.1:81", "/a?b=1")
    assert _split("http://h:1/prefix/items/3", bases) == ("http://h:1/prefix", "/items/3")
    assert _split("http://h:1/prefixed", bases) == ("http://h:1", "/prefixed")  # not a path boundary
    assert _split("http://gone:9/invoke", bases) == ("http://gone:9", "/invoke")  # no longer listed


def _closed_port() -> int:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


# --- three instances, one killed ----------------------------------------------------------------------------


class Instance:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.url = ""

    def ready(self) -> str:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], BOOT_TIMEOUT)
        assert ready, f"instance {self.process.pid} did not start within {BOOT_TIMEOUT} s"
        line = self.process.stdout.readline().strip()
        assert line.startswith("READY http://"), f"instance {self.process.pid} failed to start: {line!r}"
        self.url = line.split()[1]
        return self.url

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)  # gone: its sockets are closed, its port refuses

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            assert self.process.stdin is not None
            try:
                self.process.stdin.close()  # EOF: the instance shuts down
            except BrokenPipeError:
                pass
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def instances() -> Iterator[list[Instance]]:
    started = [Instance() for _ in range(3)]  # booting side by side
    try:
        for instance in started:
            instance.ready()
        yield started
    finally:
        for instance in started:
            instance.stop()


@pytest.fixture
def manager(instances: list[Instance]) -> Iterator[ServiceManager]:
    """A client process's view: the registry lists the three instances on every channel, and keeps them listed."""

    @module(imports=[ServiceModule])
    class ClientModule:
        @create()
        def create_registry(self) -> ComponentRegistry:
            registry = LocalComponentRegistry()
            addresses = [ChannelAddress(name, instance.url) for instance in instances for name in CHANNELS]
            registry.register_remote("failover-shop", addresses)
            return registry

    environment = Environment(ClientModule)
    try:
        yield environment.get(ServiceManager)
    finally:
        environment.destroy()


def sync_pids(proxy: Any, count: int) -> list[int]:
    return [proxy.pid() for _ in range(count)]


async def async_pids(proxy: Any, count: int) -> list[int]:
    return [await proxy.pid_async() for _ in range(count)]


def test_a_killed_instance_costs_no_call(instances: list[Instance], manager: ServiceManager) -> None:
    pids = [instance.process.pid for instance in instances]
    proxies = {name: manager.get_service(PidService, name) for name in CHANNELS}
    loop = asyncio.new_event_loop()  # one loop throughout: its pooled connections outlive the kill too
    try:
        for name, proxy in proxies.items():
            # round robin over the three, a pooled connection to each in both clients
            assert sorted(sync_pids(proxy, 3)) == sorted(pids), name
            assert sorted(loop.run_until_complete(async_pids(proxy, 3))) == sorted(pids), name
            assert manager._channels[("failover-shop", name)].selector.urls == tuple(i.url for i in instances)

        instances[1].kill()
        survivors = {pids[0], pids[2]}
        for name, proxy in proxies.items():
            # the dead instance stays listed: a third of these calls go to it first, and none fails
            assert set(sync_pids(proxy, CALLS)) == survivors, name
            assert set(loop.run_until_complete(async_pids(proxy, CALLS))) == survivors, name

        instances[0].kill()
        instances[2].kill()
        urls = [instance.url for instance in instances]
        for name, proxy in proxies.items():
            with pytest.raises(ServiceCommunicationException) as info:
                proxy.pid()
            message = str(info.value)
            # the killed instance's breaker ejected it after its failures above: the call names it as not tried
            assert "reached none of the 2 instances tried" in message and name in message, message
            assert f"not tried: {instances[1].url} (next probe in" in message, message
            assert all(url in message for url in urls), message
            assert "Connection refused" in message or "ConnectError" in message, message
            with pytest.raises(ServiceCommunicationException) as async_info:
                loop.run_until_complete(proxy.pid_async())
            assert all(url in str(async_info.value) for url in urls), str(async_info.value)
    finally:
        loop.close()


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_call_the_server_may_have_received_is_not_sent_again(
    instances: list[Instance], manager: ServiceManager, kind: str
) -> None:
    proxy = manager.get_service(PidService, "dispatch-json")
    with pytest.raises(ServiceCommunicationException) as info:
        if kind == "sync":
            proxy.crash()
        else:
            asyncio.run(proxy.crash_async())
    assert classify(info.value) == MAYBE_SENT
    wait_until(lambda: sum(instance.alive() for instance in instances) < 3, what="the crashed instance's exit")
    # one instance read the call and died; the call went nowhere else, so the other two still run
    assert sum(instance.alive() for instance in instances) == 2
    assert os.getpid() not in [instance.process.pid for instance in instances]
