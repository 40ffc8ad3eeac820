"""The implementation side of the demo: what the server process hosts."""

from __future__ import annotations

from warpcall import AbstractComponent, ChannelAddress, health, implementation
from warpcall.demo.example import DemoComponent, GreeterService, Order, Receipt

REMOTE_CHANNELS = ("dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest")


@implementation()
class GreeterServiceImpl(GreeterService):
    """Implements the demo service."""

    def hello(self, name: str) -> str:
        return f"hello {name}"

    def echo(self, order: Order) -> Order:
        return order

    def price(self, order: Order) -> Receipt:
        return Receipt(order_id=order.id, total=9.5 * len(order.items), lines=len(order.items))

    async def hello_async(self, name: str) -> str:
        return f"hello {name}, asynchronously"


@implementation()
@health("/health")
class DemoComponentImpl(AbstractComponent, DemoComponent):
    """Exposes the demo component on every remote channel, on loopback."""

    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress(name, f"http://127.0.0.1:{port}") for name in REMOTE_CHANNELS]
