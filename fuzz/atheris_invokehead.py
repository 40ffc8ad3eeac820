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


SEEDS = [
    b"POST /invoke HTTP/1.1\r\nhost: h\r\ncontent-type: application/json\r\ncontent-length: 29\r\n\r\n"
    b'{"method":"c:s:m","args":[1]}',
    b"POST /invoke HTTP/1.1\r\nContent-Type:application/x-protobuf\r\nX-Rpc-Method: c:s:m \r\n"
    b"Connection: keep-alive\r\ncontent-length: 2\r\n\r\n\x08\x02",
    b"POST /invoke HTTP/1.1\r\ncontent-length: 0\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
]


if __name__ == "__main__":
    run(fuzz_targets.check_invokehead, convert, SEEDS)
