"""A process for the namespace tests of the embedded registry.

``python namespace_peer.py boot <json>``: boots an environment whose module declares no registry (so
the environment's default embedded registry is used, its namespace and timing from the configuration:
``EnvConfigurationSource``), registers ``config["component"]`` at ``config["url"]`` in it, prints
``READY <namespace> <ttl> <poll_interval>`` and waits; stdin's EOF destroys the environment.

``python namespace_peer.py legacy <json>``: a process of a warpcall version before namespaces, as the
file sees it: the SQL that version ran (its schema, its upsert, its read), on one connection kept
open, one step per line of stdin ("beat": the heartbeat; "read <component>": the URLs it reads),
answering each with one line, so a test drives it step by step around a migration.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from pathlib import Path

from registry_support import Descriptor

from warpcall import ComponentRegistry, ServiceModule
from warpcall.di import Environment, create, module
from warpcall.di.configuration import EnvConfigurationSource
from warpcall.registry.contract import ChannelAddress


@module(imports=[ServiceModule])
class PeerModule:
    """Declares no registry: the environment provides the embedded default."""

    @create()
    def create_configuration(self) -> EnvConfigurationSource:
        return EnvConfigurationSource()


def boot(config: dict) -> None:
    environment = Environment(PeerModule)
    try:
        registry = environment.get(ComponentRegistry)  # type: ignore[type-abstract]
        registry.register(Descriptor(config["component"]), [ChannelAddress("dispatch-json", config["url"])])
        print(f"READY {registry.namespace} {registry.ttl} {registry.poll_interval}", flush=True)
        sys.stdin.read()
    finally:
        environment.destroy()


# what the version before namespaces ran, word for word
OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    id TEXT PRIMARY KEY,
    component TEXT NOT NULL,
    addresses TEXT NOT NULL,
    pid INTEGER NOT NULL,
    registered REAL NOT NULL,
    heartbeat REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS instances_component ON instances (component, heartbeat);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
OLD_UPSERT = (
    "INSERT INTO instances (id, component, addresses, pid, registered, heartbeat) "
    "VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET heartbeat = excluded.heartbeat"
)
OLD_READ = "SELECT addresses FROM instances WHERE component = ? AND heartbeat >= ? ORDER BY registered, id"


def legacy(config: dict) -> None:
    path = Path(config["directory"]) / "registry.sqlite3"
    db = sqlite3.connect(path, timeout=5.0, isolation_level=None)
    db.execute("PRAGMA busy_timeout = 5000")
    db.execute("PRAGMA journal_mode = WAL")
    db.executescript(OLD_SCHEMA)
    db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('created', ?)", (repr(time.time()),))
    db.isolation_level = "IMMEDIATE"
    row = (f"{config['component']}:{os.getpid()}:legacy", json.dumps([["dispatch-json", config["url"]]]), time.time())
    print("READY", flush=True)
    for line in sys.stdin:
        command = line.split()
        try:
            if command[0] == "beat":
                with db:
                    db.execute(OLD_UPSERT, (row[0], config["component"], row[1], os.getpid(), row[2], time.time()))
                print("OK", flush=True)
            elif command[0] == "read":
                rows = db.execute(OLD_READ, (command[1], time.time() - config["ttl"])).fetchall()
                urls = [uri for (payload,) in rows for _, uri in json.loads(payload)]
                print("URLS " + json.dumps(urls), flush=True)
        except sqlite3.Error as exc:
            print(f"ERROR {type(exc).__name__}: {exc}", flush=True)
    db.close()


if __name__ == "__main__":
    {"boot": boot, "legacy": legacy}[sys.argv[1]](json.loads(sys.argv[2]))
