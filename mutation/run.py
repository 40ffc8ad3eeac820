"""Mutation testing of one area of warpcall with cosmic-ray, on a sampled set of mutants.

Run it with a Python that has cosmic-ray (kept out of the project's venv: its dependencies are
not warpcall's)::

    python3 -m venv /tmp/cr && /tmp/cr/bin/pip install cosmic-ray==8.7.0
    /tmp/cr/bin/python mutation/run.py --area registries --sample 175 --seed 19

What it does, in ``--workdir`` (default ``/tmp/warpcall-mutation``, outside the repository):

1. copies the working tree (no ``.git``, venvs, build output, ``*.so``, caches) to
   ``<workdir>/<area>/copy``; mutants are written there only, never into the repository;
2. ``cosmic-ray init`` over the area's modules (``mutation/areas.toml``), then samples
   ``--sample`` work items with ``random.Random(seed)`` from all of them (sorted by module,
   operator and occurrence first, so a seed picks the same mutants of the same sources) and marks
   every other one skipped, which is how cosmic-ray's own filters leave work out;
3. runs the area's tests once on the unmutated copy (they must pass) and checks that the copy's
   ``warpcall`` sources are the ones imported;
4. ``cosmic-ray exec``: one mutant at a time (the local distributor), the area's tests with
   ``-x -p no:cacheprovider``, ``WARPCALL_PURE=1`` (the compiled modules run from the very
   Python source that is mutated; no extension is copied that could shadow it) and the area's
   timeout (cosmic-ray counts a run that times out as killed; the summary lists those apart);
5. writes ``<workdir>/<area>/report.md`` and ``report.json`` (``mutation/summary.py``).

An interrupted run resumes where it stopped (``--resume``, the default when a session exists;
the copy is refreshed first). ``--rerun-survivors`` refreshes the copy (new tests, fixed code)
and runs the survivors again. ``--report`` only writes the summary.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
AREAS = HERE / "areas.toml"
DEFAULT_WORKDIR = Path(os.environ.get("WARPCALL_MUTATION_DIR", "/tmp/warpcall-mutation"))
#: never copied: VCS data, environments, build output and every compiled extension
COPY_EXCLUDES = (
    ".git",
    ".venv*",
    "build",
    "dist",
    "*.so",
    "*.pyd",
    "__pycache__",
    ".pytest_cache",
    ".hypothesis",
    ".mypy_cache",
    ".ruff_cache",
    "*.egg-info",
    "wheelhouse",
    ".benchmarks",
)


def load_areas() -> dict[str, dict]:
    """The areas of ``mutation/areas.toml``."""
    with AREAS.open("rb") as handle:
        return tomllib.load(handle)


def default_test_python() -> str:
    """The project's venv Python (it has pytest and warpcall's dependencies), else this one."""
    candidate = REPO / ".venv" / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


def area_dirs(workdir: Path, area: str) -> tuple[Path, Path, Path]:
    """(area directory, the copy, the session database)."""
    base = workdir / area
    return base, base / "copy", base / "session.sqlite"


def refresh_copy(copy: Path) -> None:
    """Make ``copy`` the repository's working tree again (this also undoes a mutant a killed run left).

    The area's modules are then put back as they were sampled (``<area>/sampled/``, saved at
    ``init``): a session's work items name mutants by their occurrence in those sources, so a rerun
    meets the same mutants with the tests of today.
    """
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(REPO, copy, symlinks=True, ignore=shutil.ignore_patterns(*COPY_EXCLUDES, "mutation"))
    sampled = copy.parent / "sampled"
    if sampled.exists():
        for source in sampled.rglob("*.py"):
            shutil.copyfile(source, copy / source.relative_to(sampled))
    # checked-hash pycs: a module's cached code is used while its source is unchanged (by content,
    # not mtime), so each run recompiles the mutated module alone (the runs never write pycs)
    subprocess.run(
        [
            default_test_python(),
            "-m",
            "compileall",
            "-q",
            "--invalidation-mode",
            "checked-hash",
            str(copy / "src"),
            str(copy / "tests"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    leftovers = list((copy / "src").rglob("*.so"))
    if leftovers:  # an extension would shadow the mutated source
        raise SystemExit(f"compiled extensions in the copy: {leftovers}")


def test_env(copy: Path, spec: dict) -> dict[str, str]:
    """The environment of every test run: the copy's sources first on the path, the pure build."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(copy / "src")
    env["WARPCALL_PURE"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # pytest's plugin entry points (schemathesis, hypothesis, benchmark...) cost ~2 s of imports per
    # run, more than most tests here; only the plugins named by the command are loaded
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env.update({key: str(value) for key, value in spec.get("env", {}).items()})
    return env


def pytest_args(python: str, spec: dict, tests: list[str]) -> list[str]:
    """The pytest command line of one run over ``tests``."""
    plugins = [arg for name in ["pytest_timeout", *spec.get("plugins", [])] for arg in ("-p", name)]
    return [
        python,
        "-m",
        "pytest",
        "-x",
        "-q",
        "-p",
        "no:cacheprovider",
        *plugins,
        "--no-header",
        f"--timeout={int(spec['timeout'])}",
        *tests,
    ]


def test_command(python: str, spec: dict) -> str:
    """The baseline's pytest command: every test of the area."""
    return " ".join(pytest_args(python, spec, spec["tests"]))


def mutant_command(area: str, workdir: Path, python: str) -> str:
    """The command cosmic-ray runs per mutant: this driver picks the tests of the mutated module."""
    return " ".join(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--area",
            area,
            "--workdir",
            str(workdir),
            "--python",
            python,
            "--run-tests",
        ]
    )


def fingerprint(copy: Path, spec: dict) -> dict[str, str]:
    """The content hash of each module of the area in the copy."""
    return {module: hashlib.sha256((copy / module).read_bytes()).hexdigest() for module in spec["modules"]}


def run_tests_for_mutant(base: Path, copy: Path, spec: dict, python: str) -> int:
    """Run the tests of the module that differs from its pristine copy (all the area's tests if none does).

    ``module_tests`` in the area narrows a module's mutants to the tests that exercise it, so that a
    run takes seconds; the area's ``tests`` cover every module.
    """
    pristine = json.loads((base / "pristine.json").read_text())
    changed = [module for module, digest in fingerprint(copy, spec).items() if pristine[module] != digest]
    tests = spec["tests"]
    if len(changed) == 1:
        tests = spec.get("module_tests", {}).get(changed[0], tests)
    return subprocess.run(pytest_args(python, spec, tests), cwd=copy).returncode


def write_config(base: Path, copy: Path, spec: dict, command: str) -> Path:
    """The cosmic-ray configuration of the area (module paths inside the copy)."""
    modules = ", ".join(f'"{copy / module}"' for module in spec["modules"])
    config = base / "cosmic-ray.toml"
    config.write_text(
        "[cosmic-ray]\n"
        f"module-path = [{modules}]\n"
        f"timeout = {float(spec['timeout'])}\n"
        "excluded-modules = []\n"
        f'test-command = "{command}"\n\n'
        "[cosmic-ray.distributor]\n"
        'name = "local"\n'
    )
    return config


def cosmic_ray(*args: str, cwd: Path, env: dict[str, str] | None = None) -> None:
    """Run the cosmic-ray command line of this Python."""
    subprocess.run([sys.executable, "-m", "cosmic_ray.cli", *args], cwd=cwd, env=env, check=True)


def execute(config: Path, session: Path, copy: Path, spec: dict, budget: float | None) -> None:
    """``cosmic-ray exec``; with a budget (seconds), stopped when it is spent.

    What ran by then stays in the session (each result is stored as it comes); the rest stays
    pending, and the next run of the area resumes it. The run under way is stopped with its test
    processes, found by their working directory (the copy), so no mutant outlives the stop.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "cosmic_ray.cli", "exec", str(config), str(session)],
        cwd=copy,
        env=test_env(copy, spec),
    )
    try:
        process.wait(timeout=budget)
    except subprocess.TimeoutExpired:
        print(f"budget of {budget:.0f} s spent: stopping (the rest stays pending)", flush=True)
        process.terminate()
        process.wait(timeout=30)
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if Path(os.readlink(entry / "cwd")).is_relative_to(copy):
                        os.kill(int(entry.name), signal.SIGKILL)
                except OSError:
                    continue
    if process.returncode not in (0, -signal.SIGTERM):
        raise SystemExit(f"cosmic-ray exec failed ({process.returncode})")


def sample(session: Path, copy: Path, spec: dict, size: int, seed: int) -> tuple[int, int]:
    """Keep ``size`` work items picked with ``random.Random(seed)``; mark the others skipped.

    Returns (eligible mutants, sampled).
    """
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    patterns = {str(copy / module): re.compile(regex) for module, regex in spec.get("lines", {}).items()}
    sources: dict[str, list[str]] = {}
    with use_db(str(session), WorkDB.Mode.open) as db:
        items = list(db.work_items)
        eligible = []
        for item in items:
            (mutation,) = item.mutations
            path = str(mutation.module_path)
            pattern = patterns.get(path)
            if pattern is not None:
                lines = sources.setdefault(path, Path(path).read_text().splitlines())
                if not pattern.search(lines[mutation.start_pos[0] - 1]):
                    continue
            eligible.append(item)
        eligible.sort(
            key=lambda item: (
                str(item.mutations[0].module_path),
                item.mutations[0].operator_name,
                item.mutations[0].occurrence,
            )
        )
        chosen = random.Random(seed).sample(eligible, min(size, len(eligible)))
        keep = {item.job_id for item in chosen}
        skipped = [item.job_id for item in items if item.job_id not in keep]
        db.set_multiple_results(skipped, WorkResult(worker_outcome=WorkerOutcome.SKIPPED))
    return len(eligible), len(chosen)


def baseline(copy: Path, spec: dict, python: str) -> float:
    """Run the tests on the unmutated copy; they must pass and import the copy's sources."""
    env = test_env(copy, spec)
    probe = subprocess.run(
        [
            python,
            "-c",
            "import importlib,sys\nfor m in sys.argv[1:]: print(importlib.import_module(m).__file__)",
            *[module[len("src/") : -len(".py")].replace("/", ".") for module in spec["modules"]],
        ],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    for path in probe.stdout.split():
        if not path.startswith(str(copy / "src")) or not path.endswith(".py"):
            raise SystemExit(f"the tests would import {path}, not the copy's source")
    selections = []
    for module in spec["modules"]:
        tests = spec.get("module_tests", {}).get(module, spec["tests"])
        if tests not in selections:
            selections.append(tests)
    elapsed = 0.0
    for tests in selections:  # every selection a mutant may meet must pass unmutated
        started = time.monotonic()
        done = subprocess.run(
            pytest_args(python, spec, tests), cwd=copy, env=env, capture_output=True, text=True
        )
        elapsed += time.monotonic() - started
        if done.returncode != 0:
            raise SystemExit(
                f"{tests} fail on the unmutated copy:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
            )
    print(
        f"baseline: {len(selections)} test selections pass on the unmutated copy in {elapsed:.1f} s",
        flush=True,
    )
    return elapsed


def reset_survivors(area: str, base: Path, copy: Path, session: Path) -> int:
    """Forget the results of the survivors (and incompetent runs) not listed as equivalent, so that
    ``exec`` runs them again."""
    import sqlite3

    from summary import collect

    again = [m["job_id"] for m in collect(area, base, copy, session)["survivors"] if m["status"] != "pending"]
    with sqlite3.connect(session) as connection:
        connection.executemany("DELETE FROM work_results WHERE job_id = ?", [(job,) for job in again])
    return len(again)


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    areas = load_areas()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--area", required=True, choices=sorted(areas))
    parser.add_argument("--sample", type=int, default=175, help="mutants sampled (default 175)")
    parser.add_argument("--seed", type=int, default=19, help="seed of the sample (default 19)")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=DEFAULT_WORKDIR,
        help=f"copies, sessions and reports (default {DEFAULT_WORKDIR}; outside the repo)",
    )
    parser.add_argument("--python", default=default_test_python(), help="the Python that runs the tests")
    parser.add_argument("--fresh", action="store_true", help="drop an existing session and sample again")
    parser.add_argument(
        "--rerun-survivors", action="store_true", help="run the survivors again on a fresh copy"
    )
    parser.add_argument(
        "--budget", type=float, default=None, help="seconds the mutant runs may take; the rest stays pending"
    )
    parser.add_argument("--report", action="store_true", help="only write the report of the session")
    parser.add_argument(
        "--run-tests", action="store_true", help=argparse.SUPPRESS
    )  # cosmic-ray's per-mutant call
    options = parser.parse_args(argv)

    spec = areas[options.area]
    base, copy, session = area_dirs(options.workdir, options.area)
    if options.run_tests:  # the selection the session was started with, whatever areas.toml says since
        frozen = base / "spec.json"
        return run_tests_for_mutant(
            base, copy, json.loads(frozen.read_text()) if frozen.exists() else spec, options.python
        )
    from summary import write_report  # mutation/summary.py, beside this file

    if options.report:
        write_report(options.area, spec, base, copy, session)
        return 0
    if options.fresh and base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True, exist_ok=True)
    refresh_copy(copy)
    (base / "pristine.json").write_text(json.dumps(fingerprint(copy, spec)))
    (base / "spec.json").write_text(json.dumps(spec))
    config = write_config(base, copy, spec, mutant_command(options.area, options.workdir, options.python))
    if not session.exists():
        for module in spec["modules"]:  # the sources as sampled (see refresh_copy)
            (base / "sampled" / module).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(copy / module, base / "sampled" / module)
        cosmic_ray("init", str(config), str(session), cwd=copy)
        eligible, chosen = sample(session, copy, spec, options.sample, options.seed)
        (base / "sample.txt").write_text(
            f"seed={options.seed} sample={options.sample} eligible={eligible} "
            f"sampled={chosen} head={git_head()}\n"
        )
        print(f"{options.area}: sampled {chosen} of {eligible} mutants (seed {options.seed})", flush=True)
    elif options.rerun_survivors:
        print(
            f"{options.area}: {reset_survivors(options.area, base, copy, session)} survivors to run again",
            flush=True,
        )
    baseline(copy, spec, options.python)
    execute(config, session, copy, spec, options.budget)
    refresh_copy(copy)  # no mutant left behind, whatever happened
    write_report(options.area, spec, base, copy, session)
    return 0


def git_head() -> str:
    """The commit the sources were copied at (plus a mark when the tree had local changes)."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "src", "tests"], cwd=REPO, capture_output=True, text=True
    ).stdout
    return head.strip() + ("+local-changes" if dirty.strip() else "")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    raise SystemExit(main())
