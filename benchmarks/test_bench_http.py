"""The wire floors: one HTTP/1.1 call to a bare uvicorn ASGI echo, by every client, side by side.

Group ``http-floor``: a raw blocking socket speaking HTTP/1.1 over a kept-alive
connection (the floor), ``http.client``, ``httpx.Client`` (alone and on
``WarpTransport``), ``HTTPClient`` on the compiled and on the pure core, the async
clients (``httpx.AsyncClient`` and ``AsyncHTTPClient``, each call entered from
synchronous code with ``run_until_complete``, whose own cost ``asyncio-loop-entry``
shows) with their floor, the same raw request over an asyncio stream, and a raw socket
ping-pong to a plain TCP echo (no HTTP). The servers run in their own processes on
free 127.0.0.1 ports. The body is the JSON dispatch
envelope of the aspyx workload's ``data(Data)`` call.

    pytest benchmarks/test_bench_http.py --benchmark-only -q
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")

import floors  # noqa: E402
from floors import blocking_socket, stop  # noqa: E402

from warpcall._compiled import load_variant  # noqa: E402
from warpcall.channels import _http_async, _http_sync  # noqa: E402
from warpcall.channels.transport import AsyncHTTPClient, AsyncWarpTransport, HTTPClient, WarpTransport  # noqa: E402

HERE = Path(__file__).parent
from workload import FIELDS  # noqa: E402

PAYLOAD = json.dumps({"method": "bench-component:bench-service:data", "args": [FIELDS]}).encode()
HEADERS = [("Content-Type", "application/json")]
TIMEOUT = 5.0
MAX_READS = 1000  # bounds the hand-written read loops
ROUNDS = 2000  # calls measured per client, after WARMUP unmeasured ones
WARMUP = 200


def launch(mode: str) -> tuple[subprocess.Popen[str], str]:
    """Start ``_echo_server.py <mode>`` and wait (bounded) for its ``READY <address>`` line."""
    return floors.launch("_echo_server.py", mode)


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    process, url = launch("http")
    yield url + "/echo"
    stop(process)


@pytest.fixture(scope="module")
def tcp_address() -> Iterator[tuple[str, int]]:
    process, address = launch("tcp")
    host, port = address.rsplit(":", 1)
    yield host, int(port)
    stop(process)


def run(benchmark: Any, call: Callable[[], bytes]) -> None:
    benchmark.group = "http-floor"
    assert benchmark.pedantic(call, rounds=ROUNDS, warmup_rounds=WARMUP, iterations=1) == PAYLOAD


def raw_http(echo_url: str) -> tuple[Callable[[], bytes], socket.socket]:
    """The floor: a prepared request written to a kept-alive blocking socket, the response read by length."""
    return floors.raw_http(echo_url, PAYLOAD)


def test_raw_socket_http(benchmark: Any, echo_url: str) -> None:
    call, sock = raw_http(echo_url)
    try:
        run(benchmark, call)
    finally:
        sock.close()


def test_http_client_stdlib(benchmark: Any, echo_url: str) -> None:
    host, port = echo_url.split("/")[2].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
    headers = dict(HEADERS)

    def call() -> bytes:
        conn.request("POST", "/echo", body=PAYLOAD, headers=headers)
        return conn.getresponse().read()

    try:
        run(benchmark, call)
    finally:
        conn.close()


def test_httpx_client(benchmark: Any, echo_url: str) -> None:
    with httpx.Client(timeout=TIMEOUT) as client:
        run(benchmark, lambda: client.post(echo_url, content=PAYLOAD, headers=HEADERS).content)


def test_httpx_client_on_warp_transport(benchmark: Any, echo_url: str) -> None:
    with httpx.Client(timeout=TIMEOUT, transport=WarpTransport()) as client:
        run(benchmark, lambda: client.post(echo_url, content=PAYLOAD, headers=HEADERS).content)


def use_transport(monkeypatch: pytest.MonkeyPatch, transport: Any) -> None:
    """Point both clients at one build of the transport core (they import its three names)."""
    for client in (_http_sync, _http_async):
        for name in ("Connection", "ResponseParser", "build_request"):
            monkeypatch.setattr(client, name, getattr(transport, name))


@pytest.mark.parametrize("native", [True, False], ids=["native", "pure"])
def test_warpcall_http_client(
    benchmark: Any, echo_url: str, native: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        use_transport(monkeypatch, load_variant("transport", native))
    except ImportError:
        pytest.skip("the compiled core is not built here")
    client = HTTPClient(timeout=TIMEOUT)
    try:
        run(benchmark, lambda: client.request("POST", echo_url, HEADERS, PAYLOAD)[2])
    finally:
        client.close()


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def test_asyncio_loop_entry(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    async def noop() -> bytes:
        return PAYLOAD

    run(benchmark, lambda: loop.run_until_complete(noop()))


def test_raw_socket_http_async(benchmark: Any, echo_url: str, loop: asyncio.AbstractEventLoop) -> None:
    """The async floor: the same request over a kept-alive asyncio stream, each call entered like the async rows."""
    call, writer = loop.run_until_complete(floors.raw_http_async(echo_url, PAYLOAD))
    try:
        run(benchmark, lambda: loop.run_until_complete(call()))
    finally:
        writer.close()


def test_httpx_async_client(benchmark: Any, echo_url: str, loop: asyncio.AbstractEventLoop) -> None:
    client = httpx.AsyncClient(timeout=TIMEOUT)

    async def call() -> bytes:
        return (await client.post(echo_url, content=PAYLOAD, headers=HEADERS)).content

    try:
        run(benchmark, lambda: loop.run_until_complete(call()))
    finally:
        loop.run_until_complete(client.aclose())


def test_httpx_async_client_on_warp_transport(
    benchmark: Any, echo_url: str, loop: asyncio.AbstractEventLoop
) -> None:
    client = httpx.AsyncClient(timeout=TIMEOUT, transport=AsyncWarpTransport())

    async def call() -> bytes:
        return (await client.post(echo_url, content=PAYLOAD, headers=HEADERS)).content

    try:
        run(benchmark, lambda: loop.run_until_complete(call()))
    finally:
        loop.run_until_complete(client.aclose())


def test_warpcall_async_http_client(benchmark: Any, echo_url: str, loop: asyncio.AbstractEventLoop) -> None:
    client = AsyncHTTPClient(timeout=TIMEOUT)

    async def call() -> bytes:
        return (await client.request("POST", echo_url, HEADERS, PAYLOAD))[2]

    try:
        run(benchmark, lambda: loop.run_until_complete(call()))
    finally:
        loop.run_until_complete(client.aclose())


def test_raw_socket_ping_pong(benchmark: Any, tcp_address: tuple[str, int]) -> None:
    sock = blocking_socket(*tcp_address)
    size = len(PAYLOAD)

    def call() -> bytes:
        sock.sendall(PAYLOAD)
        data = sock.recv(65536)
        for _ in range(MAX_READS):
            if len(data) >= size:
                return data
            data += sock.recv(65536)
        raise RuntimeError("no complete echo")

    try:
        run(benchmark, call)
    finally:
        sock.close()


# --- paired: the floor and a client call by call, so load from other processes hits both alike ---------


PAIRS_PER_LOOP_RUN = 20  # async pairs per run_until_complete, so loop entry stays out of the per-call figures


@pytest.mark.parametrize("client", ["native", "pure", "async", "async-uvloop"])
def test_paired_with_the_floor(
    benchmark: Any,
    echo_url: str,
    client: str,
    monkeypatch: pytest.MonkeyPatch,
    loop: asyncio.AbstractEventLoop,
) -> None:
    """One raw-socket call and one call of ``client`` after the other, alternating which goes first.

    Each side is timed per call; ``extra_info`` holds each side's median and their ratio (the
    table shows whole rounds). Async clients run inside the event loop, ``PAIRS_PER_LOOP_RUN``
    pairs per ``run_until_complete``, on asyncio's own loop or on uvloop's.
    """
    if client == "async-uvloop":
        uvloop = pytest.importorskip("uvloop")
        loop = uvloop.new_event_loop()
    try:
        use_transport(monkeypatch, load_variant("transport", client != "pure"))
    except ImportError:
        pytest.skip("the compiled core is not built here")
    floor, sock = raw_http(echo_url)
    sync_client = HTTPClient(timeout=TIMEOUT)
    async_client = AsyncHTTPClient(timeout=TIMEOUT)
    times: dict[str, list[float]] = {"floor": [], "client": []}
    floor_first = [True]

    def timed(name: str, function: Callable[[], bytes]) -> None:
        started = time.perf_counter()
        assert function() == PAYLOAD
        times[name].append(time.perf_counter() - started)

    def sync_call() -> bytes:
        return sync_client.request("POST", echo_url, HEADERS, PAYLOAD)[2]

    def sync_pair() -> None:
        floor_first[0] = not floor_first[0]
        for name, function in [("floor", floor), ("client", sync_call)][:: 1 if floor_first[0] else -1]:
            timed(name, function)

    async def async_pairs() -> None:
        for _ in range(PAIRS_PER_LOOP_RUN):
            floor_first[0] = not floor_first[0]
            if floor_first[0]:
                timed("floor", floor)
            started = time.perf_counter()
            assert (await async_client.request("POST", echo_url, HEADERS, PAYLOAD))[2] == PAYLOAD
            times["client"].append(time.perf_counter() - started)
            if not floor_first[0]:
                timed("floor", floor)

    benchmark.group = "http-floor-paired"
    try:
        if client.startswith("async"):
            rounds, warmup = ROUNDS // PAIRS_PER_LOOP_RUN, WARMUP // PAIRS_PER_LOOP_RUN
            benchmark.pedantic(
                lambda: loop.run_until_complete(async_pairs()),
                rounds=rounds,
                warmup_rounds=warmup,
                iterations=1,
            )
        else:
            benchmark.pedantic(sync_pair, rounds=ROUNDS, warmup_rounds=WARMUP, iterations=1)
    finally:
        sock.close()
        sync_client.close()
        loop.run_until_complete(async_client.aclose())
        if client == "async-uvloop":
            loop.close()
    # with --benchmark-disable each side ran once: no warmup to drop
    floor_us = statistics.median(times["floor"][WARMUP:] or times["floor"]) * 1e6
    client_us = statistics.median(times["client"][WARMUP:] or times["client"]) * 1e6
    benchmark.extra_info.update(
        floor_median_us=round(floor_us, 1),
        client_median_us=round(client_us, 1),
        ratio=round(client_us / floor_us, 3),
    )
