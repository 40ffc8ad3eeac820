"""The demo's server process: ``main(namespace)`` serves the demo component on 127.0.0.1.

It registers in the embedded registry's ``namespace`` (the demo run's private one), prints
``READY <url>`` once it is registered and serving, and stops cleanly (deregistering) when its
standard input closes or it gets SIGTERM, printing ``SERVED <n>``: the calls it answered.
"""

from __future__ import annotations

import signal
import sys
import threading

from fastapi import FastAPI

from warpcall import (
    ComponentRegistry,
    EmbeddedComponentRegistry,
    FastAPIServer,
    ServiceManager,
    ServiceModule,
)
from warpcall.demo import implementation  # registers the implementations
from warpcall.di import create, module

#: the registry namespace of this server process (set by main before the environment boots)
_namespace: str | None = None


@module(imports=[ServiceModule])
class DemoServerModule:
    """The server process's module: the implementations, the default registry and a FastAPI server."""

    @create()
    def create_registry(self) -> ComponentRegistry:
        return EmbeddedComponentRegistry(namespace=_namespace)

    @create()
    def create_server(self, service_manager: ServiceManager, component_registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(title="warpcall demo"), service_manager, component_registry)


def main(namespace: str | None = None) -> None:
    """Serve in the registry's ``namespace`` (by default the first command-line argument, else the one the
    environment derives) until stdin closes or SIGTERM arrives."""
    global _namespace
    _namespace = namespace if namespace is not None else (sys.argv[1] if len(sys.argv) > 1 else None)
    stop = threading.Event()

    def stop_when_stdin_closes() -> None:
        sys.stdin.read()
        stop.set()

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    environment = FastAPIServer.boot(DemoServerModule, host="127.0.0.1", port=0)
    try:
        print(f"READY {environment.get(FastAPIServer).url}", flush=True)
        threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
        stop.wait()
    finally:
        environment.destroy()
    print(f"SERVED {implementation.answered.value}", flush=True)
