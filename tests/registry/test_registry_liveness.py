"""Liveness, not just a heartbeat (issue 16): a server whose event loop is blocked on purpose (an async
method sleeping synchronously) for longer than the registry's TTL leaves the watchers' lists within the
TTL (plus the watchdog's bound and one poll), its /health answers 503 naming the stall once the loop
runs again, and it comes back when the loop recovers. Embedded registry and a real etcd."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from process_support import Children
from registry_support import Descriptor, RecordingChannel, etcd_granted_ttl, wait_until, within

from warpcall.registry.contract import ComponentRegistry

SERVER = Path(__file__).with_name("resilience_server.py")
MAX_LAG, PROBE = 0.3, 0.05
#: the server's liveness bound, short so the test takes seconds
WATCHDOG = {"health.loop.max_lag": str(MAX_LAG), "health.loop.probe_interval": str(PROBE)}
#: scheduling slack on a loaded machine
SLACK = 1.0


@pytest.fixture
def children(tmp_path: Path) -> Iterator[Children]:
    started = Children(tmp_path)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(params=["embedded", "etcd"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, dict, ComponentRegistry, float]]:
    """(server kind, server config, watcher registry in this process, seconds a stalled server may stay)."""
    if request.param == "embedded":
        from warpcall.registry.embedded import EmbeddedComponentRegistry

        ttl, poll = 1.0, 0.1
        config = {"directory": str(tmp_path), "ttl": ttl, "poll": poll}
        watcher: ComponentRegistry = EmbeddedComponentRegistry(tmp_path, ttl=ttl, poll_interval=poll)
        # the last heartbeat comes at most probe + max_lag into the stall; the row expires a TTL later
        window = PROBE + MAX_LAG + ttl + poll
    else:
        from warpcall.registry.etcd import EtcdComponentRegistry

        etcd = request.getfixturevalue("etcd_server")
        prefix = f"/liveness-{uuid.uuid4().hex[:8]}/"
        config = {"endpoint": etcd.endpoint, "prefix": prefix, "ttl": 1}
        watcher = EtcdComponentRegistry(etcd.endpoint, prefix=prefix, ttl=1)
        # the lease (etcd may grant more than asked) runs out after the last keep-alive, plus etcd's sweep
        window = PROBE + MAX_LAG + etcd_granted_ttl(etcd.endpoint, 1) + 0.5
    try:
        yield request.param, config, watcher, window
    finally:
        watcher.close()


def invoke(url: str, method: str, args: list[Any], timeout: float) -> Any:
    response = httpx.post(
        f"{url}/invoke", json={"method": f"resilience:resilience-staller:{method}", "args": args}, timeout=timeout
    )
    response.raise_for_status()
    return response.json()


def test_stalled_loop_leaves_the_rotation_within_the_ttl_and_comes_back(
    deployment: tuple[str, dict, ComponentRegistry, float], children: Children
) -> None:
    kind, config, watcher, window = deployment
    url = children.start(SERVER, kind, config, env=WATCHDOG)
    channel = RecordingChannel(Descriptor("resilience"), "dispatch-json")
    watcher.watch(channel)
    wait_until(lambda: channel.urls == [url], timeout=15)
    assert httpx.get(f"{url}/health", timeout=5).status_code == 200

    stall = window + SLACK + 1.0
    outcome: dict[str, Any] = {}

    def block() -> None:
        outcome["reply"] = invoke(url, "block", [stall], timeout=stall + 10)
        outcome["returned"] = time.monotonic()

    def health() -> None:
        # sent while the loop is blocked: answered once it runs again
        response = httpx.get(f"{url}/health", timeout=stall + 10)
        outcome["health"] = (response.status_code, response.json())

    blocker = threading.Thread(target=block)
    blocker.start()
    stalled_at = time.monotonic()
    time.sleep(0.1)  # let the blocking call reach the loop before the health request queues behind it
    checker = threading.Thread(target=health)
    checker.start()
    try:
        wait_until(lambda: channel.urls == [], timeout=within(window), interval=0.01)
        left_after = time.monotonic() - stalled_at
        # it left while the loop was still blocked, not because the call ended
        assert "returned" not in outcome
        print(f"\n{kind}: the stalled server left the watcher's list after {left_after:.2f} s (window {window:.2f} s)")
    finally:
        blocker.join(timeout=stall + 15)
        checker.join(timeout=stall + 15)
    assert outcome["reply"]["result"] == stall

    # the first health answer after the stall says so, with the lag it measured
    status, body = outcome["health"]
    assert status == 503
    (loop_check,) = [check for check in body["checks"] if check["name"] == "event-loop"]
    assert loop_check["status"] == "ERROR"
    assert "stall" in loop_check["details"]
    assert loop_check["max_lag"] == MAX_LAG

    # the loop runs again: healthy, and back in the rotation
    wait_until(lambda: httpx.get(f"{url}/health", timeout=5).status_code == 200, timeout=within(MAX_LAG))
    wait_until(lambda: channel.urls == [url], timeout=within(window))
    body = httpx.get(f"{url}/health", timeout=5).json()
    (loop_check,) = [check for check in body["checks"] if check["name"] == "event-loop"]
    assert loop_check["status"] == "OK" and loop_check["lag"] < MAX_LAG
