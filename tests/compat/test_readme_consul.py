"""The README's Consul registry construction: a server registers in Consul (the emulator of tests/registry
on 127.0.0.1), and the README's client module, importing, finds it there and calls it."""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest
import readme_support
from consul_emulator import ConsulEmulator
from readme_support import port_of, running, stop

import rawhttp
from warpcall import ComponentRegistry, ConsulComponentRegistry


@pytest.fixture(scope="module")
def emulator() -> Iterator[ConsulEmulator]:
    with ConsulEmulator(reap_interval=0.2, deregister_minimum=0.0) as running_emulator:
        readme_support.consul["port"] = running_emulator.port
        yield running_emulator


def test_the_readme_client_finds_the_server_through_consul(emulator, tmp_path) -> None:
    with running("readme_consul_server.app", tmp_path) as server:
        port = port_of(server.environment)

        def passing() -> bool:
            _, entries = emulator.health("test-component", passing=True)
            return len(entries) == 1

        rawhttp.wait_until(passing, what="the server's Consul check to pass")
        # the client program: building its environment, getting the service and calling it at import
        client = importlib.import_module("readme_consul.app")
        try:
            registry = client.environment.get(ComponentRegistry)
            assert isinstance(registry, ConsulComponentRegistry)
            assert client.service.hello("world") == "hello world"
            assert not isinstance(client.service, server.TestServiceImpl)  # a proxy over dispatch-json
            assert client.service_manager.get_service(client.TestService) is client.service
            (found,) = registry.get_addresses(client.service_manager.get_descriptor(server.TestComponent))
            assert (found.channel, list(found.urls)) == ("dispatch-json", [f"http://127.0.0.1:{port}"])
        finally:
            client.environment.destroy()
        stop(server)
    # the server deregistered when destroyed
    assert emulator.health("test-component", passing=False)[1] == []
