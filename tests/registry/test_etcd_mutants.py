"""etcd registry behaviour mutation testing found unchecked (mutation/, area ``registries``).

Against one real etcd for the module, each test under a key prefix of its own: a registry reads only
its own prefix; a second watched component gets its list from ``watch`` at once; a healthy watch
follows changes over one stream, without a warning and without reading again, even when etcd
compacted its history at the current revision; the smallest lease is renewed before it runs out; an
endpoint that answers but is not etcd, or an etcd that is gone, is reported (naming the key a
deregistration could not delete). Last, two bugs found on the way: ``get_addresses`` answered the
instances of components named ``<name>/...`` too, and a watcher kept an instance whose key was
overwritten with a value that is not a registration.
"""

from __future__ import annotations

import base64
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import pytest
from registry_support import Descriptor, EtcdServer, LoopbackHTTPServer, RecordingChannel, wait_until

from warpcall.exceptions import ServiceCommunicationException
from warpcall.registry.contract import ChannelAddress
from warpcall.registry.etcd import EtcdComponentRegistry

LOGGER = "warpcall.registry.etcd"
ORDERS = Descriptor("orders")
BILLING = Descriptor("billing")
#: how long a test waits for a change whose speed it does not check (the contract tests hold etcd to its
#: promptness); generous, so a loaded machine cannot fail these tests
SETTLE = 5.0


def _address(port: int) -> list[ChannelAddress]:
    return [ChannelAddress("dispatch-json", f"http://127.0.0.1:{port}")]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture(scope="module")
def etcd(module_etcd: EtcdServer) -> EtcdServer:
    """One etcd for this module's tests (tests/registry/conftest.py)."""
    return module_etcd


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test alone: the module's tests share one etcd."""
    return f"/mutants-{uuid.uuid4().hex[:12]}/"


@pytest.fixture
def registries(etcd: EtcdServer, prefix: str) -> Iterator[Callable[..., EtcdComponentRegistry]]:
    """Makes registries on the module's etcd (under the test's prefix unless told) and closes them."""
    made: list[EtcdComponentRegistry] = []

    def make(**options: Any) -> EtcdComponentRegistry:
        options.setdefault("prefix", prefix)
        options.setdefault("ttl", 30)
        made.append(EtcdComponentRegistry(etcd.endpoint, **options))
        return made[-1]

    yield make
    for registry in made:
        registry.close()


def _keys(etcd: EtcdServer, prefix: str) -> dict[str, dict[str, Any]]:
    """etcd's key-values under ``prefix`` (key -> kv as the JSON gateway answers it)."""
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    answer = httpx.post(
        f"{etcd.endpoint}/v3/kv/range", json={"key": _b64(prefix), "range_end": _b64(end)}, timeout=5
    )
    answer.raise_for_status()
    return {base64.b64decode(kv["key"]).decode(): kv for kv in answer.json().get("kvs", [])}


def _put(etcd: EtcdServer, key: str, value: str) -> int:
    """Write ``key`` (no lease); returns the revision it made."""
    answer = httpx.post(
        f"{etcd.endpoint}/v3/kv/put", json={"key": _b64(key), "value": _b64(value)}, timeout=5
    )
    answer.raise_for_status()
    return int(answer.json()["header"]["revision"])


def _reads_served(etcd: EtcdServer) -> int:
    """How many range reads etcd has served (its Prometheus counter; writes and watches do not count)."""
    metrics = httpx.get(f"{etcd.endpoint}/metrics", timeout=5)
    metrics.raise_for_status()
    for line in metrics.text.splitlines():
        if line.startswith("etcd_mvcc_range_total "):
            return int(float(line.split()[1]))
    raise AssertionError("etcd's /metrics has no etcd_mvcc_range_total")


def test_a_registry_reads_only_the_keys_under_its_own_prefix(
    registries: Callable[..., EtcdComponentRegistry], prefix: str
) -> None:
    # "<p>b/" sorts after "<p>a/": a range that ran past the end of "<p>a/" would take b's keys in
    here, there = registries(prefix=f"{prefix}a/"), registries(prefix=f"{prefix}b/")
    there.register(ORDERS, _address(8001))
    assert [entry.urls for entry in there.get_addresses(ORDERS)] == [["http://127.0.0.1:8001"]]

    assert here.get_addresses(ORDERS) == []
    channel = RecordingChannel(ORDERS, "dispatch-json")
    here.watch(channel)
    assert channel.urls == []


def test_watching_a_second_component_pushes_its_list_before_watch_returns(
    registries: Callable[..., EtcdComponentRegistry],
) -> None:
    host, watcher = registries(), registries()
    host.register(ORDERS, _address(8001))
    host.register(BILLING, _address(8002))
    orders = RecordingChannel(ORDERS, "dispatch-json")
    watcher.watch(orders)
    assert orders.urls == ["http://127.0.0.1:8001"]
    # nothing changed in etcd since: the read for billing has the revision the watcher already knows,
    # and it still has to reach billing's channel, which no earlier read pushed into
    billing = RecordingChannel(BILLING, "dispatch-json")
    watcher.watch(billing)
    assert billing.urls == ["http://127.0.0.1:8002"]


def test_a_watch_follows_changes_without_a_warning(
    registries: Callable[..., EtcdComponentRegistry], caplog: pytest.LogCaptureFixture
) -> None:
    # the default backoff: a watch that could not open its stream would log, then read again and again
    host, watcher = registries(), registries(max_backoff=10.0)
    channel = RecordingChannel(ORDERS, "dispatch-json")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        watcher.watch(channel)
        assert channel.urls == []
        host.register(ORDERS, _address(8001))
        wait_until(lambda: channel.urls == ["http://127.0.0.1:8001"], timeout=SETTLE)
        # made after the registration was seen, so after the watcher's first read: it can only come over
        # a working stream (or with a read after a failed stream, which logged a warning)
        host.deregister(ORDERS)
        wait_until(lambda: channel.urls == [], timeout=SETTLE)
    assert [record.getMessage() for record in caplog.records if record.name == LOGGER] == []


def test_after_a_compaction_at_the_current_revision_a_watch_reads_once_and_streams(
    etcd: EtcdServer, registries: Callable[..., EtcdComponentRegistry], prefix: str
) -> None:
    # both parities of the current revision: a stream started anywhere but right after the read would
    # ask for compacted history, be cancelled at once and start over (a read each time), forever
    for parity in (0, 1):
        revision = _put(etcd, f"{prefix[:-1]}-pad", "pad")  # outside the prefix
        if revision % 2 != parity:
            revision = _put(etcd, f"{prefix[:-1]}-pad", "pad")
        httpx.post(
            f"{etcd.endpoint}/v3/kv/compaction", json={"revision": str(revision), "physical": True}, timeout=5
        ).raise_for_status()

        before = _reads_served(etcd)
        watcher = registries()
        channel = RecordingChannel(ORDERS, "dispatch-json")
        watcher.watch(channel)
        assert channel.urls == []
        # watch's own read and the background watch's read; nothing else reads on this etcd meanwhile
        wait_until(lambda before=before: _reads_served(etcd) - before >= 2, timeout=SETTLE)
        # the stream then stays open: no read at all follows (watched for a short, bounded while)
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            assert _reads_served(etcd) - before == 2
            time.sleep(0.02)
        watcher.close()


def test_a_lease_of_the_smallest_ttl_is_renewed_before_it_runs_out(
    etcd: EtcdServer, registries: Callable[..., EtcdComponentRegistry], prefix: str
) -> None:
    host, watcher = registries(ttl=2), registries()
    host.register(ORDERS, _address(8001))
    registered = time.monotonic()
    # 2 s, etcd's smallest lease with its default timing: a keep-alive is due every third of it
    assert host.granted_ttl == 2
    ((key, kv),) = _keys(etcd, prefix).items()
    channel = RecordingChannel(ORDERS, "dispatch-json")
    watcher.watch(channel)
    # past the TTL and etcd's expiry sweep (every 0.5 s), the key is still the one written, on its lease
    deadline = registered + host.granted_ttl + 1.0
    while time.monotonic() < deadline:
        now = _keys(etcd, prefix)
        assert now.get(key, {}).get("lease") == kv["lease"], "the lease ran out: the key was deleted"
        assert now[key]["create_revision"] == kv["create_revision"]
        time.sleep(0.05)
    assert [pushed.urls for pushed in channel.pushes if pushed is not None] == [["http://127.0.0.1:8001"]]


class _NotEtcd(LoopbackHTTPServer):
    """A real HTTP server on 127.0.0.1 that answers every POST with 200 and an HTML page: a wrong
    endpoint (another service, a proxy's error page) rather than etcd's JSON gateway."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = b"<html><body>not etcd</body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(Handler)


def test_an_endpoint_that_answers_but_is_not_etcd_is_reported_as_unreachable() -> None:
    not_etcd = _NotEtcd()
    registry = EtcdComponentRegistry(not_etcd.url, timeout=2)
    try:
        with pytest.raises(
            ServiceCommunicationException, match=f"cannot read orders's instances from etcd at {not_etcd.url}"
        ):
            registry.get_addresses(ORDERS)
        with pytest.raises(
            ServiceCommunicationException, match=f"cannot register orders in etcd at {not_etcd.url}"
        ):
            registry.register(ORDERS, _address(8001))
    finally:
        registry.close()
        not_etcd.stop()


def test_a_deregistration_etcd_cannot_take_names_the_key_it_could_not_delete(
    etcd_server: EtcdServer, caplog: pytest.LogCaptureFixture
) -> None:
    # an etcd of this test alone: it is stopped
    registry = EtcdComponentRegistry(etcd_server.endpoint, prefix="/gone/", ttl=30, timeout=2)
    try:
        registry.register(ORDERS, _address(8001))
        ((key, kv),) = _keys(etcd_server, "/gone/").items()
        etcd_server.stop()
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            registry.deregister(ORDERS)
        (warning,) = [
            r.getMessage()
            for r in caplog.records
            if r.name == LOGGER and "could not delete" in r.getMessage()
        ]
        assert warning.startswith(
            f"could not delete {key} from etcd at {etcd_server.endpoint} (its lease still expires): "
        )
        assert base64.b64decode(kv["value"]).decode() not in warning
    finally:
        registry.close()


# -- real bugs found while reviewing the survivors (fixed in etcd.py) ----------------------------------


def test_get_addresses_answers_the_named_component_alone(
    registries: Callable[..., EtcdComponentRegistry],
) -> None:
    # a component's name may hold a "/": the keys of "shop/orders" lie under "<prefix>shop/" as well
    shop, shop_orders = Descriptor("shop"), Descriptor("shop/orders")
    host, reader = registries(), registries()
    host.register(shop, _address(8001))
    host.register(shop_orders, _address(8002))
    assert [entry.urls for entry in reader.get_addresses(shop)] == [["http://127.0.0.1:8001"]]
    assert [entry.urls for entry in reader.get_addresses(shop_orders)] == [["http://127.0.0.1:8002"]]
    # what a watch of the same component pushes
    channel = RecordingChannel(shop, "dispatch-json")
    reader.watch(channel)
    assert channel.urls == ["http://127.0.0.1:8001"]


def test_a_key_overwritten_with_a_foreign_value_leaves_the_watchers_list(
    etcd: EtcdServer, registries: Callable[..., EtcdComponentRegistry], prefix: str
) -> None:
    host, watcher = registries(), registries()
    channel = RecordingChannel(ORDERS, "dispatch-json")
    watcher.watch(channel)
    host.register(ORDERS, _address(8001))
    # registered after the watcher's reads began: it came through the background watch, so the overwrite
    # below reaches the watcher as a stream event, not in a fresh read
    wait_until(lambda: channel.urls == ["http://127.0.0.1:8001"], timeout=SETTLE)
    ((key, _),) = _keys(etcd, prefix).items()
    _put(etcd, key, "not a registration")
    # a read ignores the key (it is not a registration); the watcher must agree
    assert watcher.get_addresses(ORDERS) == []
    wait_until(lambda: channel.urls == [], timeout=SETTLE)


def _renewals(etcd: EtcdServer) -> int:
    """How many lease keep-alives etcd has served (its Prometheus counter)."""
    metrics = httpx.get(f"{etcd.endpoint}/metrics", timeout=5)
    metrics.raise_for_status()
    for line in metrics.text.splitlines():
        if line.startswith("etcd_debugging_lease_renewed_total "):
            return int(float(line.split()[1]))
    raise AssertionError("etcd's /metrics has no etcd_debugging_lease_renewed_total")


def test_an_etcd_lease_is_renewed_every_third_of_its_ttl_not_in_a_loop(
    etcd: EtcdServer, registries: Callable[..., EtcdComponentRegistry]
) -> None:
    host = registries(ttl=3)
    host.register(ORDERS, _address(8001))
    assert host.granted_ttl == 3
    before = _renewals(etcd)
    time.sleep(2.5)  # a window to count in, not a wait for a state: one keep-alive a second, 2 or 3 here
    assert 1 <= _renewals(etcd) - before <= 5


def test_a_registry_under_the_root_prefix_registers_and_watches(
    registries: Callable[..., EtcdComponentRegistry],
) -> None:
    # "/" is the shortest prefix: the watch ranges over the whole key space from its one byte
    component = Descriptor(
        f"root-{uuid.uuid4().hex[:12]}"
    )  # the root holds every test's keys: a name of its own
    host, watcher = registries(prefix="/"), registries(prefix="/")
    host.register(component, _address(8001))
    channel = RecordingChannel(component, "dispatch-json")
    watcher.watch(channel)
    assert channel.urls == ["http://127.0.0.1:8001"]
    host.deregister(component)
    wait_until(lambda: channel.urls == [], timeout=SETTLE)
