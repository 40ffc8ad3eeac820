"""Import time of ``import warpcall`` and of a process that only calls services.

    python benchmarks/import_time.py [--runs 10] [--python PATH ...]

Run from the repository root. For each interpreter (default: this one), over ``--runs`` rounds of
fresh processes (the interpreters taking turns), it prints the median of:

- ``import warpcall``: the cumulative time ``python -X importtime -c "import warpcall"`` reports
  for the ``warpcall`` line;
- ``python -c "import warpcall"`` wall time, and ``python -c "pass"`` for the interpreter alone.

For this checkout it also runs the calling process of ``tests/test_layers.py``
(``tests/layers/echo_client.py``) against its server (``tests/layers/echo_server.py``, started
once in a child process) and prints the medians of: the client's import statements, its
Environment's build (which imports what ServiceModule provides: the manager and the channels),
its first dispatch-json call (which loads what calling needs), the three together, and the
client process's wall time; and which heavy modules it loaded (none expected). The interpreters given with ``--python`` (e.g. an older checkout's
``/work/before/.venv/bin/python``) get the first two rows only: the client script uses API of
this checkout. The processes cache their bytecode in a temporary directory (PYTHONPYCACHEPREFIX),
warmed by a first run, as an installed package would. Wall clocks: run it on a quiet machine; it
reports, it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ROOT / "tests" / "layers"
TIMEOUT = 60.0

#: the measured processes cache their bytecode, as an installed package does, under a directory of their
#: own (not in the source trees); PYTHONDONTWRITEBYTECODE would make every run compile every source
ENVIRONMENT = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENVIRONMENT["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="warpcall-import-time-")


def importtime_ms(python: str) -> float:
    """The cumulative time of the ``warpcall`` line of ``-X importtime``, in ms."""
    result = subprocess.run(
        [python, "-X", "importtime", "-c", "import warpcall"], capture_output=True, text=True, timeout=TIMEOUT,
        check=True, env=ENVIRONMENT,
    )
    line = next(line for line in result.stderr.splitlines() if line.rstrip().endswith("| warpcall"))
    return int(line.split("|")[1]) / 1e3


def wall_ms(command: list[str]) -> float:
    """Wall time of a process, in ms."""
    started = time.perf_counter()
    subprocess.run(command, capture_output=True, timeout=TIMEOUT, check=True, env=ENVIRONMENT)
    return (time.perf_counter() - started) * 1e3


def median(values: list[float]) -> str:
    return f"{statistics.median(values):7.1f} ms"


def measure_imports(pythons: list[str], runs: int) -> None:
    """Round after round, each interpreter in turn, so that load on the machine hits all alike."""
    figures: dict[str, dict[str, list[float]]] = {p: {"importtime": [], "import": [], "pass": []} for p in pythons}
    for python in pythons:  # warm-up: writes the bytecode caches
        wall_ms([python, "-c", "import warpcall"])
    for _ in range(runs):
        for python in pythons:
            figures[python]["importtime"].append(importtime_ms(python))
            figures[python]["import"].append(wall_ms([python, "-c", "import warpcall"]))
            figures[python]["pass"].append(wall_ms([python, "-c", "pass"]))
    for python in pythons:
        print(f"{python}")
        print(f"  import warpcall (-X importtime)   {median(figures[python]['importtime'])}")
        print(f"  python -c 'import warpcall'       {median(figures[python]['import'])}")
        print(f"  python -c 'pass'                  {median(figures[python]['pass'])}")


def measure_client(runs: int) -> None:
    server = subprocess.Popen(
        [sys.executable, str(LAYERS / "echo_server.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env=ENVIRONMENT,
    )
    try:
        assert server.stdout is not None and server.stdin is not None
        ready = server.stdout.readline()
        if not ready.startswith("READY "):
            raise RuntimeError(f"echo server did not start: {ready!r}")
        url = ready.split()[1]
        reports, walls = [], []
        for run in range(runs + 1):  # the first run writes the client's bytecode caches and is not counted
            started = time.perf_counter()
            result = subprocess.run(
                [sys.executable, str(LAYERS / "echo_client.py"), url], capture_output=True, text=True,
                timeout=TIMEOUT, check=True, env=ENVIRONMENT,
            )
            if run:
                walls.append((time.perf_counter() - started) * 1e3)
                reports.append(json.loads(result.stdout))
        server.stdin.close()
        server.wait(TIMEOUT)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    imports = [r["imports"] * 1e3 for r in reports]
    builds = [r["build"] * 1e3 for r in reports]
    calls = [r["call"] * 1e3 for r in reports]
    print("calling process (tests/layers/echo_client.py, dispatch-json)")
    print(f"  its imports                       {median(imports)}")
    print(f"  its Environment build             {median(builds)}")
    print(f"  its first call                    {median(calls)}")
    print(f"  imports + build                   {median([i + b for i, b in zip(imports, builds)])}")
    print(f"  imports + build + first call      {median([i + b + c for i, b, c in zip(imports, builds, calls)])}")
    print(f"  process wall time                 {median(walls)}")
    print(f"  heavy modules loaded              {sorted({name for r in reports for name in r['heavy']})}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--python", action="append", default=[], help="another interpreter to measure too")
    args = parser.parse_args()
    measure_imports([*args.python, sys.executable], args.runs)
    measure_client(args.runs)


if __name__ == "__main__":
    main()
