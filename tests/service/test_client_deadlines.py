"""Issue 16, deadlines on the client: a call's deadline bounds the whole exchange and travels to the server.

- A raw server that answers a head and then trickles one body byte every 0.1 s would hold a call for
  as long as it likes if each read had its own timeout: with ``deadline(0.4)`` (or ``http.timeout``
  alone) the call ends with ``DeadlineExceeded`` naming the method and the deadline, within the
  deadline plus a generous 1 s (an upper bound on a hang, not a speed figure), and the connection is
  closed -- on every channel, sync and async, and through the httpx transport an advice would use.
- A real warpcall server receives ``x-rpc-timeout``: its implementation's ``remaining()`` is what
  the caller had left (also with no ``deadline()`` block: the configured timeout is the deadline),
  and a call it makes in turn to a second server inherits it, so that one sees less.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from abc import abstractmethod
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from rawhttp import wait_until
from warpcall import (
    AbstractComponent,
    ChannelAddress,
    Component,
    ComponentRegistry,
    DeadlineExceeded,
    FastAPIServer,
    LocalComponentRegistry,
    Service,
    ServiceManager,
    ServiceModule,
    component,
    deadline,
    get,
    remaining,
    rest,
    service,
)
from warpcall.channels._httpx_transport import AsyncWarpTransport, WarpTransport
from warpcall.di import Environment, create, module
from warpcall.di.configuration import ConfigurationSource

CHANNELS = ["dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest"]
#: a hang's upper bound past the deadline: max(0.5 s, 50 %) of these sub-second deadlines (issue 19), not a speed
#: assertion; tests/timing run beside a CPU burner (scripts/burn_check.sh) to keep it honest on a loaded machine
SLACK = 0.5
TRICKLE_BYTES = 100  # at 0.1 s each: the trickle ends after 10 s whatever the client does


@service(name="slow")
@rest("/slow")
class SlowService(Service):
    @get("/sync")
    @abstractmethod
    def slow(self) -> int: ...

    @get("/async")
    @abstractmethod
    async def slow_async(self) -> int: ...


@component(name="deadline-slow", services=[SlowService])
class SlowComponent(Component):
    pass


@service(name="clock")
@rest("/clock")
class ClockService(Service):
    @get("/left")
    @abstractmethod
    def left(self) -> float:
        """The seconds the call had left when it started here (-1: no deadline)."""

    @get("/left-async")
    @abstractmethod
    async def left_async(self) -> float: ...


@component(name="deadline-b", services=[ClockService])
class ClockComponent(Component):
    pass


@service(name="nested")
@rest("/nested")
class NestedService(Service):
    @get("/sync")
    @abstractmethod
    def nested(self) -> list[float]:
        """[the time left here, the time left the call made from here to deadline-b saw]."""

    @get("/async")
    @abstractmethod
    async def nested_async(self) -> list[float]: ...


@component(name="deadline-a", services=[NestedService])
class NestedComponent(Component):
    pass


def _left() -> float:
    left = remaining()
    return -1.0 if left is None else left


class ClockServiceImpl(ClockService):
    def left(self) -> float:
        return _left()

    async def left_async(self) -> float:
        return _left()


#: deadline-b's proxy for the implementation of deadline-a (set once the servers run)
INNER: dict[str, Any] = {}


class NestedServiceImpl(NestedService):
    def nested(self) -> list[float]:
        here = _left()
        return [here, INNER["clock"].left()]

    async def nested_async(self) -> list[float]:
        here = _left()
        return [here, await INNER["clock"].left_async()]


class ClockComponentImpl(AbstractComponent, ClockComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress(name, f"http://127.0.0.1:{port}") for name in CHANNELS]


class NestedComponentImpl(AbstractComponent, NestedComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress(name, f"http://127.0.0.1:{port}") for name in CHANNELS]


@module(imports=[ServiceModule])
class ClockModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_component(self) -> ClockComponentImpl:
        return ClockComponentImpl()

    @create()
    def create_service(self) -> ClockServiceImpl:
        return ClockServiceImpl()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry)


@module(imports=[ServiceModule])
class NestedModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_component(self) -> NestedComponentImpl:
        return NestedComponentImpl()

    @create()
    def create_service(self) -> NestedServiceImpl:
        return NestedServiceImpl()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry)


class Trickler:
    """A raw HTTP/1.1 server on 127.0.0.1 that reads a request, answers a head announcing 1000 bytes and then
    sends one byte every 0.1 s (at most TRICKLE_BYTES). Records each request's ``x-rpc-timeout`` and counts
    the connections the client closed."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.timeouts: list[str | None] = []
        self.closed_by_client = 0
        self.stopping = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:  # the accept timeout (to see stopping), or the listener closed
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5.0)
        with conn:
            data = b""
            try:
                while b"\r\n\r\n" not in data and len(data) < 65536:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
            except OSError:
                return
            head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            values = [line.split(":", 1)[1].strip() for line in head[1:] if line.lower().startswith("x-rpc-timeout:")]
            self.timeouts.append(values[0] if values else None)
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n")
                for _ in range(TRICKLE_BYTES):
                    if self.stopping.wait(0.1):
                        return
                    conn.sendall(b" ")
            except OSError:
                self.closed_by_client += 1  # the client gave up on the exchange and closed its end

    def stop(self) -> None:
        self.stopping.set()
        self.listener.close()


class Settings(ConfigurationSource):
    values: dict[str, Any] = {}

    def load(self) -> dict[str, Any]:
        return Settings.values


def client(registrations: dict[str, str], settings: dict[str, Any]) -> Environment:
    """A client environment knowing each component at its URL on every channel."""
    Settings.values = settings

    @module(imports=[ServiceModule])
    class ClientModule:
        @create()
        def create_registry(self) -> ComponentRegistry:
            registry = LocalComponentRegistry()
            for name, url in registrations.items():
                registry.register_remote(name, [ChannelAddress(channel, url) for channel in CHANNELS])
            return registry

        @create()
        def create_settings(self) -> Settings:
            return Settings()

    return Environment(ClientModule)


@pytest.fixture(scope="module")
def trickler() -> Iterator[Trickler]:
    server = Trickler()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str]]:
    """(deadline-a's URL, deadline-b's URL): two warpcall servers; a's implementation calls b."""
    b = FastAPIServer.boot(ClockModule, host="127.0.0.1", port=0)
    a = FastAPIServer.boot(NestedModule, host="127.0.0.1", port=0)
    inner = client({"deadline-b": b.get(FastAPIServer).url}, {})
    try:
        INNER["clock"] = inner.get(ServiceManager).get_service(ClockService, "dispatch-json")
        yield a.get(FastAPIServer).url, b.get(FastAPIServer).url
    finally:
        INNER.clear()
        inner.destroy()
        a.destroy()
        b.destroy()


def call(proxy: Any, kind: str) -> Any:
    if kind == "sync":
        return proxy.slow()
    return asyncio.run(proxy.slow_async())


def warm(proxy: Any, kind: str) -> None:
    """Prepare the channel outside the timed call (protobuf builds its messages on a channel's first call, up
    to a second on a loaded machine, before the exchange the deadline bounds): a call whose deadline has
    passed prepares, then raises without sending anything."""
    with pytest.raises(DeadlineExceeded, match="had passed before it was sent"), deadline(1e-6):
        call(proxy, kind)


def _expect_deadline(trickler: Trickler, proxy: Any, kind: str, seconds: float, block: bool) -> None:
    warm(proxy, kind)
    closed = trickler.closed_by_client
    began = time.monotonic()
    with pytest.raises(DeadlineExceeded) as info:
        if block:
            with deadline(seconds):
                call(proxy, kind)
        else:
            call(proxy, kind)
    took = time.monotonic() - began
    assert took <= seconds + SLACK, f"the call took {took:.2f} s past a {seconds} s deadline"
    message = str(info.value)
    assert "deadline-slow:slow:slow" in message, message
    given = re.search(r"deadline exceeded: ([0-9.]+) s given", message)
    assert given is not None and 0 < float(given.group(1)) <= seconds, message
    # the connection was discarded: the trickler's next write meets the closed socket
    # the trickler sees the close on its next write or the one after (every 0.1 s)
    wait_until(lambda: trickler.closed_by_client > closed, timeout=1.0, what="the client closing the connection")


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("name", CHANNELS)
def test_a_trickling_server_cannot_hold_a_call_past_its_deadline(trickler: Trickler, name: str, kind: str) -> None:
    environment = client({"deadline-slow": trickler.url}, {})
    try:
        proxy = environment.get(ServiceManager).get_service(SlowService, name)
        _expect_deadline(trickler, proxy, kind, 0.4, block=True)
        sent = trickler.timeouts[-1]
        assert sent is not None and sent.isdigit() and 0 < int(sent) <= 400, sent  # what was left when sent
    finally:
        environment.destroy()


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("name", CHANNELS)
def test_the_configured_timeout_is_the_deadline_of_the_whole_call(trickler: Trickler, name: str, kind: str) -> None:
    # per-channel key over the global one, as for every http.* setting
    environment = client({"deadline-slow": trickler.url}, {"http": {"timeout": 5.0, name: {"timeout": 0.5}}})
    try:
        proxy = environment.get(ServiceManager).get_service(SlowService, name)
        _expect_deadline(trickler, proxy, kind, 0.5, block=False)
        sent = trickler.timeouts[-1]
        assert sent is not None and 0 < int(sent) <= 500, sent
    finally:
        environment.destroy()


def test_a_deadline_already_passed_sends_nothing(trickler: Trickler) -> None:
    environment = client({"deadline-slow": trickler.url}, {})
    try:
        proxy = environment.get(ServiceManager).get_service(SlowService, "dispatch-json")
        requests = len(trickler.timeouts)
        with deadline(0.0), pytest.raises(DeadlineExceeded, match="deadline-slow:slow:slow.*had passed"):
            proxy.slow()
        with deadline(-1.0), pytest.raises(DeadlineExceeded, match="had passed"):
            asyncio.run(proxy.slow_async())
        assert len(trickler.timeouts) == requests
    finally:
        environment.destroy()


def test_the_httpx_transports_bound_the_exchange_by_the_deadline_in_force(trickler: Trickler) -> None:
    closed = trickler.closed_by_client
    with httpx.Client(transport=WarpTransport(), timeout=5.0) as http:
        began = time.monotonic()
        with deadline(0.4), pytest.raises(httpx.ReadTimeout, match="deadline"):
            http.get(trickler.url + "/x")
        assert time.monotonic() - began <= 0.4 + SLACK
    assert trickler.timeouts[-1] is not None and 0 < int(trickler.timeouts[-1]) <= 400

    async def async_call() -> None:
        async with httpx.AsyncClient(transport=AsyncWarpTransport(), timeout=5.0) as http:
            with deadline(0.4):
                await http.get(trickler.url + "/x")

    began = time.monotonic()
    with pytest.raises(httpx.ReadTimeout, match="deadline"):
        asyncio.run(async_call())
    assert time.monotonic() - began <= 0.4 + SLACK
    wait_until(lambda: trickler.closed_by_client >= closed + 2, timeout=1.0, what="both connections closed")


def test_the_httpx_transports_take_the_keepalive_expiry() -> None:
    assert WarpTransport(keepalive_expiry=1.5).client.keepalive_expiry == 1.5
    assert AsyncWarpTransport(keepalive_expiry=0.75).client.keepalive_expiry == 0.75


def test_an_advised_channel_sends_the_deadline_and_honours_it(trickler: Trickler) -> None:
    """A channel whose httpx client an advice (here: a subclass) replaces: header and deadline still apply."""
    environment = client({"deadline-slow": trickler.url}, {"http": {"keepalive_expiry": 1.25}})
    try:
        manager = environment.get(ServiceManager)
        proxy = manager.get_service(SlowService, "dispatch-json")
        channel = manager._channels[("deadline-slow", "dispatch-json")]
        made = channel.make_client()  # what an advice wrapping make_client gets to work on
        assert made._transport.client.keepalive_expiry == 1.25
        channel._direct = None  # as when advice replaced make_client: the httpx client is used
        channel._client = made
        _expect_deadline(trickler, proxy, "sync", 0.4, block=True)
        assert trickler.timeouts[-1] is not None and 0 < int(trickler.timeouts[-1]) <= 400
    finally:
        environment.destroy()


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("name", CHANNELS)
def test_the_server_sees_the_time_left_and_nested_calls_inherit_it(
    servers: tuple[str, str], name: str, kind: str
) -> None:
    a_url, b_url = servers
    environment = client({"deadline-a": a_url, "deadline-b": b_url}, {})
    try:
        manager = environment.get(ServiceManager)
        clock = manager.get_service(ClockService, name)
        nested = manager.get_service(NestedService, name)
        run = (lambda f: f()) if kind == "sync" else (lambda f: asyncio.run(f()))
        left = (lambda: clock.left()) if kind == "sync" else clock.left_async
        twice = (lambda: nested.nested()) if kind == "sync" else nested.nested_async

        with deadline(3.0):
            seen = run(left)
        assert 0 < seen <= 3.0
        # no deadline() block: the configured timeout (http.timeout, 10 s) is the call's deadline, sent too
        seen = run(left)
        assert 3.0 < seen <= 10.0
        with deadline(3.0):
            here, there = run(twice)
        assert 0 < there < here <= 3.0  # deadline-a's own call to deadline-b had less left
    finally:
        environment.destroy()
