"""An aspyx-service server for the interop tests: ``python server.py PORT``.

Serves component ``interop`` on 127.0.0.1:PORT over dispatch-json and
dispatch-msgpack, prints ``READY`` once uvicorn accepts connections, and
shuts down when its stdin closes.
"""

import sys
import time

from aspyx.di import create, module
from aspyx_service import (
    AbstractComponent,
    ChannelAddress,
    ComponentRegistry,
    FastAPIServer,
    ServiceManager,
    ServiceModule,
    SessionManager,
    implementation,
)
from aspyx_service.service import LocalComponentRegistry
from contract import CHANNELS, Address, Customer, InteropComponent, Item, Parcel, ParcelService
from fastapi import FastAPI

SIDE = "aspyx"
STARTUP_TIMEOUT = 20.0


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
        return [ChannelAddress(channel, f"http://127.0.0.1:{port}") for channel in CHANNELS]


@module(imports=[ServiceModule])
class ServerModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        # in-process registry: nothing to reach, the test tells the client where the server is
        return LocalComponentRegistry()

    @create()
    def create_session_storage(self) -> SessionManager.Storage:
        # aspyx-service's ServiceModule needs one, even when no session is used
        return SessionManager.InMemoryStorage()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry)


def main() -> int:
    port = int(sys.argv[1])
    environment = FastAPIServer.boot(ServerModule, host="127.0.0.1", port=port)
    server = environment.get(FastAPIServer)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.server.started:
            if not server.thread.is_alive() or time.monotonic() > deadline:
                print("FAILED to start uvicorn", flush=True)
                return 1
            time.sleep(0.02)
        print("READY", flush=True)
        sys.stdin.read()  # the test closes our stdin to stop us
    finally:
        environment.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
