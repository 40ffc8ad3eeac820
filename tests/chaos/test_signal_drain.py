"""Graceful drain with real processes (issue 16): SIGTERM or SIGINT on a server with calls under way.

Each server is ``chaos_server.py`` in a child process on 127.0.0.1, on the embedded registry (in a
temporary directory) and on a real etcd; every state is waited for (bounded), never slept. The
rolling restart of three instances under client threads is in test_failure_scenarios.py.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import pytest
from chaos_api import EchoService
from cluster import BOUND, Cluster

from rawhttp import wait_until
from warpcall import ServiceManager

pytestmark = pytest.mark.chaos


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_drains_the_server_calls_under_way_complete(cluster: Cluster, signum: int) -> None:
    (instance,) = cluster.start_ready(1, grace=5.0, delay=0.3)
    service = cluster.client().get(ServiceManager).get_service(EchoService)
    results: dict[int, Any] = {}

    def call(n: int) -> None:
        try:
            results[n] = service.hold(n, 1.0)
        except Exception as exc:  # noqa: BLE001 - recorded, asserted below
            results[n] = exc

    callers = [threading.Thread(target=call, args=(n,)) for n in range(4)]
    for caller in callers:
        caller.start()
    wait_until(lambda: len(cluster.started()) == 4, BOUND, "four calls under way")
    code = instance.stop(signum)
    for caller in callers:
        caller.join(BOUND)
    assert results == {n: n for n in range(4)}  # every call under way completed
    assert code == 0 and instance.lines[-1] == f"stopped {int(signum)}"
    assert instance.url not in cluster.registered()
