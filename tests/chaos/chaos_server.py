"""One instance of ``chaos-echo`` in a process of its own: ``python chaos_server.py '<json config>'``.

The one server bootstrap of the chaos tests, parameterised by a JSON object:

- ``registry``: ``{"kind": "embedded" | "etcd", ...}``, the rest handed to
  ``tests/registry/registry_instance.make_registry`` (embedded: ``directory``, ``ttl``, ``poll``;
  etcd: ``endpoint``, ``prefix``, ``ttl``);
- ``grace``, ``delay``: the drain's ``grace_period`` and ``deregister_delay`` (seconds);
- ``starts``: a file each start of ``hold`` appends its number to (flushed), so the parent
  can tell which calls ran;
- ``limits``: keyword arguments of :class:`ServerLimits` (optional).

It serves on a free 127.0.0.1 port, prints ``port <n>`` once it accepts calls and serves until
SIGTERM or SIGINT (:meth:`FastAPIServer.serve_forever`); then it drains and prints
``stopped <signal>``. SIGKILL and SIGSTOP find it in the middle of anything.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

from chaos_api import EchoComponent, EchoService
from fastapi import FastAPI

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "registry"))  # the registry tests' helpers
from registry_instance import make_registry  # noqa: E402

from warpcall import (  # noqa: E402
    AbstractComponent,
    ChannelAddress,
    ComponentRegistry,
    FastAPIServer,
    ServerLimits,
    ServiceManager,
    ServiceModule,
)
from warpcall.di import create, module  # noqa: E402

CONFIG: dict = json.loads(sys.argv[1])
_lock = threading.Lock()


class EchoServiceImpl(EchoService):
    def echo(self, n: int) -> int:
        return n

    def pid(self) -> int:
        return os.getpid()

    def hold(self, n: int, seconds: float) -> int:
        with _lock, open(CONFIG["starts"], "a") as starts:
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
        registry = dict(CONFIG["registry"])
        return make_registry(registry.pop("kind"), registry)

    @create()
    def create_component(self) -> EchoComponentImpl:
        return EchoComponentImpl()

    @create()
    def create_service(self) -> EchoServiceImpl:
        return EchoServiceImpl()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(
            FastAPI(),
            manager,
            registry,
            sync_calls="threadpool",
            grace_period=CONFIG.get("grace", 5.0),
            deregister_delay=CONFIG.get("delay", 0.3),
            limits=ServerLimits(**CONFIG.get("limits", {})),
        )


def main() -> None:
    def ready(environment: object) -> None:
        print(f"port {environment.get(FastAPIServer).port}", flush=True)  # type: ignore[attr-defined]

    received = FastAPIServer.serve_forever(EchoModule, "127.0.0.1", 0, ready=ready)
    print(f"stopped {received}", flush=True)


if __name__ == "__main__":
    main()
