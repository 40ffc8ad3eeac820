"""Instructions per operation of the in-process core, counted by callgrind (not timed).

    python -m benchmarks.instructions [SCENARIO ...] [--python PY ...] [--calls N] [--case TEXT]

A scenario is ``benchmarks/instructions/<name>.py`` with ``SETUP`` (code run once) and ``CASES``
(case name -> one statement). Under ``valgrind --tool=callgrind --instr-atstart=no`` the runner
imports and sets up at near native speed, then switches counting on only around a loop that runs
each statement N times (through a tiny C helper that issues callgrind's client requests), so the
figure is the instructions of one operation plus a loop step, whatever the machine's load.
Give ``--python`` two interpreters (e.g. an install of an earlier commit) to compare builds; each
``SETUP`` imports from ``warpcall.core`` and falls back to the earlier ``warpcall._native`` layout.
Needs valgrind and its headers (Debian: ``apt-get install valgrind``) and a C compiler.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
CONTROL_C = r"""
#include <valgrind/callgrind.h>
void counting_on(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void counting_off(const char *label) { CALLGRIND_STOP_INSTRUMENTATION; CALLGRIND_DUMP_STATS_AT(label); }
"""
RUNNER = """
import ctypes, sys
_control = ctypes.CDLL(sys.argv[1])
_calls = int(sys.argv[2])
{setup}
{functions}
for _label, _case in _CASES:
    _case(50)  # warm caches, plans and specialisation outside the count
    _control.counting_on()
    _case(_calls)
    _control.counting_off(_label.encode())
"""


def control_library(workdir: Path) -> Path:
    source, library = workdir / "control.c", workdir / "libcontrol.so"
    source.write_text(CONTROL_C)
    subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", str(library), str(source)], check=True, timeout=120)
    return library


def script_for(setup: str, cases: dict[str, str]) -> str:
    functions = []
    for index, statement in enumerate(cases.values()):
        functions.append(f"def _case_{index}(_n):\n    for _ in range(_n):\n        {statement}\n")
    table = ", ".join(f"({label!r}, _case_{i})" for i, label in enumerate(cases))
    return RUNNER.format(setup=setup, functions="\n".join(functions) + f"\n_CASES = [{table}]\n")


def count(python: str, script: str, calls: int, workdir: Path) -> dict[str, float]:
    """Instructions per call of every case of ``script``, run by ``python`` under callgrind."""
    library = control_library(workdir)
    prefix = workdir / "callgrind.out"
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={prefix}",
         python, "-c", script, str(library), str(calls)],
        capture_output=True, text=True, timeout=1800,
        # string hashes decide dict layouts and so the instructions of a lookup: fixed, runs compare
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    if result.returncode != 0:
        raise RuntimeError(f"{python} failed:\n{result.stderr[-3000:]}")
    figures = {}
    for dump in sorted(workdir.glob("callgrind.out.*")):
        text = dump.read_text(errors="replace")
        label = re.search(r"^desc: Trigger: Client Request: (.*)$", text, re.M)
        total = re.search(r"^totals:\s*(\d+)", text, re.M)
        if label and total:
            figures[label.group(1)] = int(total.group(1)) / calls
        dump.unlink()
    return figures


def main() -> None:
    scenarios = sorted(p.stem for p in HERE.glob("*.py") if not p.stem.startswith("_"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", nargs="*", help=f"any of {', '.join(scenarios)} (default: all)")
    parser.add_argument("--python", action="append", help="interpreter(s) to compare (default: this one)")
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--case", help="only cases whose name contains this")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    pythons = args.python or [sys.executable]
    names = [str(Path(p).parent.parent.parent.name) if p.endswith("bin/python") else p for p in pythons]
    print(f"{'case':44}" + "".join(f"{n:>14}" for n in names) + ("     ratio" if len(pythons) == 2 else ""))
    results: dict[str, list[float]] = {}
    for name in args.scenario or scenarios:
        if name not in scenarios:
            parser.error(f"no scenario {name!r}; there are {', '.join(scenarios)}")
        scenario = importlib.import_module(f"benchmarks.instructions.{name}")
        cases = {k: v for k, v in scenario.CASES.items() if not args.case or args.case in k}
        script = script_for(scenario.SETUP, cases)
        per_python = []
        for python in pythons:
            with tempfile.TemporaryDirectory() as workdir:
                per_python.append(count(python, script, args.calls, Path(workdir)))
        for case in cases:
            figures = [p.get(case, float("nan")) for p in per_python]
            results[f"{name}:{case}"] = figures
            ratio = f"{figures[1] / figures[0]:10.3f}" if len(figures) == 2 and figures[0] else ""
            print(f"{name + ':' + case:44}" + "".join(f"{f:14.1f}" for f in figures) + ratio, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"pythons": pythons, "per_call": results}, indent=1))


if __name__ == "__main__":
    main()
