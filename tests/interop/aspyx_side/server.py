"""An aspyx-service server for the interop tests: ``python server.py PORT``.

Serves component ``interop`` on 127.0.0.1:PORT over dispatch-json and
dispatch-msgpack, prints ``READY`` once uvicorn accepts connections, and
shuts down when its stdin closes.
"""

import sys

from _harness import ServerModuleBase, loopback_addresses, serve
from aspyx.di import module
from aspyx_service import AbstractComponent, ChannelAddress, ServiceModule, implementation
from contract import CHANNELS, Address, Customer, InteropComponent, Item, Parcel, ParcelService

SIDE = "aspyx"


def stamp(parcel: Parcel) -> Item:
    return Item(sku=f"stamp-{len(parcel.items)}", quantity=parcel.items[0].quantity + 1)


@implementation()
class ParcelServiceImpl(ParcelService):
    def hello(self, name: str) -> str:
        return f"hello {name} from {SIDE}"

    def weigh(self, parcel: Parcel) -> Parcel:
        return Parcel(
            id=parcel.id,
            weight=parcel.weight * 2,
            fragile=not parcel.fragile,
            label=parcel.label.upper(),
            tags=[*parcel.tags, "weighed"],
            items=[*parcel.items, stamp(parcel)],
            note=f"weighed by {SIDE}",
        )

    def upgrade(self, customer: Customer) -> Customer:
        return Customer(
            name=customer.name + " (vip)",
            vip=True,
            score=customer.score + 1.5,
            tags=[*customer.tags, f"upgraded-by-{SIDE}"],
            address=Address(street=customer.address.street, city=customer.address.city.upper()),
        )

    def fail(self, reason: str) -> str:
        raise ValueError(f"refused by {SIDE}: {reason}")


@implementation()
class InteropComponentImpl(AbstractComponent, InteropComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return loopback_addresses(port, CHANNELS)


@module(imports=[ServiceModule])
class ServerModule(ServerModuleBase):
    pass


if __name__ == "__main__":
    sys.exit(serve(ServerModule))
