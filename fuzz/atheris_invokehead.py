"""atheris on the plain-Python build: the /invoke request recogniser, against llhttp (the whole input is the request).

``WARPCALL_PURE=1 python fuzz/atheris_invokehead.py -atheris_runs=100000`` (libFuzzer options after it; see fuzz/README.md).
"""

from __future__ import annotations

import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _atheris import fuzz_targets, run  # noqa: E402


def convert(data: bytes) -> tuple[Any, ...]:
    return data, 1 << 20


if __name__ == "__main__":
    run(fuzz_targets.check_invokehead, convert)
