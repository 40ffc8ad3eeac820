"""Chaos tests: real server processes signalled under load, on the embedded registry and on a real etcd."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from platforms import etcd_required

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "registry"))  # the registry tests' helpers
from registry_support import EtcdServer  # noqa: E402

from cluster import Cluster  # noqa: E402

REGISTRIES = ["embedded", "etcd"]


def pytest_configure(config: pytest.Config) -> None:
    # registered here too, so the directory runs on its own with -p no:warnings or without pyproject's marker
    config.addinivalue_line("markers", "chaos: real processes killed, stopped or restarted under load")


@pytest.fixture(scope="session")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    """One real etcd for the chaos tests (each cluster has a prefix of its own)."""
    if shutil.which("etcd") is None:
        message = "the etcd binary is missing: install Debian's etcd-server package (apt-get install etcd-server)"
        if etcd_required():
            pytest.fail(message)  # CI installs it: missing there is a failure, not a skip
        pytest.skip(message)
    server = EtcdServer(tmp_path_factory.mktemp("chaos-etcd") / "data").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=REGISTRIES)
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    """Instances of ``chaos-echo`` and their clients on one registry (the parameter); all stopped at the end."""
    endpoint = request.getfixturevalue("etcd").endpoint if request.param == "etcd" else None
    made = Cluster(request.param, tmp_path, endpoint)
    try:
        yield made
    finally:
        made.close()
