"""An aspyx-service server for the interop tests: ``python server.py PORT``.

Serves component ``interop`` on 127.0.0.1:PORT over dispatch-json and
dispatch-msgpack, prints ``READY`` once uvicorn accepts connections, and
shuts down when its stdin closes.
"""

import sys

from _harness import ServerModuleBase, loopback_addresses, serve
from aspyx.di import module
from aspyx_service import AbstractComponent, ChannelAddress, ServiceModule, implementation
from contract import CHANNELS, InteropComponent, ParcelService
from parcels import ParcelAnswers


@implementation()
class ParcelServiceImpl(ParcelAnswers, ParcelService):
    pass


@implementation()
class InteropComponentImpl(AbstractComponent, InteropComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return loopback_addresses(port, CHANNELS)


@module(imports=[ServiceModule])
class ServerModule(ServerModuleBase):
    pass


if __name__ == "__main__":
    sys.exit(serve(ServerModule))
