"""The README's channel customization advice (select_round_robin / select_first_url) and its intercepting
client (an httpx.Client subclass installed around HTTPXChannel.make_client), calling two real server
instances on 127.0.0.1 found through the (embedded) registry."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from readme_channels_api.api import TestService
from readme_support import running, stop

import rawhttp
from warpcall import ComponentRegistry, ServiceManager
from warpcall.di import Environment
from warpcall.service import declaration_of


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[dict[str, object]]:
    registry_dir = tmp_path_factory.mktemp("registry")
    with ExitStack() as stack:
        a = stack.enter_context(running("readme_channels_a.app", registry_dir))
        b = stack.enter_context(running("readme_channels_b.app", registry_dir))
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("WARPCALL_REGISTRY_DIR", str(registry_dir))
            yield {"a": a, "b": b}


def client(name: str, servers) -> Environment:
    """The client program's environment, once the registry lists both instances."""
    environment = Environment(importlib.import_module(name).Module)
    registry = environment.get(ComponentRegistry)
    component = declaration_of(servers["a"].TestComponent)

    def both_listed() -> bool:
        return any(len(found.urls) == 2 for found in registry.get_addresses(component))

    rawhttp.wait_until(both_listed, what="both instances in the registry")
    return environment


def test_the_advice_makes_calls_go_round_robin(servers) -> None:
    environment = client("readme_channels_client.client", servers)
    try:
        service = environment.get(ServiceManager).get_service(TestService, preferred_channel="dispatch-json")
        answers = [service.hello("world") for _ in range(6)]
        module = importlib.import_module("readme_channels_client.client")
        assert len(module.CUSTOMIZED) == 1 and isinstance(module.CUSTOMIZED[0].selector, module.Channel.RoundRobinURLSelector)
        assert set(answers) == {"hello world from a", "hello world from b"}
        assert all(answers[i] != answers[i + 1] for i in range(5))  # alternating
    finally:
        environment.destroy()


def test_the_alternative_sends_every_call_to_the_first_url(servers) -> None:
    environment = client("readme_channels_first.client", servers)
    try:
        service = environment.get(ServiceManager).get_service(TestService, preferred_channel="dispatch-json")
        answers = {service.hello("world") for _ in range(6)}
        module = importlib.import_module("readme_channels_first.client")
        assert isinstance(module.CUSTOMIZED[0].selector, module.Channel.FirstURLSelector)
        assert len(answers) == 1
    finally:
        environment.destroy()


def test_the_intercepting_client_adds_its_token_to_every_call(servers) -> None:
    environment = client("readme_intercept_client.client", servers)
    try:
        for app in servers.values():
            app.AUTHORIZATION.clear()
        service = environment.get(ServiceManager).get_service(TestService, preferred_channel="dispatch-json")
        answers = [service.hello(str(n)) for n in range(4)]
        assert sorted(answers) == sorted(f"hello {n} from {x}" for n, x in zip(range(4), "abab"))
        seen = servers["a"].AUTHORIZATION + servers["b"].AUTHORIZATION
        assert len(seen) == 4 and all(header.startswith("Bearer token-") for header in seen)
        assert len(set(seen)) == 4  # the provider is asked on every request
    finally:
        environment.destroy()


def test_destroy_stops_the_servers(servers) -> None:
    stop(*servers.values())
