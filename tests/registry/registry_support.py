"""Test helpers for the registry tests: descriptors and channels that record pushes, live health
servers, a real etcd process, and ``Backend`` (registries sharing one store, which can be taken away)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from warpcall.registry.contract import ChannelInstances, ComponentRegistry


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it is truthy (returned) or ``timeout`` passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def within(promise: float) -> float:
    """How long a test waits for something promised "within ``promise`` seconds": the promise plus
    max(0.5 s, 50 %) of scheduling slack, never a multiple of it, so a lazy mechanism fails the test."""
    return promise + max(0.5, promise / 2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- what a registry reads of descriptors and channels ---------------------------------------


@dataclass(frozen=True)
class Descriptor:
    """Satisfies ComponentInfo."""

    name: str
    health: str = "/health"


class RecordingChannel:
    """Satisfies WatchedChannel and remembers every list pushed into it."""

    def __init__(self, descriptor: Descriptor, name: str) -> None:
        self.name = name
        self._descriptor = descriptor
        self.pushes: list[ChannelInstances | None] = []
        self._lock = threading.Lock()

    @property
    def component_descriptor(self) -> Descriptor:
        return self._descriptor

    def set_address(self, address: ChannelInstances | None) -> None:
        with self._lock:
            self.pushes.append(address)

    @property
    def urls(self) -> list[str] | None:
        """The URL list of the last push; None before any."""
        with self._lock:
            if not self.pushes or self.pushes[-1] is None:
                return None
            return list(self.pushes[-1].urls)


# -- live HTTP endpoints that instances register (Consul's agent checks them) -----------------


class LoopbackHTTPServer:
    """A threading HTTP server on 127.0.0.1 (a free port) serving ``handler`` from a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class HealthServer(LoopbackHTTPServer):
    """A real HTTP server on 127.0.0.1 answering GET /health with 200 (or ``status``)."""

    def __init__(self) -> None:
        self.status = 200
        #: the status of every answer sent, in order (what the agent's check saw)
        self.answered: list[int] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = b'{"status": "OK"}'
                status = owner.status
                owner.answered.append(status)
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(Handler)


# -- a real etcd ------------------------------------------------------------------------------


class EtcdServer:
    """A real etcd on free 127.0.0.1 ports and its own data directory; stop()/start() keep the data."""

    def __init__(
        self, data_dir: Path, *, heartbeat_ms: int | None = None, election_ms: int | None = None
    ) -> None:
        """``heartbeat_ms``/``election_ms`` lower etcd's Raft timing, and with it the smallest lease TTL
        it grants (1.5 election timeouts, rounded up to whole seconds: 1 s with 50/500)."""
        self.data_dir = data_dir
        self.timing = (
            ["--heartbeat-interval", str(heartbeat_ms), "--election-timeout", str(election_ms)]
            if heartbeat_ms and election_ms
            else []
        )
        self.client_port = free_port()
        self.peer_port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.client_port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"{data_dir.name}.log"

    def start(self) -> EtcdServer:
        peer = f"http://127.0.0.1:{self.peer_port}"
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    shutil.which("etcd") or "etcd",
                    "--name",
                    "warpcall-test",
                    "--data-dir",
                    str(self.data_dir),
                    "--listen-client-urls",
                    self.endpoint,
                    "--advertise-client-urls",
                    self.endpoint,
                    "--listen-peer-urls",
                    peer,
                    "--initial-advertise-peer-urls",
                    peer,
                    "--initial-cluster",
                    f"warpcall-test={peer}",
                    "--log-level",
                    "warn",
                    *self.timing,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 20
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"etcd exited with {self.process.returncode}: {self.log.read_text()[-2000:]}"
                )
            try:
                if httpx.get(f"{self.endpoint}/health", timeout=1).json().get("health") == "true":
                    return self
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"etcd not healthy within 20 s: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


# -- one backend per registry -----------------------------------------------------------------


@dataclass
class Backend:
    """Builds registries sharing one store; ``outage()``/``recover()`` take the store away and back."""

    kind: str
    factory: Callable[[], ComponentRegistry]
    outage: Callable[[], None] | None = None
    recover: Callable[[], None] | None = None
    server_port: int | None = None
    store_file: Path | None = None
    #: seconds within which a registration / a deregistration by a live process reaches get_addresses
    #: and watchers (the registry's promise; tests wait ``within()`` it)
    register_promise: float = 0.0
    deregister_promise: float = 0.0
    registries: list[ComponentRegistry] = field(default_factory=list)
    #: closes what the test handed to registries (a py-consul client belongs to its caller)
    clients: list[Callable[[], None]] = field(default_factory=list)

    def registry(self) -> ComponentRegistry:
        registry = self.factory()
        self.registries.append(registry)
        return registry

    def close_all(self) -> None:
        for registry in self.registries:
            registry.close()
        self.close_clients()

    def close_clients(self) -> None:
        while self.clients:
            self.clients.pop()()


@dataclass
class ConsulTarget:
    """The Consul a contract test talks to: the emulator, or the real agent named by ``CONSUL_HTTP_ADDR``."""

    address: str
    emulator: Any  # ConsulEmulator | None
    client: Any  # a consul.Consul on ``address``

    def emulated(self, knob: str) -> Any:
        """The emulator, for a test that needs ``knob`` (something a real agent offers no control of);
        against a real agent the test is skipped, saying why."""
        if self.emulator is None:
            import pytest

            pytest.skip(
                f"{knob} is an emulator-only knob: a real agent at {self.address} offers no control of it"
            )
        return self.emulator


def consul_client(address: str) -> Any:
    import consul

    host, _, port = address.rpartition(":")
    return consul.Consul(host=host or "127.0.0.1", port=int(port), connections_timeout=5)


CONSUL_TIMING = {"check_interval": "300ms", "check_timeout": "1s", "deregister_critical_after": "30s"}


def etcd_granted_ttl(endpoint: str, ttl: int) -> float:
    """The TTL etcd grants when asked for ``ttl`` (it raises small ones to its minimum)."""
    granted = httpx.post(f"{endpoint}/v3/lease/grant", json={"TTL": str(ttl)}, timeout=5).json()
    httpx.post(f"{endpoint}/v3/lease/revoke", json={"ID": granted["ID"]}, timeout=5)
    return float(granted["TTL"])
