"""What the chaos tests share: server processes (chaos_server.py), a cluster of them on one registry,
clients of it, and client threads making calls under a deadline while the cluster is hurt.

Every wait is bounded (``BOUND``); every process started here is killed at the end, stopped ones included.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos_api import EchoComponent

from warpcall import ComponentRegistry, ServiceModule, deadline
from warpcall.di import Environment, create, module
from warpcall.di.configuration import ConfigurationSource
from warpcall.service import component_descriptor

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "registry"))  # the registry tests' helpers
from registry_instance import make_registry  # noqa: E402
from registry_support import wait_until  # noqa: E402  (polls every 20 ms: the client threads need the CPUs)

SCRIPT = Path(__file__).with_name("chaos_server.py")
BOUND = 20.0  # no single wait here lasts longer
POLL = 0.1  # the embedded registry's poll interval, clients and servers
TTL = 2  # the registries' TTL (embedded heartbeat, etcd lease), seconds


class Instance:
    """One ``chaos_server.py`` process: its port once it printed it, and its output lines."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(SCRIPT), json.dumps(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def ready(self) -> Instance:
        """Wait (bounded) until it accepts calls."""
        wait_until(lambda: self.port or self.process.poll() is not None, BOUND)
        assert self.port, f"the server exited: {self.lines}"
        return self

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def port(self) -> int:
        return next((int(line.split()[1]) for line in list(self.lines) if line.startswith("port ")), 0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Signal it and wait (bounded) for it to exit; its exit code."""
        self.process.send_signal(signum)
        code = self.process.wait(BOUND)
        self.reader.join(BOUND)
        return code

    def kill(self) -> None:
        """SIGKILL, at once (a stopped process dies too); waits until it is gone."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(BOUND)

    def pause(self) -> None:
        """SIGSTOP: the process hangs, its sockets open; the kernel still accepts connections for it."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)


class MappingSource(ConfigurationSource):
    """Configuration from a dict (nested, as YAML would give it), for a client's ``http.*`` settings."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def load(self) -> dict[str, Any]:
        return self.values


class Cluster:
    """Server processes of ``chaos-echo`` on one registry (``embedded`` or ``etcd``), and their clients."""

    def __init__(self, kind: str, directory: Path, etcd_endpoint: str | None = None) -> None:
        self.kind = kind
        self.directory = directory
        self.starts = directory / "starts"
        self.starts.touch()
        if kind == "embedded":
            self.registry_config: dict[str, Any] = {"directory": str(directory), "ttl": float(TTL), "poll": POLL}
        else:
            assert etcd_endpoint is not None
            self.registry_config = {"endpoint": etcd_endpoint, "prefix": f"/chaos-{uuid.uuid4().hex}/", "ttl": TTL}
        self.instances: list[Instance] = []
        self.clients: list[Environment] = []
        self.observer = self.registry()

    def registry(self) -> ComponentRegistry:
        """A new registry on the cluster's store."""
        return make_registry(self.kind, self.registry_config)

    def start(self, grace: float = 5.0, delay: float = 0.3, **limits: Any) -> Instance:
        """Start an instance (not waited for: see :meth:`Instance.ready`)."""
        config = {
            "registry": {"kind": self.kind, **self.registry_config},
            "grace": grace,
            "delay": delay,
            "starts": str(self.starts),
            "limits": limits,
        }
        instance = Instance(config)
        self.instances.append(instance)
        return instance

    def start_ready(self, count: int, **options: Any) -> list[Instance]:
        """``count`` instances booted side by side, each ready and registered."""
        started = [self.start(**options) for _ in range(count)]
        for instance in started:
            instance.ready()
        wait_until(lambda: {i.url for i in started} <= self.registered(), BOUND)
        return started

    def registered(self) -> set[str]:
        """The URLs the registry lists for ``chaos-echo`` now."""
        entries = self.observer.get_addresses(component_descriptor(EchoComponent))
        return {url for entry in entries for url in entry.urls}

    def client(self, configuration: dict[str, Any] | None = None) -> Environment:
        """A client environment on the cluster's registry; ``configuration``: e.g. ``{"http": {"timeout": 1}}``."""
        cluster = self

        @module(imports=[ServiceModule])
        class ClientModule:
            @create()
            def create_registry(self) -> ComponentRegistry:
                return cluster.registry()

            @create()
            def create_configuration(self) -> MappingSource:
                return MappingSource(configuration or {})

        environment = Environment(ClientModule)
        self.clients.append(environment)
        return environment

    def started(self) -> list[int]:
        """The numbers of the ``hold`` calls that started, on any instance."""
        return [int(line) for line in self.starts.read_text().split()]

    def close(self) -> None:
        for environment in self.clients:
            environment.destroy()
        for instance in self.instances:
            instance.kill()
        self.observer.close()


# --- client threads calling under a deadline --------------------------------------------------------------


@dataclass
class Call:
    """One call a client thread made: when it began (monotonic), how long it took, what it gave."""

    began: float
    took: float
    value: Any = None
    error: BaseException | None = None


@dataclass
class Traffic:
    """``threads`` threads calling ``call()`` under ``deadline(limit)`` for ``seconds``, each call timed.

    Bounded in time (``seconds``, or until :meth:`hold_until` releases it, at most ``BOUND`` more) and
    in count (``max_calls`` per thread).
    """

    call: Callable[[], Any]
    limit: float
    threads: int = 8
    seconds: float = 10.0
    max_calls: int = 200_000
    calls: list[Call] = field(default_factory=list)
    #: each value a call returned (the pid of the instance that answered): when it last did (monotonic)
    answered: dict[Any, float] = field(default_factory=dict)
    _held: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    started: float = 0.0

    def start(self) -> Traffic:
        self._held.set()
        self.started = time.monotonic()
        self._workers = [
            threading.Thread(target=self._run, name=f"chaos-client-{i}", daemon=True) for i in range(self.threads)
        ]
        for worker in self._workers:
            worker.start()
        return self

    def hold(self) -> None:
        """Keep calling past ``seconds`` until :meth:`release` (for a step that takes longer than the run)."""
        self._held.clear()

    def release(self) -> None:
        self._held.set()

    def _run(self) -> None:
        end, limit = self.started + self.seconds, self.started + self.seconds + BOUND
        mine: list[Call] = []
        for _ in range(self.max_calls):
            now = time.monotonic()
            if now > limit or (now > end and self._held.is_set()):
                break
            try:
                with deadline(self.limit):
                    value = self.call()
                done = time.monotonic()
                mine.append(Call(now, done - now, value))
                self.answered[value] = done
            except Exception as exc:  # noqa: BLE001 - every failure is recorded and asserted on
                mine.append(Call(now, time.monotonic() - now, error=exc))
            if len(mine) >= 256:
                with self._lock:
                    self.calls.extend(mine)
                mine = []
        with self._lock:
            self.calls.extend(mine)

    def answering(self, pids: set[int], since: float = 0.0) -> bool:
        """Every one of ``pids`` has answered a call of this run since ``since`` (monotonic)."""
        return all(self.answered.get(pid, -1.0) >= since for pid in pids)

    def join(self) -> list[Call]:
        for worker in self._workers:
            worker.join(self.seconds + 2 * BOUND)
        assert not any(worker.is_alive() for worker in self._workers), "a client thread did not finish"
        return sorted(self.calls, key=lambda call: call.began)

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def figures(name: str, calls: list[Call], **extra: Any) -> dict[str, Any]:
    """The run's figures (calls, failures, max/p99/p50 latency in ms), printed for the README."""
    took = sorted(call.took for call in calls)
    failed = [call for call in calls if call.error is not None]
    result: dict[str, Any] = {
        "scenario": name,
        "calls": len(calls),
        "failed": len(failed),
        "errors": sorted({type(call.error).__name__ for call in failed}),
        "p50_ms": round(took[len(took) // 2] * 1000, 2) if took else None,
        "p99_ms": round(took[int(len(took) * 0.99)] * 1000, 2) if took else None,
        "max_ms": round(took[-1] * 1000, 2) if took else None,
        **extra,
    }
    print(f"\nCHAOS FIGURES {json.dumps(result)}", flush=True)
    out = os.environ.get("WARPCALL_CHAOS_FIGURES")
    if out:  # collected across the run, for the README
        with open(out, "a") as stream:
            stream.write(json.dumps(result) + "\n")
    return result
