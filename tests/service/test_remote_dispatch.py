"""Remote calls over the dispatch channels against a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from abc import abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Optional

import httpx
import msgpack
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from warpcall import (
    AbstractComponent,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    LocalComponentRegistry,
    MarshalException,
    RemoteServiceException,
    Service,
    ServiceCommunicationException,
    ServiceManager,
    ServiceModule,
    UnknownMethodException,
    component,
    implementation,
    service,
)
from warpcall.core import proxy as core_proxy
from warpcall.di import create, module

CHANNELS = ["dispatch-json", "dispatch-msgpack", "dispatch-protobuf"]


class Color(Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Line:
    sku: str
    quantity: int
    color: Color = Color.RED


@dataclass
class Order:
    id: int
    placed: datetime
    lines: list[Line] = field(default_factory=list)
    note: Optional[str] = None


class Customer(BaseModel):
    name: str
    vip: bool
    tags: list[str] = []


class PaymentDeclined(RuntimeError):
    pass


@service(name="orders")
class OrderService(Service):
    @abstractmethod
    def hello(self, name: str) -> str: ...

    @abstractmethod
    def echo(self, order: Order) -> Order: ...

    @abstractmethod
    def customer(self, customer: Customer, suffix: str = "!") -> Customer: ...

    @abstractmethod
    def maybe(self, value: Optional[int]) -> Optional[int]: ...

    @abstractmethod
    def pay(self, amount: float) -> bool: ...

    @abstractmethod
    def slow(self, seconds: float) -> float: ...

    @abstractmethod
    def broken_result(self) -> int: ...

    @abstractmethod
    async def echo_async(self, order: Order) -> Order: ...

    @abstractmethod
    async def pay_async(self, amount: float) -> bool: ...


@component(name="shop", services=[OrderService])
class ShopComponent(Component):
    pass


CALLS: list[str] = []


@implementation()
class OrderServiceImpl(OrderService):
    def __init__(self) -> None:
        self.secret = "not reachable"

    def hello(self, name: str) -> str:
        CALLS.append("hello")
        return f"hello {name}"

    def echo(self, order: Order) -> Order:
        assert isinstance(order, Order) and isinstance(order.lines[0], Line) if order.lines else True
        return order

    def customer(self, customer: Customer, suffix: str = "!") -> Customer:
        return Customer(name=customer.name + suffix, vip=not customer.vip, tags=[*customer.tags, "seen"])

    def maybe(self, value: Optional[int]) -> Optional[int]:
        return None if value is None else value * 2

    def pay(self, amount: float) -> bool:
        if amount > 100:
            raise PaymentDeclined(f"{amount} is over the limit")
        return True

    def slow(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    def broken_result(self) -> int:
        return "not an int"  # type: ignore[return-value]

    async def echo_async(self, order: Order) -> Order:
        await asyncio.sleep(0)
        return order

    async def pay_async(self, amount: float) -> bool:
        return self.pay(amount)

    def _private(self) -> str:
        return self.secret


@implementation()
class ShopComponentImpl(AbstractComponent, ShopComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress(name, f"http://127.0.0.1:{port}") for name in CHANNELS]


def make_app() -> FastAPI:
    """A user app with a route of its own; no middleware, so /invoke takes the server's fast path."""
    app = FastAPI()

    @app.get("/own")
    def own() -> dict[str, str]:
        return {"route": "own"}

    return app


@module(imports=[ServiceModule])
class RemoteModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(make_app(), manager, registry, max_body=64 * 1024)


@pytest.fixture(scope="module")
def environment():
    threads_before = {t.ident for t in threading.enumerate()}
    environment = FastAPIServer.boot(RemoteModule, host="127.0.0.1", port=0)
    yield environment
    environment.destroy()
    # no uvicorn or registry thread survives destroy
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        leftover = [t for t in threading.enumerate() if t.ident not in threads_before and t.name.startswith("warpcall")]
        if not leftover:
            break
        time.sleep(0.05)
    assert not leftover, leftover


@pytest.fixture(scope="module")
def server(environment) -> FastAPIServer:
    return environment.get(FastAPIServer)


@pytest.fixture(scope="module")
def manager(environment) -> ServiceManager:
    return environment.get(ServiceManager)


ORDER = Order(
    id=7,
    placed=datetime(2026, 11, 23, 12, 30, tzinfo=timezone.utc),
    lines=[Line("tea", 2), Line("cup", 1, Color.BLUE)],
    note="gift",
)


@pytest.mark.parametrize("channel", CHANNELS)
def test_sync_calls_roundtrip_declared_types(manager, channel):
    orders = manager.get_service(OrderService, channel)
    assert isinstance(orders, OrderService)
    assert orders.hello("world") == "hello world"
    echoed = orders.echo(ORDER)
    assert echoed == ORDER and isinstance(echoed.lines[1].color, Color)
    assert orders.customer(Customer(name="ada", vip=False, tags=["a"])) == Customer(name="ada!", vip=True, tags=["a", "seen"])
    assert orders.customer(Customer(name="bob", vip=True), suffix="?").name == "bob?"
    assert orders.maybe(None) is None
    assert orders.maybe(0) == 0
    assert orders.maybe(21) == 42


@pytest.mark.parametrize("channel", CHANNELS)
def test_async_calls_roundtrip(manager, channel):
    orders = manager.get_service(OrderService, channel)

    async def main() -> Order:
        return await orders.echo_async(ORDER)

    assert asyncio.run(main()) == ORDER
    # the same proxy from a second event loop: pooled connections belong to their loop
    assert asyncio.run(main()) == ORDER


@pytest.mark.parametrize("channel", CHANNELS)
def test_remote_exception_carries_type_and_message(manager, channel):
    orders = manager.get_service(OrderService, channel)
    with pytest.raises(RemoteServiceException) as info:
        orders.pay(250.0)
    assert info.value.remote_type == "PaymentDeclined"
    assert info.value.remote_message == "250.0 is over the limit"
    assert "shop:orders:pay" in str(info.value)
    assert "Traceback" not in str(info.value)
    with pytest.raises(RemoteServiceException, match="over the limit"):
        asyncio.run(orders.pay_async(500.0))
    assert orders.pay(1.0) is True


def test_implementation_exception_is_the_outcome_and_a_bad_result_is_the_servers_fault(server, manager):
    raised = invoke(server, b'{"method": "shop:orders:pay", "args": [1000]}')
    assert raised.status_code == 200  # as aspyx-service answers, so its clients read the message too
    assert raised.json()["exception"] == {"type": "PaymentDeclined", "message": "1000.0 is over the limit"}
    broken = invoke(server, b'{"method": "shop:orders:broken_result", "args": []}')
    assert broken.status_code == 500
    assert broken.json()["exception"]["type"] == "MarshalException"
    for channel in CHANNELS:
        with pytest.raises(RemoteServiceException) as info:
            manager.get_service(OrderService, channel).broken_result()
        assert info.value.remote_type == "MarshalException"


def test_keyword_arguments_are_sent_positionally(manager):
    orders = manager.get_service(OrderService, "dispatch-json")
    assert orders.customer(customer=Customer(name="kw", vip=False), suffix="#").name == "kw#"
    with pytest.raises(TypeError, match="customer"):
        orders.customer()


def invoke(server: FastAPIServer, content: bytes, content_type: str = "application/json", **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/invoke", content=content, headers={"content-type": content_type}, timeout=5, **kwargs)


@pytest.mark.parametrize(
    ("body", "status", "kind", "message"),
    [
        (b"{oops", 400, "MalformedRequestException", "request body is not valid JSON"),
        (b'{"args": []}', 400, "MalformedRequestException", "request envelope has no 'method'"),
        (b'{"method": "shop:orders", "args": []}', 400, "MalformedRequestException", "'method' must look like"),
        (b'{"method": "shop:orders:nope", "args": []}', 404, "UnknownMethodException", "no registered service declares 'shop:orders:nope'"),
        (b'{"method": "shop:orders:__init__", "args": []}', 404, "UnknownMethodException", "shop:orders:__init__"),
        (b'{"method": "shop:orders:_private", "args": []}', 404, "UnknownMethodException", "shop:orders:_private"),
        (b'{"method": "shop:other:hello", "args": ["x"]}', 404, "UnknownMethodException", "shop:other:hello"),
        (b'{"method": "shop:orders:hello", "args": []}', 422, "InvalidArgumentsException", "shop:orders:hello takes 1 argument(s), got 0"),
        (b'{"method": "shop:orders:hello", "args": ["a", "b"]}', 422, "InvalidArgumentsException", "takes 1 argument(s), got 2"),
        (b'{"method": "shop:orders:hello", "args": [5]}', 422, "InvalidArgumentsException", "shop:orders:hello"),
        (b'{"method": "shop:orders:echo", "args": [{"id": "seven"}]}', 422, "InvalidArgumentsException", "Order"),
    ],
)
def test_bad_requests_get_a_4xx_and_never_reach_the_implementation(server, body, status, kind, message):
    CALLS.clear()
    response = invoke(server, body)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    envelope = response.json()
    assert envelope["result"] is None
    assert envelope["exception"]["type"] == kind
    assert message in envelope["exception"]["message"]
    assert CALLS == []
    assert invoke(server, b'{"method": "shop:orders:hello", "args": ["still"]}').json()["result"] == "hello still"


def test_msgpack_errors_answer_in_msgpack(server):
    response = invoke(server, b"\xc1", "application/msgpack")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/msgpack"
    assert msgpack.unpackb(response.content)["exception"]["type"] == "MalformedRequestException"


def test_oversized_body_is_rejected_with_413(server):
    body = b'{"method": "shop:orders:hello", "args": ["' + b"x" * (65 * 1024) + b'"]}'
    response = invoke(server, body)
    assert response.status_code == 413
    assert "exceeds the limit of 65536 bytes" in response.json()["exception"]["message"]


def test_unsupported_content_type_is_415(server):
    response = invoke(server, b"hello", "text/plain")
    assert response.status_code == 415
    assert "content type 'text/plain' is not supported" in response.json()["exception"]["message"]


def test_a_sync_method_seen_blocking_moves_to_the_thread_pool(server, manager):
    from concurrent.futures import ThreadPoolExecutor

    orders = manager.get_service(OrderService, "dispatch-json")
    assert orders.hello("fast") == "hello fast"
    assert not server.endpoint.methods["shop:orders:hello"].offload
    orders.slow(0.05)
    assert server.endpoint.methods["shop:orders:slow"].offload
    # while a slow call runs in the pool, the event loop keeps answering others
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(orders.slow, 0.6)
        time.sleep(0.1)
        started = time.monotonic()
        assert orders.hello("quick") == "hello quick"
        assert time.monotonic() - started < 0.4
        assert pending.result(timeout=5) == 0.6


def test_sync_calls_mode_is_checked():
    from warpcall.server.dispatch import SyncCalls

    with pytest.raises(ValueError, match="sync_calls must be one of"):
        SyncCalls("sometimes")


def test_user_routes_are_served_beside_invoke(server):
    assert httpx.get(f"{server.url}/own", timeout=5).json() == {"route": "own"}


def test_get_on_invoke_is_rejected(server):
    response = httpx.get(f"{server.url}/invoke", timeout=5)
    assert response.status_code == 405


def test_arguments_that_do_not_fit_fail_before_sending(manager):
    orders = manager.get_service(OrderService, "dispatch-msgpack")
    with pytest.raises(MarshalException, match="shop:orders:hello: argument 'name': .*expected str, got int"):
        orders.hello(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("channel", CHANNELS)
def test_caller_errors_raise_their_exception_type_through_the_channel(manager, channel):
    """A server rejecting a call (here: a method it does not declare) raises the caller-side exception type."""
    manager.get_service(OrderService, channel)
    http_channel = manager._channels[("shop", channel)]

    def vanished(self: Any, name: str) -> str: ...

    descriptor = core_proxy.MethodDescriptor.from_function(vanished)
    descriptor.qualified = "shop:orders:vanished"
    with pytest.raises(UnknownMethodException, match="no registered service declares 'shop:orders:vanished'"):
        http_channel.invoke(core_proxy.Invocation(descriptor, ("x",), None))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("channel", CHANNELS)
def test_connection_refused_names_the_url(manager, channel):
    proxy = manager.get_service(OrderService, channel)
    http_channel = manager._channels[("shop", channel)]
    dead = f"http://127.0.0.1:{free_port()}"
    original = list(http_channel.selector.urls)
    http_channel.selector.set_urls([dead])
    try:
        with pytest.raises(ServiceCommunicationException, match=dead):
            proxy.hello("nobody")
        with pytest.raises(ServiceCommunicationException, match=dead):
            asyncio.run(proxy.echo_async(ORDER))
    finally:
        http_channel.selector.set_urls(original)
    assert proxy.hello("again") == "hello again"


def test_timeouts_raise_communication_errors(manager):
    proxy = manager.get_service(OrderService, "dispatch-json")
    http_channel = manager._channels[("shop", "dispatch-json")]
    timeout = http_channel.timeout
    http_channel.timeout = 0.2
    try:
        started = time.monotonic()
        with pytest.raises(ServiceCommunicationException, match="Timeout"):
            proxy.slow(2.0)
        assert time.monotonic() - started < 1.5
    finally:
        http_channel.timeout = timeout
    assert proxy.slow(0.0) == 0.0


@pytest.mark.parametrize("channel", CHANNELS)
def test_same_url_list_object_updates_channels_in_place(manager, channel):
    proxy = manager.get_service(OrderService, channel)
    http_channel = manager._channels[("shop", channel)]
    from warpcall import ChannelInstances

    urls = list(http_channel.selector.urls)
    http_channel.set_address(ChannelInstances("shop", channel, []))
    with pytest.raises(ServiceCommunicationException, match="no URL available"):
        proxy.hello("x")
    http_channel.set_address(ChannelInstances("shop", channel, urls))
    assert manager._channels[("shop", channel)] is http_channel
    assert proxy.hello("x") == "hello x"
