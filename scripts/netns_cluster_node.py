"""The processes of the network-namespace cluster (``scripts/netns_cluster.py`` starts them with ``ip netns exec``).

``python netns_cluster_node.py instance NAME HOST PORT ETCD PREFIX TTL``
    Serves the ``cluster-demo`` component on ``HOST:PORT`` (its namespace's veth address) with
    :meth:`FastAPIServer.serve_forever`, registered in etcd at ``ETCD`` under ``PREFIX`` with a lease
    of ``TTL`` seconds. Prints ``READY <url> <pid>`` once it serves, ``DEREGISTERED`` when SIGTERM
    made it take its registration out (the drain's first step) and ``STOPPED <signal>`` as it exits.

``python netns_cluster_node.py client ETCD PREFIX``
    The client: reads one JSON command per line on stdin, answers one JSON line on stdout
    (``instances``, ``call``, ``start``, ``stop``, ``quit``; see :func:`client`).

These run inside the namespaces; the orchestration (namespaces, etcd, signals) stays in
``netns_cluster.py``, which the test imports too: declaring this component there would put it
into the test process for nothing.
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
from fastapi import FastAPI

from warpcall import (
    AbstractComponent,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    Server,
    Service,
    ServiceManager,
    ServiceModule,
    component,
    health,
    idempotent,
    implementation,
    service,
)
from warpcall.di import create, module
from warpcall.registry.etcd import EtcdComponentRegistry
from warpcall.service import component_descriptor

CHANNEL = "dispatch-json"
#: what an instance's drain waits after deregistering: the time the client's etcd watch takes to hear
DEREGISTER_DELAY = 0.3
#: how long an instance lets the calls under way finish once it stops accepting
GRACE_PERIOD = 2.0


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


def emit(line: str) -> None:
    print(line, flush=True)


# -- an instance -------------------------------------------------------------------------------

#: the instance's settings (argv), read by the implementations and the module's factories
SETTINGS: dict[str, Any] = {}


def define_implementations() -> None:
    """Declare the implementations; only an instance calls this. Declared at import, they would make the
    component local in the client's process too (one module here), and its calls would never leave it."""

    @implementation()
    class WhereAmIImpl(WhereAmI):
        def where(self) -> Where:
            return Where(SETTINGS["name"], os.getpid(), SETTINGS["url"])

    @implementation()
    @health("/health")
    class ClusterComponentImpl(AbstractComponent, ClusterComponent):
        def get_addresses(self, port: int) -> list[ChannelAddress]:
            # the host the server binds (its namespace's veth address) is what other hosts reach it at
            return [ChannelAddress(CHANNEL, f"http://{Server.get_local_ip()}:{port}")]


class AnnouncingEtcdRegistry(EtcdComponentRegistry):
    """etcd as the registry, saying on stdout when the drain has taken the instance out of it."""

    def deregister(self, descriptor: Any) -> None:
        super().deregister(descriptor)
        emit("DEREGISTERED")


@module(imports=[ServiceModule])
class InstanceModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return AnnouncingEtcdRegistry(
            SETTINGS["etcd"], prefix=SETTINGS["prefix"], ttl=SETTINGS["ttl"], timeout=2.0, max_backoff=0.5
        )

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(
            FastAPI(), manager, registry, deregister_delay=DEREGISTER_DELAY, grace_period=GRACE_PERIOD
        )


def instance(name: str, host: str, port: int, etcd: str, prefix: str, ttl: int) -> int:
    SETTINGS.update(name=name, url=f"http://{host}:{port}", etcd=etcd, prefix=prefix, ttl=ttl)
    define_implementations()
    received = FastAPIServer.serve_forever(
        InstanceModule,
        host=host,
        port=port,
        ready=lambda environment: emit(f"READY {environment.get(FastAPIServer).url} {os.getpid()}"),
    )
    emit(f"STOPPED {received}")
    return 0


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
        self.thread = threading.Thread(target=self.run, name="cluster-calls", daemon=True)
        self.thread.start()

    def run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self.stopping.is_set() and len(self.results) < self.max_calls and time.monotonic() < deadline:
            self.results.append(one_call(self.proxy))
            self.stopping.wait(self.pause)  # pacing: the machine has other work than this loop

    def since(self, start: int) -> dict[str, Any]:
        results = self.results[start:]  # a copy: the loop's thread appends meanwhile
        return {"results": results, "count": start + len(results), "running": self.thread.is_alive()}

    def stop(self) -> dict[str, Any]:
        self.stopping.set()
        self.thread.join(timeout=30)
        return {"results": self.results, "ended_by_bound": len(self.results) >= self.max_calls}


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
        registry = environment.get(ComponentRegistry)
        proxy = manager.get_service(WhereAmI, CHANNEL)
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
                emit(json.dumps(loop.since(int(command["from"])) if loop is not None else {"results": []}))
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
    if role == "instance" and len(argv) == 7:
        name, host, port, etcd, prefix, ttl = argv[1:]
        return instance(name, host, int(port), etcd, prefix, int(ttl))
    if role == "client" and len(argv) == 3:
        return client(argv[1], argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
