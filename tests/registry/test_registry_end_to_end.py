"""Failure behaviour end to end: three server processes, a client calling round-robin, one SIGKILLed.

Within the registry's detection window a call may reach the dead instance and
then fails with ServiceCommunicationException, quickly; after it no call goes
there. With the registry itself gone, calls keep working on the last known
instances.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from registry_e2e_api import WhoAmI
from registry_support import CONSUL_TIMING, consul_client, etcd_granted_ttl, within

from warpcall import Channel, ComponentRegistry, ServiceCommunicationException, ServiceManager, ServiceModule
from warpcall.di import Environment, create, module
from warpcall.di.aop import Invocation, advice, around, methods

SERVER = Path(__file__).with_name("registry_server.py")
#: the client registry the next ClientModule environment uses
CLIENT_REGISTRY: list[Callable[[], ComponentRegistry]] = []


@advice
class RoundRobin:
    """Spread the client's calls over every instance (channels send to the first URL by default)."""

    @around(methods().named("customize").of_type(Channel))
    def customize(self, invocation: Invocation) -> Any:
        invocation.args[0].select_round_robin()
        return invocation.proceed()


@module(imports=[ServiceModule])
class ClientModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return CLIENT_REGISTRY[-1]()


class Servers:
    """Server child processes; always stopped."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.processes: list[subprocess.Popen[str]] = []

    def start(self, kind: str, config: dict) -> None:
        # each server's log (stderr) lands in the test's tmp directory
        with open(self.logs / f"server-{len(self.processes)}.log", "w") as log:
            process = subprocess.Popen(
                [sys.executable, str(SERVER), kind, json.dumps(config)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        self.processes.append(process)
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        while True:
            ready, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"server process {process.pid} did not start within 60 s"
            line = process.stdout.readline()
            assert line, f"server process {process.pid} exited with {process.wait(timeout=10)}"
            if line.startswith("READY "):
                return

    def stop(self) -> None:
        for process in self.processes:
            if process.stdin is not None:
                try:
                    process.stdin.close()
                except BrokenPipeError:
                    pass
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
            if process.stdout is not None:
                process.stdout.close()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    started = Servers(tmp_path)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(params=["embedded", "consul-emulator", "etcd"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path):
    """(server kind, server config, client registry factory, detection window, outage)."""
    if request.param == "embedded":
        from warpcall.registry.embedded import EmbeddedComponentRegistry

        store = tmp_path / "registry"
        config = {"directory": str(store), "ttl": 1.5, "poll": 0.2}

        def outage() -> None:
            store.rename(tmp_path / "parked")
            store.write_text("the registry directory is gone")

        def client() -> ComponentRegistry:
            return EmbeddedComponentRegistry(store, ttl=1.5, poll_interval=0.2)

        yield "embedded", config, client, 1.5 + 0.2, outage
    elif request.param == "consul-emulator":
        from warpcall.registry.consul import ConsulComponentRegistry

        emulator = request.getfixturevalue("consul_emulator")
        timing = dict(CONSUL_TIMING, check_interval="500ms")
        config = {"address": emulator.address, "timing": timing}
        clients = []

        def client() -> ComponentRegistry:
            clients.append(consul_client(emulator.address))
            return ConsulComponentRegistry(0, clients[-1], wait="5s", **timing)

        yield "consul", config, client, 0.5 + 1.0, emulator.stop
        for made in clients:
            made.http.session.close()
    else:
        from warpcall.registry.etcd import EtcdComponentRegistry

        etcd = request.getfixturevalue("etcd_server")
        prefix = f"/e2e-{uuid.uuid4().hex[:8]}/"
        config = {"endpoint": etcd.endpoint, "prefix": prefix, "ttl": 2}

        def client() -> ComponentRegistry:
            return EtcdComponentRegistry(etcd.endpoint, prefix=prefix, ttl=2)

        yield "etcd", config, client, etcd_granted_ttl(etcd.endpoint, 2) + 1.0, etcd.stop


def call(who: WhoAmI) -> tuple[int | None, float]:
    """(pid or None when the call failed with ServiceCommunicationException, seconds it took)."""
    started = time.monotonic()
    try:
        return who.pid(), time.monotonic() - started
    except ServiceCommunicationException:
        return None, time.monotonic() - started


def test_killed_instance_stops_receiving_calls_and_a_lost_registry_stops_nothing(deployment, servers) -> None:
    kind, config, client_registry, window, outage = deployment
    for _ in range(3):
        servers.start(kind, config)
    pids = {process.pid for process in servers.processes}

    CLIENT_REGISTRY.append(client_registry)
    environment = Environment(ClientModule)
    try:
        who = environment.get(ServiceManager).get_service(WhoAmI, "dispatch-json")
        deadline = time.monotonic() + 20
        seen: set[int] = set()
        while seen != pids:
            assert time.monotonic() < deadline, f"round-robin reached only {seen} of {pids} within 20 s"
            pid, _ = call(who)
            if pid is not None:
                seen.add(pid)

        victim = servers.processes[1]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
        killed_at = time.monotonic()
        failures, slowest, last_failure = 0, 0.0, 0.0
        while time.monotonic() - killed_at < within(window):
            pid, took = call(who)
            slowest = max(slowest, took)
            if pid is None:
                failures += 1
                last_failure = time.monotonic() - killed_at
            assert pid != victim.pid
            time.sleep(0.01)
        print(
            f"\n{kind}: {failures} call(s) failed, the last {last_failure:.2f} s after SIGKILL "
            f"(stated window {window:.1f} s); slowest call {slowest:.3f} s"
        )
        # a call to the dead instance fails fast (refused), it does not hang until a timeout
        assert slowest < 5.0

        # after the window every call lands on a survivor, round-robin over both
        results = [call(who)[0] for _ in range(30)]
        survivors = pids - {victim.pid}
        assert set(results) == survivors

        outage()
        time.sleep(1.0)
        results = [call(who)[0] for _ in range(30)]
        assert set(results) == survivors
    finally:
        environment.destroy()
        CLIENT_REGISTRY.pop()
