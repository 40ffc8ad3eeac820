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


SEEDS = [
    b"\x00" + b'{"method":"c:s:m","args":[1,"x",{"a":[null,true,1.5]}]}',
    b"\x00" + b'{"result":[1,2],"exception":null}',
    b"\x00" + b'{"result":null,"exception":{"type":"E","message":"m"}}',
    b"\x80" + bytes.fromhex("82a66d6574686f64a5633a733a6da46172677391a178"),
    b"\x80" + bytes.fromhex("82a6726573756c7401a9657863657074696f6ec0"),
]


if __name__ == "__main__":
    run(fuzz_targets.check_envelope, convert, SEEDS)
