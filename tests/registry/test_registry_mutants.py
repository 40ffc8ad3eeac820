"""Registry behaviour mutation testing found unchecked (mutation/, area ``registries``).

Settings and the figures derived from them, checked without a server: what each registry promises
about its timing follows from them.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from registry_support import Descriptor

from warpcall.registry.contract import ChannelAddress
from warpcall.registry.embedded import FILE_NAME, EmbeddedComponentRegistry
from warpcall.registry.etcd import EtcdComponentRegistry


@pytest.mark.parametrize(
    "timing",
    [
        {"ttl": 0},
        {"ttl": -1.0},
        {"poll_interval": 0},
        {"heartbeat_interval": 0},
        {"heartbeat_interval": -0.5},
    ],
)
def test_the_embedded_registrys_times_must_be_positive(tmp_path: Path, timing: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be positive numbers of seconds"):
        EmbeddedComponentRegistry(tmp_path, namespace="mutants", **timing)


@pytest.mark.parametrize(("ttl", "heartbeat"), [(1.0, 0.2), (2.0, 0.4), (4.5, 0.9)])
def test_the_embedded_heartbeat_defaults_to_a_fifth_of_the_ttl(
    tmp_path: Path, ttl: float, heartbeat: float
) -> None:
    registry = EmbeddedComponentRegistry(tmp_path, namespace="mutants", ttl=ttl, poll_interval=0.5)
    try:
        assert registry.heartbeat_interval == pytest.approx(heartbeat)
        assert registry.detection_window == pytest.approx(ttl + 0.5)
    finally:
        registry.close()


def test_an_explicit_heartbeat_interval_is_kept(tmp_path: Path) -> None:
    registry = EmbeddedComponentRegistry(tmp_path, namespace="mutants", ttl=3.0, heartbeat_interval=0.25)
    try:
        assert (registry.ttl, registry.heartbeat_interval) == (3.0, 0.25)
    finally:
        registry.close()


@pytest.mark.parametrize("ttl", [2, 10])
def test_etcd_detection_window_is_the_granted_ttl_and_a_second(ttl: int) -> None:
    registry = EtcdComponentRegistry("http://127.0.0.1:9", ttl=ttl)  # never contacted here
    try:
        assert registry.timeout == 5.0  # the default bound of each request
        assert registry.detection_window == ttl + 1.0
        registry.granted_ttl = 7  # etcd may grant another TTL than asked
        assert registry.detection_window == 8.0
    finally:
        registry.close()


def test_namespaces_lists_only_those_with_live_instances(tmp_path: Path) -> None:
    registry = EmbeddedComponentRegistry(tmp_path, namespace="live", ttl=2.0)
    try:
        registry.register(Descriptor("orders"), [ChannelAddress("dispatch-json", "http://127.0.0.1:8001")])
        with sqlite3.connect(tmp_path / FILE_NAME) as db:  # an instance whose heartbeat is past the TTL
            db.execute(
                "INSERT INTO instances VALUES ('stale', 'orders', ?, 1, 0, ?, ?)",
                (json.dumps([["dispatch-json", "http://127.0.0.1:9999"]]), time.time() - 10, "ghost"),
            )
        assert registry.namespaces() == ["live"]
    finally:
        registry.close()


@pytest.mark.parametrize(("prefix", "expected"), [("/apps", "/apps/"), ("/apps/", "/apps/"), ("x", "x/")])
def test_an_etcd_prefix_always_ends_with_a_slash(prefix: str, expected: str) -> None:
    registry = EtcdComponentRegistry("http://127.0.0.1:9", prefix=prefix)  # never contacted here
    try:
        assert registry.prefix == expected
    finally:
        registry.close()
