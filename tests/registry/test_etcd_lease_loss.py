"""The etcd registry's lease is lost while etcd stays reachable (revoked, or it ran out while the server
stalled past the TTL): registering must not fail, and a renewal must not bring back a deregistered key.

Two bugs, each reproduced on a real etcd on 127.0.0.1: ``register`` failed ("requested lease not found")
until the next keep-alive, up to TTL/3 later, took a new lease; and the keep-alive's renewal wrote the
keys it had copied before a ``deregister`` that came in meanwhile, so the deregistered instance came back
and was kept alive until ``close``. The renewal is held between the two by a proxy on loopback between
the registry and etcd; every wait is bounded.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import pytest
from registry_support import Descriptor, EtcdServer, LoopbackHTTPServer, RecordingChannel, wait_until

from warpcall.registry.contract import ChannelAddress
from warpcall.registry.etcd import EtcdComponentRegistry

ORDERS = Descriptor("orders")
BILLING = Descriptor("billing")
#: how long a test waits for a change whose speed it does not check; generous for a loaded machine
SETTLE = 5.0


def _address(port: int) -> list[ChannelAddress]:
    return [ChannelAddress("dispatch-json", f"http://127.0.0.1:{port}")]


def _urls(registry: EtcdComponentRegistry, descriptor: Descriptor) -> list[list[str]]:
    return [entry.urls for entry in registry.get_addresses(descriptor)]


@pytest.fixture(scope="module")
def etcd(module_etcd: EtcdServer) -> EtcdServer:
    """One etcd for this module's tests (tests/registry/conftest.py)."""
    return module_etcd


@pytest.fixture
def registries(etcd: EtcdServer) -> Iterator[Callable[..., EtcdComponentRegistry]]:
    """Makes registries under a key prefix of this test alone (the module's tests share one etcd)."""
    prefix = f"/lease-loss-{uuid.uuid4().hex[:12]}/"
    made: list[EtcdComponentRegistry] = []

    def make(endpoint: str | None = None, **options: Any) -> EtcdComponentRegistry:
        options.setdefault("ttl", 30)
        made.append(EtcdComponentRegistry(endpoint or etcd.endpoint, prefix=prefix, **options))
        return made[-1]

    yield make
    for registry in made:
        registry.close()


def _revoke(etcd: EtcdServer, lease: int | None) -> None:
    """End the lease as etcd does when it runs out: every key on it is deleted."""
    assert lease is not None
    httpx.post(f"{etcd.endpoint}/v3/lease/revoke", json={"ID": str(lease)}, timeout=5).raise_for_status()


def _time_to_live(etcd: EtcdServer, lease: str) -> int:
    answer = httpx.post(f"{etcd.endpoint}/v3/lease/timetolive", json={"ID": lease}, timeout=5)
    answer.raise_for_status()
    return int(answer.json().get("TTL", -1))


def _leases_of_keys(etcd: EtcdServer, registry: EtcdComponentRegistry) -> list[str]:
    """The lease of every key under the registry's prefix (in key order)."""
    prefix = registry.prefix.encode()
    end = prefix[:-1] + bytes([prefix[-1] + 1])
    answer = httpx.post(
        f"{etcd.endpoint}/v3/kv/range",
        json={"key": base64.b64encode(prefix).decode(), "range_end": base64.b64encode(end).decode()},
        timeout=5,
    )
    answer.raise_for_status()
    return [kv.get("lease", "0") for kv in answer.json().get("kvs", [])]


def test_registering_after_the_lease_was_lost_takes_a_new_lease_for_every_key(
    etcd: EtcdServer, registries: Callable[..., EtcdComponentRegistry]
) -> None:
    # ttl=30: the keep-alive's next renewal is 10 s away, so only register itself can take the new lease
    host, reader = registries(), registries()
    host.register(ORDERS, _address(8001))
    watcher = RecordingChannel(ORDERS, "dispatch-json")
    reader.watch(watcher)
    assert watcher.urls == ["http://127.0.0.1:8001"]
    _revoke(etcd, host._lease)  # the registry's lease: no public name for it
    wait_until(lambda: watcher.urls == [], timeout=SETTLE)

    host.register(BILLING, _address(8002))

    # the instance registered before the loss is back too, and both keys live on one lease etcd keeps
    assert _urls(reader, BILLING) == [["http://127.0.0.1:8002"]]
    assert _urls(reader, ORDERS) == [["http://127.0.0.1:8001"]]
    leases = _leases_of_keys(etcd, host)
    assert len(leases) == 2 and leases[0] == leases[1]
    assert _time_to_live(etcd, leases[0]) > 0
    wait_until(lambda: watcher.urls == ["http://127.0.0.1:8001"], timeout=SETTLE)


def test_registering_the_same_component_again_after_the_lease_was_lost_updates_it(
    etcd: EtcdServer, registries: Callable[..., EtcdComponentRegistry]
) -> None:
    host, reader = registries(), registries()
    host.register(ORDERS, _address(8001))
    _revoke(etcd, host._lease)

    host.register(ORDERS, _address(8003))

    assert _urls(reader, ORDERS) == [["http://127.0.0.1:8003"]]
    (lease,) = _leases_of_keys(etcd, host)
    assert _time_to_live(etcd, lease) > 0


class _HoldingProxy(LoopbackHTTPServer):
    """A real HTTP proxy on 127.0.0.1 in front of etcd's JSON gateway (plain request/response, no
    watch streams). Once armed, it holds the next ``/v3/kv/put`` until a ``/v3/kv/deleterange`` has
    gone through to etcd (at most ``hold`` seconds): a deregistration that can overtake a write in
    flight does so."""

    def __init__(self, upstream: str, hold: float) -> None:
        self.hold = hold
        self.armed = False
        self.held = threading.Event()
        self.deleted = threading.Event()
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path == "/v3/kv/put" and owner._take_hold():
                    owner.held.set()
                    owner.deleted.wait(owner.hold)
                answer = httpx.post(
                    f"{upstream}{self.path}",
                    content=body,
                    headers={"Content-Type": "application/json"},
                    timeout=5,
                )
                if self.path == "/v3/kv/deleterange":
                    owner.deleted.set()
                self.send_response(answer.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(Handler)

    def _take_hold(self) -> bool:
        with self._lock:
            armed, self.armed = self.armed, False
            return armed


@pytest.fixture
def proxy(etcd: EtcdServer) -> Iterator[_HoldingProxy]:
    # the hold is the time a deregistration gets to overtake the renewal's write; it stays well within
    # the 3 s lease the renewal took just before, so that lease cannot run out while the write waits
    made = _HoldingProxy(etcd.endpoint, hold=0.5)
    try:
        yield made
    finally:
        made.stop()


def test_a_deregistration_during_a_lease_renewal_is_not_undone(
    etcd: EtcdServer, proxy: _HoldingProxy, registries: Callable[..., EtcdComponentRegistry]
) -> None:
    # ttl=3: the keep-alive looks at the lease every second, so it notices the loss within one
    host, reader = registries(proxy.url, ttl=3), registries()
    host.register(ORDERS, _address(8001))
    host.register(BILLING, _address(8002))
    proxy.armed = True  # the renewal's first write (orders, registered first) is held
    _revoke(etcd, host._lease)
    assert proxy.held.wait(SETTLE), "the keep-alive did not take a new lease after the old one was revoked"

    # the deregistration comes while the renewal is between reading what to write and writing it
    deregistering = threading.Thread(target=host.deregister, args=(ORDERS,))
    deregistering.start()
    deregistering.join(SETTLE)
    assert not deregistering.is_alive(), "deregister did not return"

    # the renewal writes billing last: once billing is back, the renewal is over
    wait_until(lambda: _urls(reader, BILLING) == [["http://127.0.0.1:8002"]], timeout=SETTLE)
    assert _urls(reader, ORDERS) == []
