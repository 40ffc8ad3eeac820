"""Namespaces of the embedded registry (issue #18, "registry isolation").

One file, many namespaces: registries of two namespaces in one directory never see each other's
instances, registries of one namespace find each other across processes; the namespace comes from the
constructor, ``$WARPCALL_REGISTRY_NAMESPACE``, the configuration's ``registry.namespace`` or, by default,
the top-level package of the booted module; a file written before namespaces existed is upgraded in
place while a process of that version keeps using it; and the entry of a process killed with SIGKILL
leaves every list within the TTL (plus a poll) of its death.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from registry_support import Descriptor, RecordingChannel, wait_until, within

from warpcall import ComponentRegistry, ServiceModule
from warpcall.di import Environment, create, module
from warpcall.di.configuration import ConfigurationException, ConfigurationSource
from warpcall.registry.contract import ChannelAddress
from warpcall.registry.embedded import (
    FILE_NAME,
    NAMESPACE_VARIABLE,
    EmbeddedComponentRegistry,
    default_namespace,
)

PEER = Path(__file__).with_name("namespace_peer.py")
ORDERS = Descriptor("orders")
#: the configuration the next ClientModule environment reads
VALUES: list[dict[str, Any]] = []


class Values(ConfigurationSource):
    """Configuration given as a nested dict."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def load(self) -> dict[str, Any]:
        return self.values


@module(imports=[ServiceModule])
class ClientModule:
    """Declares no registry: the environment provides the embedded default, configured by VALUES[-1]."""

    @create()
    def create_configuration(self) -> Values:
        return Values(VALUES[-1])


def boot(values: dict[str, Any]) -> Environment:
    VALUES.append(values)
    return Environment(ClientModule)


def registry_of(environment: Environment) -> EmbeddedComponentRegistry:
    registry = environment.get(ComponentRegistry)  # type: ignore[type-abstract]
    assert isinstance(registry, EmbeddedComponentRegistry)
    return registry


def address(url: str) -> list[ChannelAddress]:
    return [ChannelAddress("dispatch-json", url)]


def urls(registry: EmbeddedComponentRegistry, descriptor: Descriptor = ORDERS) -> list[str]:
    return [url for instances in registry.get_addresses(descriptor) for url in instances.urls]


@pytest.fixture(autouse=True)
def _no_namespace_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    # the registry tests' conftest sets one for everything else; here each test says what it uses
    monkeypatch.delenv(NAMESPACE_VARIABLE, raising=False)


class Peers:
    """namespace_peer.py processes; always stopped (EOF on stdin, else killed)."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.processes: list[subprocess.Popen[str]] = []

    def start(self, mode: str, config: dict[str, Any], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        environment = {key: value for key, value in os.environ.items() if key != NAMESPACE_VARIABLE}
        with open(self.logs / f"peer-{len(self.processes)}.log", "w") as log:
            process = subprocess.Popen(
                [sys.executable, str(PEER), mode, json.dumps(config)],
                env={**environment, **(env or {})},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        self.processes.append(process)
        return process

    def ready(self, process: subprocess.Popen[str]) -> list[str]:
        """The words after READY on the line the process prints when it is ready."""
        line = self.answer(process, timeout=60)
        assert line.startswith("READY"), f"{line!r}; log: {self.log(process)}"
        return line.split()[1:]

    def answer(self, process: subprocess.Popen[str], timeout: float = 30) -> str:
        import select

        assert process.stdout is not None
        readable, _, _ = select.select([process.stdout], [], [], timeout)
        assert readable, f"process {process.pid} did not answer within {timeout} s; log: {self.log(process)}"
        return process.stdout.readline().strip()

    def ask(self, process: subprocess.Popen[str], command: str) -> str:
        assert process.stdin is not None
        process.stdin.write(command + "\n")
        process.stdin.flush()
        return self.answer(process)

    def log(self, process: subprocess.Popen[str]) -> str:
        return (self.logs / f"peer-{self.processes.index(process)}.log").read_text()[-3000:]

    def stop(self) -> None:
        for process in self.processes:
            try:
                if process.stdin is not None:
                    process.stdin.close()
            except BrokenPipeError:
                pass
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@pytest.fixture
def peers(tmp_path: Path) -> Iterator[Peers]:
    started = Peers(tmp_path)
    try:
        yield started
    finally:
        started.stop()


# -- isolation -----------------------------------------------------------------------------------------


def test_two_namespaces_in_one_directory_do_not_see_each_other(tmp_path: Path) -> None:
    shop = EmbeddedComponentRegistry(tmp_path, namespace="shop", poll_interval=0.05)
    billing = EmbeddedComponentRegistry(tmp_path, namespace="billing", poll_interval=0.05)
    shop_client = EmbeddedComponentRegistry(tmp_path, namespace="shop", poll_interval=0.05)
    billing_client = EmbeddedComponentRegistry(tmp_path, namespace="billing", poll_interval=0.05)
    try:
        # the same component name in both: each client gets its own application's instance only
        shop.register(ORDERS, address("http://127.0.0.1:8001"))
        billing.register(ORDERS, address("http://127.0.0.1:8002"))
        shop_channel = RecordingChannel(ORDERS, "dispatch-json")
        billing_channel = RecordingChannel(ORDERS, "dispatch-json")
        shop_client.watch(shop_channel)
        billing_client.watch(billing_channel)
        assert shop_channel.urls == ["http://127.0.0.1:8001"]
        assert billing_channel.urls == ["http://127.0.0.1:8002"]
        assert urls(shop_client) == ["http://127.0.0.1:8001"]
        assert urls(billing_client) == ["http://127.0.0.1:8002"]
        assert shop_client.namespaces() == ["billing", "shop"]

        # a second shop instance reaches the shop watcher; the billing side never gets it
        second = EmbeddedComponentRegistry(tmp_path, namespace="shop")
        try:
            second.register(ORDERS, address("http://127.0.0.1:8003"))
            wait_until(lambda: shop_channel.urls == ["http://127.0.0.1:8001", "http://127.0.0.1:8003"], timeout=5)
            assert urls(billing_client) == ["http://127.0.0.1:8002"]
            assert all(push is not None and push.urls == ["http://127.0.0.1:8002"] for push in billing_channel.pushes)
        finally:
            second.close()
        # a deregistration in one namespace leaves the other's instance alone
        billing.deregister(ORDERS)
        assert urls(billing_client) == []
        assert urls(shop_client) == ["http://127.0.0.1:8001"]
    finally:
        for registry in (shop, billing, shop_client, billing_client):
            registry.close()


def test_one_namespace_finds_each_other_across_processes_and_another_does_not(
    tmp_path: Path, peers: Peers, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "registry"
    env = {"WARPCALL_REGISTRY_DIR": str(directory)}
    # two applications of one user, the same component name, namespaces from their configuration
    shop_server = peers.start(
        "boot", {"component": "orders", "url": "http://127.0.0.1:8101"}, env={**env, "registry.namespace": "shop"}
    )
    billing_server = peers.start(
        "boot", {"component": "orders", "url": "http://127.0.0.1:8102"}, env={**env, "registry.namespace": "billing"}
    )
    assert peers.ready(shop_server)[0] == "shop"
    assert peers.ready(billing_server)[0] == "billing"

    monkeypatch.setenv("WARPCALL_REGISTRY_DIR", str(directory))
    shop = boot({"registry": {"namespace": "shop"}})
    billing = boot({"registry": {"namespace": "billing"}})
    try:
        shop_channel = RecordingChannel(ORDERS, "dispatch-json")
        billing_channel = RecordingChannel(ORDERS, "dispatch-json")
        registry_of(shop).watch(shop_channel)
        registry_of(billing).watch(billing_channel)
        assert registry_of(shop).path == directory / FILE_NAME
        assert shop_channel.urls == ["http://127.0.0.1:8101"]
        assert billing_channel.urls == ["http://127.0.0.1:8102"]

        # the shop server stops: it leaves the shop client's list; the billing client's never changed
        assert shop_server.stdin is not None
        shop_server.stdin.close()
        assert shop_server.wait(timeout=20) == 0
        wait_until(lambda: shop_channel.urls == [], timeout=within(registry_of(shop).poll_interval))
        assert all(push is not None and push.urls == ["http://127.0.0.1:8102"] for push in billing_channel.pushes)
        assert urls(registry_of(billing)) == ["http://127.0.0.1:8102"]
    finally:
        shop.destroy()
        billing.destroy()


# -- where the namespace comes from ----------------------------------------------------------------------


def test_default_namespace_is_the_top_level_package_else_the_directory() -> None:
    from warpcall.demo.server import DemoServerModule

    assert default_namespace(DemoServerModule) == "warpcall"
    made_up = type("Module", (), {"__module__": "myapp.server.modules"})
    assert default_namespace(made_up) == "myapp"
    # this test module is not in a package: pytest imported it from tests/registry
    assert "." not in __name__
    assert default_namespace(ClientModule) == Path(__file__).parent.name == "registry"


def test_default_namespace_of_booted_applications_in_real_processes(tmp_path: Path) -> None:
    """Scripts of one directory share their directory's namespace; ``python -m pkg.mod`` uses ``pkg``."""
    program = textwrap.dedent(
        """
        from warpcall import ComponentRegistry, ServiceModule
        from warpcall.di import Environment, module

        @module(imports=[ServiceModule])
        class AppModule:
            pass

        if __name__ == "__main__":  # the environment imports the package's modules: once more, by name
            environment = Environment(AppModule)
            print(environment.get(ComponentRegistry).namespace)
            environment.destroy()
        """
    )
    (tmp_path / "billing-app").mkdir()
    (tmp_path / "billing-app" / "server.py").write_text(program)
    (tmp_path / "billing-app" / "client.py").write_text(program)
    (tmp_path / "shop" / "web").mkdir(parents=True)
    (tmp_path / "shop" / "__init__.py").write_text("")
    (tmp_path / "shop" / "web" / "__init__.py").write_text("")
    (tmp_path / "shop" / "web" / "main.py").write_text(program)
    env = {key: value for key, value in os.environ.items() if key != NAMESPACE_VARIABLE}
    env["WARPCALL_REGISTRY_DIR"] = str(tmp_path / "registry")

    def namespace(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert namespace("billing-app/server.py") == "billing-app"
    assert namespace("billing-app/client.py") == "billing-app"
    assert namespace("-m", "shop.web.main") == "shop"
    env[NAMESPACE_VARIABLE] = "everything"
    assert namespace("-m", "shop.web.main") == "everything"


def test_namespace_precedence_constructor_variable_configuration_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WARPCALL_REGISTRY_DIR", str(tmp_path))
    environments = []
    try:
        # nothing set: the booted module's package (here its directory, see above)
        environments.append(boot({}))
        assert registry_of(environments[-1]).namespace == "registry"
        # the configuration key
        environments.append(boot({"registry": {"namespace": "shared-shop"}}))
        assert registry_of(environments[-1]).namespace == "shared-shop"
        # the environment variable wins over the configuration
        monkeypatch.setenv(NAMESPACE_VARIABLE, "from-variable")
        environments.append(boot({"registry": {"namespace": "shared-shop"}}))
        assert registry_of(environments[-1]).namespace == "from-variable"
    finally:
        for environment in environments:
            environment.destroy()
    # the constructor's argument wins over everything; outside an environment: the variable, else 'default'
    explicit = EmbeddedComponentRegistry(tmp_path, namespace="mine")
    assert explicit.namespace == "mine"
    assert EmbeddedComponentRegistry(tmp_path).namespace == "from-variable"
    monkeypatch.delenv(NAMESPACE_VARIABLE)
    assert EmbeddedComponentRegistry(tmp_path).namespace == "default"


def test_registry_created_by_the_module_takes_the_environment_namespace_unless_it_names_one(
    tmp_path: Path,
) -> None:
    created: list[EmbeddedComponentRegistry] = []

    @module(imports=[ServiceModule])
    class OwnRegistryModule:
        @create()
        def create_configuration(self) -> Values:
            return Values({"registry": {"namespace": "configured", "embedded": {"ttl": 0.8, "poll_interval": 0.05}}})

        @create()
        def create_registry(self) -> ComponentRegistry:
            created.append(EmbeddedComponentRegistry(tmp_path, ttl=2.0))
            return created[-1]

    environment = Environment(OwnRegistryModule)
    try:
        registry = created[-1]
        assert environment.get(ComponentRegistry) is registry  # type: ignore[type-abstract]
        assert registry.namespace == "configured"
        # the configuration fills what the constructor left open, never what it set
        assert (registry.ttl, registry.poll_interval) == (2.0, 0.05)
        assert registry.heartbeat_interval == 2.0 / 5
        assert registry.detection_window == pytest.approx(2.05)
    finally:
        environment.destroy()


def test_timing_from_the_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARPCALL_REGISTRY_DIR", str(tmp_path))
    environment = boot({"registry": {"embedded": {"ttl": "1.5", "poll_interval": 0.2}}})
    try:
        registry = registry_of(environment)
        assert (registry.ttl, registry.poll_interval, registry.heartbeat_interval) == (1.5, 0.2, 0.3)
        assert registry.detection_window == pytest.approx(1.7)
    finally:
        environment.destroy()


def test_unusable_namespaces_are_refused_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="empty"):
        EmbeddedComponentRegistry(tmp_path, namespace="")
    with pytest.raises(ValueError, match="padded"):
        EmbeddedComponentRegistry(tmp_path, namespace=" shop")
    with pytest.raises(ValueError, match="control"):
        EmbeddedComponentRegistry(tmp_path, namespace="shop\n")
    with pytest.raises(TypeError, match="string"):
        EmbeddedComponentRegistry(tmp_path, namespace=7)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        EmbeddedComponentRegistry(tmp_path, ttl=0)
    monkeypatch.setenv("WARPCALL_REGISTRY_DIR", str(tmp_path))
    with pytest.raises(ConfigurationException, match="registry.namespace"):
        boot({"registry": {"namespace": "shop\t"}})
    with pytest.raises(ConfigurationException, match="registry.embedded.ttl"):
        boot({"registry": {"embedded": {"ttl": "soon"}}})


# -- a file written before namespaces ---------------------------------------------------------------------


def test_old_file_is_upgraded_in_place_while_an_old_process_keeps_using_it(tmp_path: Path, peers: Peers) -> None:
    old = peers.start("legacy", {"directory": str(tmp_path), "component": "orders", "url": "http://127.0.0.1:8201", "ttl": 5.0})
    assert peers.ready(old) == []
    assert peers.ask(old, "beat") == "OK"
    columns = lambda: [row[1] for row in sqlite3.connect(tmp_path / FILE_NAME).execute("PRAGMA table_info(instances)")]  # noqa: E731
    assert "namespace" not in columns()

    # a new process opens the old file (the old process holds its connection open) and gets the column
    new = EmbeddedComponentRegistry(tmp_path, namespace="shop")
    try:
        new.register(ORDERS, address("http://127.0.0.1:8202"))
        assert "namespace" in columns()
        # the old process's row (namespace '') is not the shop's
        assert urls(new) == ["http://127.0.0.1:8202"]
        # the old process goes on: its upsert and read run against the changed schema; it sees every row, as it did
        assert peers.ask(old, "beat") == "OK"
        assert peers.ask(old, "read orders") == "URLS " + json.dumps(["http://127.0.0.1:8201", "http://127.0.0.1:8202"])
        with sqlite3.connect(tmp_path / FILE_NAME) as db:
            assert db.execute("PRAGMA quick_check").fetchone() == ("ok",)
            namespaces = dict(db.execute("SELECT addresses, namespace FROM instances").fetchall())
        assert namespaces == {'[["dispatch-json", "http://127.0.0.1:8201"]]': "", '[["dispatch-json", "http://127.0.0.1:8202"]]': "shop"}
        # the legacy rows form no usable namespace, but are listed as ''
        assert new.namespaces() == ["", "shop"]
    finally:
        new.close()


def test_old_file_opened_by_several_new_processes_at_once(tmp_path: Path, peers: Peers) -> None:
    old = peers.start("legacy", {"directory": str(tmp_path), "component": "orders", "url": "http://127.0.0.1:8301", "ttl": 5.0})
    peers.ready(old)
    assert peers.ask(old, "beat") == "OK"
    env = {"WARPCALL_REGISTRY_DIR": str(tmp_path), "registry.namespace": "shop"}
    news = [peers.start("boot", {"component": "orders", "url": f"http://127.0.0.1:{8302 + i}"}, env=env) for i in range(3)]
    for process in news:
        assert peers.ready(process)[0] == "shop"
    reader = EmbeddedComponentRegistry(tmp_path, namespace="shop")
    try:
        assert sorted(urls(reader)) == [f"http://127.0.0.1:{8302 + i}" for i in range(3)]
    finally:
        reader.close()
    assert peers.ask(old, "beat") == "OK"


# -- a process that died ---------------------------------------------------------------------------------


def test_entry_of_a_process_killed_with_sigkill_leaves_within_the_ttl(
    tmp_path: Path, peers: Peers, monkeypatch: pytest.MonkeyPatch
) -> None:
    ttl, poll = 1.0, 0.1
    timing = {"registry.embedded.ttl": str(ttl), "registry.embedded.poll_interval": str(poll)}
    env = {"WARPCALL_REGISTRY_DIR": str(tmp_path), "registry.namespace": "shop", **timing}
    victim = peers.start("boot", {"component": "orders", "url": "http://127.0.0.1:8401"}, env=env)
    survivor = peers.start("boot", {"component": "orders", "url": "http://127.0.0.1:8402"}, env=env)
    assert peers.ready(victim) == ["shop", str(ttl), str(poll)]
    peers.ready(survivor)

    monkeypatch.setenv("WARPCALL_REGISTRY_DIR", str(tmp_path))
    environment = boot({"registry": {"namespace": "shop", "embedded": {"ttl": ttl, "poll_interval": poll}}})
    try:
        client = registry_of(environment)
        channel = RecordingChannel(ORDERS, "dispatch-json")
        client.watch(channel)
        assert sorted(channel.urls or []) == ["http://127.0.0.1:8401", "http://127.0.0.1:8402"]

        victim.send_signal(signal.SIGKILL)
        assert victim.wait(timeout=10) == -signal.SIGKILL
        died = time.monotonic()
        # its last heartbeat was before its death: its row is older than the TTL at most TTL after it,
        # and the watcher's next poll drops it
        wait_until(lambda: channel.urls == ["http://127.0.0.1:8402"], timeout=within(ttl + poll), interval=0.01)
        left = time.monotonic() - died
        # a registry reading the file now (a client starting) does not get it either
        fresh = EmbeddedComponentRegistry(tmp_path, namespace="shop", ttl=ttl, poll_interval=poll)
        try:
            assert urls(fresh) == ["http://127.0.0.1:8402"]
        finally:
            fresh.close()
        print(f"\nthe killed process's entry left the watcher's list {left:.2f} s after its death (TTL {ttl} s, poll {poll} s)")
        # the survivor stayed throughout
        assert all(push is not None and "http://127.0.0.1:8402" in push.urls for push in channel.pushes)
    finally:
        environment.destroy()


def test_entry_of_a_killed_process_leaves_within_the_ttl_even_when_the_file_is_recreated_meanwhile(
    tmp_path: Path, peers: Peers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recreated file makes clients keep the URLs they knew while live servers write their rows again;
    the URL of a process that died just before must not be kept past the TTL of its death for that."""
    ttl, poll = 2.0, 0.1
    env = {
        "WARPCALL_REGISTRY_DIR": str(tmp_path),
        "registry.namespace": "shop",
        "registry.embedded.ttl": str(ttl),
        "registry.embedded.poll_interval": str(poll),
    }
    victim = peers.start("boot", {"component": "orders", "url": "http://127.0.0.1:8501"}, env=env)
    survivor = peers.start("boot", {"component": "orders", "url": "http://127.0.0.1:8502"}, env=env)
    peers.ready(victim)
    peers.ready(survivor)
    monkeypatch.setenv("WARPCALL_REGISTRY_DIR", str(tmp_path))
    environment = boot({"registry": {"namespace": "shop", "embedded": {"ttl": ttl, "poll_interval": poll}}})
    try:
        channel = RecordingChannel(ORDERS, "dispatch-json")
        registry_of(environment).watch(channel)
        assert sorted(channel.urls or []) == ["http://127.0.0.1:8501", "http://127.0.0.1:8502"]

        victim.send_signal(signal.SIGKILL)
        assert victim.wait(timeout=10) == -signal.SIGKILL
        died = time.monotonic()

        def victim_heartbeat_age() -> float:
            with sqlite3.connect(tmp_path / FILE_NAME) as db:
                (heartbeat,) = db.execute("SELECT heartbeat FROM instances WHERE pid = ?", (victim.pid,)).fetchone()
            return float(time.time() - heartbeat)

        # late in the victim's TTL, the file goes away; the watcher and the survivor move to a new one
        wait_until(lambda: victim_heartbeat_age() >= 0.8 * ttl, timeout=within(ttl))
        for path in tmp_path.glob(FILE_NAME + "*"):
            path.unlink(missing_ok=True)
        # bounded from its death, not from the file's removal
        deadline = died + within(ttl + poll)
        wait_until(lambda: channel.urls == ["http://127.0.0.1:8502"], timeout=deadline - time.monotonic(), interval=0.01)
        print(f"\nthe killed process's entry left {time.monotonic() - died:.2f} s after its death (TTL {ttl} s)")
        # the survivor was kept through the move and is in the new file
        assert all(push is not None and "http://127.0.0.1:8502" in push.urls for push in channel.pushes)
        wait_until(lambda: urls(registry_of(environment)) == ["http://127.0.0.1:8502"], timeout=within(ttl / 5 + poll))
    finally:
        environment.destroy()


def test_dead_namespaces_are_purged_and_live_rows_of_slower_ones_are_not(tmp_path: Path) -> None:
    """A private namespace used once (each demo run has one) leaves no rows behind for long; a registry with
    a short TTL never removes the rows of processes that renew theirs on a longer one."""
    registry = EmbeddedComponentRegistry(tmp_path, namespace="fast", ttl=0.2, poll_interval=0.05)
    try:
        registry.register(ORDERS, address("http://127.0.0.1:8601"))
        payload = json.dumps([["dispatch-json", "http://127.0.0.1:8602"]])
        with sqlite3.connect(tmp_path / FILE_NAME) as db:
            db.execute(
                "INSERT INTO instances (id, component, addresses, pid, registered, heartbeat, namespace) "
                "VALUES ('gone', 'orders', ?, 1, 0, ?, 'demo-1-dead'), ('slow', 'orders', ?, 1, 0, ?, 'slow')",
                (payload, time.time() - 120, payload, time.time() - 20),
            )

        def rows() -> list[str]:
            with sqlite3.connect(tmp_path / FILE_NAME) as db:
                return [row_id for (row_id,) in db.execute("SELECT id FROM instances WHERE id IN ('gone', 'slow')")]

        wait_until(lambda: rows() == ["slow"], timeout=within(registry.heartbeat_interval + 0.05))
    finally:
        registry.close()
