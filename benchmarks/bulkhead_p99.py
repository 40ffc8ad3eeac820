"""Issue 16: a fast method's p99 beside a slow sync method, unloaded and while 4 threads call the slow one.

A real server on 127.0.0.1 (default ``ServerLimits``) serves ``slow()`` (a sync method sleeping 2 s)
and ``fast()``, over ``/invoke`` and REST; the fast method is sync (``@blocking``: through the worker
pool, beside the slow calls) or async. For each path it measures the fast call's p50/p99 alone, then
again while 4 threads keep calling ``slow()`` on the same server (the loaded figures are taken only
while all 4 slow calls are in flight), and prints the difference of the p99s. Run:

    python -m benchmarks.bulkhead_p99 [--calls 400] [--slow-threads 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from abc import abstractmethod

import httpx
from fastapi import FastAPI

from warpcall import (
    AbstractComponent,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    LocalComponentRegistry,
    Service,
    ServiceManager,
    ServiceModule,
    blocking,
    component,
    get,
    implementation,
    rest,
    service,
)
from warpcall.di import create, module

SLOW_SECONDS = 2.0


@service(name="p99")
@rest("/p99")
class P99Service(Service):
    @get("/slow")
    @abstractmethod
    def slow(self) -> str: ...

    @get("/fast")
    @abstractmethod
    def fast(self) -> str: ...

    @get("/fast-async")
    @abstractmethod
    async def fast_async(self) -> str: ...


@component(name="bench", services=[P99Service])
class P99Component(Component):
    pass


@implementation()
class P99ServiceImpl(P99Service):
    @blocking
    def slow(self) -> str:
        time.sleep(SLOW_SECONDS)
        return "slow"

    @blocking
    def fast(self) -> str:
        return "fast"

    async def fast_async(self) -> str:
        return "fast"


@implementation()
class P99ComponentImpl(AbstractComponent, P99Component):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://127.0.0.1:{port}")]


@module(imports=[ServiceModule])
class P99Module:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry)


def _invoke(method: str) -> tuple[str, str, bytes]:
    return "POST", "/invoke", json.dumps({"method": f"bench:p99:{method}", "args": []}).encode()


PATHS = {
    "dispatch sync": _invoke("fast"),
    "dispatch async": _invoke("fast_async"),
    "rest sync": ("GET", "/p99/fast", b""),
    "rest async": ("GET", "/p99/fast-async", b""),
}
SLOW = {"dispatch": _invoke("slow"), "rest": ("GET", "/p99/slow", b"")}


def timings(client: httpx.Client, url: str, call: tuple[str, str, bytes], count: int,
            while_true: threading.Event | None = None) -> list[float]:
    method, path, body = call
    headers = {"content-type": "application/json"}
    out: list[float] = []
    for _ in range(count * 3):  # bounded: loaded samples are kept only while every slow call is in flight
        if len(out) >= count:
            break
        started = time.perf_counter()
        response = client.request(method, url + path, content=body or None, headers=headers)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.text
        if while_true is None or while_true.is_set():
            out.append(elapsed)
    return out


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1e3 if len(values) >= 2 else float("nan")


def beside_slow_calls(
    url: str, client: httpx.Client, call: tuple[str, str, bytes], slow: tuple[str, str, bytes],
    options: argparse.Namespace,
) -> list[float]:
    """The fast call's timings taken while ``options.slow_threads`` threads each have a slow call in flight."""
    in_flight = [0]
    lock = threading.Lock()
    loaded = threading.Event()
    stop = threading.Event()

    def caller() -> None:
        with httpx.Client(timeout=30) as own:
            for _ in range(100):  # bounded
                if stop.is_set():
                    return
                with lock:
                    in_flight[0] += 1
                    if in_flight[0] == options.slow_threads:
                        loaded.set()
                method, path, body = slow
                own.request(method, url + path, content=body or None, headers={"content-type": "application/json"})
                with lock:
                    in_flight[0] -= 1
                    loaded.clear()

    threads = [threading.Thread(target=caller) for _ in range(options.slow_threads)]
    for thread in threads:
        thread.start()
    loaded.wait(10)
    try:
        return timings(client, url, call, options.calls, loaded)
    finally:
        stop.set()
        for thread in threads:
            thread.join(SLOW_SECONDS * 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--slow-threads", type=int, default=4)
    options = parser.parse_args()
    environment = FastAPIServer.boot(P99Module, host="127.0.0.1", port=0)
    url = environment.get(FastAPIServer).url
    try:
        with httpx.Client(timeout=30) as client:
            for name, call in PATHS.items():
                timings(client, url, call, 50)  # warm up
                alone = timings(client, url, call, options.calls)
                beside = beside_slow_calls(url, client, call, SLOW[name.split()[0]], options)
                print(
                    f"{name:15s} alone p50 {p(alone, 50):6.2f} ms p99 {p(alone, 99):6.2f} ms | "
                    f"beside {options.slow_threads} slow calls p50 {p(beside, 50):6.2f} ms p99 {p(beside, 99):6.2f} ms"
                    f" | p99 difference {p(beside, 99) - p(alone, 99):+6.2f} ms ({len(beside)} samples)",
                    flush=True,
                )
    finally:
        environment.destroy()


if __name__ == "__main__":
    main()
