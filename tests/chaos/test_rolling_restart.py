"""Graceful drain with real processes (issue 16): SIGTERM and SIGINT on a server under calls, and a
rolling restart of one of three instances while a client calls them in round robin.

Each server is ``drain_server.py`` in a child process on 127.0.0.1 with the embedded registry in a
temporary ``WARPCALL_REGISTRY_DIR``; every state is waited for (bounded), never slept.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from abc import abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rawhttp import wait_until
from warpcall import Component, ComponentRegistry, Service, ServiceManager, ServiceModule, component, service
from warpcall.di import Environment, create, module
from warpcall.registry.embedded import EmbeddedComponentRegistry
from warpcall.service import component_descriptor

pytestmark = pytest.mark.chaos

SCRIPT = Path(__file__).with_name("drain_server.py")
BOUND = 20.0  # no wait here lasts longer
POLL = 0.1  # the registry's poll interval, client and servers


@service(name="chaos-echo-service")
class EchoService(Service):
    @abstractmethod
    def echo(self, n: int) -> int: ...

    @abstractmethod
    def hold(self, n: int, seconds: float) -> int: ...


@component(name="chaos-echo", services=[EchoService])
class EchoComponent(Component):
    pass


@module(imports=[ServiceModule])
class ClientModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return EmbeddedComponentRegistry(ttl=2.0, poll_interval=POLL)


class Instance:
    """One ``drain_server.py`` process: its port once it printed it, its output lines."""

    def __init__(self, directory: Path, grace: float, delay: float, starts: Path) -> None:
        env = dict(os.environ, WARPCALL_REGISTRY_DIR=str(directory), PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [sys.executable, str(SCRIPT), str(grace), str(delay), str(starts)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        wait_until(lambda: self.port or self.process.poll() is not None, BOUND, "the server to start")
        assert self.port, f"the server exited: {self.lines}"

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def port(self) -> int:
        return next((int(line.split()[1]) for line in self.lines if line.startswith("port ")), 0)

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
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(BOUND)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Any]:
    instances: list[Instance] = []
    starts = tmp_path / "starts"
    starts.touch()
    client: list[Environment] = []
    previous = os.environ.get("WARPCALL_REGISTRY_DIR")
    os.environ["WARPCALL_REGISTRY_DIR"] = str(tmp_path)

    class Cluster:
        directory, started_file = tmp_path, starts

        def start(self, grace: float = 5.0, delay: float = 0.3) -> Instance:
            instance = Instance(tmp_path, grace, delay, starts)
            instances.append(instance)
            return instance

        def client(self) -> Environment:
            environment = Environment(ClientModule)
            client.append(environment)
            return environment

        def started(self) -> list[int]:
            return [int(line) for line in starts.read_text().split()]

    try:
        yield Cluster()
    finally:
        for environment in client:
            environment.destroy()
        for instance in instances:
            instance.kill()
        if previous is None:
            os.environ.pop("WARPCALL_REGISTRY_DIR", None)
        else:
            os.environ["WARPCALL_REGISTRY_DIR"] = previous


def registered(cluster: Any) -> set[str]:
    registry = EmbeddedComponentRegistry(cluster.directory, ttl=2.0, poll_interval=POLL)
    try:
        return {url for entry in registry.get_addresses(component_descriptor(EchoComponent)) for url in entry.urls}
    finally:
        registry.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_drains_the_server_calls_under_way_complete(cluster, signum):
    instance = cluster.start(grace=5.0, delay=0.3)
    wait_until(lambda: instance.url in registered(cluster), BOUND, "the server to register")
    service = cluster.client().get(ServiceManager).get_service(EchoService)
    results: dict[int, Any] = {}

    def call(n: int) -> None:
        try:
            results[n] = service.hold(n, 1.0)
        except Exception as exc:  # noqa: BLE001 - recorded, asserted below
            results[n] = exc

    callers = [threading.Thread(target=call, args=(n,)) for n in range(4)]
    for caller in callers:
        caller.start()
    wait_until(lambda: len(cluster.started()) == 4, BOUND, "four calls under way")
    code = instance.stop(signum)
    for caller in callers:
        caller.join(BOUND)
    assert results == {n: n for n in range(4)}  # every call under way completed
    assert code == 0 and instance.lines[-1] == f"stopped {int(signum)}"
    assert instance.url not in registered(cluster)


def test_rolling_restart_of_three_instances_fails_no_call(cluster):
    instances = [cluster.start(grace=5.0, delay=0.3) for _ in range(3)]
    wait_until(lambda: {i.url for i in instances} <= registered(cluster), BOUND, "three instances registered")
    service = cluster.client().get(ServiceManager).get_service(EchoService)
    failures: list[BaseException] = []
    served = 0
    stop = threading.Event()

    def calls() -> None:
        nonlocal served
        deadline = time.monotonic() + 4 * BOUND
        for n in range(200_000):  # bounded in count and in time
            if stop.is_set() or time.monotonic() > deadline:
                return
            try:
                assert service.echo(n) == n
                served += 1
            except Exception as exc:  # noqa: BLE001 - every failure is a defect here
                failures.append(exc)

    caller = threading.Thread(target=calls, name="rolling-client")
    caller.start()
    try:
        wait_until(lambda: served >= 50, BOUND, "calls flowing")
        for index, instance in enumerate(list(instances)):
            before = served
            assert instance.stop(signal.SIGTERM) == 0
            replacement = cluster.start(grace=5.0, delay=0.3)
            instances[index] = replacement
            wait_until(lambda url=replacement.url: url in registered(cluster), BOUND, "the restarted instance to register")
            wait_until(lambda target=before + 50: served >= target, BOUND, "calls flowing again")
    finally:
        stop.set()
        caller.join(BOUND)
    assert not caller.is_alive()
    assert failures == [], f"{len(failures)} of {served + len(failures)} calls failed: {failures[:3]}"
    assert served > 200
