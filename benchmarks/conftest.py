"""Benchmark fixtures: servers in their own processes on free 127.0.0.1 ports, always stopped."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from floors import launch, stop  # noqa: E402


def start_server(*argv: str) -> tuple[subprocess.Popen[str], str]:
    """Run ``python serve.py <argv>`` and wait (bounded) for its ``READY <url>`` line."""
    return launch("serve.py", *argv)


@pytest.fixture(scope="session")
def warpcall_server() -> Iterator[str]:
    process, url = start_server("warpcall")
    yield url
    stop(process)


@pytest.fixture(scope="session")
def aspyx_server() -> Iterator[str]:
    pytest.importorskip("aspyx_service")
    process, url = start_server("aspyx")
    yield url
    stop(process)
