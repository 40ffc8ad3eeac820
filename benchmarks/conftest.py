"""Benchmark fixtures: servers in their own processes on free 127.0.0.1 ports, always stopped."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from bench_api import BenchComponent  # noqa: E402
from floors import launch, pin_client, stop  # noqa: E402

from warpcall import (  # noqa: E402
    ChannelAddress,
    ComponentRegistry,
    LocalComponentRegistry,
    ServiceManager,
    ServiceModule,
)
from warpcall.di import Environment, create, module  # noqa: E402
from warpcall.service import component_descriptor  # noqa: E402

pin_client()

#: every channel the warpcall benchmark server exposes
WARPCALL_CHANNELS = ["dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest"]


@module(imports=[ServiceModule])
class BenchClientModule:
    """The calling side of the remote benchmarks: a registry that knows the benchmark server."""

    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()


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


@pytest.fixture(scope="session")
def warpcall_manager(warpcall_server: str) -> Iterator[ServiceManager]:
    environment = Environment(BenchClientModule)
    environment.get(ComponentRegistry).register(
        component_descriptor(BenchComponent), [ChannelAddress(name, warpcall_server) for name in WARPCALL_CHANNELS]
    )
    yield environment.get(ServiceManager)
    environment.destroy()


@pytest.fixture(scope="session")
def aspyx_manager(aspyx_server: str) -> Iterator[Any]:
    import aspyx_bench

    environment, manager = aspyx_bench.client(aspyx_server)
    yield manager
    environment.destroy()


@pytest.fixture(scope="session")
def calls_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for every async benchmark call: aspyx-service's async clients break once their first loop closes."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()
