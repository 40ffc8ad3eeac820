"""atheris on the plain-Python build: argument loading: a tree read from the input (JSON, else msgpack, else the text) as one of MARSHAL_TYPES.

``WARPCALL_PURE=1 python fuzz/atheris_marshal.py -atheris_runs=100000`` (libFuzzer options after it; see fuzz/README.md).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _atheris import fuzz_targets, run  # noqa: E402


def convert(data: bytes) -> tuple[Any, ...]:
    index = (data[0] if data else 0) % len(fuzz_targets.MARSHAL_TYPES)
    rest = data[1:]
    try:
        tree = json.loads(rest)
    except (ValueError, RecursionError):
        try:
            tree = msgpack.unpackb(rest, raw=False, strict_map_key=False)
        except Exception:  # noqa: BLE001 - any input that is not msgpack is loaded as text
            tree = rest.decode("latin-1")
    return index, tree


if __name__ == "__main__":
    run(fuzz_targets.check_marshal, convert)
