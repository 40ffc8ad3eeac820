"""Benchmark fixtures: servers in their own processes on free 127.0.0.1 ports, always stopped."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

READY_TIMEOUT = 30.0


def start_server(*argv: str) -> tuple[subprocess.Popen[str], str]:
    """Run ``python serve.py <argv>`` and wait (bounded) for its ``READY <url>`` line."""
    process = subprocess.Popen(
        [sys.executable, str(HERE / "serve.py"), *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=HERE,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(process.stdout.readline() if process.stdout else ""), daemon=True).start()
    try:
        line = lines.get(timeout=READY_TIMEOUT)
    except queue.Empty:
        line = ""
    if not line.startswith("READY "):
        stop_server(process)
        raise RuntimeError(f"benchmark server {argv} did not start (exit code {process.poll()})")
    return process, line.split()[1]


def stop_server(process: subprocess.Popen[str]) -> None:
    """Close stdin (the server's stop signal) and wait; kill if it hangs."""
    if process.stdin is not None:
        process.stdin.close()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@pytest.fixture(scope="session")
def warpcall_server() -> Iterator[str]:
    process, url = start_server("warpcall")
    yield url
    stop_server(process)


@pytest.fixture(scope="session")
def aspyx_server() -> Iterator[str]:
    pytest.importorskip("aspyx_service")
    process, url = start_server("aspyx")
    yield url
    stop_server(process)
