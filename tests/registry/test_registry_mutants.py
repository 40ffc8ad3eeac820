"""Registry behaviour mutation testing found unchecked (mutation/, area ``registries``).

Settings and the figures derived from them, checked without a server: what each registry promises
about its timing follows from them.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from registry_support import Descriptor

from warpcall.registry.consul import _seconds
from warpcall.registry.contract import ChannelAddress, ComponentRegistry
from warpcall.registry.embedded import FILE_NAME, EmbeddedComponentRegistry, default_directory
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


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [("500ms", 0.5), ("10s", 10.0), ("1.5s", 1.5), ("2m", 120.0), ("1m30s", 90.0), ("2h", 7200.0)],
)
def test_consul_durations_read_as_seconds(duration: str, seconds: float) -> None:
    assert _seconds(duration) == pytest.approx(seconds)


class _Partial(ComponentRegistry):
    def register(self, descriptor: Any, addresses: list[ChannelAddress]) -> None: ...

    def deregister(self, descriptor: Any) -> None: ...


def test_a_registry_must_implement_watch() -> None:
    with pytest.raises(TypeError, match="watch"):
        _Partial()  # type: ignore[abstract]


class _Complete(_Partial):
    def watch(self, channel: Any) -> None: ...

    def get_addresses(self, descriptor: Any) -> list[Any]:
        return []


def test_a_live_server_is_served_without_a_word_logged(caplog: pytest.LogCaptureFixture) -> None:
    registry = _Complete()
    with caplog.at_level(logging.INFO, logger="warpcall"):
        assert registry.serving() and registry.serving()
    assert caplog.records == []


def test_the_registry_directory_defaults_to_the_users_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("WARPCALL_REGISTRY_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_directory() == tmp_path / ".cache" / "warpcall"


def test_the_embedded_registrys_default_ttl_is_five_seconds(tmp_path: Path) -> None:
    registry = EmbeddedComponentRegistry(tmp_path, namespace="mutants")
    try:
        assert (registry.ttl, registry.heartbeat_interval) == (5.0, 1.0)
    finally:
        registry.close()


def test_etcd_watch_idle_defaults_to_a_minute_and_retries_back_off_to_ten_seconds() -> None:
    registry = EtcdComponentRegistry("http://127.0.0.1:9")  # never contacted here
    try:
        assert (registry.watch_idle, registry.max_backoff) == (60.0, 10.0)
    finally:
        registry.close()
