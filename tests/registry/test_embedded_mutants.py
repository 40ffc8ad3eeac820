"""Embedded-registry behaviour mutation testing found unchecked (mutation/, area ``registries``).

The namespace check, the default directory, the timing an environment's configuration fills in, the
directory lock and SQLite's busy timeout, the heartbeat's cadence and its purge of dead rows, what a
client keeps while a recreated file settles, how the registry moves to a file replaced or emptied
under it, errors while deregistering and closing, and the contract's liveness logging and abstract
methods. Real SQLite files in ``tmp_path``, real threads; a patched wall clock where a figure must be
exact.
"""

from __future__ import annotations

import enum
import fcntl
import json
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from registry_support import Descriptor, RecordingChannel, wait_until, within

from warpcall.di import Environment, create, module
from warpcall.di.configuration import ConfigurationSource
from warpcall.exceptions import ServiceCommunicationException, ServiceException
from warpcall.registry.contract import ChannelAddress, ChannelInstances, ComponentRegistry
from warpcall.registry.embedded import FILE_NAME, EmbeddedComponentRegistry, check_namespace

ORDERS = Descriptor("orders")
PAYMENTS = Descriptor("payments")
X = "http://127.0.0.1:8701"
Y = "http://127.0.0.1:8702"


def address(url: str) -> list[ChannelAddress]:
    return [ChannelAddress("dispatch-json", url)]


def urls(registry: EmbeddedComponentRegistry, descriptor: Descriptor = ORDERS) -> list[str]:
    return [url for instances in registry.get_addresses(descriptor) for url in instances.urls]


def insert_row(path: Path, row_id: str, url: str, heartbeat: float, namespace: str) -> None:
    """A row as another process writes it (one that never renews it: it is dead or stalled)."""
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "INSERT INTO instances (id, component, addresses, pid, registered, heartbeat, namespace) "
            "VALUES (?, 'orders', ?, 1, 0, ?, ?)",
            (row_id, json.dumps([["dispatch-json", url]]), heartbeat, namespace),
        )


def row_ids(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as db:
        return [row_id for (row_id,) in db.execute("SELECT id FROM instances ORDER BY id")]


@pytest.fixture
def registries() -> Iterator[list[EmbeddedComponentRegistry]]:
    """Registries a test makes; all closed at its end."""
    made: list[EmbeddedComponentRegistry] = []
    yield made
    for registry in made:
        registry.close()


# -- names and places -----------------------------------------------------------------------------------


class Tier(enum.StrEnum):
    SHOP = "shop"


def test_a_namespace_given_as_a_str_subclass_is_accepted(
    tmp_path: Path, registries: list[EmbeddedComponentRegistry]
) -> None:
    # a StrEnum member is a clean name; str.strip() returns a new plain str for it, which must not
    # count as "padded"
    assert check_namespace(Tier.SHOP) == "shop"
    registries.append(EmbeddedComponentRegistry(tmp_path, namespace=Tier.SHOP))
    registries[-1].register(ORDERS, address(X))
    assert registries[-1].namespaces() == ["shop"]
    assert urls(registries[-1]) == [X]


def test_the_embedded_file_lands_in_the_users_cache_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registries: list[EmbeddedComponentRegistry]
) -> None:
    monkeypatch.delenv("WARPCALL_REGISTRY_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    registries.append(EmbeddedComponentRegistry(namespace="home"))
    registries[-1].register(ORDERS, address(X))
    assert (tmp_path / ".cache" / "warpcall" / FILE_NAME).is_file()


# -- timing from an environment -------------------------------------------------------------------------


class Values(ConfigurationSource):
    """Configuration given as a nested dict."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def load(self) -> dict[str, Any]:
        return self.values


def environment_with(directory: Path, **timing: float) -> tuple[Environment, EmbeddedComponentRegistry]:
    """An environment whose module creates an embedded registry with ``timing`` and configures ttl 0.8 s
    and poll_interval 0.05 s."""
    created: list[EmbeddedComponentRegistry] = []

    @module()
    class RegistryModule:
        @create()
        def create_configuration(self) -> Values:
            return Values({"registry": {"namespace": "env", "embedded": {"ttl": 0.8, "poll_interval": 0.05}}})

        @create()
        def create_registry(self) -> ComponentRegistry:
            created.append(EmbeddedComponentRegistry(directory, **timing))
            return created[-1]

    environment = Environment(RegistryModule)
    registry = environment.get(ComponentRegistry)  # type: ignore[type-abstract]
    assert registry is created[-1]
    return environment, created[-1]


@pytest.mark.parametrize(
    ("timing", "expected"),
    [
        # the constructor's ttl stays, poll_interval comes from the configuration; and the other way round
        ({"ttl": 2.0}, (2.0, 0.05)),
        ({"poll_interval": 0.3}, (0.8, 0.3)),
    ],
)
def test_the_configuration_fills_only_the_embedded_timing_the_constructor_left_open(
    tmp_path: Path, timing: dict[str, float], expected: tuple[float, float]
) -> None:
    environment, registry = environment_with(tmp_path, **timing)
    try:
        assert (registry.ttl, registry.poll_interval) == expected
        assert registry.heartbeat_interval == pytest.approx(expected[0] / 5)
    finally:
        environment.destroy()


def test_destroying_the_environment_closes_the_embedded_registry_it_created(tmp_path: Path) -> None:
    environment, registry = environment_with(tmp_path, ttl=30.0)
    try:
        registry.register(ORDERS, address(X))
        assert row_ids(tmp_path / FILE_NAME) != []
    finally:
        environment.destroy()
    # closed: its row is removed at once (not left to expire in 30 s) and it takes no more work
    assert row_ids(tmp_path / FILE_NAME) == []
    with pytest.raises(ServiceException, match="closed"):
        registry.register(ORDERS, address(X))


# -- namespaces() ---------------------------------------------------------------------------------------


def test_embedded_namespaces_are_those_with_a_heartbeat_within_the_ttl(
    tmp_path: Path, registries: list[EmbeddedComponentRegistry]
) -> None:
    registries.append(EmbeddedComponentRegistry(tmp_path, namespace="live", ttl=10.0))
    registry = registries[-1]
    registry.register(ORDERS, address(X))
    now = time.time()
    insert_row(tmp_path / FILE_NAME, "recent", Y, now - 5, "recent")  # half a TTL old: alive
    insert_row(tmp_path / FILE_NAME, "stale", Y, now - 15, "stale")  # one and a half: gone
    assert registry.namespaces() == ["live", "recent"]


# -- locks ----------------------------------------------------------------------------------------------


def test_opening_the_embedded_file_waits_for_the_directory_lock(
    tmp_path: Path, registries: list[EmbeddedComponentRegistry]
) -> None:
    # another process recreating the file holds an exclusive flock on the directory (a descriptor of
    # our own is a separate lock owner, as another process is)
    held = os.open(tmp_path, os.O_RDONLY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        registries.append(EmbeddedComponentRegistry(tmp_path, namespace="locked", busy_timeout=0.3))
        with pytest.raises(ServiceCommunicationException, match="held for more than 0.3 s"):
            registries[-1].register(ORDERS, address(X))
        assert not (tmp_path / FILE_NAME).exists()
    finally:
        os.close(held)
    registries[-1].register(ORDERS, address(X))
    assert urls(registries[-1]) == [X]


def test_an_embedded_write_waits_for_another_writer_within_the_busy_timeout(
    tmp_path: Path, registries: list[EmbeddedComponentRegistry]
) -> None:
    registries.append(EmbeddedComponentRegistry(tmp_path, namespace="busy", busy_timeout=5.0))
    registry = registries[-1]
    assert registry.namespaces() == []  # the file exists and the registry has it open
    # another process's write transaction, committed 0.3 s later
    writer = sqlite3.connect(tmp_path / FILE_NAME, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    commit = threading.Timer(0.3, writer.execute, ("COMMIT",))
    commit.start()
    try:
        started = time.monotonic()
        registry.register(ORDERS, address(X))
        assert time.monotonic() - started >= 0.25  # it waited for the lock instead of failing
    finally:
        commit.join(timeout=5)
        writer.close()
    assert urls(registry) == [X]


# -- the heartbeat --------------------------------------------------------------------------------------


def test_the_embedded_heartbeat_is_renewed_once_per_heartbeat_interval(
    tmp_path: Path, registries: list[EmbeddedComponentRegistry]
) -> None:
    interval = 0.3
    registries.append(
        EmbeddedComponentRegistry(
            tmp_path, namespace="beat", ttl=30.0, heartbeat_interval=interval, poll_interval=0.02
        )
    )
    registries[-1].register(ORDERS, address(X))
    seen: list[float] = []

    def renewals() -> bool:
        with closing(sqlite3.connect(tmp_path / FILE_NAME)) as db:
            (heartbeat,) = db.execute("SELECT heartbeat FROM instances").fetchone()
        if not seen or heartbeat != seen[-1]:
            seen.append(heartbeat)
        return len(seen) >= 4

    # the register's write, the first tick's, then renewals: renewed on time, not on every tick
    # (poll_interval) and not only once
    wait_until(renewals, timeout=within(4 * interval), interval=0.01)
    gaps = [later - earlier for earlier, later in zip(seen[1:], seen[2:])]
    assert all(gap >= 0.9 * interval for gap in gaps), gaps


def test_the_embedded_heartbeat_purges_rows_dead_for_twenty_ttls(
    tmp_path: Path, registries: list[EmbeddedComponentRegistry]
) -> None:
    # TTL 10 s: rows dead for more than 200 s go; the one-minute floor does not apply
    registries.append(
        EmbeddedComponentRegistry(
            tmp_path, namespace="purge", ttl=10.0, heartbeat_interval=0.05, poll_interval=0.05
        )
    )
    registries[-1].register(ORDERS, address(X))
    now = time.time()
    insert_row(tmp_path / FILE_NAME, "dead", Y, now - 300, "purge")
    insert_row(tmp_path / FILE_NAME, "quiet", Y, now - 120, "slower")
    wait_until(lambda: "dead" not in row_ids(tmp_path / FILE_NAME), timeout=5.0)
    assert "quiet" in row_ids(tmp_path / FILE_NAME)


# -- a recreated file -----------------------------------------------------------------------------------


class Clock:
    """The wall clock (``time.time``) the embedded registry reads, set by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def remove_files(path: Path) -> None:
    """Delete the file and its side files as another process would: under the lock on the directory, so
    no registry opens or creates the file meanwhile."""
    held = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        for found in path.parent.glob(path.name + "*"):
            found.unlink()
    finally:
        os.close(held)


def test_a_url_is_kept_over_a_recreated_file_for_one_ttl_after_its_last_heartbeat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registries: list[EmbeddedComponentRegistry]
) -> None:
    clock = Clock(1_000_000.0)
    monkeypatch.setattr(time, "time", clock)
    # the watch's thread reads every 20 ms of real time; what it reads depends on the clock alone
    registries.append(
        EmbeddedComponentRegistry(
            tmp_path, namespace="hold", ttl=10.0, heartbeat_interval=60.0, poll_interval=0.02
        )
    )
    client = registries[-1]
    assert urls(client) == []  # creates the file
    insert_row(tmp_path / FILE_NAME, "server", X, clock.now, "hold")  # its last heartbeat: now
    channel = RecordingChannel(ORDERS, "dispatch-json")
    client.watch(channel)
    assert channel.urls == [X]

    # 5 s later the file vanishes; the client makes a new one and keeps what it knew while servers return
    clock.now += 5
    remove_files(tmp_path / FILE_NAME)
    assert urls(client) == [X]
    assert row_ids(tmp_path / FILE_NAME) == []
    # one TTL after the server's last heartbeat it is gone, though the file is younger than a TTL
    clock.now += 5.5
    assert urls(client) == []
    # once the file is a TTL old, it alone is the truth: a row deleted (its server deregistered) leaves at
    # once, though its heartbeat is fresh
    clock.now += 5
    insert_row(tmp_path / FILE_NAME, "back", Y, clock.now, "hold")
    wait_until(lambda: channel.urls == [Y], timeout=within(client.poll_interval))
    with closing(sqlite3.connect(tmp_path / FILE_NAME)) as db, db:
        db.execute("DELETE FROM instances WHERE id = 'back'")
    assert urls(client) == []


# -- a file replaced under a running registry -----------------------------------------------------------


def checkpoint(path: Path) -> None:
    """Write the log into the file and empty it, as the last connection to close does."""
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0


def test_an_embedded_file_another_process_checkpointed_is_read_without_reopening_it(
    tmp_path: Path, registries: list[EmbeddedComponentRegistry]
) -> None:
    # no thread (nothing registered or watched): only the test's calls read the file
    registries.append(EmbeddedComponentRegistry(tmp_path, namespace="check", busy_timeout=0.3))
    reader = registries[-1]
    assert reader.namespaces() == []  # the file exists and the registry has it open
    # another process writes a row and checkpoints: the file changes on disk, its side files stay
    insert_row(tmp_path / FILE_NAME, "server", X, time.time(), "check")
    checkpoint(tmp_path / FILE_NAME)
    # a changed file is checked on a connection of its own and read on, not reopened: reopening takes the
    # directory lock, which another process holds here
    held = os.open(tmp_path, os.O_RDONLY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert urls(reader) == [X]
    finally:
        os.close(held)


class Beacon:
    """A Liveness that tells when the registry's thread first asked it (its first heartbeat is due)."""

    def __init__(self) -> None:
        self.asked = threading.Event()

    def alive(self) -> bool:
        self.asked.set()
        return True


def test_an_embedded_registry_writes_its_rows_at_once_into_a_file_recreated_in_place(
    tmp_path: Path, registries: list[EmbeddedComponentRegistry]
) -> None:
    # a thread that beats when registering and then not for 30 s: the test's reads notice the change
    registries.append(
        EmbeddedComponentRegistry(
            tmp_path, namespace="stamp", ttl=60.0, heartbeat_interval=30.0, poll_interval=30.0
        )
    )
    server = registries[-1]
    beacon = Beacon()
    server.set_liveness(beacon)
    server.register(ORDERS, address(X))
    assert beacon.asked.wait(timeout=5)
    assert server.namespaces() == ["stamp"]  # waits for that first round of the thread to end
    # another process makes the file over in place: no rows, another creation stamp; then checkpoints it,
    # so the file changes on disk (the side files stay)
    with closing(sqlite3.connect(tmp_path / FILE_NAME)) as db, db:
        db.execute("DELETE FROM instances")
        db.execute("UPDATE meta SET value = ? WHERE key = 'created'", (repr(time.time()),))
    checkpoint(tmp_path / FILE_NAME)
    # the server's next read sees a new file and writes its row into it, without waiting for its heartbeat
    assert urls(server, PAYMENTS) == []
    assert row_ids(tmp_path / FILE_NAME) != []
    registries.append(EmbeddedComponentRegistry(tmp_path, namespace="stamp", ttl=60.0))
    assert urls(registries[-1]) == [X]


def test_an_embedded_file_emptied_to_garbage_is_recreated(
    tmp_path: Path, registries: list[EmbeddedComponentRegistry]
) -> None:
    (tmp_path / FILE_NAME).write_bytes(b"not a database " * 300)
    registries.append(EmbeddedComponentRegistry(tmp_path, namespace="garbage"))
    registries[-1].register(ORDERS, address(X))
    assert (tmp_path / FILE_NAME).read_bytes().startswith(b"SQLite format 3\x00")
    assert urls(registries[-1]) == [X]


# -- errors while withdrawing ---------------------------------------------------------------------------


def test_embedded_deregister_and_close_log_an_unreachable_directory_instead_of_raising(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "registry"
    registry = EmbeddedComponentRegistry(directory, namespace="gone", ttl=30.0, heartbeat_interval=30.0)
    try:
        registry.register(ORDERS, address(X))
        registry.register(PAYMENTS, address(Y))
        # the directory is replaced by a plain file: every stat and mkdir of the registry fails (OSError)
        shutil.rmtree(directory)
        directory.write_text("in the way")
        with caplog.at_level(logging.WARNING, logger="warpcall.registry.embedded"):
            registry.deregister(ORDERS)
            registry.close()
    finally:
        registry.close()  # a second close does nothing; this one only stops the thread of a failed test
    messages = [record.getMessage() for record in caplog.records]
    assert any(message.startswith("could not remove orders:") for message in messages), messages
    assert any(message.startswith("could not remove this process's rows") for message in messages), messages


# -- the contract ---------------------------------------------------------------------------------------


class Switch:
    """A Liveness the test turns."""

    def __init__(self) -> None:
        self.alive_now = True

    def alive(self) -> bool:
        return self.alive_now


def test_serving_logs_each_change_of_liveness_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, registries: list[EmbeddedComponentRegistry]
) -> None:
    registries.append(EmbeddedComponentRegistry(tmp_path, namespace="live"))
    registry = registries[-1]
    switch = Switch()
    registry.set_liveness(switch)

    def serving_logs() -> tuple[bool, list[str]]:
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="warpcall.registry"):
            answer = registry.serving()
        return answer, [record.levelname for record in caplog.records if record.name == "warpcall.registry"]

    assert serving_logs() == (True, [])  # alive from the start: nothing changed, nothing to say
    switch.alive_now = False
    assert serving_logs() == (False, ["WARNING"])
    assert serving_logs() == (False, [])
    switch.alive_now = True
    assert serving_logs() == (True, ["INFO"])
    assert serving_logs() == (True, [])


ABSTRACT = ["register", "deregister", "watch", "get_addresses"]


@pytest.mark.parametrize("missing", ABSTRACT)
def test_a_registry_must_implement_every_method_of_the_contract(missing: str) -> None:
    def register(self: Any, descriptor: Any, addresses: list[ChannelAddress]) -> None: ...

    def deregister(self: Any, descriptor: Any) -> None: ...

    def watch(self: Any, channel: Any) -> None: ...

    def get_addresses(self: Any, descriptor: Any) -> list[ChannelInstances]:
        return []

    methods = {"register": register, "deregister": deregister, "watch": watch, "get_addresses": get_addresses}
    complete = type("Complete", (ComponentRegistry,), methods)
    assert complete().get_addresses(ORDERS) == []
    del methods[missing]
    partial = type("Partial", (ComponentRegistry,), methods)
    with pytest.raises(TypeError, match=missing):
        partial()
