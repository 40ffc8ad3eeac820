"""Print each wheel's sizes and fail when one is over the bounds (used by .ci/run and the wheels workflow).

Usage: python .ci/wheel_size.py WHEEL [WHEEL ...]

The compiled modules are built without debug info (setup.py: -g0 unless WARPCALL_DEBUG=1). Measured on
a cp311 manylinux x86_64 wheel: its compiled modules total 1.6 MB unpacked and the wheel file is 0.8 MB;
built with debug info, as Python's own CFLAGS ask (-g), they were 10.2 MB and 4.0 MB. The bounds leave
room for the core to grow, not for debug info.
"""

from __future__ import annotations

import os
import sys
import zipfile

MAX_WHEEL_BYTES = 1_500_000
MAX_COMPILED_BYTES = 3_000_000
COMPILED_SUFFIXES = (".so", ".pyd")


def check(path: str) -> list[str]:
    """Print the sizes of the wheel at ``path``; return what is wrong with it (nothing when within bounds)."""
    size = os.path.getsize(path)
    with zipfile.ZipFile(path) as wheel:
        entries = wheel.infolist()
    compiled = sum(e.file_size for e in entries if e.filename.endswith(COMPILED_SUFFIXES))
    unpacked = sum(e.file_size for e in entries)
    print(
        f"wheel size: {os.path.basename(path)}\n"
        f"  file {size:,} bytes (bound {MAX_WHEEL_BYTES:,}); compiled modules unpacked {compiled:,} bytes "
        f"(bound {MAX_COMPILED_BYTES:,}); everything unpacked {unpacked:,} bytes"
    )
    problems = []
    if compiled == 0:
        problems.append("it holds no compiled module")
    if size > MAX_WHEEL_BYTES or compiled > MAX_COMPILED_BYTES:
        problems.append("over the bound: do the compiled modules carry debug info (-g0 missing, WARPCALL_DEBUG set)?")
    for problem in problems:
        print(f"  {problem}")
    return problems


def main(paths: list[str]) -> int:
    if not paths:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    bad = [path for path in paths if check(path)]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
