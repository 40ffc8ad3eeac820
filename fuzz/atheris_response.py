"""atheris on the plain-Python build: the client's HTTP response parser, the response fed in the pieces the input says.

``WARPCALL_PURE=1 python fuzz/atheris_response.py -atheris_runs=100000`` (libFuzzer options after it; see fuzz/README.md).
"""

from __future__ import annotations

import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _atheris import atheris, fuzz_targets, run  # noqa: E402


def convert(data: bytes) -> tuple[Any, ...]:
    provider = atheris.FuzzedDataProvider(data)
    eof = provider.ConsumeBool()
    head = provider.ConsumeIntInRange(0, 9) == 0
    cuts = [provider.ConsumeIntInRange(0, 256) for _ in range(provider.ConsumeIntInRange(0, 3))]
    raw = provider.ConsumeBytes(provider.remaining_bytes())
    return raw, sorted(min(cut, len(raw)) for cut in cuts), eof, head, 64 * 2**20


SEEDS = [
    b"\x00\x01\x00" + b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
    b"\x01\x01\x01\x10" + b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2;x=1\r\nok\r\n0\r\nt: 1\r\n\r\n",
    b"\x01\x02\x00" + b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\nconnection: close\r\n\r\nbody",
]


if __name__ == "__main__":
    run(fuzz_targets.check_response, convert, SEEDS)
