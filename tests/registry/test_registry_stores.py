"""What only the embedded (SQLite) and etcd registries do: where they keep instances, and how they heal."""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from registry_support import Descriptor, EtcdServer, RecordingChannel, wait_until, within

from warpcall.exceptions import ServiceCommunicationException
from warpcall.registry.contract import ChannelAddress
from warpcall.registry.embedded import FILE_NAME, EmbeddedComponentRegistry, default_directory
from warpcall.registry.etcd import EtcdComponentRegistry

ORDERS = Descriptor("orders")
ADDRESS = [ChannelAddress("dispatch-json", "http://127.0.0.1:8001")]

# -- embedded ---------------------------------------------------------------------------------


def test_default_directory_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WARPCALL_REGISTRY_DIR", str(tmp_path / "explicit"))
    assert default_directory() == tmp_path / "explicit"
    registry = EmbeddedComponentRegistry()
    try:
        registry.register(ORDERS, ADDRESS)
        assert (tmp_path / "explicit" / FILE_NAME).exists()
    finally:
        registry.close()
    monkeypatch.delenv("WARPCALL_REGISTRY_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_directory() == tmp_path / "cache" / "warpcall"


def test_file_is_in_wal_mode_with_one_row_per_instance(tmp_path: Path) -> None:
    first, second = EmbeddedComponentRegistry(tmp_path), EmbeddedComponentRegistry(tmp_path)
    try:
        first.register(ORDERS, ADDRESS)
        second.register(ORDERS, [ChannelAddress("dispatch-json", "http://127.0.0.1:8002")])
        with sqlite3.connect(tmp_path / FILE_NAME) as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            rows = db.execute("SELECT id, component, addresses FROM instances ORDER BY registered").fetchall()
        assert [row[1] for row in rows] == ["orders", "orders"]
        assert len({row[0] for row in rows}) == 2
        assert json.loads(rows[0][2]) == [["dispatch-json", "http://127.0.0.1:8001"]]
    finally:
        first.close()
        second.close()


def test_rows_with_an_old_heartbeat_are_ignored(tmp_path: Path) -> None:
    registry = EmbeddedComponentRegistry(tmp_path, ttl=2.0)
    try:
        registry.register(ORDERS, ADDRESS)
        with sqlite3.connect(tmp_path / FILE_NAME) as db:
            db.execute(
                "INSERT INTO instances VALUES ('stale', 'orders', ?, 1, 0, ?, ?)",
                (json.dumps([["dispatch-json", "http://127.0.0.1:9999"]]), time.time() - 10, registry.namespace),
            )
        (instances,) = registry.get_addresses(ORDERS)
        assert instances.urls == ["http://127.0.0.1:8001"]
    finally:
        registry.close()


def test_deleted_file_is_recreated_and_live_instances_come_back(tmp_path: Path) -> None:
    host = EmbeddedComponentRegistry(tmp_path, ttl=2.0, poll_interval=0.1)
    watcher = EmbeddedComponentRegistry(tmp_path, ttl=2.0, poll_interval=0.1)
    try:
        host.register(ORDERS, ADDRESS)
        channel = RecordingChannel(ORDERS, "dispatch-json")
        watcher.watch(channel)
        wait_until(lambda: channel.urls == ["http://127.0.0.1:8001"])
        for path in tmp_path.glob(FILE_NAME + "*"):
            path.unlink(missing_ok=True)  # SQLite may remove its -wal/-shm files between glob and unlink
        # both reopen the new file; the host's next heartbeat writes its row again
        time.sleep(1.0)
        (instances,) = wait_until(lambda: watcher.get_addresses(ORDERS))
        assert instances.urls == ["http://127.0.0.1:8001"]
        assert channel.urls == ["http://127.0.0.1:8001"]
    finally:
        host.close()
        watcher.close()


def test_unreadable_registry_without_a_known_list_raises_a_clear_error(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the directory should be")
    registry = EmbeddedComponentRegistry(blocked)
    try:
        with pytest.raises(ServiceCommunicationException, match="registry file .* cannot be read"):
            registry.get_addresses(ORDERS)
        with pytest.raises(
            ServiceCommunicationException, match="cannot register orders .* WARPCALL_REGISTRY_DIR"
        ):
            registry.register(ORDERS, ADDRESS)
        registry.deregister(ORDERS)  # nothing was registered: nothing to do
    finally:
        registry.close()


# -- etcd -------------------------------------------------------------------------------------


def _keys(etcd: EtcdServer, prefix: str) -> dict[str, dict]:
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    answer = httpx.post(
        f"{etcd.endpoint}/v3/kv/range",
        json={
            "key": base64.b64encode(prefix.encode()).decode(),
            "range_end": base64.b64encode(end.encode()).decode(),
        },
        timeout=5,
    ).json()
    return {
        base64.b64decode(kv["key"]).decode(): dict(
            json.loads(base64.b64decode(kv["value"])), lease=kv.get("lease")
        )
        for kv in answer.get("kvs", [])
    }


def test_etcd_keys_live_under_prefix_with_a_lease(etcd_server: EtcdServer) -> None:
    registry = EtcdComponentRegistry(etcd_server.endpoint, prefix="/layout/", ttl=5)
    try:
        registry.register(ORDERS, ADDRESS)
        ((key, value),) = _keys(etcd_server, "/layout/").items()
        assert key.startswith("/layout/orders/")
        assert value["component"] == "orders"
        assert value["addresses"] == [["dispatch-json", "http://127.0.0.1:8001"]]
        assert int(value["lease"]) > 0
        registry.deregister(ORDERS)
        assert _keys(etcd_server, "/layout/") == {}
    finally:
        registry.close()


def test_etcd_lost_lease_is_replaced_and_the_instance_put_back(etcd_server: EtcdServer) -> None:
    host = EtcdComponentRegistry(etcd_server.endpoint, prefix="/heal/", ttl=3)
    watcher = EtcdComponentRegistry(etcd_server.endpoint, prefix="/heal/", ttl=3)
    try:
        host.register(ORDERS, ADDRESS)
        channel = RecordingChannel(ORDERS, "dispatch-json")
        watcher.watch(channel)
        wait_until(lambda: channel.urls == ["http://127.0.0.1:8001"])
        (value,) = _keys(etcd_server, "/heal/").values()
        # as if the lease had lapsed during a long outage: etcd drops it and the key with it
        httpx.post(
            f"{etcd_server.endpoint}/v3/lease/revoke", json={"ID": value["lease"]}, timeout=5
        ).raise_for_status()
        wait_until(lambda: channel.urls == [], timeout=within(0.0))  # the delete is pushed on the watch
        # the next keep-alive (every TTL/3) finds the lease gone, takes a new one and puts the key again
        wait_until(lambda: channel.urls == ["http://127.0.0.1:8001"], timeout=within(host.granted_ttl / 3))
        (renewed,) = _keys(etcd_server, "/heal/").values()
        assert renewed["lease"] != value["lease"]
    finally:
        host.close()
        watcher.close()


def test_etcd_close_revokes_the_lease_so_keys_go_at_once(etcd_server: EtcdServer) -> None:
    registry = EtcdComponentRegistry(etcd_server.endpoint, prefix="/bye/", ttl=30)
    registry.register(ORDERS, ADDRESS)
    assert len(_keys(etcd_server, "/bye/")) == 1
    registry.close()
    assert _keys(etcd_server, "/bye/") == {}


def test_etcd_unreachable_without_a_known_list_raises_a_clear_error() -> None:
    registry = EtcdComponentRegistry("http://127.0.0.1:9", timeout=1)
    try:
        with pytest.raises(ServiceCommunicationException, match="etcd at http://127.0.0.1:9"):
            registry.get_addresses(ORDERS)
        with pytest.raises(ServiceCommunicationException, match="cannot register orders"):
            registry.register(ORDERS, ADDRESS)
    finally:
        registry.close()
