"""An aspyx-service client for the interop tests: ``python client.py URL``.

Calls component ``interop`` at URL over dispatch-json and dispatch-msgpack and
prints one line ``RESULT <json>``: per channel and call, what came back (value
and rebuilt types) or what was raised (type and message).
"""

import dataclasses
import sys
from functools import partial
from typing import Any

from _harness import ClientModuleBase, outcome, run_client, short_timeouts
from aspyx.di import module
from aspyx_service import ServiceManager, ServiceModule
from contract import CHANNELS, Address, Customer, Item, Parcel, ParcelService


@module(imports=[ServiceModule])
class ClientModule(ClientModuleBase):
    channels = CHANNELS


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


def calls(manager: ServiceManager) -> dict:
    results = {}
    for channel in CHANNELS:
        proxy = manager.get_service(ParcelService, preferred_channel=channel)
        short_timeouts(manager)
        results[channel] = {
            "hello": outcome(partial(proxy.hello, "aspyx client")),
            "weigh": outcome(partial(proxy.weigh, PARCEL), describe_parcel),
            "upgrade": outcome(partial(proxy.upgrade, CUSTOMER), describe_customer),
            "fail": outcome(partial(proxy.fail, "too heavy")),
        }
    return results


if __name__ == "__main__":
    sys.exit(run_client(ClientModule, calls))
