"""One component instance in its own process, for the failure tests.

``python registry_instance.py <kind> <json config>``: serves GET /health, registers one
instance of ``config["component"]`` with the registry ``kind`` names, prints its URL and
waits; it deregisters and exits when stdin closes, or dies at once on SIGKILL.
"""

from __future__ import annotations

import json
import sys

from registry_support import Descriptor, HealthServer, consul_client

from warpcall.registry.contract import ChannelAddress, ComponentRegistry


def make_registry(kind: str, config: dict) -> ComponentRegistry:
    if kind == "embedded":
        from warpcall.registry.embedded import EmbeddedComponentRegistry

        # one namespace for every process of a test, whichever module booted it (or none did)
        return EmbeddedComponentRegistry(
            config["directory"],
            namespace=config.get("namespace", "registry-tests"),
            ttl=config["ttl"],
            poll_interval=config["poll"],
        )
    if kind == "consul":
        from warpcall.registry.consul import ConsulComponentRegistry

        return ConsulComponentRegistry(0, consul_client(config["address"]), **config["timing"])
    from warpcall.registry.etcd import EtcdComponentRegistry

    return EtcdComponentRegistry(config["endpoint"], prefix=config["prefix"], ttl=config["ttl"])


def main() -> None:
    kind, config = sys.argv[1], json.loads(sys.argv[2])
    server = HealthServer()
    registry = make_registry(kind, config)
    registry.register(Descriptor(config["component"]), [ChannelAddress("dispatch-json", server.url)])
    print(server.url, flush=True)
    sys.stdin.read()
    registry.close()
    server.stop()


if __name__ == "__main__":
    main()
