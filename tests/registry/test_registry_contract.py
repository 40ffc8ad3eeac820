"""One contract, every registry: local, embedded (SQLite), Consul (emulator, and a real agent when
CONSUL_HTTP_ADDR is set), etcd (a real server)."""

from __future__ import annotations

import itertools
import os
import threading
import time
import uuid
from pathlib import Path

import pytest
from registry_support import Backend, Descriptor, HealthServer, RecordingChannel, wait_until, within

from warpcall.registry.contract import ChannelAddress, ChannelInstances


def component() -> Descriptor:
    # a fresh name per test: a real Consul agent or etcd may hold other tests' leftovers
    return Descriptor(f"orders-{uuid.uuid4().hex[:8]}")


def instance(server: HealthServer, *channels: str) -> list[ChannelAddress]:
    return [ChannelAddress(channel, f"{server.url}/{channel}") for channel in channels or ("dispatch-json",)]


def urls_of(instances: list[ChannelInstances], channel: str) -> list[str] | None:
    for entry in instances:
        if entry.channel == channel:
            return sorted(entry.urls)
    return None


def open_connections_to(port: int) -> list[str]:
    """This process's TCP sockets whose peer is 127.0.0.1:``port`` (read from /proc)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if fields[9] in inodes and remote_port == port and fields[3] != "0A":  # 0A: listening
                    found.append(line.strip())
    return found


def open_files_under(path: Path) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(path)):
            found.append(target)
    return found


def test_register_get_addresses_deregister(backend: Backend, health_servers) -> None:
    orders = component()
    host_a, host_b, client = backend.registry(), backend.registry(), backend.registry()
    a, b = health_servers(), health_servers()

    host_a.register(orders, instance(a, "dispatch-json", "rest"))
    host_b.register(orders, instance(b, "dispatch-json", "rest"))

    both = sorted([f"{a.url}/dispatch-json", f"{b.url}/dispatch-json"])
    registered = within(backend.register_promise)
    wait_until(lambda: urls_of(client.get_addresses(orders), "dispatch-json") == both, timeout=registered)
    assert urls_of(client.get_addresses(orders), "rest") == sorted([f"{a.url}/rest", f"{b.url}/rest"])
    assert all(entry.component == orders.name for entry in client.get_addresses(orders))

    # a deregistration deletes the instance: it is gone within the registry's propagation promise, long
    # before any TTL would have expired it
    deregistered = within(backend.deregister_promise)
    host_a.deregister(orders)
    wait_until(
        lambda: urls_of(client.get_addresses(orders), "dispatch-json") == [f"{b.url}/dispatch-json"],
        timeout=deregistered,
    )
    host_b.deregister(orders)
    wait_until(lambda: client.get_addresses(orders) == [], timeout=deregistered)
    host_b.deregister(orders)  # a second deregister is harmless


def test_watch_pushes_current_list_then_follows_instances(backend: Backend, health_servers) -> None:
    orders = component()
    host_a, host_b, client = backend.registry(), backend.registry(), backend.registry()
    a, b = health_servers(), health_servers()
    url_a, url_b = f"{a.url}/dispatch-json", f"{b.url}/dispatch-json"
    host_a.register(orders, instance(a))
    wait_until(lambda: urls_of(client.get_addresses(orders), "dispatch-json") == [url_a])

    channel = RecordingChannel(orders, "dispatch-json")
    client.watch(channel)
    # the current list arrives without waiting for a change
    wait_until(lambda: channel.urls == [url_a])

    host_b.register(orders, instance(b))
    wait_until(
        lambda: sorted(channel.urls or []) == sorted([url_a, url_b]), timeout=within(backend.register_promise)
    )
    # deregistrations reach watchers within the poll interval (embedded) or at once (pushed by the store)
    host_a.deregister(orders)
    wait_until(lambda: channel.urls == [url_b], timeout=within(backend.deregister_promise))
    host_b.deregister(orders)
    wait_until(lambda: channel.urls == [], timeout=within(backend.deregister_promise))

    # one channel object throughout, told of its own component and channel only, never a duplicate URL
    for pushed in channel.pushes:
        assert pushed is not None and (pushed.component, pushed.channel) == (orders.name, "dispatch-json")
        assert len(set(pushed.urls)) == len(pushed.urls)
    # consecutive pushes differ: unchanged lists are not pushed again
    lists = [tuple(sorted(p.urls)) for p in channel.pushes if p is not None]
    assert all(x != y for x, y in itertools.pairwise(lists))


def test_several_channels_per_component_and_per_watcher(backend: Backend, health_servers) -> None:
    orders = component()
    host, client = backend.registry(), backend.registry()
    a = health_servers()
    host.register(orders, instance(a, "dispatch-json", "dispatch-msgpack", "rest"))

    json_channel = RecordingChannel(orders, "dispatch-json")
    rest_channel = RecordingChannel(orders, "rest")
    second_json = RecordingChannel(orders, "dispatch-json")
    unknown = RecordingChannel(orders, "dispatch-protobuf")
    for channel in (json_channel, rest_channel, second_json, unknown):
        client.watch(channel)
    client.watch(json_channel)  # watching twice changes nothing

    wait_until(lambda: json_channel.urls == [f"{a.url}/dispatch-json"])
    wait_until(lambda: rest_channel.urls == [f"{a.url}/rest"])
    wait_until(lambda: second_json.urls == [f"{a.url}/dispatch-json"])
    # a channel no instance offers is told so with an empty list
    wait_until(lambda: unknown.urls == [])

    host.deregister(orders)
    for channel in (json_channel, rest_channel, second_json):
        wait_until(lambda channel=channel: channel.urls == [], timeout=within(backend.deregister_promise))


def test_watchers_keep_last_list_while_registry_is_unreachable(backend: Backend, health_servers) -> None:
    if backend.outage is None:
        pytest.skip(f"{backend.kind} has no server that can go away")
    orders = component()
    host, client = backend.registry(), backend.registry()
    a, b = health_servers(), health_servers()
    url_a, url_b = f"{a.url}/dispatch-json", f"{b.url}/dispatch-json"
    host.register(orders, instance(a))
    channel = RecordingChannel(orders, "dispatch-json")
    client.watch(channel)
    wait_until(lambda: channel.urls == [url_a])
    pushes_before = len(channel.pushes)

    backend.outage()
    try:
        # several retry rounds pass (backoff is capped at 0.5 s here); the list stays as it was
        time.sleep(2.0)
        assert channel.urls == [url_a]
        assert len(channel.pushes) == pushes_before
        # get_addresses answers from the last known list too
        assert urls_of(client.get_addresses(orders), "dispatch-json") == [url_a]
    finally:
        assert backend.recover is not None
        backend.recover()

    # retries find the registry again: a new instance reaches the same channel
    newcomer = backend.registry()
    newcomer.register(orders, instance(b))
    wait_until(lambda: sorted(channel.urls or []) == sorted([url_a, url_b]), timeout=20)


def test_close_is_idempotent_and_leaves_nothing_behind(backend: Backend, health_servers) -> None:
    orders = component()
    host, client, observer = backend.registry(), backend.registry(), backend.registry()
    a = health_servers()
    url_a = f"{a.url}/dispatch-json"
    host.register(orders, instance(a))
    channel = RecordingChannel(orders, "dispatch-json")
    client.watch(channel)
    wait_until(lambda: channel.urls == [url_a])
    watching = RecordingChannel(orders, "dispatch-json")
    observer.watch(watching)
    wait_until(lambda: watching.urls == [url_a])

    host.close()
    host.close()
    # a closed registry publishes nothing any more: its instances are deregistered, not left to expire
    wait_until(lambda: watching.urls == [], timeout=within(backend.deregister_promise))
    client.close()
    client.close()
    observer.close()
    backend.close_clients()

    assert [t.name for t in threading.enumerate() if t.name.startswith("warpcall-")] == []
    if backend.server_port is not None:
        assert open_connections_to(backend.server_port) == []
    if backend.store_file is not None:
        assert open_files_under(backend.store_file.parent) == []
    pushes = len(channel.pushes)
    time.sleep(0.3)
    assert len(channel.pushes) == pushes  # nothing reaches a channel after close
