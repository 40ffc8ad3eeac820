"""The atheris harness shared by ``fuzz/atheris_<target>.py``: coverage-guided fuzzing of the plain-Python build.

atheris instruments Python bytecode, so it sees the core's branches only where the core runs as Python:
``WARPCALL_PURE=1`` (set here when the caller did not) loads the plain-Python build, and
``atheris.instrument_imports`` instruments warpcall's modules as they are imported. (Instrumenting the
compiled build would need it built with clang and libFuzzer's sanitizer flags; clang is not installed.)
Each input goes through the target's check from ``tests/fuzz/fuzz_targets.py``: the same properties as
the hypothesis runs, against llhttp for the request recogniser. A failed check is a crash to libFuzzer,
which writes the input to ``crash-<sha1>`` in the working directory.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from typing import Any

os.environ.setdefault("WARPCALL_PURE", "1")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _folder in (os.path.join(ROOT, "tests"), os.path.join(ROOT, "tests", "fuzz")):
    if _folder not in sys.path:
        sys.path.insert(0, _folder)

import atheris  # noqa: E402

with atheris.instrument_imports(include=["warpcall"]):
    import warpcall.core.envelope  # noqa: F401
    import warpcall.core.invokehead  # noqa: F401
    import warpcall.core.marshal  # noqa: F401
    import warpcall.core.transport  # noqa: F401
    import warpcall.wire.protobuf_codec  # noqa: F401

import fuzz_targets  # noqa: E402

from warpcall._compiled import SOURCES  # noqa: E402


def _instrument_pure_core() -> int:
    """Instrument the functions and methods of the core's plain-Python modules; how many.

    ``WARPCALL_PURE`` loads them through warpcall's own finder, ahead of the path finder that
    ``instrument_imports`` hooks into, so they arrive uninstrumented."""
    count = 0
    for name in SOURCES:
        module = sys.modules.get(name)
        if module is None:
            continue
        for value in list(vars(module).values()):
            owners = [value] if isinstance(value, type) and value.__module__ == name else []
            for owner, attribute, member in [(module, k, v) for k, v in vars(module).items() if v is value] + [
                (cls, k, v) for cls in owners for k, v in list(vars(cls).items())
            ]:
                function = getattr(member, "__func__", member)  # staticmethod/classmethod: the function
                if getattr(function, "__module__", None) != name or not hasattr(function, "__code__"):
                    continue
                # instrument_func gives back an instrumented copy: put it where callers look it up
                instrumented = atheris.instrument_func(function)
                if function is not member:
                    instrumented = type(member)(instrumented)
                setattr(owner, attribute, instrumented)
                count += 1
    return count


INSTRUMENTED = _instrument_pure_core()


def run(check: Callable[..., str], convert: Callable[[bytes], tuple[Any, ...]], seeds: list[bytes]) -> None:
    """Fuzz ``check(*convert(data))`` with the command line's libFuzzer options (``-atheris_runs=N``...).

    Without a corpus directory on the command line, libFuzzer starts from ``seeds`` (plain, valid
    inputs) in a temporary one: from nothing it spends most runs finding a first request line."""
    runs = 0
    argv = list(sys.argv)
    if not any(not arg.startswith("-") for arg in argv[1:]):
        corpus = tempfile.mkdtemp(prefix="warpcall-atheris-")
        for number, seed in enumerate(seeds):
            with open(os.path.join(corpus, f"seed-{number}"), "wb") as out:
                out.write(seed)
        argv.append(corpus)

    def one_input(data: bytes) -> None:
        nonlocal runs
        check(*convert(data))
        runs += 1

    print(f"atheris: {INSTRUMENTED} functions of the plain-Python core instrumented", file=sys.stderr)
    atheris.Setup(argv, one_input)
    try:
        atheris.Fuzz()
    finally:  # libFuzzer exits the process at the end of its runs: this prints before
        print(f"atheris: {runs} inputs checked on the plain-Python build", file=sys.stderr)


__all__ = ["atheris", "fuzz_targets", "run"]
