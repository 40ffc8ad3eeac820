"""An aspyx-service client calling the component of ``names_contract.py`` (declared without names):
``python names_client.py URL``. Prints one line ``RESULT <json>``: the names aspyx derived, and per call
what came back or what was raised.

``python names_client.py consul:PORT`` finds the server instead in the Consul (emulator) on 127.0.0.1 at
PORT, with aspyx-service's own ConsulComponentRegistry: by the name aspyx derives for the component.
"""

import sys
from functools import partial
from typing import Any

from _harness import ClientModuleBase, outcome, run_client, short_timeouts, target_url
from aspyx.di import create, module
from aspyx_service import ComponentRegistry, ServiceManager, ServiceModule
from aspyx_service.registries import ConsulComponentRegistry
from consul import Consul
from names_contract import CHANNELS, DefaultNamesComponent, HTTPGreetingService, OrderLookupService


@module(imports=[ServiceModule])
class NamesClientModule(ClientModuleBase):
    channels = CHANNELS

    @create()
    def create_registry(self) -> ComponentRegistry:
        if target_url().startswith("consul:"):
            return ConsulComponentRegistry(0, Consul(host="127.0.0.1", port=int(target_url()[len("consul:"):])))
        return super().create_registry()


def calls(manager: ServiceManager) -> dict:
    results: dict[str, Any] = {
        "names": [ServiceManager.get_descriptor(t).name
                  for t in (DefaultNamesComponent, HTTPGreetingService, OrderLookupService)],
    }
    for channel in CHANNELS:
        greeting = manager.get_service(HTTPGreetingService, preferred_channel=channel)
        lookup = manager.get_service(OrderLookupService, preferred_channel=channel)
        short_timeouts(manager)
        results[channel] = {
            "greet": outcome(partial(greeting.greet, "aspyx client")),
            "total": outcome(partial(lookup.total, [1, 2, 3])),
            "fail": outcome(partial(greeting.fail, "no reason")),
        }
    return results


if __name__ == "__main__":
    sys.exit(run_client(NamesClientModule, calls))
