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


SEEDS = [
    bytes([fuzz_targets.MARSHAL_TYPES.index(fuzz_targets.Point)]) + b'{"x":1,"y":2}',
    bytes([fuzz_targets.MARSHAL_TYPES.index(fuzz_targets.Order)])
    + b'{"id":1,"items":[{"sku":"a","qty":2,"price":"1.5"}],"when":"2024-01-01T00:00:00Z","tags":{"t":1}}',
    bytes([fuzz_targets.MARSHAL_TYPES.index(fuzz_targets.Account)])
    + b'{"owner":"o","balance":1.5,"mood":"calm","history":[{"x":1,"y":2}],"last":"2024-02-29"}',
    bytes([fuzz_targets.MARSHAL_TYPES.index(fuzz_targets.Frozen)]) + b'{"a":"AAEC","b":[1,"s"],"c":[1,2]}',
]


if __name__ == "__main__":
    run(fuzz_targets.check_marshal, convert, SEEDS)
