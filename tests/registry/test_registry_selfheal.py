"""The embedded registry's file heals itself (issue 16): deleted, emptied, truncated or overwritten
while a server and a client run, the client's calls keep working, the file is recreated and the
server's row is back within one heartbeat; a new server boots and a new client discovers on a damaged
file; rows that expire in a file that stayed are the truth (an empty list then is right).

Real processes where it matters: the server is a child process (resilience_server.py), the client
calls it through a real channel in this process.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from process_support import Children
from registry_support import Descriptor, RecordingChannel, wait_until, within
from resilience_api import Who

from warpcall import ComponentRegistry, ServiceCommunicationException, ServiceManager, ServiceModule
from warpcall.di import Environment, create, module
from warpcall.registry.contract import ChannelAddress
from warpcall.registry.embedded import FILE_NAME, SIDE_FILES, EmbeddedComponentRegistry, is_damage

SERVER = Path(__file__).with_name("resilience_server.py")
INSTANCE = Path(__file__).with_name("registry_instance.py")
TTL, POLL = 1.5, 0.1
HEARTBEAT = TTL / 5  # the embedded registry's default heartbeat interval
#: the registry the next ClientModule environment uses
CLIENT_REGISTRY: list[ComponentRegistry] = []


@module(imports=[ServiceModule])
class ClientModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return CLIENT_REGISTRY[-1]


@pytest.fixture
def children(tmp_path: Path) -> Iterator[Children]:
    started = Children(tmp_path)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    directory = tmp_path / "registry"
    directory.mkdir()
    return directory


@pytest.fixture
def client(store: Path) -> Iterator[Callable[[], Who]]:
    """Makes a client environment on its own embedded registry; destroyed after the test."""
    environments: list[Environment] = []

    def make() -> Who:
        CLIENT_REGISTRY.append(EmbeddedComponentRegistry(store, ttl=TTL, poll_interval=POLL))
        environments.append(Environment(ClientModule))
        return environments[-1].get(ServiceManager).get_service(Who, "dispatch-json")

    yield make
    for environment in environments:
        environment.destroy()
    CLIENT_REGISTRY.clear()


def server_config(store: Path) -> dict:
    return {"directory": str(store), "ttl": TTL, "poll": POLL}


def live_rows(path: Path) -> int:
    """Rows with a heartbeat younger than the TTL, read as a newcomer would; -1 when unreadable."""
    try:
        db = sqlite3.connect(path, timeout=1)
    except sqlite3.Error:
        return -1
    try:
        return int(
            db.execute("SELECT count(*) FROM instances WHERE heartbeat >= ?", (time.time() - TTL,)).fetchone()[0]
        )
    except sqlite3.Error:
        return -1
    finally:
        db.close()


def succeeds(who: Who) -> bool:
    try:
        return who.pid() > 0
    except ServiceCommunicationException:
        return False


# -- damage done to the files while everything runs --------------------------------------------


def delete_all(path: Path) -> None:
    for suffix in ("", *SIDE_FILES):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def delete_main(path: Path) -> None:
    # the -wal and -shm stay: a new file must not be read against them
    path.unlink()


def empty(path: Path) -> None:
    with open(path, "r+b") as file:
        file.truncate(0)


def truncate_half(path: Path) -> None:
    with open(path, "r+b") as file:
        file.truncate(os.path.getsize(path) // 2)


def garbage_in_place(path: Path) -> None:
    size = max(os.path.getsize(path), 8192)
    with open(path, "r+b") as file:
        file.write(os.urandom(size))


def garbage_everywhere(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").write_bytes(b"this is no database " * 1000)


DAMAGE = {
    "delete-all": delete_all,
    "delete-main": delete_main,
    "empty": empty,
    "truncate-half": truncate_half,
    "garbage-in-place": garbage_in_place,
    "garbage-everywhere": garbage_everywhere,
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_file_while_running_fails_no_call_and_heals(
    damage: str, store: Path, children: Children, client: Callable[[], Who]
) -> None:
    children.start(SERVER, "embedded", server_config(store))
    server_pid = children.processes[0].pid
    who = client()
    wait_until(lambda: succeeds(who), timeout=15)
    path = store / FILE_NAME

    # calls go on, bounded in count and time, while the file is damaged under them
    # (the file is not opened from here meanwhile: a foreign connection to an emptied file deletes
    # its log, see the README's limits)
    calls, failures, damaged_at = 0, [], None
    started = time.monotonic()
    while time.monotonic() - started < 2 * TTL + 1.0 and calls < 5000:
        if damaged_at is None and time.monotonic() - started > 0.3:
            DAMAGE[damage](path)
            damaged_at = time.monotonic()
        try:
            assert who.pid() == server_pid
        except ServiceCommunicationException as exc:
            failures.append(repr(exc))
        calls += 1
        time.sleep(0.002)
    assert damaged_at is not None
    assert failures == [], f"{len(failures)} of {calls} calls failed: {failures[:3]}"

    # the file is a sound database again, holding the server's row (written within one heartbeat:
    # a row older than that would have expired by now, the loop lasted more than two TTLs)
    wait_until(lambda: live_rows(path) == 1, timeout=within(HEARTBEAT))
    print(f"\n{damage}: {calls} calls, 0 failed")
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA quick_check").fetchone() == ("ok",)
    # a new client discovers the server in the healed file
    assert client().pid() == server_pid


@pytest.mark.parametrize("damage", ["garbage-everywhere", "empty-with-stale-log"])
def test_new_server_boots_and_new_client_discovers_on_a_damaged_file(
    damage: str, store: Path, children: Children, client: Callable[[], Who]
) -> None:
    path = store / FILE_NAME
    if damage == "garbage-everywhere":
        garbage_everywhere(path)
    else:
        # what a deleted file leaves behind: the old log and index, beside an empty file
        writer = EmbeddedComponentRegistry(store, ttl=TTL)
        writer.register(Descriptor("someone-else"), [ChannelAddress("dispatch-json", "http://127.0.0.1:9")])
        saved = {suffix: Path(f"{path}{suffix}").read_bytes() for suffix in ("-wal", "-shm")}
        writer.close()
        path.write_bytes(b"")
        for suffix, data in saved.items():
            Path(f"{path}{suffix}").write_bytes(data)
    children.start(SERVER, "embedded", server_config(store))
    who = client()
    wait_until(lambda: succeeds(who), timeout=within(HEARTBEAT))
    assert who.pid() == children.processes[0].pid


def test_new_client_on_a_file_damaged_under_a_running_server_discovers_it(
    store: Path, children: Children, client: Callable[[], Who]
) -> None:
    children.start(SERVER, "embedded", server_config(store))
    garbage_in_place(store / FILE_NAME)
    # the new client recreates the file; the server writes its row into it within a heartbeat
    who = client()
    wait_until(lambda: succeeds(who), timeout=within(HEARTBEAT))
    assert who.pid() == children.processes[0].pid


# -- what an empty list means ------------------------------------------------------------------


def instance_config(store: Path, component: str) -> dict:
    return {"component": component, "directory": str(store), "ttl": TTL, "poll": POLL}


def test_expired_rows_in_a_file_that_stayed_empty_the_list(store: Path, children: Children) -> None:
    url = children.start(INSTANCE, "embedded", instance_config(store, "orders"), ready="")
    watcher = EmbeddedComponentRegistry(store, ttl=TTL, poll_interval=POLL)
    try:
        channel = RecordingChannel(Descriptor("orders"), "dispatch-json")
        watcher.watch(channel)
        wait_until(lambda: channel.urls == [url])
        os.kill(children.processes[0].pid, signal.SIGKILL)
        # the instance really is gone: its row expires and the empty list is the truth
        wait_until(lambda: channel.urls == [], timeout=within(TTL + POLL))
    finally:
        watcher.close()


def test_a_recreated_file_keeps_the_known_list_for_one_ttl_then_tells_the_truth(
    store: Path, children: Children
) -> None:
    url = children.start(INSTANCE, "embedded", instance_config(store, "orders"), ready="")
    watcher = EmbeddedComponentRegistry(store, ttl=TTL, poll_interval=POLL)
    try:
        channel = RecordingChannel(Descriptor("orders"), "dispatch-json")
        watcher.watch(channel)
        wait_until(lambda: channel.urls == [url])
        # the file vanishes and the instance dies with it: nobody writes its row again
        os.kill(children.processes[0].pid, signal.SIGKILL)
        children.processes[0].wait(timeout=10)
        delete_all(store / FILE_NAME)
        # the watcher moves to a new file (it creates it) and keeps the list while servers could come back
        wait_until(lambda: (store / FILE_NAME).exists() and live_rows(store / FILE_NAME) == 0)
        assert channel.urls == [url]
        wait_until(lambda: channel.urls == [], timeout=within(TTL + POLL))
        # never an empty list before the hold ended: the pushes went [url] -> []
        assert [push.urls for push in channel.pushes if push is not None] == [[url], []]
    finally:
        watcher.close()


def test_damage_is_told_from_other_errors(tmp_path: Path) -> None:
    path = tmp_path / "not-a-db"
    path.write_bytes(b"garbage" * 1000)
    with pytest.raises(sqlite3.DatabaseError) as caught:
        sqlite3.connect(path).execute("SELECT 1 FROM sqlite_master")
    assert is_damage(caught.value)
    locked = sqlite3.OperationalError("database is locked")
    assert not is_damage(locked)


def test_registering_on_a_garbage_file_recreates_it(store: Path) -> None:
    garbage_everywhere(store / FILE_NAME)
    registry = EmbeddedComponentRegistry(store, ttl=TTL)
    try:
        registry.register(Descriptor("orders"), [ChannelAddress("dispatch-json", "http://127.0.0.1:8001")])
        (instances,) = registry.get_addresses(Descriptor("orders"))
        assert instances.urls == ["http://127.0.0.1:8001"]
        assert live_rows(store / FILE_NAME) == 1
    finally:
        registry.close()
