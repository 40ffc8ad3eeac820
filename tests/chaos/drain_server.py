"""A warpcall server in its own process, for the chaos tests: ``python drain_server.py GRACE DELAY STARTS_FILE``.

It hosts component ``chaos-echo`` on a free 127.0.0.1 port with the embedded registry
(``WARPCALL_REGISTRY_DIR``), prints ``port <n>`` once it accepts calls, and serves until SIGTERM
or SIGINT (:meth:`FastAPIServer.serve_forever`), then drains with ``GRACE`` seconds of grace and
``DELAY`` seconds of deregistration delay and prints ``stopped <signal>``. Every start of
``hold`` is appended to ``STARTS_FILE`` (one line each, flushed), so the parent can tell which
calls ran.
"""

from __future__ import annotations

import sys
import threading
import time
from abc import abstractmethod

from fastapi import FastAPI

from warpcall import (
    AbstractComponent,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    Service,
    ServiceManager,
    ServiceModule,
    component,
    service,
)
from warpcall.di import create, module
from warpcall.registry.embedded import EmbeddedComponentRegistry

GRACE, DELAY, STARTS = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
#: the registry's timing in these tests: changes reach clients within POLL seconds
POLL = 0.1
_lock = threading.Lock()


@service(name="chaos-echo-service")
class EchoService(Service):
    @abstractmethod
    def echo(self, n: int) -> int: ...

    @abstractmethod
    def hold(self, n: int, seconds: float) -> int: ...


@component(name="chaos-echo", services=[EchoService])
class EchoComponent(Component):
    pass


class EchoServiceImpl(EchoService):
    def echo(self, n: int) -> int:
        return n

    def hold(self, n: int, seconds: float) -> int:
        with _lock, open(STARTS, "a") as starts:
            starts.write(f"{n}\n")
        time.sleep(seconds)  # the call under way a drain waits for
        return n


class EchoComponentImpl(AbstractComponent, EchoComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://127.0.0.1:{port}")]


@module(imports=[ServiceModule])
class EchoModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return EmbeddedComponentRegistry(ttl=2.0, poll_interval=POLL)

    @create()
    def create_component(self) -> EchoComponentImpl:
        return EchoComponentImpl()

    @create()
    def create_service(self) -> EchoServiceImpl:
        return EchoServiceImpl()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(
            FastAPI(), manager, registry, sync_calls="threadpool", grace_period=GRACE, deregister_delay=DELAY
        )


def main() -> None:
    def ready(environment: object) -> None:
        print(f"port {environment.get(FastAPIServer).port}", flush=True)  # type: ignore[attr-defined]

    received = FastAPIServer.serve_forever(EchoModule, "127.0.0.1", 0, ready=ready)
    print(f"stopped {received}", flush=True)


if __name__ == "__main__":
    main()
