"""An aspyx-service client calling the component of ``names_contract.py`` (declared without names):
``python names_client.py URL``. Prints one line ``RESULT <json>``: the names aspyx derived, and per call
what came back or what was raised.

``python names_client.py consul:PORT`` finds the server instead in the Consul (emulator) on 127.0.0.1 at
PORT, with aspyx-service's own ConsulComponentRegistry: by the name aspyx derives for the component.
"""

import json
import sys
from functools import partial
from typing import Any, Callable

from aspyx.di import Environment, create, module
from aspyx_service import (
    ChannelInstances,
    ComponentRegistry,
    RemoteServiceException,
    ServiceManager,
    ServiceModule,
    SessionManager,
)
from aspyx_service.registries import ConsulComponentRegistry
from consul import Consul
from names_contract import CHANNELS, DefaultNamesComponent, HTTPGreetingService, OrderLookupService

CALL_TIMEOUT = 10.0

#: set from the command line before the environment is built
TARGET_URL = ""


class FixedURLRegistry(ComponentRegistry):
    """Answers every lookup with TARGET_URL; registers nothing."""

    def register(self, descriptor, addresses) -> None:
        pass

    def deregister(self, descriptor) -> None:
        pass

    def watch(self, channel) -> None:
        pass

    def get_addresses(self, descriptor) -> list[ChannelInstances]:
        return [ChannelInstances(descriptor.name, channel, [TARGET_URL]) for channel in CHANNELS]


@module(imports=[ServiceModule])
class NamesClientModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        if TARGET_URL.startswith("consul:"):
            return ConsulComponentRegistry(0, Consul(host="127.0.0.1", port=int(TARGET_URL[len("consul:"):])))
        return FixedURLRegistry()

    @create()
    def create_session_storage(self) -> SessionManager.Storage:
        return SessionManager.InMemoryStorage()


def outcome(call: Callable[[], Any]) -> dict:
    try:
        return {"ok": True, "value": call()}
    except Exception as exc:  # reported to the test, which asserts on it
        return {
            "ok": False,
            "error_type": type(exc).__name__,
            "is_remote_service_exception": isinstance(exc, RemoteServiceException),
            "message": str(exc),
        }


def main() -> int:
    global TARGET_URL
    TARGET_URL = sys.argv[1]
    environment = Environment(NamesClientModule)
    manager = environment.get(ServiceManager)
    results: dict[str, Any] = {
        "names": [ServiceManager.get_descriptor(t).name
                  for t in (DefaultNamesComponent, HTTPGreetingService, OrderLookupService)],
    }
    try:
        for channel in CHANNELS:
            greeting = manager.get_service(HTTPGreetingService, preferred_channel=channel)
            lookup = manager.get_service(OrderLookupService, preferred_channel=channel)
            for instance in manager.channel_cache.values():
                instance.timeout = CALL_TIMEOUT  # aspyx defaults to 1000 s
            results[channel] = {
                "greet": outcome(partial(greeting.greet, "aspyx client")),
                "total": outcome(partial(lookup.total, [1, 2, 3])),
                "fail": outcome(partial(greeting.fail, "no reason")),
            }
    finally:
        environment.destroy()
    print("RESULT " + json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
