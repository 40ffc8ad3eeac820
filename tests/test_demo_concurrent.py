"""Two ``warpcall demo`` runs at once, sharing one registry file, twenty times over.

Before each demo had a namespace of its own, both registered the 'demo' component in the one file;
each client round-robined over both servers and crashed calling into the other's as it shut down
(issue #18: 3 of 4 trials). Every run must exit 0, and its server must have answered exactly the
remote calls its own client made: the demo checks that itself (its server reports how many calls it
served when it stops) and prints it, and the runs' servers and namespaces are told apart here too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

TRIALS = 20
#: one demo with --calls 5 takes about 2 s; a run that needs this long is hanging
RUN_TIMEOUT = 120



def _start(registry_dir: Path) -> subprocess.Popen[str]:
    environment = {**os.environ, "WARPCALL_REGISTRY_DIR": str(registry_dir)}
    # a namespace set for the whole user must not merge the two runs either
    environment["WARPCALL_REGISTRY_NAMESPACE"] = "shared-by-the-user"
    return subprocess.Popen(
        [sys.executable, "-m", "warpcall", "demo", "--calls", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )


def _finish(run: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = run.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        run.kill()
        out, err = run.communicate(timeout=10)
        return -9, out, err + f"\n(killed: still running after {RUN_TIMEOUT} s)"
    return run.returncode, out, err


# 40 demo processes and their servers: about a minute on a quiet 2-core machine, minutes on a busy one
# (each run is bounded by RUN_TIMEOUT; the whole test by pytest-timeout, above the suite's 120 s)
@pytest.mark.chaos
@pytest.mark.timeout(TRIALS * 60)
def test_two_demos_at_once_each_call_only_their_own_server(tmp_path: Path) -> None:
    failures: list[str] = []
    for trial in range(TRIALS):
        runs = [_start(tmp_path), _start(tmp_path)]
        results = [_finish(run) for run in runs]
        servers: list[tuple[str, str, str]] = []
        for index, (code, out, err) in enumerate(results):
            if code != 0:
                failures.append(f"trial {trial} run {index}: exit {code}\n{out[-1500:]}\n{err[-3000:]}")
                continue
            started = re.search(r"server process (\d+) serves the 'demo' component at (\S+)", out)
            namespace = re.search(r"registry namespace (\S+)", out)
            answered = re.search(r"server process (\d+) answered all (\d+) remote calls", out)
            if not (started and namespace and answered):
                failures.append(f"trial {trial} run {index}: output lacks the server, namespace or count\n{out}")
                continue
            assert answered.group(1) == started.group(1)
            assert int(answered.group(2)) > 0
            servers.append((started.group(1), started.group(2), namespace.group(1)))
        if len(servers) == 2:
            # two servers, two addresses, two namespaces: nothing of one run was the other's
            assert servers[0][0] != servers[1][0] and servers[0][1] != servers[1][1]
            assert servers[0][2] != servers[1][2]
    assert not failures, f"{len(failures)} of {2 * TRIALS} demo runs failed:\n\n" + "\n\n".join(failures[:4])


def test_a_demo_notices_a_call_answered_by_another_server(tmp_path: Path) -> None:
    """What the demo checks can fail: a second server in the run's namespace takes some of its calls."""
    environment = {**os.environ, "WARPCALL_REGISTRY_DIR": str(tmp_path)}
    intruder = subprocess.Popen(
        [sys.executable, "-c", "from warpcall.demo.server import main; main()", "shared-by-mistake"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        assert intruder.stdout is not None
        assert intruder.stdout.readline().startswith("READY ")  # registered and serving
        code, out, err = _finish(
            subprocess.Popen(
                [sys.executable, "-c", "from warpcall.demo.run import run; raise SystemExit(run(5, 'shared-by-mistake'))"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=environment,
            )
        )
    finally:
        rest, _ = intruder.communicate(timeout=30)  # closes its stdin: it stops and reports
    assert code == 1, out + err
    served_by_intruder = int(re.search(r"SERVED (\d+)", rest).group(1))  # type: ignore[union-attr]
    assert served_by_intruder > 0
    mismatch = re.search(r"answered (\d+) remote calls, this demo made (\d+)", err)
    assert mismatch, err
    # the round robin gave the intruder what the demo's own server did not get
    assert int(mismatch.group(1)) + served_by_intruder == int(mismatch.group(2))
