"""atheris on the plain-Python build: protobuf bodies through the codecs of fuzz_targets.PROTOBUF_SIGNATURES (the first byte picks one).

``WARPCALL_PURE=1 python fuzz/atheris_protobuf.py -atheris_runs=100000`` (libFuzzer options after it; see fuzz/README.md).
"""

from __future__ import annotations

import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _atheris import fuzz_targets, run  # noqa: E402


def convert(data: bytes) -> tuple[Any, ...]:
    first = data[0] if data else 0
    return bool(first & 1), (first >> 1) % len(fuzz_targets.PROTOBUF_SIGNATURES), data[1:]


SEEDS = [
    b"\x01\x08\x05\x12\x02hi\x1a\x04\x08\x02\x10\x04\x21\x00\x00\x00\x00\x00\x00\xf0\x3f\x28\x01",
    b"\x00\x0a\x0a\x0a\x01n\x12\x04\x08\x02\x10\x04",
    b"\x03\x0a\x06\x0a\x01n\x12\x00",
    b"\x05\x0a\x04\x08\x02\x12\x00\x12\x01x",
]


if __name__ == "__main__":
    run(fuzz_targets.check_protobuf, convert, SEEDS)
