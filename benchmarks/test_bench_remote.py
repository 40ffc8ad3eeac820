"""Remote calls, warpcall beside aspyx-service, server in a separate process on 127.0.0.1.

Run: ``pytest benchmarks/test_bench_remote.py --benchmark-only --benchmark-group-by=group``.
Groups: ``<payload>-<sync|async>`` holds every channel of both frameworks for that payload, warpcall
over https too (``warpcall-https-<channel>``: the same server serving TLS, certificates from trustme);
``throughput-8-threads`` holds the time for 8 client threads x 50 ``data()`` calls. ``https-vs-http-*``
pairs each https call with the same call over http (one call each, alternating, so machine load hits
both alike): ``extra_info["ratio"]`` = https median / http median, the cost of TLS on a kept-alive
connection (the handshake happens once per pooled connection, outside the figures).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import floors
import pytest
from bench_api import BenchComponent, BenchService
from test_bench_remote_paired import paired
from workload import DATA, PYDANTIC

from conftest import WARPCALL_CHANNELS, BenchClientModule
from warpcall import ChannelAddress, ComponentRegistry, ServiceManager
from warpcall.di import Environment, create, module
from warpcall.di.configuration import ConfigurationSource
from warpcall.service import component_descriptor

ASPYX_CHANNELS = ["dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest"]
PAYLOADS = {"hello": "hello world", "data": DATA, "pydantic": PYDANTIC}
THREADS, CALLS_PER_THREAD = 8, 50


class _Trust(ConfigurationSource):
    """``http.tls.ca_file``: the benchmark's CA."""

    def __init__(self, ca_file: str) -> None:
        self.ca_file = ca_file

    def load(self) -> dict[str, Any]:
        return {"http": {"tls": {"ca_file": self.ca_file}}}


@pytest.fixture(scope="session")
def warpcall_https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The warpcall benchmark server serving HTTPS: (its URL, the CA file that signed its certificate)."""
    import trustme

    folder: Path = tmp_path_factory.mktemp("bench-tls")
    ca = trustme.CA()
    ca_file, cert_file = str(folder / "ca.pem"), str(folder / "server.pem")
    ca.cert_pem.write_to_path(ca_file)
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(cert_file)
    process, url = floors.launch("serve.py", "warpcall", cert_file)
    assert url.startswith("https://"), url
    yield url, ca_file
    floors.stop(process)


@pytest.fixture(scope="session")
def warpcall_https_manager(warpcall_https_server: tuple[str, str]) -> Iterator[ServiceManager]:
    url, ca_file = warpcall_https_server

    @module(imports=[BenchClientModule])
    class HttpsClientModule:
        @create()
        def create_trust(self) -> _Trust:
            return _Trust(ca_file)

    environment = Environment(HttpsClientModule)
    environment.get(ComponentRegistry).register(
        component_descriptor(BenchComponent), [ChannelAddress(name, url) for name in WARPCALL_CHANNELS]
    )
    yield environment.get(ServiceManager)
    environment.destroy()


def proxy_for(request: pytest.FixtureRequest, framework: str, channel: str) -> Any:
    if framework == "warpcall":
        return request.getfixturevalue("warpcall_manager").get_service(BenchService, channel)
    if framework == "warpcall-https":
        return request.getfixturevalue("warpcall_https_manager").get_service(BenchService, channel)
    manager = request.getfixturevalue("aspyx_manager")  # skips where aspyx-service is not installed
    import aspyx_bench

    return manager.get_service(aspyx_bench.AspyxBenchService, preferred_channel=channel)


CASES = (
    [("warpcall", c) for c in WARPCALL_CHANNELS]
    + [("warpcall-https", c) for c in WARPCALL_CHANNELS]
    + [("aspyx", c) for c in ASPYX_CHANNELS]
)


@pytest.mark.parametrize("payload", list(PAYLOADS))
@pytest.mark.parametrize(("framework", "channel"), CASES, ids=[f"{f}-{c}" for f, c in CASES])
def test_sync_call(benchmark, request, framework, channel, payload):
    benchmark.group = f"{payload}-sync"
    proxy = proxy_for(request, framework, channel)
    method: Callable[[Any], Any] = getattr(proxy, payload)
    argument = PAYLOADS[payload]
    assert method(argument) == argument
    benchmark(method, argument)


@pytest.mark.parametrize("payload", list(PAYLOADS))
@pytest.mark.parametrize(("framework", "channel"), CASES, ids=[f"{f}-{c}" for f, c in CASES])
def test_async_call(benchmark, request, calls_loop, framework, channel, payload):
    loop = calls_loop
    benchmark.group = f"{payload}-async"
    proxy = proxy_for(request, framework, channel)
    method = getattr(proxy, f"{payload}_async")
    argument = PAYLOADS[payload]
    assert loop.run_until_complete(method(argument)) == argument
    benchmark(lambda: loop.run_until_complete(method(argument)))


@pytest.mark.parametrize(("framework", "channel"), CASES, ids=[f"{f}-{c}" for f, c in CASES])
def test_throughput_8_threads(benchmark, request, framework, channel):
    benchmark.group = "throughput-8-threads"
    proxy = proxy_for(request, framework, channel)

    def burst() -> None:
        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(CALLS_PER_THREAD):
                    proxy.data(DATA)
            except BaseException as exc:  # surfaced below; a thread must not swallow it
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors[0]

    benchmark.extra_info["calls"] = THREADS * CALLS_PER_THREAD
    benchmark.pedantic(burst, rounds=5, warmup_rounds=1)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("payload", list(PAYLOADS))
@pytest.mark.parametrize("channel", WARPCALL_CHANNELS)
def test_https_paired_with_http(benchmark, warpcall_manager, warpcall_https_manager, channel, payload, mode,
                                calls_loop):
    """Each https call paired with the same call over http: ``ratio`` = https / http (medians)."""
    benchmark.group = f"https-vs-http-{payload}-{mode}"
    plain = warpcall_manager.get_service(BenchService, channel)
    secure = warpcall_https_manager.get_service(BenchService, channel)
    argument = PAYLOADS[payload]
    name = payload if mode == "sync" else f"{payload}_async"
    reference, method = getattr(plain, name), getattr(secure, name)
    if mode == "sync":
        assert method(argument) == argument and reference(argument) == argument
        paired(benchmark, lambda: reference(argument), lambda: method(argument), None)
    else:
        assert calls_loop.run_until_complete(method(argument)) == argument
        assert calls_loop.run_until_complete(reference(argument)) == argument
        paired(benchmark, lambda: reference(argument), lambda: method(argument), calls_loop)


@pytest.mark.parametrize("payload", ["hello", "data"])
def test_https_paired_with_the_former_httpx_path(benchmark, warpcall_https_server, payload):
    """The client's https exchange (POST /invoke) paired with the same exchange on ``httpx.HTTPTransport``,
    where https went before it took the compiled transport: ``ratio`` = compiled / httpx (medians)."""
    import ssl

    import httpx
    from workload import FIELDS

    from warpcall.channels.transport import ClientTLS, HTTPClient
    from warpcall.core.envelope import encode_request_json

    benchmark.group = f"https-client-vs-httpx-{payload}"
    url, ca_file = warpcall_https_server
    body = encode_request_json(f"bench-component:bench-service:{payload}", [FIELDS if payload == "data" else "hi"])
    headers = [("content-type", "application/json")]
    mine = HTTPClient(tls=ClientTLS(ca_file=ca_file))
    former = httpx.HTTPTransport(verify=ssl.create_default_context(cafile=ca_file))
    timeout = {"connect": 10.0, "read": 10.0, "write": 10.0, "pool": 10.0}

    def through_httpx() -> bytes:
        request = httpx.Request("POST", url + "/invoke", headers=headers, content=body, extensions={"timeout": timeout})
        response = former.handle_request(request)
        try:
            return b"".join(response.iter_raw())
        finally:
            response.close()

    def through_the_core() -> bytes:
        return mine.request("POST", url + "/invoke", headers, body)[2]

    try:
        assert through_the_core() == through_httpx()
        paired(benchmark, through_httpx, through_the_core, None)
    finally:
        mine.close()
        former.close()
