"""atheris on the plain-Python build: the JSON and msgpack envelope decoders (the first byte picks the format).

``WARPCALL_PURE=1 python fuzz/atheris_envelope.py -atheris_runs=100000`` (libFuzzer options after it; see fuzz/README.md).
"""

from __future__ import annotations

import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _atheris import fuzz_targets, run  # noqa: E402


def convert(data: bytes) -> tuple[Any, ...]:
    return ("json" if data[:1] < b"\x80" else "msgpack"), data[1:]


if __name__ == "__main__":
    run(fuzz_targets.check_envelope, convert)
