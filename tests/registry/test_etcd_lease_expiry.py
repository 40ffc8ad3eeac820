"""A lease holding several keys expires: every one of them leaves the watchers' lists.

etcd deletes a lease's keys in one revision, so the watch stream brings several DELETE events with the
same ``mod_revision``; each must be applied (mutation testing found the watcher skipped all but the
first). A real etcd on 127.0.0.1; the waits are bounded.
"""

from __future__ import annotations

import httpx
from registry_support import Descriptor, EtcdServer, RecordingChannel, wait_until

from warpcall.registry.contract import ChannelAddress
from warpcall.registry.etcd import EtcdComponentRegistry


def test_every_key_of_an_expired_lease_leaves_the_watchers_lists(etcd_server: EtcdServer) -> None:
    server = EtcdComponentRegistry(etcd_server.endpoint, ttl=30)
    watcher = EtcdComponentRegistry(etcd_server.endpoint, ttl=30)
    try:
        channels = []
        for port, name in enumerate(["orders", "billing", "stock"], start=8001):
            server.register(Descriptor(name), [ChannelAddress("dispatch-json", f"http://127.0.0.1:{port}")])
            channel = RecordingChannel(Descriptor(name), "dispatch-json")
            watcher.watch(channel)
            channels.append(channel)
        assert [channel.urls for channel in channels] == [
            ["http://127.0.0.1:8001"],
            ["http://127.0.0.1:8002"],
            ["http://127.0.0.1:8003"],
        ]
        # the lease ends as when its process died: etcd deletes its three keys in one revision
        revoked = httpx.post(
            f"{etcd_server.endpoint}/v3/lease/revoke", json={"ID": str(server._lease)}, timeout=5
        )
        revoked.raise_for_status()
        wait_until(lambda: all(channel.urls == [] for channel in channels), timeout=5)
    finally:
        watcher.close()
        server.close()
