"""An aspyx-service server for the protobuf interop tests: ``python pb_server.py PORT``.

Serves component ``pbinterop`` on 127.0.0.1:PORT over aspyx-service's dispatch-protobuf
(its ``ProtobufChannel``), prints ``READY`` once uvicorn accepts connections, and
shuts down when its stdin closes.
"""

import sys

from _harness import ServerModuleBase, loopback_addresses, serve
from aspyx.di import module
from aspyx_service import AbstractComponent, ChannelAddress, ServiceModule, implementation
from contract import Address, Customer, Item, Parcel
from pb_contract import CHANNELS, PbInteropComponent, PbParcelService, Sample

SIDE = "aspyx"


def weighed(parcel: Parcel) -> Parcel:
    return Parcel(
        id=parcel.id,
        weight=parcel.weight * 2,
        fragile=not parcel.fragile,
        label=parcel.label.upper(),
        tags=[*parcel.tags, "weighed"],
        items=[*parcel.items, Item(sku=f"stamp-{len(parcel.items)}", quantity=parcel.items[0].quantity + 1)],
        note=f"weighed by {SIDE}",
    )


def mirrored(sample: Sample) -> Sample:
    # the color arrives as the str aspyx-service reads from its string field; it goes back as it came
    return Sample(
        count=sample.count + 1,
        ratio=sample.ratio * 2,
        flag=not sample.flag,
        blob=sample.blob + b"!",
        color=sample.color,
        names=[*sample.names, SIDE],
        counts=[*sample.counts, len(sample.counts)],
        note=f"mirrored by {SIDE}; color arrived as {type(sample.color).__name__}",
    )


@implementation()
class PbParcelServiceImpl(PbParcelService):
    def hello(self, name: str) -> str:
        return f"hello {name} from {SIDE}"

    def weigh(self, parcel: Parcel) -> Parcel:
        return weighed(parcel)

    def upgrade(self, customer: Customer) -> Customer:
        return Customer(
            name=customer.name + " (vip)",
            vip=True,
            score=customer.score + 1.5,
            tags=[*customer.tags, f"upgraded-by-{SIDE}"],
            address=Address(street=customer.address.street, city=customer.address.city.upper()),
        )

    def mirror(self, sample: Sample) -> Sample:
        return mirrored(sample)

    def fail(self, reason: str) -> str:
        raise ValueError(f"refused by {SIDE}: {reason}")

    def fail_parcel(self, reason: str) -> Parcel:
        raise ValueError(f"refused by {SIDE}: {reason}")

    def stamp(self, when) -> str:
        return f"{type(when).__name__} {when}"

    async def weigh_async(self, parcel: Parcel) -> Parcel:
        return weighed(parcel)

    async def mirror_async(self, sample: Sample) -> Sample:
        return mirrored(sample)

    async def fail_async(self, reason: str) -> str:
        raise ValueError(f"refused by {SIDE} (async): {reason}")


@implementation()
class PbInteropComponentImpl(AbstractComponent, PbInteropComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return loopback_addresses(port, CHANNELS)


@module(imports=[ServiceModule])
class PbServerModule(ServerModuleBase):
    pass


if __name__ == "__main__":
    sys.exit(serve(PbServerModule))
