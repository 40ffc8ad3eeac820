"""A warpcall cluster beyond one host: three network namespaces with addresses of their own, etcd in one,
an instance in each of the others, the client beside etcd (``scripts/netns_cluster.py`` builds it).

Discovery through etcd, round robin over the two instances, failover when one is SIGKILLed (calls
keep succeeding; its lease takes it out of etcd), and a rolling restart under SIGTERM (each
instance deregisters before it stops; no call fails). The namespaces have no route out.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cluster_support import MISSING, netns_cluster, require_namespaces

if netns_cluster is None:
    pytest.skip(MISSING, allow_module_level=True)

errors = netns_cluster.errors


def pids(results: list[dict[str, Any]]) -> set[int]:
    return {result["pid"] for result in results if "pid" in result}


def test_the_namespaces_have_addresses_of_their_own_and_no_route_out(cluster: Any) -> None:
    network = cluster.network
    for role, routes in network.routes().items():
        link = "br0" if role == "etcd" else "eth0"
        # their own subnet on the namespace's own link (and IPv6 link-local there, if IPv6 is on); no default
        assert routes[0] == f"{netns_cluster.SUBNET}.0/24 dev {link}", routes
        assert all(route.startswith("fe80::/64 dev ") for route in routes[1:]), routes
    for role, answers in network.outside_unreachable().items():
        assert answers == ["RTNETLINK answers: Network is unreachable"] * 2, (role, answers)
    assert network.interfaces() == {
        "etcd": ["br0:bridge", "lo:loopback", "veth-a:veth", "veth-b:veth"],
        "a": ["eth0:veth", "lo:loopback"],
        "b": ["eth0:veth", "lo:loopback"],
    }


def test_the_client_finds_both_instances_through_etcd_and_calls_them_in_turn(running: Any) -> None:
    a, b = running.instances["a"], running.instances["b"]
    # each registered the address of its own namespace, as it binds it
    assert (a.url, b.url) == (
        f"http://{netns_cluster.SUBNET}.2:{netns_cluster.INSTANCE_PORT}",
        f"http://{netns_cluster.SUBNET}.3:{netns_cluster.INSTANCE_PORT}",
    )
    assert running.discovery() == [a.url, b.url]

    results = running.round_robin(10)
    assert errors(results) == []
    assert pids(results) == {a.pid, b.pid}
    for earlier, later in zip(results, results[1:]):
        assert earlier["pid"] != later["pid"], results  # strictly in turn
    for result in results:
        assert result["url"] == running.instances[result["name"]].url


def test_a_sigkilled_instance_costs_no_call_and_leaves_etcd_when_its_lease_runs_out(running: Any) -> None:
    report = running.failover("a")  # waits (bounded: TTL + 30 s) until etcd lists b alone

    assert report.exit_code == -signal.SIGKILL
    assert errors(report.results) == []
    before, after = report.results[: report.after_exit], report.results[report.after_exit :]
    assert report.victim.pid in pids(before)  # it was taking calls when it died
    assert len(after) >= 20
    assert pids(after) == {report.survivor.pid}
    # the restarted instance is found and called again
    assert running.discovery() == [running.instances["a"].url, running.instances["b"].url]
    assert pids(running.round_robin(4)) == {running.instances["a"].pid, running.instances["b"].pid}
    print(
        f"\nfailover: {len(report.results)} calls, none failed; {report.calls_while_listed} while etcd still "
        f"listed the dead instance; it left etcd {report.left_registry_after:.1f} s after the kill "
        f"(lease TTL {running.ttl} s)"
    )


def test_a_rolling_restart_under_sigterm_fails_no_call(running: Any) -> None:
    urls = {role: instance.url for role, instance in running.instances.items()}
    reports, results = running.rolling_restart()

    assert [report.old.role for report in reports] == ["a", "b"]
    assert errors(results) == []
    for report in reports:
        other = "b" if report.old.role == "a" else "a"
        assert report.exit_code == 0
        # the drain took it out of etcd (and it printed nothing else on its way out)
        assert report.printed == ["DEREGISTERED"]
        # gone from etcd as its process ended: it deregistered, no lease had to run out
        assert report.listed_after_exit == [urls[other]]
        assert report.new.pid != report.old.pid
        assert report.new.url == report.old.url
        later = results[report.after_exit :]
        assert report.old.pid not in pids(later)
        assert report.new.pid in pids(later)
    print(
        f"\nrolling restart: {len(results)} calls throughout, none failed; while draining: "
        + ", ".join(f"{report.old.role} {report.calls_while_draining}" for report in reports)
    )


def namespaces_listed() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30, check=True).stdout


def test_destroying_the_network_ends_its_processes_and_deletes_its_namespaces(tmp_path: Path) -> None:
    require_namespaces()
    network = netns_cluster.Network(f"{netns_cluster.PREFIX}{os.getpid()}-cleanup")
    try:
        network.create()
        # a process left running in a namespace (as a test that failed half-way leaves one)
        stray = subprocess.Popen(network.exec_argv("a", [sys.executable, "-c", "import sys; sys.stdin.read()"]),
                                 stdin=subprocess.PIPE)
        netns_cluster.wait_for("the process runs in the namespace", lambda: str(stray.pid) in subprocess.run(
            ["ip", "netns", "pids", network.names["a"]], capture_output=True, text=True, timeout=30).stdout.split())
    finally:
        network.destroy()
    assert stray.wait(timeout=30) == -signal.SIGKILL
    assert stray.stdin is not None
    stray.stdin.close()
    listed = namespaces_listed()
    assert not [name for name in network.names.values() if name in listed], listed


def test_namespaces_of_a_run_that_died_are_reaped_by_the_next() -> None:
    require_namespaces()
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait(timeout=30)  # a process id of nothing running: a run killed before it could clean up
    network = netns_cluster.Network(f"{netns_cluster.PREFIX}{ended.pid}")
    alive = netns_cluster.Network(f"{netns_cluster.PREFIX}{os.getpid()}-alive")
    try:
        network.create()
        alive.create()
        reaped = netns_cluster.reap_stale_namespaces()
        assert sorted(reaped) == sorted(network.names.values())
        listed = namespaces_listed()
        assert all(name in listed for name in alive.names.values())  # this process lives: its namespaces stay
    finally:
        network.destroy()
        alive.destroy()
