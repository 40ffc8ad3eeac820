"""Soak: memory, file descriptors and threads of a client and a server stay flat over many calls,
remote exceptions and timeouts (issue 16: "stayed flat over 1M calls, 1M remote exceptions and 40k
timeouts: keep it so").

The server is a FastAPIServer in a process of its own on 127.0.0.1 (this file run with ``--serve``);
the client is this process, calling it through a ``ServiceManager`` proxy on ``dispatch-json`` from
``--threads`` threads. Phases, in order:

1. warm-up (``--warmup`` calls of each kind, and ``2 * --threads`` concurrent calls of a sync method
   so the server's worker pool has the threads these callers can occupy): pools, caches and worker
   threads reach their size;
2. ``--calls`` plain calls;
3. ``--exceptions`` calls whose implementation raises (the client raises ``RemoteServiceException``);
4. ``--timeouts`` calls that outlive their deadline (``with deadline(--timeout)`` around a call of a
   method sleeping ``--sleep`` s on the server, each on a connection it then abandons), each followed
   by three plain calls on at most 4 threads: the client's circuit breaker (default settings: 5
   consecutive failures, or half the calls in its window) keeps the one instance in rotation.

Both processes are sampled (RSS from ``/proc/<pid>/status``, open descriptors from ``/proc/<pid>/fd``,
threads) after the warm-up, every ``--sample-every`` seconds and after each phase; the report gives
each phase's sample and the growth from the warm-up's, and ``--check`` exits 1 when a growth is past
its bound (RSS ``--max-rss-growth`` MiB, descriptors 4, threads 2). Not part of the default run:

    python -m benchmarks.soak --calls 200000 --exceptions 200000 --timeouts 5000 --check
"""

from __future__ import annotations

import argparse
import gc
import os
import select
import subprocess
import sys
import threading
import time
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from warpcall import (
    AbstractComponent,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    LocalComponentRegistry,
    Service,
    ServiceException,
    ServiceManager,
    ServiceModule,
    blocking,
    component,
    deadline,
    implementation,
    service,
)
from warpcall.di import Environment, create, module


class SoakFailure(ServiceException):
    """What ``fail`` raises on purpose: the remote exception the soak repeats."""


@service(name="soak")
class SoakService(Service):
    @abstractmethod
    def ok(self, n: int) -> int: ...

    @abstractmethod
    def fail(self, n: int) -> int: ...

    @abstractmethod
    def sleep(self, seconds: float) -> float: ...


@component(name="soak", services=[SoakService])
class SoakComponent(Component):
    pass


# --- the server process ---------------------------------------------------------------------------------


@implementation()
class SoakServiceImpl(SoakService):
    def ok(self, n: int) -> int:
        return n

    def fail(self, n: int) -> int:
        raise SoakFailure(f"call {n} fails on purpose")

    @blocking  # in the worker pool from the first call: the event loop keeps answering
    def sleep(self, seconds: float) -> float:
        time.sleep(seconds)  # outlives the caller's deadline: the caller gives up first
        return seconds


@implementation()
class SoakComponentImpl(AbstractComponent, SoakComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://127.0.0.1:{port}")]


@module(imports=[ServiceModule])
class ServerModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        from fastapi import FastAPI

        return FastAPIServer(FastAPI(), manager, registry)


def serve() -> None:
    """Serve the soak component on a free 127.0.0.1 port; print ``READY <url>``; stop when stdin closes."""
    environment = FastAPIServer.boot(ServerModule, host="127.0.0.1", port=0)
    try:
        print(f"READY {environment.get(FastAPIServer).url}", flush=True)
        sys.stdin.read()
    finally:
        environment.destroy()


# --- measuring ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    rss_kib: int
    fds: int
    threads: int


def sample(pid: int) -> Sample:
    """RSS, open descriptors and threads of process ``pid`` now (Linux /proc)."""
    fields: dict[str, str] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            fields[name] = value.strip()
    return Sample(int(fields["VmRSS"].split()[0]), len(os.listdir(f"/proc/{pid}/fd")), int(fields["Threads"]))


class Sampler:
    """Samples the client (this process) and the server, at phase ends and every ``every`` seconds between."""

    def __init__(self, server_pid: int, every: float) -> None:
        self.server_pid = server_pid
        self.every = every
        self.rows: list[tuple[str, float, Sample, Sample]] = []
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)

    def take(self, label: str) -> tuple[Sample, Sample]:
        gc.collect()  # garbage waiting for a collection is not growth
        client, server = sample(os.getpid()), sample(self.server_pid)
        self.rows.append((label, time.monotonic() - self.started, client, server))
        return client, server

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            client, server = sample(os.getpid()), sample(self.server_pid)
            self.rows.append(("", time.monotonic() - self.started, client, server))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.every + 5)


# --- the client -----------------------------------------------------------------------------------------


def run_threads(count: int, threads: int, one: Callable[[int], None]) -> float:
    """Call ``one(i)`` for i in range(count), spread over ``threads`` threads; the seconds it took."""
    errors: list[BaseException] = []

    def worker(first: int) -> None:
        try:
            for i in range(first, count, threads):
                one(i)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    started = time.monotonic()
    workers = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    if errors:
        raise errors[0]
    return time.monotonic() - started


def start_server() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.soak", "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 60)
    line = process.stdout.readline().strip() if ready else ""
    if not line.startswith("READY "):
        process.kill()
        raise SystemExit(f"the soak server did not start: {line!r}")
    return process, line.split()[1]


def client_environment(url: str) -> Environment:
    @module(imports=[ServiceModule])
    class ClientModule:
        @create()
        def create_registry(self) -> ComponentRegistry:
            registry = LocalComponentRegistry()
            registry.register_remote("soak", [ChannelAddress("dispatch-json", url)])
            return registry

    return Environment(ClientModule)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, default=200_000, help="plain calls (default 200,000)")
    parser.add_argument("--exceptions", type=int, default=200_000, help="calls raising remotely (default 200,000)")
    parser.add_argument("--timeouts", type=int, default=5_000, help="calls past their deadline (default 5,000)")
    parser.add_argument("--warmup", type=int, default=5_000, help="calls of each kind before the baseline")
    parser.add_argument("--threads", type=int, default=4, help="client threads (default 4)")
    parser.add_argument("--timeout", type=float, default=0.02, help="the timed-out calls' deadline, s")
    parser.add_argument("--sleep", type=float, default=0.2, help="how long the timed-out method sleeps, s")
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--check", action="store_true", help="exit 1 when a growth is past its bound")
    parser.add_argument("--max-rss-growth", type=float, default=16.0, help="MiB of RSS growth allowed (--check)")
    options = parser.parse_args()
    if options.serve:
        serve()
        return

    process, url = start_server()
    environment = client_environment(url)
    proxy: Any = environment.get(ServiceManager).get_service(SoakService)
    timeout_errors: dict[str, int] = {}
    lock = threading.Lock()

    def ok(i: int) -> None:
        if proxy.ok(i) != i:
            raise AssertionError(f"ok({i}) answered wrongly")

    def fail(i: int) -> None:
        try:
            proxy.fail(i)
        except ServiceException as exc:
            if "fails on purpose" not in str(exc):
                raise
        else:
            raise AssertionError(f"fail({i}) did not raise")

    def timeout(i: int) -> None:
        try:
            with deadline(options.timeout):
                proxy.sleep(options.sleep)
        except ServiceException as exc:  # DeadlineExceeded, or a read timeout where deadlines bound only reads
            with lock:
                timeout_errors[type(exc).__name__] = timeout_errors.get(type(exc).__name__, 0) + 1
        else:
            raise AssertionError("a call past its deadline returned")
        for k in range(3):  # successes between two timeouts: at most one failure per thread in a row, 25% in all
            ok(i * 3 + k)

    phases: list[tuple[str, int, Callable[[int], None]]] = [
        ("calls", options.calls, ok),
        ("remote exceptions", options.exceptions, fail),
        ("timeouts", options.timeouts, timeout),
    ]
    try:
        # warm-up: the server's worker pool grows to what this many callers can occupy (it keeps its threads;
        # a method the adaptive placement moves off the event loop later finds them there)
        run_threads(2 * options.threads, 2 * options.threads, lambda i: proxy.sleep(0.05))
        # and every path used, at scale: the timeouts first, so the calls their callers left are over
        # (--sleep s) by the time the other warm-ups end and the baseline is sampled
        for _, count, one in sorted(phases, key=lambda phase: phase[2] is not timeout):
            if not count:
                continue
            if one is timeout:
                run_threads(min(options.warmup, 200), min(options.threads, 4), one)
            else:
                run_threads(options.warmup, options.threads, one)
        timeout_errors.clear()  # count the measured phase's only
        sampler = Sampler(process.pid, options.sample_every)
        base_client, base_server = sampler.take("after warm-up")
        sampler.start()
        for name, count, one in phases:
            seconds = run_threads(count, options.threads if one is not timeout else min(options.threads, 4), one)
            sampler.take(f"after {count:,} {name}")
            print(f"{name}: {count:,} in {seconds:.1f} s ({count / seconds:,.0f}/s)", flush=True)
        sampler.stop()
        # the server finishes the calls its callers gave up on within --sleep s: wait (bounded) for their
        # connections to go before the last sample
        settle = time.monotonic() + options.sleep + 5.0
        while sample(process.pid).fds > base_server.fds and time.monotonic() < settle:
            time.sleep(0.05)
        end_client, end_server = sampler.take("end")
    finally:
        environment.destroy()
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
    if timeout_errors:
        print("timed-out calls raised: " + ", ".join(f"{k} {v:,}" for k, v in sorted(timeout_errors.items())))
    print(f"\n{'sample':32s} {'t (s)':>7s} | client RSS MiB  fds  threads | server RSS MiB  fds  threads")
    for label, at, client, server in sampler.rows:
        print(
            f"{label:32s} {at:7.1f} | {client.rss_kib / 1024:14.1f} {client.fds:4d} {client.threads:8d} |"
            f" {server.rss_kib / 1024:14.1f} {server.fds:4d} {server.threads:8d}"
        )
    peak = {
        side: max(row[index].rss_kib for row in sampler.rows) / 1024
        for side, index in (("client", 2), ("server", 3))
    }
    bad = []
    for side, base, end in (("client", base_client, end_client), ("server", base_server, end_server)):
        rss = (end.rss_kib - base.rss_kib) / 1024
        print(
            f"{side} growth from the warm-up: RSS {rss:+.1f} MiB (peak {peak[side]:.1f} MiB),"
            f" fds {end.fds - base.fds:+d}, threads {end.threads - base.threads:+d}"
        )
        if rss > options.max_rss_growth or end.fds - base.fds > 4 or end.threads - base.threads > 2:
            bad.append(side)
    if options.check and bad:
        raise SystemExit(f"growth past its bound: {', '.join(bad)}")


if __name__ == "__main__":
    main()
