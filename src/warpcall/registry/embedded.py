"""The default registry: a SQLite file shared by every process on one machine.

Nothing to install or start. Each registered instance is a row (unique id,
component, addresses per channel, heartbeat timestamp); a daemon thread of the
registering process renews the heartbeat, and rows whose heartbeat is older
than the TTL are ignored, so a process killed with SIGKILL drops out on its own.
The same thread polls for the watched components' rows and pushes changed URL
lists into the channels.

Namespaces partition the file: every row carries one, and a process sees only the rows of
its own. By default an environment's registry takes the top-level package of the module it
booted (``myapp`` for ``myapp.server.ServerModule``), so one application's clients and servers
find each other and unrelated applications of the same user do not; configuration
``registry.namespace`` (or ``$WARPCALL_REGISTRY_NAMESPACE``) names a shared one explicitly.

The file heals itself: it holds only rows that live processes renew every
heartbeat, so a file that was deleted, truncated, replaced or damaged is
recreated by the next process that opens it (under a lock on the directory,
together with SQLite's ``-wal``/``-shm`` side files, which must never be read
against another database), and every running process moves to the new file on
its next tick, servers writing their rows again at once. A client that sees a
recreated file keeps the URLs it knew for one TTL (the time every live server
needs to be back), so the vanished file never becomes an empty list; rows that
expire in a file that stayed are the truth, and an empty list then is too.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from warpcall.di import inject_environment, on_destroy
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

if TYPE_CHECKING:
    from warpcall.di import Environment

log = logging.getLogger("warpcall.registry.embedded")

FILE_NAME = "registry.sqlite3"
#: SQLite's companions of the file: a new file must not meet the old one's
SIDE_FILES = ("-wal", "-shm", "-journal")
#: how every SQLite database file starts
MAGIC = b"SQLite format 3\x00"

#: the configuration key naming the namespace, and the environment variable that overrides it
NAMESPACE_KEY = "registry.namespace"
NAMESPACE_VARIABLE = "WARPCALL_REGISTRY_NAMESPACE"
#: the configuration keys of the timing (seconds); a constructor argument wins over them
TTL_KEY = "registry.embedded.ttl"
POLL_INTERVAL_KEY = "registry.embedded.poll_interval"
#: the namespace of a registry created outside any environment with none named
DEFAULT_NAMESPACE = "default"
#: the namespace of rows written by versions without namespaces (the column's default)
LEGACY_NAMESPACE = ""
DEFAULT_TTL = 5.0
DEFAULT_POLL_INTERVAL = 0.5

T = TypeVar("T")

# Namespaces are a column of one table in one file, not one file each: the self-healing, the
# directory lock and the purge of dead rows stay as they are, and a namespace that is used once (the
# demo makes one per run) leaves no file behind, its rows purged by the next heartbeat of anyone.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    id TEXT PRIMARY KEY,
    component TEXT NOT NULL,
    addresses TEXT NOT NULL,
    pid INTEGER NOT NULL,
    registered REAL NOT NULL,
    heartbeat REAL NOT NULL,
    namespace TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# after the column exists (an older file gets it first)
_INDEX = "CREATE INDEX IF NOT EXISTS instances_namespace ON instances (namespace, component, heartbeat)"


def default_namespace(module: type) -> str:
    """The namespace an environment booted from ``module`` uses by default: its top-level package.

    ``myapp`` for a module class defined in ``myapp.server`` (also when run as ``python -m myapp.server``).
    A module outside any package (a script run as ``python server.py``, or ``server.py`` imported from a
    directory on ``sys.path``) takes the name of its directory instead, so the scripts of one project
    directory share a namespace. One ``sys.modules`` look-up; no file is read.
    """
    import sys

    name = module.__module__
    if name == "__main__":
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        if spec is not None and spec.name:
            name = spec.name  # run with -m: the name it was imported as
    top = name.partition(".")[0]
    loaded = sys.modules.get(top)
    if loaded is None or hasattr(loaded, "__path__"):
        return top  # a package (or something not loaded, e.g. a class made up in a test)
    file = getattr(loaded, "__file__", None)
    directory = Path(file).resolve().parent.name if file else ""
    return directory or top


def check_namespace(namespace: object) -> str:
    """``namespace`` when it is a usable name; ValueError (TypeError for a non-string) saying why not."""
    if not isinstance(namespace, str):
        raise TypeError(f"a registry namespace is a string, not {type(namespace).__name__} ({namespace!r})")
    if not namespace.strip() or namespace != namespace.strip() or not namespace.isprintable():
        raise ValueError(
            f"registry namespace {namespace!r} is empty, padded with spaces or holds control characters; "
            "use a name such as 'myapp'"
        )
    return namespace


def _add_namespace_column(db: sqlite3.Connection) -> None:
    """Give a file written before namespaces existed its ``namespace`` column, in place.

    ``ALTER TABLE ... ADD COLUMN`` with a constant default only rewrites the schema, atomically, in a write
    transaction that waits for the other writers (busy timeout); their statements are prepared again
    against the new schema. Old rows, and rows older versions keep writing, get ``''`` (their own
    namespace: they see every row, as they always did, but no namespaced process sees theirs).
    """
    def has_column() -> bool:
        return any(row[1] == "namespace" for row in db.execute("PRAGMA table_info(instances)"))

    if has_column():
        return
    db.execute("BEGIN IMMEDIATE")  # raises (busy) before a transaction exists: nothing to roll back
    try:
        if not has_column():  # another process may have added it while this one waited for the lock
            db.execute("ALTER TABLE instances ADD COLUMN namespace TEXT NOT NULL DEFAULT ''")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


class DamagedFileError(sqlite3.DatabaseError):
    """The registry file fails SQLite's own check (``PRAGMA quick_check``)."""


def is_damage(exc: BaseException) -> bool:
    """Whether ``exc`` says the file is damaged (corrupt, not a database, shorter than it claims),
    as opposed to busy, unreadable or out of space, which are retried as they are."""
    if isinstance(exc, DamagedFileError):
        return True
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith("SQLITE_CORRUPT") or name in ("SQLITE_NOTADB", "SQLITE_IOERR_SHORT_READ")


class _DirectoryLock:
    """An exclusive ``flock`` on the registry's directory while a process opens, creates or replaces
    the file, so two processes never recreate it at once or remove side files another just made.

    The directory, not a lock file: deleting the registry's files cannot take the lock away.
    Where ``fcntl`` does not exist (Windows) it does nothing.
    """

    def __init__(self, directory: Path, timeout: float) -> None:
        self.directory = directory
        self.timeout = timeout
        self._fd: int | None = None

    def __enter__(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not on POSIX
            return
        fd = os.open(self.directory, os.O_RDONLY)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._fd = fd
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise TimeoutError(
                        f"the lock on {self.directory} is held for more than {self.timeout} s"
                    ) from None
                time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


def default_directory() -> Path:
    """``$WARPCALL_REGISTRY_DIR``, else ``$XDG_CACHE_HOME/warpcall``, else ``~/.cache/warpcall``."""
    configured = os.environ.get("WARPCALL_REGISTRY_DIR")
    if configured:
        return Path(configured)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "warpcall"


def _configuration_getter(environment: Environment) -> Callable[..., Any] | None:
    """The environment's ``ConfigurationManager.get``, None when it has none."""
    from warpcall.di.configuration import ConfigurationManager

    if not environment.has_provider(ConfigurationManager):
        return None
    manager: ConfigurationManager = environment.get(ConfigurationManager)
    return manager.get


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

    Self-healing: every tick (``min(poll_interval, heartbeat_interval)``) the
    thread compares the file on disk (inode, size, modification time, the
    ``-shm`` file's inode) with the one it has open. A deleted or replaced file
    is reopened, a changed one is checked as a new process would see it
    (``PRAGMA quick_check`` on a fresh connection) and recreated when damaged;
    the process's registrations are written into a new file at once. A client
    that moves to a recreated file merges the URLs it knew into what it reads
    for ``ttl`` seconds after the file's creation, then reads the file alone.

    Namespace: the registry registers and finds instances of its :attr:`namespace` only; processes
    sharing one file but not a namespace never see each other's instances.

    Liveness: with :meth:`set_liveness` (a server installs its event loop's
    watchdog) the heartbeat is written only while the loop answers, so a stalled
    server leaves the watchers' lists ``ttl + poll_interval`` seconds after the
    watchdog noticed (its ``max_lag`` plus one probe interval), and is back
    within one tick once the loop answers again.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        namespace: str | None = None,
        ttl: float | None = None,
        heartbeat_interval: float | None = None,
        poll_interval: float | None = None,
        busy_timeout: float = 5.0,
        max_backoff: float = 5.0,
    ) -> None:
        #: the SQLite file every process of this machine shares
        self.path = (Path(directory) if directory is not None else default_directory()) / FILE_NAME
        # None: decided by the environment that creates the registry (see use_environment), else on first use
        self._namespace = check_namespace(namespace) if namespace is not None else None
        self._explicit_ttl = ttl is not None
        self._explicit_poll = poll_interval is not None
        self._explicit_heartbeat = heartbeat_interval is not None
        self.busy_timeout = busy_timeout
        self._max_backoff = max_backoff
        self._set_timing(
            DEFAULT_TTL if ttl is None else ttl,
            heartbeat_interval,
            DEFAULT_POLL_INTERVAL if poll_interval is None else poll_interval,
        )
        self._lock = threading.RLock()
        self._connection: sqlite3.Connection | None = None
        # (inode, size, mtime, -shm inode, -wal inode) of the file as last seen with the open connection
        self._signature: tuple[int, int, int, int | None, int | None] | None = None
        # the 'created' stamp of the file the known URL lists came from
        self._created: str | None = None
        # until then (wall clock) a read adds the known URLs: the file was recreated and servers write
        # their rows back within a heartbeat
        self._hold_until = 0.0
        # component -> (row id, addresses as JSON, registration time) of the instances this process hosts
        self._registered: dict[str, tuple[str, str, float]] = {}
        self._watched = WatchedChannels()
        # component -> (channel, URL) -> the newest heartbeat read for it, for a TTL (see _current)
        self._last_seen: dict[str, dict[tuple[str, str], float]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    def _set_timing(self, ttl: float, heartbeat_interval: float | None, poll_interval: float) -> None:
        if not ttl > 0 or not poll_interval > 0 or (heartbeat_interval is not None and not heartbeat_interval > 0):
            raise ValueError(
                f"the embedded registry's ttl ({ttl}), poll_interval ({poll_interval}) and heartbeat_interval "
                f"({heartbeat_interval}) must be positive numbers of seconds"
            )
        self.ttl = ttl
        self.heartbeat_interval = heartbeat_interval if heartbeat_interval is not None else ttl / 5
        self.poll_interval = poll_interval
        self.detection_window = ttl + poll_interval
        self._backoff = Backoff(initial=min(0.2, poll_interval), maximum=self._max_backoff)

    @property
    def namespace(self) -> str:
        """The partition of the file this registry reads and writes.

        Named by the constructor; else, for a registry an environment creates, ``$WARPCALL_REGISTRY_NAMESPACE``,
        the configuration's ``registry.namespace`` or the top-level package of the booted module (see
        :func:`default_namespace`); else ``$WARPCALL_REGISTRY_NAMESPACE`` or ``'default'``.
        """
        if self._namespace is None:
            self._namespace = check_namespace(os.environ.get(NAMESPACE_VARIABLE) or DEFAULT_NAMESPACE)
        return self._namespace

    @inject_environment()
    def use_environment(self, environment: Environment) -> None:
        """Take what the constructor left open from ``environment`` (called by the environment that creates
        the registry): the namespace, and ``registry.embedded.ttl`` / ``poll_interval`` from its configuration.

        Does nothing once the registry is in use: its rows and watches stay where they are.
        """
        with self._lock:
            if self._thread is not None or self._registered or self._watched.components():
                return
            get = _configuration_getter(environment)
            if self._namespace is None:
                configured = os.environ.get(NAMESPACE_VARIABLE) or (get(NAMESPACE_KEY, str, None) if get else None)
                try:
                    self._namespace = check_namespace(configured or default_namespace(environment.type))
                except (TypeError, ValueError) as exc:
                    from warpcall.di.configuration import ConfigurationException

                    raise ConfigurationException(
                        f"{NAMESPACE_KEY} (or ${NAMESPACE_VARIABLE}) is unusable: {exc}"
                    ) from exc
            if get is not None and not (self._explicit_ttl and self._explicit_poll):
                ttl = self.ttl if self._explicit_ttl else get(TTL_KEY, float, self.ttl)
                poll = self.poll_interval if self._explicit_poll else get(POLL_INTERVAL_KEY, float, self.poll_interval)
                self._set_timing(ttl, self.heartbeat_interval if self._explicit_heartbeat else None, poll)

    def namespaces(self) -> list[str]:
        """The namespaces with live instances in this registry's file (the legacy ``''`` included), sorted."""
        with self._lock:
            self._check_open()
            rows = self._healing(
                lambda db: db.execute(
                    "SELECT DISTINCT namespace FROM instances WHERE heartbeat >= ? ORDER BY namespace",
                    (time.time() - self.ttl,),
                ).fetchall()
            )
            return [namespace for (namespace,) in rows]

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

            def write(db: sqlite3.Connection) -> None:
                with db:
                    if previous is not None:
                        db.execute("DELETE FROM instances WHERE id = ?", (previous[0],))
                    self._upsert(db, descriptor.name, entry)

            try:
                self._healing(write)
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
                    self._watched.update(component, self._healing(lambda _: self._current(component)))
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
                return to_instances(descriptor.name, self._healing(lambda _: self._current(descriptor.name)))
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
            self._last_seen.clear()
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
                    due = time.monotonic() >= next_heartbeat
                    if self._healing(partial(self._tick, heartbeat_due=due)):
                        next_heartbeat = time.monotonic() + self.heartbeat_interval
                self._backoff.succeeded(log, f"registry file {self.path} readable again")
                delay = tick
            except (sqlite3.Error, OSError) as exc:
                delay = self._backoff.failed(
                    log, f"registry file {self.path} unavailable, keeping the last known instances", exc
                )
                with self._lock:
                    self._disconnect()

    def _tick(self, db: sqlite3.Connection, heartbeat_due: bool) -> bool:
        """One round of the thread: the heartbeat when due (and serving), then every watched component.

        True when it wrote the heartbeat; while the server does not answer, the heartbeat waits and is
        tried again every tick, so it resumes as soon as the server does.
        """
        beat = False
        if self._registered and heartbeat_due and self.serving():
            self._heartbeat(db)
            beat = True
        for component in self._watched.components():
            self._watched.update(component, self._current(component))
        return beat

    def _heartbeat(self, db: sqlite3.Connection) -> None:
        with db:
            for component, entry in self._registered.items():
                self._upsert(db, component, entry)
            # rows of processes dead for many TTLs are of no use to anyone; at least a minute, as processes of
            # other namespaces may run with a longer TTL (a short one here must not remove their live rows)
            db.execute("DELETE FROM instances WHERE heartbeat < ?", (time.time() - max(20 * self.ttl, 60.0),))

    # database

    def _upsert(self, db: sqlite3.Connection, component: str, entry: tuple[str, str, float]) -> None:
        # an upsert, not an update: it also restores our row when the file was deleted and recreated
        row_id, payload, registered = entry
        db.execute(
            "INSERT INTO instances (id, component, addresses, pid, registered, heartbeat, namespace) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET heartbeat = excluded.heartbeat",
            (row_id, component, payload, os.getpid(), registered, time.time(), self.namespace),
        )

    def _read(self, component: str) -> URLsByChannel:
        now = time.time()
        rows = self._db().execute(
            "SELECT addresses, heartbeat FROM instances WHERE namespace = ? AND component = ? AND heartbeat >= ? "
            "ORDER BY registered, id",
            (self.namespace, component, now - self.ttl),
        )
        seen = self._last_seen.setdefault(component, {})
        instances = []
        for payload, heartbeat in rows:
            addresses = [ChannelAddress(channel, uri) for channel, uri in json.loads(payload)]
            instances.append(addresses)
            for address in addresses:
                key = (address.channel, address.uri)
                if seen.get(key, 0.0) < heartbeat:
                    seen[key] = heartbeat
        for key in [key for key, heartbeat in seen.items() if heartbeat < now - self.ttl]:
            del seen[key]  # no row renewed it for a TTL: its process is gone
        return group_by_channel(instances)

    def _current(self, component: str) -> URLsByChannel:
        """``component``'s URL lists as read, plus the ones known before, while a recreated file settles.

        A URL known from the file before stays only while its last heartbeat seen there is younger than the
        TTL: a process that died just before the file was recreated leaves within the TTL of its death too.
        """
        urls = self._read(component)
        if time.time() >= self._hold_until:
            return urls
        known = self._watched.known(component)
        if not known:
            return urls
        seen = self._last_seen.get(component, {})
        merged = {channel: [url for url in known_urls if (channel, url) in seen] for channel, known_urls in known.items()}
        for channel, channel_urls in urls.items():
            into = merged.setdefault(channel, [])
            into.extend(url for url in channel_urls if url not in into)
        return merged

    def _healing(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(db)``; when the file turns out damaged, once more on a file checked (and recreated)."""
        try:
            return work(self._db())
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
            log.warning("registry file %s reads as damaged (%s); checking it", self.path, exc)
            self._disconnect()
            return work(self._db())

    def _on_disk(self) -> tuple[int, int, int, int | None, int | None] | None:
        """(inode, size, mtime, -shm inode, -wal inode) of the file, None when it does not exist.

        The side files stay while any connection is open (SQLite removes them when the last one
        closes), so a new inode means another process started a log of its own (a connection that
        opens an emptied file deletes the log it finds): every connection must move to it.
        """
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return None
        inodes: list[int | None] = []
        for suffix in ("-shm", "-wal"):
            try:
                inodes.append(os.stat(f"{self.path}{suffix}").st_ino)
            except FileNotFoundError:
                inodes.append(None)
        return stat.st_ino, stat.st_size, stat.st_mtime_ns, inodes[0], inodes[1]

    def _db(self) -> sqlite3.Connection:
        """The open connection; reopened when the file was removed or replaced, checked when it changed.

        Three ``stat`` calls when nothing changed. The file itself changes on disk when some process
        checkpoints its log into it (rare: the rows are few and small) or when something damaged it.
        """
        on_disk = self._on_disk()
        if self._connection is not None and on_disk is not None and self._signature is not None:
            if on_disk == self._signature:
                return self._connection
            same_files = on_disk[0] == self._signature[0] and on_disk[3:] == self._signature[3:]
            if same_files and self._intact():
                self._signature = on_disk
                return self._connection
        return self._open()

    def _header_sound(self) -> bool:
        """Whether the file starts as a database does (SQLite reads an emptied file as a new database,
        against the log of the old one when its side files are still there)."""
        try:
            with open(self.path, "rb") as file:
                return file.read(len(MAGIC)) == MAGIC
        except FileNotFoundError:
            return True  # nothing to be damaged: it is created

    def _intact(self) -> bool:
        """Whether the file reads as sound, with the same creation stamp, on a connection of its own."""
        if not self._header_sound():
            return False
        try:
            probe = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        except sqlite3.Error:
            return False
        try:
            if probe.execute("PRAGMA quick_check").fetchone() != ("ok",):
                return False
            row = probe.execute("SELECT value FROM meta WHERE key = 'created'").fetchone()
            return row is not None and row[0] == self._created
        except sqlite3.DatabaseError as exc:
            if is_damage(exc) or "no such table" in str(exc):
                return False
            raise
        finally:
            probe.close()

    def _open(self) -> sqlite3.Connection:
        """Connect to the file, creating it (and recreating it when damaged) under the directory lock."""
        self._disconnect()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _DirectoryLock(self.path.parent, self.busy_timeout):
            if not self.path.exists():
                # the log and index of a deleted file would be read as this new file's
                self._remove(SIDE_FILES)
            elif not self._header_sound():
                log.warning("registry file %s is not a database (emptied or overwritten); recreating it", self.path)
                self._remove(("", *SIDE_FILES))
            try:
                db, created = self._connect()
            except sqlite3.DatabaseError as exc:
                if not is_damage(exc):
                    raise
                log.warning(
                    "registry file %s is damaged (%s); recreating it (it holds only short-lived rows: "
                    "live instances write theirs again within a heartbeat)",
                    self.path,
                    exc,
                )
                self._remove(("", *SIDE_FILES))
                db, created = self._connect()
            signature = self._on_disk()
        self._connection, self._signature = db, signature
        if self._created is not None and created != self._created:
            # a new file: its rows come back within a heartbeat of its creation; until every live
            # server had a TTL to write again, what is read adds to what was known instead of replacing it
            self._hold_until = float(created) + self.ttl
            log.warning(
                "registry file %s was recreated; keeping the known instances until %.1f s after that",
                self.path,
                self.ttl,
            )
            if self._registered and self.serving():
                self._heartbeat(db)
        self._created = created
        return db

    def _connect(self) -> tuple[sqlite3.Connection, str]:
        """A connection to the file, with the schema, checked; and the file's creation stamp."""
        db = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
        try:
            db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.executescript(_SCHEMA)
            _add_namespace_column(db)
            db.execute(_INDEX)
            check = db.execute("PRAGMA quick_check").fetchone()
            if check != ("ok",):
                raise DamagedFileError(f"quick_check: {check}")
            # the stamp tells a recreated file from the one a process had open
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('created', ?)", (repr(time.time()),))
            (created,) = db.execute("SELECT value FROM meta WHERE key = 'created'").fetchone()
            # `with db:` then commits each group of writes as one transaction
            db.isolation_level = "IMMEDIATE"
        except BaseException:
            db.close()
            raise
        return db, str(created)

    def _remove(self, suffixes: tuple[str, ...]) -> None:
        for suffix in suffixes:
            try:
                os.unlink(f"{self.path}{suffix}")
            except FileNotFoundError:
                pass

    def _disconnect(self) -> None:
        # SQLite neither checkpoints into nor removes the side files of a file that was deleted or moved
        # since it was opened, so closing a connection to a replaced file leaves the new one alone
        if self._connection is not None:
            self._connection.close()
            self._connection = None
            self._signature = None

    def _check_open(self) -> None:
        if self._closed:
            raise ServiceException(f"the embedded registry on {self.path} is closed; create a new one")
