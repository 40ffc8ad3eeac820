"""An aspyx-service client for the interop tests: ``python client.py URL``.

Calls component ``interop`` at URL over dispatch-json and dispatch-msgpack and
prints one line ``RESULT <json>``: per channel and call, what came back (value
and rebuilt types) or what was raised (type and message).
"""

import dataclasses
import json
import sys
from functools import partial
from typing import Any, Callable

from aspyx.di import Environment, create, module
from aspyx_service import (
    ChannelInstances,
    ComponentRegistry,
    RemoteServiceException,
    ServiceManager,
    ServiceModule,
    SessionManager,
)
from contract import CHANNELS, Address, Customer, Item, Parcel, ParcelService

CALL_TIMEOUT = 10.0

#: set from the command line before the environment is built
TARGET_URL = ""


class FixedURLRegistry(ComponentRegistry):
    """Answers every lookup with TARGET_URL on both dispatch channels; registers nothing."""

    def register(self, descriptor, addresses) -> None:
        pass

    def deregister(self, descriptor) -> None:
        pass

    def watch(self, channel) -> None:
        pass

    def get_addresses(self, descriptor) -> list[ChannelInstances]:
        return [ChannelInstances(descriptor.name, channel, [TARGET_URL]) for channel in CHANNELS]


@module(imports=[ServiceModule])
class ClientModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return FixedURLRegistry()

    @create()
    def create_session_storage(self) -> SessionManager.Storage:
        # aspyx-service's ServiceModule needs one, even when no session is used
        return SessionManager.InMemoryStorage()


PARCEL = Parcel(
    id=7,
    weight=2.5,
    fragile=True,
    label="books",
    tags=["a", "ü"],
    items=[Item(sku="b-1", quantity=3)],
)
CUSTOMER = Customer(
    name="ada",
    vip=False,
    score=3.25,
    tags=["early"],
    address=Address(street="1 Loop Rd", city="Lisbon"),
)


def outcome(call: Callable[[], Any], describe: Callable[[Any], dict]) -> dict:
    try:
        return {"ok": True, **describe(call())}
    except Exception as exc:  # reported to the test, which asserts on it
        return {
            "ok": False,
            "error_type": type(exc).__name__,
            "is_remote_service_exception": isinstance(exc, RemoteServiceException),
            "message": str(exc),
        }


def describe_parcel(parcel: Any) -> dict:
    return {
        "type": type(parcel).__name__,
        "item_types": [type(item).__name__ for item in parcel.items],
        "value": dataclasses.asdict(parcel),
    }


def describe_customer(customer: Any) -> dict:
    return {
        "type": type(customer).__name__,
        "address_type": type(customer.address).__name__,
        "value": customer.model_dump(),
    }


def main() -> int:
    global TARGET_URL
    TARGET_URL = sys.argv[1]
    environment = Environment(ClientModule)
    manager = environment.get(ServiceManager)
    results = {}
    try:
        for channel in CHANNELS:
            proxy = manager.get_service(ParcelService, preferred_channel=channel)
            for instance in manager.channel_cache.values():
                instance.timeout = CALL_TIMEOUT  # aspyx defaults to 1000 s
            results[channel] = {
                "hello": outcome(partial(proxy.hello, "aspyx client"), lambda value: {"value": value}),
                "weigh": outcome(partial(proxy.weigh, PARCEL), describe_parcel),
                "upgrade": outcome(partial(proxy.upgrade, CUSTOMER), describe_customer),
                "fail": outcome(partial(proxy.fail, "too heavy"), lambda value: {"value": value}),
            }
    finally:
        environment.destroy()
    print("RESULT " + json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
