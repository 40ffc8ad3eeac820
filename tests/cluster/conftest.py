"""The network-namespace cluster of ``scripts/netns_cluster.py`` as a fixture: made once per module, removed always
(skipped or failed as ``cluster_support.require_cluster`` says)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cluster_support import netns_cluster, require_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """etcd and a client in one namespace, instances ``a`` and ``b`` in two others (see the script)."""
    require_cluster()
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
