"""The interface the network-namespace cluster serves, and its client (``scripts/netns_cluster.py`` runs both).

``WhereAmI`` (component ``cluster-demo``) says which instance answered a call; the instances
implement it in ``netns_cluster_instance.py`` (served by ``warpcall serve``), apart from this
module, so that the client's process has no implementation and calls the instances.

``python netns_cluster_node.py client ETCD PREFIX``
    The client, run in etcd's namespace: waits until etcd answers, then reads one JSON command per
    line on stdin and answers one JSON line on stdout (``instances``, ``call``, ``start``,
    ``results``, ``stop``, ``quit``; see :func:`client`).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

import httpx

from warpcall import (
    Component,
    ComponentRegistry,
    Service,
    ServiceManager,
    ServiceModule,
    component,
    idempotent,
    service,
)
from warpcall.di import create, module
from warpcall.registry.etcd import EtcdComponentRegistry
from warpcall.service import component_descriptor

CHANNEL = "dispatch-json"


@dataclass
class Where:
    """Which instance answered: its name (``a``, ``b``), process id and registered URL."""

    name: str
    pid: int
    url: str


@service(name="whereami")
class WhereAmI(Service):
    @idempotent  # it only reads: a call that may have reached a dying instance can go to another
    @abstractmethod
    def where(self) -> Where:
        """The instance that served this call."""


@component(name="cluster-demo", services=[WhereAmI])
class ClusterComponent(Component):
    pass


#: the client's settings (argv), read by its module's factory
SETTINGS: dict[str, Any] = {}


def emit(line: str) -> None:
    print(line, flush=True)


# -- the client --------------------------------------------------------------------------------


@module(imports=[ServiceModule])
class ClientModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return EtcdComponentRegistry(SETTINGS["etcd"], prefix=SETTINGS["prefix"], timeout=2.0, max_backoff=0.5)


def one_call(proxy: WhereAmI) -> dict[str, Any]:
    """One call: who answered, or the error (type and message)."""
    try:
        answer = proxy.where()
    except Exception as exc:  # noqa: BLE001 - reported to the orchestrator, which asserts on it
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"name": answer.name, "pid": answer.pid, "url": answer.url}


class CallLoop:
    """Calls in a background thread until stopped, at most ``max_calls`` calls and ``max_seconds`` seconds."""

    def __init__(self, proxy: WhereAmI, max_calls: int, max_seconds: float, pause: float) -> None:
        self.proxy, self.max_calls, self.max_seconds, self.pause = proxy, max_calls, max_seconds, pause
        self.results: list[dict[str, Any]] = []
        self.stopping = threading.Event()
        self.ended_by_bound = False
        self.thread = threading.Thread(target=self.run, name="cluster-calls", daemon=True)
        self.thread.start()

    def run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self.stopping.is_set() and len(self.results) < self.max_calls and time.monotonic() < deadline:
            self.results.append(one_call(self.proxy))
            self.stopping.wait(self.pause)  # pacing: the machine has other work than this loop
        self.ended_by_bound = not self.stopping.is_set()

    def since(self, start: int) -> dict[str, Any]:
        results = self.results[start:]  # a copy: the loop's thread appends meanwhile
        return {"results": results, "count": start + len(results), "running": self.thread.is_alive()}

    def stop(self) -> dict[str, Any]:
        self.stopping.set()
        self.thread.join(timeout=30)
        return {"results": self.results, "ended_by_bound": self.ended_by_bound}


def wait_for_etcd(endpoint: str, timeout: float) -> None:
    """Return once etcd at ``endpoint`` reports itself healthy; SystemExit after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{endpoint}/health", timeout=1.0).json().get("health") == "true":
                return
        except (httpx.HTTPError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"etcd at {endpoint} not healthy within {timeout:g} s")
        time.sleep(0.05)


def client(etcd: str, prefix: str) -> int:
    """Answer the orchestrator's commands, one JSON object per line each way:

    - ``{"op": "instances"}``: ``{"urls": [...]}``, what etcd lists for the component now;
    - ``{"op": "call", "count": n}``: ``{"results": [...]}``, n calls in a row, each
      ``{"name", "pid", "url"}`` or ``{"error"}``;
    - ``{"op": "start", "max_calls": n, "max_seconds": s, "pause": p}``: calls in the background
      from now on; ``{"op": "results", "from": i}`` answers those from the i-th on so far
      (``{"results", "count", "running"}``); ``{"op": "stop"}`` ends them and answers all of them;
    - ``{"op": "quit"}`` (or the end of stdin): close everything and exit.
    """
    from warpcall.di import Environment

    SETTINGS.update(etcd=etcd, prefix=prefix)
    wait_for_etcd(etcd, 30.0)
    environment = Environment(ClientModule)
    try:
        manager = environment.get(ServiceManager)
        registry = environment.get(ComponentRegistry)  # type: ignore[type-abstract]  # the lookup key (python/mypy#4717)
        proxy = manager.get_service(WhereAmI, CHANNEL)  # type: ignore[type-abstract]
        loop: CallLoop | None = None
        emit(json.dumps({"ready": True, "pid": os.getpid()}))
        for line in sys.stdin:
            command = json.loads(line)
            op = command["op"]
            if op == "instances":
                urls = [
                    url
                    for instances in registry.get_addresses(component_descriptor(ClusterComponent))
                    if instances.channel == CHANNEL
                    for url in instances.urls
                ]
                emit(json.dumps({"urls": sorted(urls)}))
            elif op == "call":
                emit(json.dumps({"results": [one_call(proxy) for _ in range(int(command["count"]))]}))
            elif op == "start":
                loop = CallLoop(
                    proxy, int(command["max_calls"]), float(command["max_seconds"]), float(command["pause"])
                )
                emit(json.dumps({"started": True}))
            elif op == "results":
                idle = {"results": [], "count": 0, "running": False}
                emit(json.dumps(loop.since(int(command["from"])) if loop is not None else idle))
            elif op == "stop":
                emit(json.dumps(loop.stop() if loop is not None else {"results": []}))
                loop = None
            elif op == "quit":
                break
            else:
                emit(json.dumps({"error": f"unknown op {op!r}"}))
        if loop is not None:
            loop.stop()
    finally:
        environment.destroy()
    return 0


def main(argv: list[str]) -> int:
    role = argv[0] if argv else ""
    if role == "client" and len(argv) == 3:
        return client(argv[1], argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
