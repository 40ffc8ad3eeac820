"""The network-namespace cluster of ``scripts/netns_cluster.py``, as a fixture: made once per module, removed always.

Skipped, with the reason, where network namespaces cannot be made (not Linux, not root, no ``ip``,
``ip netns add`` refused, as in an unprivileged container); ``WARPCALL_REQUIRE_NETNS=1`` turns that
skip into a failure, for a CI machine that must run it. A missing etcd binary skips it too, except
under ``CI=true``, where it fails (as the registry tests do).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from cluster_support import netns_cluster


def _require_cluster() -> None:
    try:
        netns_cluster.check_namespaces()
    except netns_cluster.Unavailable as exc:
        if os.environ.get("WARPCALL_REQUIRE_NETNS", "") not in ("", "0"):
            pytest.fail(f"WARPCALL_REQUIRE_NETNS is set but {exc}")
        pytest.skip(str(exc))
    try:
        netns_cluster.etcd_binary()
    except netns_cluster.Unavailable as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """etcd and a client in one namespace, instances ``a`` and ``b`` in two others (see the script)."""
    _require_cluster()
    made = netns_cluster.Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        made.start()
        yield made
    finally:
        made.close()


@pytest.fixture
def running(cluster: Any) -> Any:
    """The cluster with no call loop running and both instances up (whatever a failed test left)."""
    cluster.heal()
    return cluster
