"""An aspyx-service server for the protobuf interop tests: ``python pb_server.py PORT``.

Serves component ``pbinterop`` on 127.0.0.1:PORT over aspyx-service's dispatch-protobuf
(its ``ProtobufChannel``), prints ``READY`` once uvicorn accepts connections, and
shuts down when its stdin closes.
"""

import sys

from _harness import ServerModuleBase, loopback_addresses, serve
from aspyx.di import module
from aspyx_service import AbstractComponent, ChannelAddress, ServiceModule, implementation
from contract import Parcel
from parcels import SIDE, ParcelAnswers, weighed
from pb_contract import CHANNELS, PbInteropComponent, PbParcelService, Sample


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
class PbParcelServiceImpl(ParcelAnswers, PbParcelService):
    def mirror(self, sample: Sample) -> Sample:
        return mirrored(sample)

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
