"""Issue 16, idle connections: a pooled connection is never reused when the server is about to close it.

A server closes a kept-alive connection after its keep-alive timeout (uvicorn's ``timeout_keep_alive``,
warpcall's ``ServerLimits.idle_timeout``: 5 s by default). Before the fix, the sync client kept pooled
connections for as long as it liked: a call made just as the server's timer fired passed the idle
check (nothing to read yet), and its request met the close (reset, or closed without a response).
The async client did not fail: its loop reads every pooled socket and runs I/O callbacks before
timers, and its ``asyncio.sleep`` wakes as late as the server's timer does (both loops round their
waits up to the millisecond), so it always read the server's FIN before it reused the connection.
``time.sleep`` wakes on time, within the millisecond the server's timer is due but has not run.

Now a pooled connection expires after ``http.keepalive_expiry`` seconds idle (4 s by default,
below uvicorn's 5 s), sooner when the server announces ``Keep-Alive: timeout=N``. The tests run a
real warpcall server with a 0.5 s keep-alive and make calls spaced at that interval and just
around it, through the sync and async clients of every channel: 520 calls, none may fail, once
with the client's expiry configured below the server's timeout and once with the server
announcing it (the client left at its defaults).
"""

from __future__ import annotations

import asyncio
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request

from rawhttp import UvicornReference
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
    component,
    get,
    rest,
    service,
)
from warpcall.channels._http_async import AsyncHTTPClient
from warpcall.channels._http_sync import HTTPClient
from warpcall.core.transport import DEFAULT_KEEPALIVE_EXPIRY
from warpcall.di import Environment, create, module
from warpcall.di.configuration import ConfigurationSource
from warpcall.server.limits import ServerLimits

CHANNELS = ["dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest"]
#: the server's keep-alive timeout (ServerLimits.idle_timeout, uvicorn's timeout_keep_alive), short so the test is
KEEP_ALIVE = 0.5
#: the client's http.keepalive_expiry against the server that does not announce its timeout
EXPIRY = 0.4
#: the pause between one call's reply and the next call of a stream: at the server's keep-alive and around it,
#: and around the client's expiry
SPACINGS = (KEEP_ALIVE - 0.02, KEEP_ALIVE, KEEP_ALIVE + 0.01, KEEP_ALIVE, KEEP_ALIVE - 0.005, EXPIRY - 0.02, EXPIRY + 0.02)
STREAMS_PER_KIND = 5  # per channel, sync and async: 40 streams, each its own thread and connection pool
CALLS_PER_STREAM = 13  # 520 calls
TIMEOUT = 5.0


@service(name="idle-echo")
@rest("/idle")
class EchoService(Service):
    @get("/echo/{value}")
    @abstractmethod
    def echo(self, value: int) -> int: ...

    @get("/echo-async/{value}")
    @abstractmethod
    async def echo_async(self, value: int) -> int: ...


@component(name="idle-connections", services=[EchoService])
class IdleComponent(Component):
    pass


class EchoServiceImpl(EchoService):
    def echo(self, value: int) -> int:
        return value

    async def echo_async(self, value: int) -> int:
        return value


class IdleComponentImpl(AbstractComponent, IdleComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress(name, f"http://127.0.0.1:{port}") for name in CHANNELS]


def announcing_app() -> FastAPI:
    """A user app whose every reply says how long the server keeps an idle connection."""
    app = FastAPI()

    @app.middleware("http")
    async def announce(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers["keep-alive"] = f"timeout={KEEP_ALIVE}"
        return response

    return app


def server_module(app_factory: Callable[[], FastAPI]) -> type:
    @module(imports=[ServiceModule])
    class IdleServerModule:
        @create()
        def create_registry(self) -> ComponentRegistry:
            return LocalComponentRegistry()

        @create()
        def create_component(self) -> IdleComponentImpl:
            return IdleComponentImpl()

        @create()
        def create_service(self) -> EchoServiceImpl:
            return EchoServiceImpl()

        @create()
        def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
            return FastAPIServer(app_factory(), manager, registry, limits=ServerLimits(idle_timeout=KEEP_ALIVE))

    return IdleServerModule


class Settings(ConfigurationSource):
    """The client's configuration, as a YAML file would give it."""

    values: dict[str, Any] = {}

    def load(self) -> dict[str, Any]:
        return Settings.values


def client_environment(url: str, settings: dict[str, Any]) -> Environment:
    Settings.values = settings

    @module(imports=[ServiceModule])
    class IdleClientModule:
        @create()
        def create_registry(self) -> ComponentRegistry:
            registry = LocalComponentRegistry()
            registry.register_remote("idle-connections", [ChannelAddress(name, url) for name in CHANNELS])
            return registry

        @create()
        def create_settings(self) -> Settings:
            return Settings()

    return Environment(IdleClientModule)


@pytest.fixture(scope="module", params=["configured", "announced"])
def setup(request: Any) -> Iterator[tuple[str, ServiceManager]]:
    """(variant, the client's manager) against a warpcall server with a 0.5 s keep-alive."""
    if request.param == "configured":  # the server says nothing: the client is told its timeout
        app_factory, settings = FastAPI, {"http": {"keepalive_expiry": EXPIRY, "rest": {"keepalive_expiry": EXPIRY - 0.05}}}
    else:  # the server announces its timeout: the client's defaults
        app_factory, settings = announcing_app, {}
    server = FastAPIServer.boot(server_module(app_factory), host="127.0.0.1", port=0)
    client = client_environment(server.get(FastAPIServer).url, settings)
    try:
        yield request.param, client.get(ServiceManager)
    finally:
        client.destroy()
        server.destroy()


def run_stream(echo: Any, kind: str, spacing: float, failures: list[str], done: list[int]) -> None:
    """CALLS_PER_STREAM calls, each ``spacing`` seconds after the previous reply, on this thread's own pool."""

    def record(value: int, got: Any) -> None:
        if got != value:
            failures.append(f"{kind}: echo({value}) returned {got!r}")
        done.append(1)

    if kind == "sync":
        for value in range(CALLS_PER_STREAM):
            try:
                record(value, echo.echo(value))
            except Exception as exc:
                failures.append(f"{kind} after {spacing} s: {type(exc).__name__}: {exc}")
            time.sleep(spacing)
        return

    async def calls() -> None:  # a loop of its own: its own pool, as the sync thread has
        for value in range(CALLS_PER_STREAM):
            try:
                record(value, await echo.echo_async(value))
            except Exception as exc:
                failures.append(f"{kind} after {spacing} s: {type(exc).__name__}: {exc}")
            await asyncio.sleep(spacing)

    asyncio.run(calls())


def test_calls_spaced_at_the_servers_keep_alive_never_fail(setup: tuple[str, ServiceManager]) -> None:
    variant, manager = setup
    channels = {name: manager.get_service(EchoService, name) for name in CHANNELS}
    expected = {"configured": EXPIRY, "announced": DEFAULT_KEEPALIVE_EXPIRY}[variant]
    for name in CHANNELS:
        channel = manager._channels[("idle-connections", name)]
        want = EXPIRY - 0.05 if variant == "configured" and name == "rest" else expected
        assert channel.keepalive_expiry == want  # http.keepalive_expiry, http.<channel>.keepalive_expiry
        assert channel._direct.keepalive_expiry == want
    failures: list[str] = []
    done: list[int] = []
    threads = []
    for index in range(STREAMS_PER_KIND * len(CHANNELS) * 2):
        name, kind = CHANNELS[index % len(CHANNELS)], ("sync", "async")[index // len(CHANNELS) % 2]
        spacing = SPACINGS[index % len(SPACINGS)]
        threads.append(threading.Thread(target=run_stream, args=(channels[name], kind, spacing, failures, done)))
    for index, thread in enumerate(threads):
        thread.start()
        if index % 8 == 7:
            time.sleep(0.05)  # streams in a few waves, not all on the same millisecond
    deadline = time.monotonic() + 60
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), "a stream of calls did not end within 60 s"
    assert failures == []
    assert len(done) == len(threads) * CALLS_PER_STREAM == 520


# --- the pool, connection by connection: reused below the expiry, replaced past it ------------------------


def reference_app(announce: str | None) -> FastAPI:
    """GET /port answers the client's port: the connection a request came on."""
    app = FastAPI()

    @app.get("/port")
    async def port(request: Request) -> Any:
        from fastapi.responses import JSONResponse

        assert request.client is not None
        headers = {"keep-alive": announce} if announce else {}
        return JSONResponse(request.client.port, headers=headers)

    return app


class Ports:
    """The client port of each call through one of the clients, sync or async (one pool, one loop)."""

    def __init__(self, kind: str, url: str, **options: Any) -> None:
        self.kind, self.url = kind, url
        self.sync = HTTPClient(timeout=TIMEOUT, **options)
        self.async_ = AsyncHTTPClient(timeout=TIMEOUT, **options)
        self.loop = asyncio.new_event_loop()

    def port(self) -> int:
        if self.kind == "sync":
            status, _, body = self.sync.request("GET", self.url, [], b"")
        else:
            status, _, body = self.loop.run_until_complete(self.async_.request("GET", self.url, [], b""))
        assert status == 200
        return int(body)

    def close(self) -> None:
        self.sync.close()
        self.loop.run_until_complete(self.async_.aclose())
        self.loop.close()


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_pooled_connection_is_reused_below_its_expiry_and_replaced_past_it(kind: str) -> None:
    with UvicornReference(reference_app(None), timeout_keep_alive=KEEP_ALIVE) as server:
        ports = Ports(kind, f"http://127.0.0.1:{server.port}/port", keepalive_expiry=0.3)
        try:
            first = ports.port()
            assert ports.port() == first  # back to back: the same connection
            time.sleep(0.1)  # idle for less than the expiry
            assert ports.port() == first
            time.sleep(0.35)  # idle past the expiry, below the server's keep-alive: a new connection all the same
            second = ports.port()
            assert second != first
            assert ports.port() == second
        finally:
            ports.close()


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_servers_keep_alive_timeout_shortens_the_expiry(kind: str) -> None:
    # the server keeps idle connections 1 s and says so; the client's own expiry is its 4 s default
    with UvicornReference(reference_app("timeout=1"), timeout_keep_alive=1) as server:
        ports = Ports(kind, f"http://127.0.0.1:{server.port}/port")
        try:
            first = ports.port()
            time.sleep(0.5)  # below keepalive_limit(1) == 0.75 s
            assert ports.port() == first
            time.sleep(0.8)  # past 0.75 s, before the server's 1 s: replaced, not reused into the close
            assert ports.port() != first
        finally:
            ports.close()


def test_the_expiry_is_checked_where_it_is_configured() -> None:
    for bad in (-1, "soon", float("nan")):
        with pytest.raises(ValueError, match="keepalive_expiry must be a number of seconds >= 0"):
            HTTPClient(keepalive_expiry=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="keepalive_expiry must be a number of seconds >= 0"):
            AsyncHTTPClient(keepalive_expiry=bad)  # type: ignore[arg-type]
    assert HTTPClient().keepalive_expiry == AsyncHTTPClient().keepalive_expiry == DEFAULT_KEEPALIVE_EXPIRY == 4.0
