"""Registry test fixtures: health servers, a Consul emulator, a real etcd, one backend per registry."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from consul_emulator import ConsulEmulator, parse_duration
from registry_support import CONSUL_TIMING, Backend, ConsulTarget, EtcdServer, HealthServer, consul_client

from platforms import etcd_required
from warpcall.registry.contract import ComponentRegistry

BACKENDS = ["local", "embedded", "consul-emulator", "etcd"]
if os.environ.get("CONSUL_HTTP_ADDR"):
    BACKENDS.append("consul-agent")


@pytest.fixture(autouse=True)
def _one_embedded_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests' embedded registries, in this process and in the server scripts it starts (which
    inherit the variable), share one namespace, whatever module booted them (the namespace tests set
    or remove the variable themselves)."""
    monkeypatch.setenv("WARPCALL_REGISTRY_NAMESPACE", "registry-tests")


@pytest.fixture
def health_servers() -> Iterator[Callable[[], HealthServer]]:
    servers: list[HealthServer] = []

    def make() -> HealthServer:
        servers.append(HealthServer())
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


def _require_etcd() -> None:
    if shutil.which("etcd") is None:
        message = (
            "the etcd binary is missing: install Debian's etcd-server package (apt-get install etcd-server)"
        )
        if etcd_required():
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    """An etcd of this test alone (it may be stopped and started)."""
    _require_etcd()
    server = EtcdServer(tmp_path_factory.mktemp("etcd") / "data").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def module_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    """One etcd for a module's tests, each under a key prefix of its own (a mutant run starts it once)."""
    _require_etcd()
    server = EtcdServer(tmp_path_factory.mktemp("etcd-module") / "data").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fast_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    """An etcd of this test alone with fast Raft timing: it grants 1 s leases (its default minimum is 2 s)."""
    _require_etcd()
    server = EtcdServer(tmp_path_factory.mktemp("etcd") / "data", heartbeat_ms=50, election_ms=500).start()
    try:
        yield server
    finally:
        server.stop()


#: a real Consul agent for the contract tests: ``CONSUL_HTTP_ADDR=127.0.0.1:8500`` (or ``http://...``)
CONSUL_AGENT = os.environ.get("CONSUL_HTTP_ADDR", "").split("//")[-1]


@pytest.fixture(params=["emulator"] + (["agent"] if CONSUL_AGENT else []))
def consul_target(request: pytest.FixtureRequest) -> Iterator[ConsulTarget]:
    """The same contract tests run against the emulator (always) and a real agent (when CONSUL_HTTP_ADDR is set)."""
    emulator = None
    if request.param == "agent":
        address = CONSUL_AGENT
    else:
        emulator = ConsulEmulator(reap_interval=0.1, deregister_minimum=0.0).start()
        address = emulator.address
    client = consul_client(address)
    try:
        yield ConsulTarget(address, emulator, client)
    finally:
        client.http.session.close()
        if emulator is not None:
            emulator.stop()


@pytest.fixture
def consul_emulator() -> Iterator[ConsulEmulator]:
    emulator = ConsulEmulator(reap_interval=0.2, deregister_minimum=0.0).start()
    try:
        yield emulator
    finally:
        emulator.stop()


def consul_registry(backend: Backend, address: str) -> ComponentRegistry:
    from warpcall.registry.consul import ConsulComponentRegistry

    client = consul_client(address)
    backend.clients.append(client.http.session.close)
    return ConsulComponentRegistry(0, client, wait="5s", max_backoff=0.5, **CONSUL_TIMING)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    kind: str = request.param
    if kind == "local":
        from warpcall.registry.local import LocalComponentRegistry, LocalDirectory

        directory = LocalDirectory()
        made = Backend(kind, lambda: LocalComponentRegistry(directory))
    elif kind == "embedded":
        from warpcall.registry.embedded import EmbeddedComponentRegistry

        store = tmp_path / "registry"
        parked = tmp_path / "registry-parked"

        def outage() -> None:
            # the directory turns into a plain file: nothing can be opened or created there
            store.rename(parked)
            store.write_text("not a directory")

        def recover() -> None:
            store.unlink()
            # the registries heal a missing directory: one may recreate it between the unlink and the rename,
            # so the one made meanwhile is removed and the rename tried again (bounded)
            for _ in range(50):
                try:
                    parked.rename(store)
                    return
                except OSError:
                    shutil.rmtree(store, ignore_errors=True)
            parked.rename(store)

        made = Backend(
            kind,
            lambda: EmbeddedComponentRegistry(store, ttl=2.0, poll_interval=0.1, max_backoff=0.5),
            outage,
            recover,
            store_file=store / "registry.sqlite3",
            # watchers poll the file: a live process's changes reach them within the poll interval
            # (the TTL, 2 s, is far beyond: a deregistration that leaves its row would fail the tests)
            register_promise=0.1,
            deregister_promise=0.1,
        )
    elif kind == "consul-emulator":
        emulator = request.getfixturevalue("consul_emulator")
        made = Backend(
            kind,
            lambda: consul_registry(made, emulator.address),
            emulator.stop,
            emulator.start,
            server_port=emulator.port,
            # a new instance turns passing at the agent's first check run, within one interval
            register_promise=parse_duration(CONSUL_TIMING["check_interval"]),
        )
    elif kind == "consul-agent":
        address = os.environ["CONSUL_HTTP_ADDR"].split("//")[-1]
        made = Backend(
            kind,
            lambda: consul_registry(made, address),
            server_port=int(address.rpartition(":")[2]),
            # plus the agent's sync to its servers
            register_promise=parse_duration(CONSUL_TIMING["check_interval"]) + 0.5,
            deregister_promise=0.5,
        )
    else:
        from warpcall.registry.etcd import EtcdComponentRegistry

        etcd = request.getfixturevalue("etcd_server")
        made = Backend(
            kind,
            lambda: EtcdComponentRegistry(
                etcd.endpoint, prefix=f"/test-{os.getpid()}/", ttl=5, max_backoff=0.5
            ),
            etcd.stop,
            etcd.start,
            server_port=etcd.client_port,
        )
    try:
        yield made
    finally:
        made.close_all()
