"""The default registry: a SQLite file shared by every process on one machine.

Nothing to install or start. Each registered instance is a row (unique id,
component, addresses per channel, heartbeat timestamp); a daemon thread of the
registering process renews the heartbeat, and rows whose heartbeat is older
than the TTL are ignored, so a process killed with SIGKILL drops out on its own.
The same thread polls for the watched components' rows and pushes changed URL
lists into the channels.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from pathlib import Path

from warpcall.di import on_destroy
from warpcall.exceptions import ServiceCommunicationException, ServiceException
from warpcall.registry._watch import Backoff, URLsByChannel, WatchedChannels, group_by_channel, to_instances
from warpcall.registry.contract import (
    ChannelAddress,
    ChannelInstances,
    ComponentInfo,
    ComponentRegistry,
    WatchedChannel,
    watched_component,
)

log = logging.getLogger("warpcall.registry.embedded")

FILE_NAME = "registry.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    id TEXT PRIMARY KEY,
    component TEXT NOT NULL,
    addresses TEXT NOT NULL,
    pid INTEGER NOT NULL,
    registered REAL NOT NULL,
    heartbeat REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS instances_component ON instances (component, heartbeat);
"""


def default_directory() -> Path:
    """``$WARPCALL_REGISTRY_DIR``, else ``$XDG_CACHE_HOME/warpcall``, else ``~/.cache/warpcall``."""
    configured = os.environ.get("WARPCALL_REGISTRY_DIR")
    if configured:
        return Path(configured)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "warpcall"


class EmbeddedComponentRegistry(ComponentRegistry):
    """Registry in a SQLite file (WAL mode) that every process on the machine opens.

    Detection window: an instance whose process died without deregistering
    leaves every watcher's URL list at most ``ttl + poll_interval`` seconds
    after its last heartbeat (defaults: 5 s + 0.5 s). Registrations and
    deregistrations by a live process reach watchers within ``poll_interval``.
    Processes sharing a file should use the same ``ttl``: a reader ignores
    rows older than its own ``ttl``, a writer renews every ``ttl / 5``.
    When the file cannot be opened or read, watched channels keep their last
    list; the error is logged and retried with capped exponential backoff.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        ttl: float = 5.0,
        heartbeat_interval: float | None = None,
        poll_interval: float = 0.5,
        busy_timeout: float = 5.0,
        max_backoff: float = 5.0,
    ) -> None:
        #: the SQLite file every process of this machine shares
        self.path = (Path(directory) if directory is not None else default_directory()) / FILE_NAME
        self.ttl = ttl
        self.heartbeat_interval = heartbeat_interval if heartbeat_interval is not None else ttl / 5
        self.poll_interval = poll_interval
        self.busy_timeout = busy_timeout
        self.detection_window = ttl + poll_interval
        self._backoff = Backoff(initial=min(0.2, poll_interval), maximum=max_backoff)
        self._lock = threading.RLock()
        self._connection: sqlite3.Connection | None = None
        self._inode: int | None = None
        # component -> (row id, addresses as JSON, registration time) of the instances this process hosts
        self._registered: dict[str, tuple[str, str, float]] = {}
        self._watched = WatchedChannels()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    # ComponentRegistry

    def register(self, descriptor: ComponentInfo, addresses: list[ChannelAddress]) -> None:
        entry = (
            f"{descriptor.name}:{os.getpid()}:{uuid.uuid4().hex}",
            json.dumps([[address.channel, address.uri] for address in addresses]),
            time.time(),
        )
        with self._lock:
            self._check_open()
            previous = self._registered.get(descriptor.name)
            try:
                db = self._db()
                with db:
                    if previous is not None:
                        db.execute("DELETE FROM instances WHERE id = ?", (previous[0],))
                    self._upsert(db, descriptor.name, entry)
            except (sqlite3.Error, OSError) as exc:
                raise ServiceCommunicationException(
                    f"cannot register {descriptor.name} in the registry file {self.path} ({exc}); "
                    "check that its directory exists and is writable, or set WARPCALL_REGISTRY_DIR"
                ) from exc
            self._registered[descriptor.name] = entry
            self._start()

    def deregister(self, descriptor: ComponentInfo) -> None:
        with self._lock:
            entry = self._registered.pop(descriptor.name, None)
            if entry is None:
                return
            try:
                db = self._db()
                with db:
                    db.execute("DELETE FROM instances WHERE id = ?", (entry[0],))
            except (sqlite3.Error, OSError) as exc:
                log.warning(
                    "could not remove %s from %s; it expires within %.1f s: %s",
                    entry[0],
                    self.path,
                    self.ttl,
                    exc,
                )

    def watch(self, channel: WatchedChannel) -> None:
        with self._lock:
            self._check_open()
            component = watched_component(channel)
            if self._watched.add(channel):
                try:
                    self._watched.update(component, self._read(component))
                except (sqlite3.Error, OSError) as exc:
                    log.warning(
                        "registry file %s unreadable, %s is watched once it is back: %s",
                        self.path,
                        component,
                        exc,
                    )
            self._start()

    def get_addresses(self, descriptor: ComponentInfo) -> list[ChannelInstances]:
        with self._lock:
            try:
                return to_instances(descriptor.name, self._read(descriptor.name))
            except (sqlite3.Error, OSError) as exc:
                known = self._watched.known(descriptor.name)
                if known is None:
                    raise ServiceCommunicationException(
                        f"the registry file {self.path} cannot be read ({exc}); "
                        "check that its directory exists and is writable"
                    ) from exc
                return to_instances(descriptor.name, known)

    @on_destroy()  # an environment that created the registry closes it when destroyed
    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        with self._lock:
            try:
                if self._registered:
                    db = self._db()
                    with db:
                        db.executemany(
                            "DELETE FROM instances WHERE id = ?",
                            [(entry[0],) for entry in self._registered.values()],
                        )
            except (sqlite3.Error, OSError) as exc:
                log.warning(
                    "could not remove this process's rows from %s (they expire in %.1f s): %s",
                    self.path,
                    self.ttl,
                    exc,
                )
            self._registered.clear()
            self._watched.clear()
            self._disconnect()

    # background work

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="warpcall-embedded-registry", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        tick = min(self.poll_interval, self.heartbeat_interval)
        next_heartbeat = 0.0
        delay = 0.0
        while not self._stop.wait(delay):
            try:
                with self._lock:
                    if self._registered and time.monotonic() >= next_heartbeat:
                        self._heartbeat()
                        next_heartbeat = time.monotonic() + self.heartbeat_interval
                    for component in self._watched.components():
                        self._watched.update(component, self._read(component))
                self._backoff.succeeded(log, f"registry file {self.path} readable again")
                delay = tick
            except (sqlite3.Error, OSError) as exc:
                delay = self._backoff.failed(
                    log, f"registry file {self.path} unavailable, keeping the last known instances", exc
                )
                with self._lock:
                    self._disconnect()

    def _heartbeat(self) -> None:
        db = self._db()
        with db:
            for component, entry in self._registered.items():
                self._upsert(db, component, entry)
            # rows of processes dead for many TTLs are of no use to anyone
            db.execute("DELETE FROM instances WHERE heartbeat < ?", (time.time() - 20 * self.ttl,))

    # database

    def _upsert(self, db: sqlite3.Connection, component: str, entry: tuple[str, str, float]) -> None:
        # an upsert, not an update: it also restores our row when the file was deleted and recreated
        row_id, payload, registered = entry
        db.execute(
            "INSERT INTO instances (id, component, addresses, pid, registered, heartbeat) "
            "VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET heartbeat = excluded.heartbeat",
            (row_id, component, payload, os.getpid(), registered, time.time()),
        )

    def _read(self, component: str) -> URLsByChannel:
        rows = self._db().execute(
            "SELECT addresses FROM instances WHERE component = ? AND heartbeat >= ? ORDER BY registered, id",
            (component, time.time() - self.ttl),
        )
        return group_by_channel(
            [ChannelAddress(channel, uri) for channel, uri in json.loads(payload)] for (payload,) in rows
        )

    def _db(self) -> sqlite3.Connection:
        """The open connection, reopened when the file was removed or replaced since it was opened."""
        try:
            inode: int | None = self.path.stat().st_ino
        except FileNotFoundError:
            inode = None
        if self._connection is not None and inode == self._inode:
            return self._connection
        self._disconnect()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.executescript(_SCHEMA)
            # `with db:` then commits each group of writes as one transaction
            db.isolation_level = "IMMEDIATE"
        except BaseException:
            db.close()
            raise
        self._connection = db
        self._inode = self.path.stat().st_ino
        return db

    def _disconnect(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
            self._inode = None

    def _check_open(self) -> None:
        if self._closed:
            raise ServiceException(f"the embedded registry on {self.path} is closed; create a new one")
