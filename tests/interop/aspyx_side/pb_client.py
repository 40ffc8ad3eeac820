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
import sys
from datetime import datetime
from functools import partial
from typing import Any

from _harness import ClientModuleBase, outcome, outcome_async, run_client, short_timeouts
from aspyx.di import module
from aspyx_service import ServiceManager, ServiceModule
from contract import Address, Customer, Item, Parcel
from pb_contract import CHANNELS, Color, PbParcelService, Sample


@module(imports=[ServiceModule])
class PbClientModule(ClientModuleBase):
    channels = CHANNELS


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


async def async_calls(proxy: Any) -> dict:
    return {
        "weigh_async": await outcome_async(partial(proxy.weigh_async, PARCEL), describe_parcel),
        "mirror_async": await outcome_async(partial(proxy.mirror_async, SAMPLE), describe_sample),
        "fail_async": await outcome_async(partial(proxy.fail_async, "too heavy")),
    }


def calls(manager: ServiceManager) -> dict:
    proxy = manager.get_service(PbParcelService, preferred_channel="dispatch-protobuf")
    short_timeouts(manager)
    results = {
        "hello": outcome(partial(proxy.hello, "aspyx client")),
        "weigh": outcome(partial(proxy.weigh, PARCEL), describe_parcel),
        "upgrade": outcome(partial(proxy.upgrade, CUSTOMER), describe_customer),
        "mirror": outcome(partial(proxy.mirror, SAMPLE), describe_sample),
        "too_big": outcome(partial(proxy.mirror, TOO_BIG), describe_sample),
        "fail": outcome(partial(proxy.fail, "too heavy")),
        "fail_parcel": outcome(partial(proxy.fail_parcel, "too heavy"), describe_parcel),
        "stamp": outcome(partial(proxy.stamp, datetime(2026, 12, 4, 1, 2, 3))),
    }
    short_timeouts(manager)
    results.update(asyncio.run(async_calls(proxy)))
    return results


if __name__ == "__main__":
    sys.exit(run_client(PbClientModule, calls))
