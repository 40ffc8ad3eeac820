"""``warpcall demo``: serve the demo component in a child process and call it over every channel.

Each run registers and looks up its server in a namespace of its own (``demo-<pid>-<random>``) of the
embedded registry, so runs at the same time never call each other's servers; the server reports how
many calls it answered when it stops, and the run fails unless that is exactly the calls it made.
"""

from __future__ import annotations

import asyncio
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
import uuid
from functools import partial
from typing import Any, Callable

import warpcall
from warpcall import (
    ComponentRegistry,
    EmbeddedComponentRegistry,
    ServiceCommunicationException,
    ServiceManager,
    ServiceModule,
)
from warpcall.demo import implementation  # noqa: F401 - the in-process implementation, for the local channel
from warpcall.demo.example import GreeterService, Order
from warpcall.di import Environment, create, module

CHANNELS = ("local", "dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest")
READY_TIMEOUT = 30.0
DISCOVERY_TIMEOUT = 15.0
STOP_TIMEOUT = 15.0

#: the registry namespace of the running demo (set by run before the client environment boots)
_namespace: str | None = None


@module(imports=[ServiceModule])
class DemoClientModule:
    """The calling process's module: the embedded registry in the run's namespace, and the implementation
    for local calls."""

    @create()
    def create_registry(self) -> ComponentRegistry:
        return EmbeddedComponentRegistry(namespace=_namespace)


def _median_seconds(call: Callable[[], Any], count: int) -> float:
    timings = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


async def _median_seconds_async(call: Callable[[], Any], count: int) -> float:
    timings = []
    for _ in range(count):
        start = time.perf_counter()
        await call()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def _format(seconds: float) -> str:
    return f"{seconds * 1e6:8.1f} µs"


def _start_server(namespace: str | None) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(
        # imported by name, not run as __main__, so its module class lives in the warpcall.demo package
        [sys.executable, "-c", "from warpcall.demo.server import main; main()", *([namespace] if namespace else [])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(child.stdout.readline() if child.stdout else ""), daemon=True).start()
    try:
        line = lines.get(timeout=READY_TIMEOUT)
    except queue.Empty:
        line = ""
    if not line.startswith("READY "):
        _stop_server(child)
        raise SystemExit(f"the demo server did not start within {READY_TIMEOUT:.0f} s (exit code {child.poll()})")
    return child, line.split()[1]


def _stop_server(child: subprocess.Popen[str]) -> int | None:
    """Stop the server (closing its stdin); the number of calls it reports it answered, None if it did not."""
    try:
        rest, _ = child.communicate(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate(timeout=5)
        return None
    served = [line.split()[1] for line in rest.splitlines() if line.startswith("SERVED ")]
    return int(served[0]) if served else None


def _wait_for_discovery(greeter: GreeterService) -> None:
    deadline = time.monotonic() + DISCOVERY_TIMEOUT
    while True:
        try:
            greeter.hello("registry")
            return
        except ServiceCommunicationException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def run(calls: int = 200, namespace: str | None = None) -> int:
    """Run the demo in the registry ``namespace`` (default: a new private one); returns the exit code."""
    global _namespace
    _namespace = namespace or f"demo-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    print(f"warpcall {warpcall.__version__} demo; compiled core: {'yes' if warpcall.NATIVE else 'no (pure Python)'}")
    child, url = _start_server(_namespace)
    environment = None
    made = 0  # the remote calls that returned: the server must have answered exactly these
    stopped = False
    try:
        print(f"server process {child.pid} serves the 'demo' component at {url}")
        environment = Environment(DemoClientModule)
        manager = environment.get(ServiceManager)
        registry = environment.get(ComponentRegistry)  # type: ignore[type-abstract]  # an abstract class is the lookup key (python/mypy#4717)
        print(
            f"found through {type(registry).__name__} {getattr(registry, 'path', '')}"
            f" (registry namespace {getattr(registry, 'namespace', '-')})"
        )
        order = Order(id=7, customer="ada", items=["tea", "cake", "scones"])
        print(f"{calls} calls per measurement; median latency per call\n")
        print(f"{'channel':<18} {'hello()':<14} {'echo(Order)':<12} {'price(Order)':<38} {'hello':>11} {'echo':>11} {'hello_async':>11}")
        for name in CHANNELS:
            greeter = manager.get_service(GreeterService, name)  # type: ignore[type-abstract]  # an abstract class is the lookup key (python/mypy#4717)
            if name != "local":
                _wait_for_discovery(greeter)
            greeting = greeter.hello("world")
            echoed = greeter.echo(order)
            if echoed != order:
                raise SystemExit(f"{name}: echo returned {echoed!r}, expected {order!r}")
            receipt = greeter.price(order)
            hello_time = _median_seconds(partial(greeter.hello, "world"), calls)
            echo_time = _median_seconds(partial(greeter.echo, order), calls)
            async_time = asyncio.run(_median_seconds_async(partial(greeter.hello_async, "world"), calls))
            print(
                f"{name:<18} {greeting!r:<14} {'equal' if echoed == order else 'DIFFERENT':<12} {receipt!r:<38} "
                f"{_format(hello_time)} {_format(echo_time)} {_format(async_time)}"
            )
            if name != "local":
                made += 1 + 3 + 3 * calls  # discovery's call, the three above, the three measurements
        print("\nall channels answered; stopping the server")
        environment.destroy()
        environment = None
        served = _stop_server(child)
        stopped = True
        if served != made:
            raise SystemExit(
                f"server process {child.pid} answered {served} remote calls, this demo made {made}: "
                "calls reached another server, or another client reached this one"
            )
        print(f"server process {child.pid} answered all {made} remote calls")
        return 0
    finally:
        if environment is not None:
            environment.destroy()
        if not stopped:
            _stop_server(child)
