"""An aspyx-service client for the protobuf interop tests: ``python pb_client.py URL``.

Calls component ``pbinterop`` at URL over aspyx-service's dispatch-protobuf (its
``ProtobufChannel``), sync methods and async ones (in one event loop: aspyx-service's
async clients break once their first loop closes), and prints one line
``RESULT <json>``: per call, what came back (value and rebuilt types) or what was
raised (type and message).
"""

import asyncio
import base64
import dataclasses
import json
import sys
from datetime import datetime
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
from contract import Address, Customer, Item, Parcel
from pb_contract import CHANNELS, Color, PbParcelService, Sample

CALL_TIMEOUT = 10.0

#: set from the command line before the environment is built
TARGET_URL = ""


class FixedURLRegistry(ComponentRegistry):
    """Answers every lookup with TARGET_URL on dispatch-protobuf; registers nothing."""

    def register(self, descriptor, addresses) -> None:
        pass

    def deregister(self, descriptor) -> None:
        pass

    def watch(self, channel) -> None:
        pass

    def get_addresses(self, descriptor) -> list[ChannelInstances]:
        return [ChannelInstances(descriptor.name, channel, [TARGET_URL]) for channel in CHANNELS]


@module(imports=[ServiceModule])
class PbClientModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return FixedURLRegistry()

    @create()
    def create_session_storage(self) -> SessionManager.Storage:
        # aspyx-service's ServiceModule needs one, even when no session is used
        return SessionManager.InMemoryStorage()


PARCEL = Parcel(id=7, weight=2.5, fragile=True, label="books", tags=["a", "ü"], items=[Item(sku="b-1", quantity=3)])
CUSTOMER = Customer(name="ada", vip=False, score=3.25, tags=["early"], address=Address(street="1 Loop Rd", city="Lisbon"))
SAMPLE = Sample(
    count=-5, ratio=0.75, flag=True, blob=b"\x00\xff", color=Color.GREEN, names=["x", "ÿ"], counts=[1, -2, 2**31 - 1]
)
#: 2**31 is one past int32, the range aspyx-service declares ints in
TOO_BIG = dataclasses.replace(SAMPLE, count=2**31)


def jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"bytes": base64.b64encode(value).decode()}
    if isinstance(value, Color):
        return {"enum": value.value}
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [jsonable(item) for item in value]
    return value


def failed(exc: Exception) -> dict:
    return {
        "ok": False,
        "error_type": type(exc).__name__,
        "is_remote_service_exception": isinstance(exc, RemoteServiceException),
        "message": str(exc),
    }


def outcome(call: Callable[[], Any], describe: Callable[[Any], dict]) -> dict:
    try:
        return {"ok": True, **describe(call())}
    except Exception as exc:  # reported to the test, which asserts on it
        return failed(exc)


async def outcome_async(call: Callable[[], Any], describe: Callable[[Any], dict]) -> dict:
    try:
        return {"ok": True, **describe(await call())}
    except Exception as exc:  # reported to the test, which asserts on it
        return failed(exc)


def describe_parcel(parcel: Any) -> dict:
    return {
        "type": type(parcel).__name__,
        "item_types": [type(item).__name__ for item in parcel.items or []],
        "value": jsonable(dataclasses.asdict(parcel)),
    }


def describe_customer(customer: Any) -> dict:
    return {"type": type(customer).__name__, "address_type": type(customer.address).__name__,
            "value": customer.model_dump()}


def describe_sample(sample: Any) -> dict:
    return {"type": type(sample).__name__, "color_type": type(sample.color).__name__,
            "value": jsonable(dataclasses.asdict(sample))}


def plain(value: Any) -> dict:
    return {"value": value}


async def async_calls(proxy: Any) -> dict:
    return {
        "weigh_async": await outcome_async(partial(proxy.weigh_async, PARCEL), describe_parcel),
        "mirror_async": await outcome_async(partial(proxy.mirror_async, SAMPLE), describe_sample),
        "fail_async": await outcome_async(partial(proxy.fail_async, "too heavy"), plain),
    }


def main() -> int:
    global TARGET_URL
    TARGET_URL = sys.argv[1]
    environment = Environment(PbClientModule)
    manager = environment.get(ServiceManager)
    try:
        proxy = manager.get_service(PbParcelService, preferred_channel="dispatch-protobuf")
        for instance in manager.channel_cache.values():
            instance.timeout = CALL_TIMEOUT  # aspyx defaults to 1000 s
        results = {
            "hello": outcome(partial(proxy.hello, "aspyx client"), plain),
            "weigh": outcome(partial(proxy.weigh, PARCEL), describe_parcel),
            "upgrade": outcome(partial(proxy.upgrade, CUSTOMER), describe_customer),
            "mirror": outcome(partial(proxy.mirror, SAMPLE), describe_sample),
            "too_big": outcome(partial(proxy.mirror, TOO_BIG), describe_sample),
            "fail": outcome(partial(proxy.fail, "too heavy"), plain),
            "fail_parcel": outcome(partial(proxy.fail_parcel, "too heavy"), describe_parcel),
            "stamp": outcome(partial(proxy.stamp, datetime(2026, 12, 4, 1, 2, 3)), plain),
        }
        for instance in manager.channel_cache.values():
            instance.timeout = CALL_TIMEOUT
        results.update(asyncio.run(async_calls(proxy)))
    finally:
        environment.destroy()
    print("RESULT " + json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
