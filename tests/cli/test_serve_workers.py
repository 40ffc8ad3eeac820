"""``warpcall serve --workers 2``: two processes share the port, the registry holds the address once,
a killed worker is replaced while the other serves, SIGTERM drains them all and leaves no process."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from serve_processes import ServeProcess, ended, gone, pid_of, registered

from rawhttp import wait_until

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or not hasattr(__import__("socket"), "SO_REUSEPORT"),
                                reason="--workers needs SO_REUSEPORT (Linux, macOS)")

#: connections tried (each a new one) before giving up on seeing a process
MAX_CALLS = 400


@pytest.fixture
def workers(tmp_path: Path):
    server = ServeProcess(["servepids.app:PidModule", "--port", "0", "--workers", "2"], tmp_path / "registry")
    try:
        yield server.wait_ready()
    finally:
        server.kill()


def pids_answering(port: int, wanted: set[int]) -> set[int]:
    """Call over new connections until every pid of ``wanted`` answered (bounded); the pids seen."""
    seen: set[int] = set()
    for _ in range(MAX_CALLS):
        seen.add(pid_of(port))
        if wanted <= seen:
            break
    return seen


def test_two_workers_serve_one_port_and_one_registry_entry(workers, tmp_path):
    assert len(workers.pids) == 2 and workers.supervisor == workers.process.pid
    assert workers.process.pid not in workers.pids
    assert pids_answering(workers.port, set(workers.pids)) == set(workers.pids)
    assert registered(tmp_path / "registry") == [f'[["dispatch-json", "http://127.0.0.1:{workers.port}"]]']


def test_a_killed_worker_is_replaced_while_the_other_serves(workers, tmp_path):
    victim, survivor = workers.pids
    os.kill(victim, signal.SIGKILL)
    # reaped by the supervisor (every thread of it ended, its socket closed): it says so
    wait_until(lambda: any(f"pid {victim}) exited (killed by SIGKILL)" in line for line in workers.err),
               timeout=10, what="the supervisor seeing the worker's end")
    assert gone(victim)
    # the kernel no longer hands connections to the dead worker's socket: every call is answered
    answered = {pid_of(workers.port) for _ in range(40)}
    assert victim not in answered
    wait_until(lambda: workers.restarted_pids(), timeout=30, what="a new worker started")
    (replacement,) = workers.restarted_pids()
    assert replacement not in (victim, survivor)
    wait_until(lambda: replacement in pids_answering(workers.port, {replacement}), timeout=30,
               what="the new worker answering")
    # the address stayed registered once all along: the dead worker took nothing with it
    assert registered(tmp_path / "registry") == [f'[["dispatch-json", "http://127.0.0.1:{workers.port}"]]']


def test_sigterm_drains_every_worker_deregisters_and_exits_0(workers, tmp_path):
    pids = list(workers.pids)
    assert pids_answering(workers.port, set(pids)) == set(pids)
    workers.signal(signal.SIGTERM)
    assert workers.wait() == 0, workers.output()
    assert registered(tmp_path / "registry") == []
    for pid in pids:
        wait_until(lambda pid=pid: gone(pid), timeout=10, what=f"worker {pid} gone")
    assert any("deregistering" in line for line in workers.err)
    assert not any("killed" in line or "not every worker" in line for line in workers.err), workers.output()


def test_a_worker_that_cannot_start_stops_the_supervisor_with_status_1(tmp_path):
    (tmp_path / "bad.yaml").write_text("- a list, not a mapping\n")
    server = ServeProcess(["servepids.app:PidModule", "--port", "0", "--workers", "2", "--config",
                           str(tmp_path / "bad.yaml")], tmp_path / "registry")
    try:
        assert server.wait(60) == 1, server.output()
        assert registered(tmp_path / "registry") == []
    finally:
        server.kill()


def test_the_drain_deregisters_first_and_the_workers_serve_on_meanwhile(tmp_path):
    """With a deregister_delay (configuration, through the environment) the address leaves the registry
    while both workers still answer; then they stop and the supervisor exits 0."""
    server = ServeProcess(["servepids.app:PidModule", "--port", "0", "--workers", "2"], tmp_path / "registry",
                          env={"app.deregister_delay": "4"})
    try:
        server.wait_ready()
        assert registered(tmp_path / "registry")
        server.signal(signal.SIGTERM)
        wait_until(lambda: not registered(tmp_path / "registry"), timeout=5, what="the address deregistered")
        assert server.process.poll() is None
        assert pid_of(server.port) in server.pids  # deregistered, still serving
        assert server.wait() == 0, server.output()
        for pid in server.pids:
            wait_until(lambda pid=pid: gone(pid), timeout=10, what=f"worker {pid} gone")
    finally:
        server.kill()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "group-sigterm"])
def test_a_signal_to_the_whole_process_group_drains_once(workers, tmp_path, signum):
    """^C in a terminal (SIGINT) or a service manager's SIGTERM reach the supervisor and every worker at once:
    the workers drain once (the supervisor's word and their own signal are not a second signal, which would
    cut the drain short), and the supervisor exits 0."""
    os.killpg(workers.process.pid, signum)
    assert workers.wait() == 0, workers.output()
    assert registered(tmp_path / "registry") == []
    assert not any("second signal" in line or "stopping now" in line for line in workers.err), workers.output()
    for pid in workers.pids:
        wait_until(lambda pid=pid: gone(pid), timeout=10, what=f"worker {pid} gone")


def test_a_second_supervisor_on_a_port_in_use_is_refused(workers, tmp_path):
    """SO_REUSEPORT would let it join the first one's port: it is refused instead, and the first serves on."""
    second = ServeProcess(["servepids.app:PidModule", "--port", str(workers.port), "--workers", "2"],
                          tmp_path / "registry")
    try:
        assert second.wait(60) == 1, second.output()
        assert any("in use" in line for line in second.err), second.output()
        assert pid_of(workers.port) in workers.pids
    finally:
        second.kill()


@pytest.mark.parametrize("mode", [["--workers", "2"], ["--reload"]], ids=["workers", "reload"])
def test_a_bad_module_path_is_one_line_and_status_2_in_every_mode(tmp_path, mode):
    server = ServeProcess(["servepids.app:Nothing", "--port", "0", *mode], tmp_path / "registry")
    try:
        assert server.wait(60) == 2
        assert len(server.err) == 1 and "has no attribute 'Nothing'" in server.err[0], server.output()
    finally:
        server.kill()


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc to see the orphaned workers end")
def test_workers_of_a_killed_supervisor_drain_and_end_on_their_own(workers):
    """SIGKILL of the supervisor alone: its workers see their standard input close and drain."""
    os.kill(workers.process.pid, signal.SIGKILL)
    assert workers.wait() == -signal.SIGKILL
    for pid in workers.pids:
        wait_until(lambda pid=pid: ended(pid), timeout=20, what=f"orphaned worker {pid} ended")


def test_the_restart_delay_doubles_per_quick_death_up_to_its_cap_and_starts_over_after_a_stable_run(monkeypatch):
    from warpcall.server import supervisor as module

    class Exited:  # what _on_exit reads of a worker's process
        pid = 4321

    supervisor = module.Supervisor("servepids.app:PidModule", "127.0.0.1", 0, 2, restart_delay=0.1,
                                   max_restart_delay=1.0)
    now = [1000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: now[0])
    delays = []
    for uptime in (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, module.STABLE_AFTER + 1, 1.0):
        worker = module.Worker(1, Exited(), None)  # type: ignore[arg-type]
        worker.started = now[0] - uptime
        supervisor.workers[1] = worker
        supervisor._on_exit(worker, -9)
        delays.append(round(supervisor._restarts.pop(1) - now[0], 6))
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 0.1, 0.2]
