"""Print the remote-call table of one benchmark run as ratios: each channel against the floor and against aspyx.

    pytest benchmarks/test_bench_remote.py benchmarks/test_bench_http.py --benchmark-only \\
        --benchmark-json=run.json
    python benchmarks/ratios.py run.json

Floors, from the same run: sync calls against ``test_raw_socket_http`` (a blocking socket),
async calls against ``test_raw_socket_http_async`` (an asyncio stream, entered the same way),
both POSTing the JSON envelope of ``data(Data)`` to a bare uvicorn echo. "× floor" is the
channel's median over the floor's (lower is better; the target is 1.3 at most); "× aspyx" is
aspyx-service's median on the same channel over warpcall's (higher is better; the target is 3
at least). Rows and columns without data in the file are left out.
"""

from __future__ import annotations

import json
import sys
from typing import Any

CHANNELS = ["dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest"]
PAYLOADS = ["hello", "data", "pydantic"]
FLOORS = {"sync": "test_raw_socket_http", "async": "test_raw_socket_http_async"}


def medians(path: str) -> dict[str, float]:
    """Test name (without the module) -> median in µs."""
    with open(path) as file:
        run: dict[str, Any] = json.load(file)
    return {bench["name"]: bench["stats"]["median"] * 1e6 for bench in run["benchmarks"]}


def table(times: dict[str, float]) -> list[str]:
    lines = ["| call | floor | " + " | ".join(CHANNELS) + " |", "| --- " * (len(CHANNELS) + 2) + "|"]
    for mode in ("sync", "async"):
        floor = times.get(FLOORS[mode])
        for payload in PAYLOADS:
            cells = []
            for channel in CHANNELS:
                mine = times.get(f"test_{mode}_call[warpcall-{channel}-{payload}]")
                if mine is None:
                    cells.append("—")
                    continue
                cell = f"{mine:.0f} µs"
                if floor is not None and channel != "rest":
                    cell += f", {mine / floor:.2f}× floor"
                theirs = times.get(f"test_{mode}_call[aspyx-{channel}-{payload}]")
                if theirs is not None:
                    cell += f", {theirs / mine:.1f}× aspyx"
                cells.append(cell)
            if any(cell != "—" for cell in cells):
                floor_cell = f"{floor:.0f} µs" if floor is not None else "—"
                lines.append(f"| `{payload}`, {mode} | {floor_cell} | " + " | ".join(cells) + " |")
    cells = []
    for channel in CHANNELS:
        mine = times.get(f"test_throughput_8_threads[warpcall-{channel}]")
        theirs = times.get(f"test_throughput_8_threads[aspyx-{channel}]")
        cell = "—" if mine is None else f"{mine / 1e3:.0f} ms"
        if mine is not None and theirs is not None:
            cell += f", {theirs / mine:.1f}× aspyx"
        cells.append(cell)
    if any(cell != "—" for cell in cells):
        lines.append("| 8 threads × 50 `data()` | — | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    print("\n".join(table(medians(argv[1]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
