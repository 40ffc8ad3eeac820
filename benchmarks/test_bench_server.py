"""What the server itself costs per request, beside uvicorn's bare ASGI echo.

The client does nothing but write a prepared request and read the reply on a kept-alive
socket, so the differences are the servers'. Three servers run in their own processes
on 127.0.0.1 and are called in turn, in a new random order every round, so machine load
hits all three alike:

- ``echo``: uvicorn serving a bare ASGI app that answers with the request body (the floor
  of the remote-call benchmarks);
- ``inline``: the warpcall benchmark server as it ships, its protocol answering
  ``/invoke`` and the REST routes itself;
- ``asgi``: the same server with ``inline_protocol=False``, every request through ASGI.

Each case's ``extra_info`` holds the three medians and the ratios to the echo
(``inline_ratio``, ``asgi_ratio``). The REST rows include the thread hop of a sync
implementation; the ``/invoke`` rows run it on the loop.

    pytest benchmarks/test_bench_server.py --benchmark-only -q
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable, Iterator

import floors
import pytest
from workload import FIELDS

from conftest import start_server
from warpcall.core.envelope import encode_request_json

ROUNDS, WARMUP = 1500, 150

# case -> (HTTP method, path with query, body)
CASES = {
    "invoke-json-hello": ("POST", "/invoke", encode_request_json(
        "bench-component:bench-service:hello", ["hello world"])),
    "invoke-json-data": ("POST", "/invoke", encode_request_json(
        "bench-component:bench-service:data", [FIELDS])),
    "rest-hello": ("GET", "/bench/hello?message=hello%20world", b""),
    "rest-data": ("POST", "/bench/data", json.dumps(FIELDS, separators=(",", ":")).encode()),
}


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, str]]:
    started = []
    try:
        echo, echo_url = floors.launch("_echo_server.py", "http")
        started.append(echo)
        urls = {"echo": echo_url}
        for name, kind in (("inline", "warpcall"), ("asgi", "warpcall-asgi")):
            process, url = start_server(kind)
            started.append(process)
            urls[name] = url
        yield urls
    finally:
        for process in started:
            floors.stop(process)


@pytest.mark.parametrize("case", list(CASES))
def test_server_cost(benchmark, servers, case):
    benchmark.group = f"server-{case}"
    method, path, body = CASES[case]
    calls: dict[str, Callable[[], bytes]] = {}
    sockets = []
    for name, url in servers.items():
        call, sock = floors.raw_http(url + path, body, method=method)
        calls[name] = call
        sockets.append(sock)
    try:
        assert calls["inline"]() == calls["asgi"]()  # the same reply either way
        times: dict[str, list[float]] = {name: [] for name in calls}
        order = list(calls.items())

        def one_round() -> None:
            random.shuffle(order)
            for name, call in order:
                started = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - started)

        benchmark.pedantic(one_round, rounds=ROUNDS, warmup_rounds=WARMUP, iterations=1)
    finally:
        for sock in sockets:
            sock.close()
    # with --benchmark-disable (CI) the round runs once, without warmup
    medians = {name: statistics.median(values[WARMUP:] or values) * 1e6 for name, values in times.items()}
    benchmark.extra_info.update({f"{name}_us": round(value, 1) for name, value in medians.items()})
    benchmark.extra_info["inline_ratio"] = round(medians["inline"] / medians["echo"], 3)
    benchmark.extra_info["asgi_ratio"] = round(medians["asgi"] / medians["echo"], 3)
