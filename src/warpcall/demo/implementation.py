"""The implementation side of the demo: what the server process hosts."""

from __future__ import annotations

import threading

from warpcall import AbstractComponent, ChannelAddress, health, implementation
from warpcall.demo.example import DemoComponent, GreeterService, Order, Receipt

REMOTE_CHANNELS = ("dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest")


class CallCounter:
    """How many calls this process's implementation answered: the demo's server reports it when it stops,
    and the demo compares it with the calls its client made, so a call that reached another server (or
    came from another client) is noticed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self) -> None:
        with self._lock:  # sync methods run on worker threads
            self.value += 1


answered = CallCounter()


@implementation()
class GreeterServiceImpl(GreeterService):
    """Implements the demo service."""

    def hello(self, name: str) -> str:
        answered.add()
        return f"hello {name}"

    def echo(self, order: Order) -> Order:
        answered.add()
        return order

    def price(self, order: Order) -> Receipt:
        answered.add()
        return Receipt(order_id=order.id, total=9.5 * len(order.items), lines=len(order.items))

    async def hello_async(self, name: str) -> str:
        answered.add()
        return f"hello {name}, asynchronously"


@implementation()
@health("/health")
class DemoComponentImpl(AbstractComponent, DemoComponent):
    """Exposes the demo component on every remote channel, on loopback."""

    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress(name, f"http://127.0.0.1:{port}") for name in REMOTE_CHANNELS]
