"""The server's observed path: ``Server-Timing`` when asked (and only then), the caller's trace context in the
implementation, on every server path (one-chunk /invoke, uvicorn's parser, ASGI, REST fast path, REST through
FastAPI) and for sync, async and thread-pool implementations. Real uvicorn servers on 127.0.0.1, raw sockets."""

from __future__ import annotations

import json
import logging
from abc import abstractmethod
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request

from rawhttp import Reader, connect, request
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
from warpcall.observe import server as observe_server
from warpcall.observe import tracing
from warpcall.observe.records import SERVER_PHASES, parse_server_timing

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


def _seen() -> str:
    """What the implementation sees of the trace: its traceparent and tracestate, or '-'."""
    current = tracing.current.get()
    return "-" if current is None else f"{current.traceparent()}|{current.tracestate}"


@service(name="probe")
@rest("/probe")
class ProbeService(Service):
    @get("/seen")
    @abstractmethod
    def seen(self) -> str: ...

    @get("/seen-async")
    @abstractmethod
    async def seen_async(self) -> str: ...

    @get("/seen-pooled")
    @abstractmethod
    def seen_pooled(self) -> str: ...

    @get("/fail")
    @abstractmethod
    def fail(self) -> str: ...

    @abstractmethod
    def broken(self) -> int: ...


@component(name="probes", services=[ProbeService])
class ProbeComponent(Component):
    pass


@implementation()
class ProbeServiceImpl(ProbeService):
    def seen(self) -> str:
        return _seen()

    async def seen_async(self) -> str:
        return _seen()

    @blocking
    def seen_pooled(self) -> str:
        return _seen()

    def fail(self) -> str:
        raise LookupError("nothing here")

    def broken(self) -> int:
        return "not an int"  # type: ignore[return-value]  # the server cannot send it: 500, a warning logged


@implementation()
class ProbeComponentImpl(AbstractComponent, ProbeComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://127.0.0.1:{port}")]


def _app_with_middleware() -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def passthrough(request: Request, call_next: Any) -> Any:
        return await call_next(request)

    return app


def make_module(inline: bool, middleware: bool) -> type:
    @module(imports=[ServiceModule], packages=[__name__])
    class ProbeModule:
        @create()
        def create_registry(self) -> ComponentRegistry:
            return LocalComponentRegistry()

        @create()
        def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
            app = _app_with_middleware() if middleware else FastAPI()
            return FastAPIServer(app, manager, registry, inline_protocol=inline)

    return ProbeModule


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, FastAPIServer]]:
    # servers observing only what requests ask for, even when another test configured an OpenTelemetry provider
    # (its SERVER spans: tests/observe/test_trace_end_to_end.py)
    observe_server.reset()
    environments = {}
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(observe_server, "otel_tracer", lambda: None)
            for name, inline, middleware in (("inline", True, False), ("asgi", False, False), ("fastapi", True, True)):
                environments[name] = FastAPIServer.boot(make_module(inline, middleware), host="127.0.0.1", port=0)
        assert not observe_server.ALWAYS[0]
        yield {name: environment.get(FastAPIServer) for name, environment in environments.items()}
    finally:
        for environment in environments.values():
            environment.destroy()
        observe_server.reset()


def invoke_bytes(method: str, extra: str = "") -> bytes:
    body = json.dumps({"method": f"probes:probe:{method}", "args": []}).encode()
    return request("/invoke", body, extra=extra)


def exchange(server: FastAPIServer, data: bytes, replies: int = 1) -> list[tuple[bytes, dict[bytes, bytes], bytes]]:
    sock = connect(server.port)
    try:
        sock.sendall(data)
        reader = Reader(sock)
        return [reader.response() for _ in range(replies)]
    finally:
        sock.close()


INVOKE_PHASES = {"head", "body", "decode", "args", "impl", "encode"}


def check_timing(headers: dict[bytes, bytes], expected: set[str]) -> dict[str, int]:
    assert b"server-timing" in headers, headers
    phases = parse_server_timing(headers[b"server-timing"].decode())
    assert set(phases) == expected, phases
    assert set(phases) <= set(SERVER_PHASES)
    assert all(value >= 0 for value in phases.values()), phases
    assert phases["impl"] > 0, phases
    return phases


@pytest.mark.parametrize("method", ["seen", "seen_async", "seen_pooled"])
def test_one_chunk_invoke_answers_server_timing_and_trace(servers: dict[str, FastAPIServer], method: str) -> None:
    server = servers["inline"]
    before = server.protocol_class.stats.unparsed  # type: ignore[union-attr]
    extra = f"x-rpc-timing: 1\r\ntraceparent: {PARENT}\r\ntracestate: vendor=1\r\n"
    [(status, headers, body)] = exchange(server, invoke_bytes(method, extra))
    assert status == b"HTTP/1.1 200 OK"
    assert json.loads(body) == {"result": f"{PARENT}|vendor=1", "exception": None}
    phases = check_timing(headers, INVOKE_PHASES)
    assert phases["head"] > 0
    assert server.protocol_class.stats.unparsed == before + 1  # type: ignore[union-attr]  # the one-chunk path


def test_parser_path_invoke(servers: dict[str, FastAPIServer]) -> None:
    """Two requests in one chunk are not one plain request: uvicorn's parser reads them (then ASGI answers)."""
    server = servers["inline"]
    before = server.protocol_class.stats.unparsed  # type: ignore[union-attr]
    first = invoke_bytes("seen", f"x-rpc-timing: 1\r\ntraceparent: {PARENT}\r\n")
    second = invoke_bytes("seen")
    replies = exchange(server, first + second, replies=2)
    (status, headers, body), (status2, headers2, body2) = replies
    assert status == status2 == b"HTTP/1.1 200 OK"
    assert json.loads(body)["result"] == f"{PARENT}|"
    check_timing(headers, {"body", "decode", "args", "impl", "encode"})
    assert json.loads(body2)["result"] == "-"  # nothing passes from one request to the next
    assert b"server-timing" not in headers2
    assert server.protocol_class.stats.unparsed == before  # type: ignore[union-attr]


@pytest.mark.parametrize("method", ["seen", "seen_async", "seen_pooled"])
def test_asgi_invoke(servers: dict[str, FastAPIServer], method: str) -> None:
    extra = f"x-rpc-timing: 1\r\ntraceparent: {PARENT}\r\n"
    [(status, headers, body)] = exchange(servers["asgi"], invoke_bytes(method, extra))
    assert status == b"HTTP/1.1 200 OK"
    assert json.loads(body)["result"] == f"{PARENT}|"
    check_timing(headers, {"body", "decode", "args", "impl", "encode"})


@pytest.mark.parametrize("server_name", ["inline", "asgi", "fastapi"])
@pytest.mark.parametrize("path", ["/probe/seen", "/probe/seen-async", "/probe/seen-pooled"])
def test_rest_routes(servers: dict[str, FastAPIServer], server_name: str, path: str) -> None:
    extra = f"x-rpc-timing: 1\r\ntraceparent: {PARENT}\r\n"
    [(status, headers, body)] = exchange(servers[server_name], request(path, b"", None, method="GET", extra=extra))
    assert status == b"HTTP/1.1 200 OK"
    assert json.loads(body) == f"{PARENT}|"
    phases = check_timing(headers, {"body", "impl"})
    assert phases["impl"] > 0


@pytest.mark.parametrize("server_name", ["inline", "asgi", "fastapi"])
def test_nothing_sent_unless_asked(servers: dict[str, FastAPIServer], server_name: str) -> None:
    server = servers[server_name]
    for data in (
        invoke_bytes("seen"),
        invoke_bytes("seen", f"traceparent: {PARENT}\r\n"),  # a trace alone asks for no timings
        invoke_bytes("seen", "x-rpc-timing: 0\r\n"),
        request("/probe/seen", b"", None, method="GET"),
        request("/probe/seen", b"", None, method="GET", extra=f"traceparent: {PARENT}\r\n"),
    ):
        [(status, headers, _)] = exchange(server, data)
        assert status == b"HTTP/1.1 200 OK"
        assert b"server-timing" not in headers, (data, headers)


def test_invalid_traceparent_is_ignored(servers: dict[str, FastAPIServer]) -> None:
    for server in servers.values():
        extra = f"x-rpc-timing: 1\r\ntraceparent: 00-{'0' * 32}-b7ad6b7169203331-01\r\n"
        [(status, headers, body)] = exchange(server, invoke_bytes("seen", extra))
        assert status == b"HTTP/1.1 200 OK"
        assert json.loads(body)["result"] == "-"
        assert b"server-timing" in headers


def test_failed_call_is_timed(servers: dict[str, FastAPIServer]) -> None:
    for server in servers.values():
        [(status, headers, body)] = exchange(server, invoke_bytes("fail", "x-rpc-timing: 1\r\n"))
        assert status == b"HTTP/1.1 200 OK"
        assert json.loads(body)["exception"]["type"] == "LookupError"
        check_timing(headers, {"body", "decode", "args", "impl", "encode"} | ({"head"} if server is servers["inline"] else set()))
        [(status, headers, body)] = exchange(server, invoke_bytes("nothing", "x-rpc-timing: 1\r\n"))
        assert status == b"HTTP/1.1 404 Not Found"
        phases = parse_server_timing(headers[b"server-timing"].decode())
        assert "impl" not in phases  # refused before any implementation


def test_access_log_carries_the_trace_id(servers: dict[str, FastAPIServer], caplog: pytest.LogCaptureFixture) -> None:
    """The access lines keep uvicorn's format; each record gets ``trace_id`` (empty without a trace)."""
    server = servers["inline"]
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    original = server.server.config.access_log  # type: ignore[union-attr]
    try:
        for name in ("inline", "asgi"):
            servers[name].server.config.access_log = True  # type: ignore[union-attr]
        for name in ("inline", "asgi"):
            exchange(servers[name], invoke_bytes("seen", f"traceparent: {PARENT}\r\n"))
            exchange(servers[name], invoke_bytes("seen"))
    finally:
        for name in ("inline", "asgi"):
            servers[name].server.config.access_log = original  # type: ignore[union-attr]
    records = [r for r in caplog.records if r.name == "uvicorn.access"]
    assert [getattr(r, "trace_id", None) for r in records] == [TRACE_ID, "", TRACE_ID, ""], records
    assert all('"POST /invoke HTTP/1.1" 200' in r.getMessage() for r in records)


def test_error_log_carries_the_trace_id(servers: dict[str, FastAPIServer], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="warpcall.server")
    for name in ("inline", "asgi"):
        [(status, _, _)] = exchange(servers[name], invoke_bytes("broken", f"traceparent: {PARENT}\r\n"))
        assert status == b"HTTP/1.1 500 Internal Server Error"
    records = [r for r in caplog.records if r.name == "warpcall.server" and "probes:probe:broken" in r.getMessage()]
    assert [getattr(r, "trace_id", None) for r in records] == [TRACE_ID, TRACE_ID], records
