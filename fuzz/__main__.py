"""``python -m fuzz [--examples N] [--seed S] [target ...]``: every target (or those named) for N inputs.

Prints, per target, the inputs checked, the builds they went through, the time taken and how many came
out each way (a check's label), and at the end every failure with hypothesis' shrunk falsifying input.
Exits 1 when any target failed.
"""

from __future__ import annotations

import argparse
import logging
import random
import re
import sys
import time
import traceback
from collections import Counter
from typing import Any

from fuzz import _paths  # noqa: F401 - puts tests/fuzz on sys.path

# isort: split
import fuzz_targets
from hypothesis import HealthCheck, Phase, given, seed, settings

from warpcall._compiled import PURE_REQUESTED

#: random bytes per input in the default mode: hypothesis reads the input's choices from them
BUFFER = 4096


def run_target(
    target: fuzz_targets.Target, examples: int, chosen_seed: int, port: int | None, stop: bool
) -> tuple[Counter[str], str | None]:
    """Run one target for ``examples`` generated inputs; its outcome counts and its failures, if any.

    By default each input is drawn by the target's strategy from seeded random bytes
    (``fuzz_one_input``, hypothesis' entry point for fuzzers: no search engine, ten times the pace at
    this count), every failing input is counted by the kind of its failure and the run goes on,
    keeping the first input of each kind. ``stop``: hypothesis' own engine instead, which stops at
    the first failure and shrinks it."""
    counts: Counter[str] = Counter()
    first_inputs: dict[str, str] = {}
    started = time.monotonic()
    extra: dict[str, Any] = {"port": port} if target.name == "server" else {}

    @seed(chosen_seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(target.inputs())
    def fuzz_one(value: Any) -> None:
        args = value if isinstance(value, tuple) else (value,)
        done = sum(counts.values())
        if done and done % 10_000 == 0:  # progress, so that a long run shows its pace
            print(f"    ... {target.name}: {done} inputs, {time.monotonic() - started:.0f} s", flush=True)
        if stop:
            counts[target.check(*args, **extra)] += 1
            return
        try:
            counts[target.check(*args, **extra)] += 1
        except Exception as exc:  # noqa: BLE001 - counted by kind, the first input of each kept
            # grouped by the message up to where it starts quoting the input
            text = re.split(r"[(\[{'\"]", str(exc).split("\n")[0])[0][:90] if str(exc) else ""
            kind = f"FAILED {type(exc).__name__}: {text}"
            counts[kind] += 1
            if kind not in first_inputs:
                first_inputs[kind] = f"{kind}\n    first input: {fuzz_targets._short(value, 400)}"

    if stop:
        try:
            fuzz_one()
        except Exception:  # a property failed (hypothesis raises it after shrinking): report, go on
            return counts, traceback.format_exc(limit=-4)
    else:
        source = random.Random(chosen_seed)
        # bounded: a buffer the strategy cannot finish a draw from is skipped, not counted
        for _ in range(examples * 3):
            if sum(counts.values()) >= examples:
                break
            fuzz_one.hypothesis.fuzz_one_input(source.randbytes(BUFFER))
    return counts, "\n".join(first_inputs.values()) or None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.split("\n")[0])
    parser.add_argument("targets", nargs="*", help=f"targets to run (default all): {', '.join(fuzz_targets.TARGETS)}")
    parser.add_argument("--examples", type=int, default=100_000, help="generated inputs per target (default 100000)")
    parser.add_argument("--seed", type=int, default=14, help="hypothesis seed (default 14: runs are reproducible)")
    parser.add_argument("--stop", action="store_true",
                        help="hypothesis' engine: stop a target at its first failure and shrink it "
                        "(default: inputs from seeded random bytes, failures counted and the run goes on)")
    options = parser.parse_args(argv)
    unknown = [name for name in options.targets if name not in fuzz_targets.TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {unknown}; known: {list(fuzz_targets.TARGETS)}")
    names = options.targets or list(fuzz_targets.TARGETS)
    builds = "plain Python only (WARPCALL_PURE=1)" if PURE_REQUESTED else "compiled and plain Python, compared"
    print(f"fuzzing {len(names)} target(s), {options.examples} inputs each, seed {options.seed}; builds: {builds}")
    logging.getLogger("uvicorn.error").setLevel(logging.ERROR)  # "Invalid HTTP request received", often
    server = fuzz_targets.start_fuzz_server() if "server" in names else None
    failures: dict[str, str] = {}
    try:
        for name in names:
            target = fuzz_targets.TARGETS[name]
            started = time.monotonic()
            counts, failure = run_target(
                target, options.examples, options.seed, server.port if server else None, options.stop
            )
            elapsed = time.monotonic() - started
            total = sum(counts.values())
            status = "FAILED" if failure else "ok"
            print(f"\n[{status}] {name}: {total} inputs checked in {elapsed:.1f} s ({target.doc})", flush=True)
            for outcome_label, count in counts.most_common():
                print(f"    {count:>9}  {outcome_label}")
            if failure:
                failures[name] = failure
    finally:
        if server is not None:
            server.environment.destroy()
    for name, failure in failures.items():
        print(f"\n===== {name} failed =====\n{failure}", file=sys.stderr)
    print(f"\n{len(names) - len(failures)} of {len(names)} target(s) passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
