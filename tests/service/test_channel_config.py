"""Channel timeouts come from configuration: ``http.timeout`` for all, ``http.<channel>.timeout`` for one."""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path

import pytest

from warpcall import (
    ChannelAddress,
    Component,
    ComponentRegistry,
    LocalComponentRegistry,
    Service,
    ServiceManager,
    ServiceModule,
    component,
    service,
)
from warpcall.channels.http import DEFAULT_TIMEOUT
from warpcall.di import Environment, create, module
from warpcall.di.configuration import YamlConfigurationSource
from warpcall.service import component_descriptor

#: where the YAML source reads from; the fixture points it into pytest's tmp_path
CONFIG: list[Path] = []


@service(name="configured")
class ConfiguredService(Service):
    @abstractmethod
    def ping(self) -> str: ...


@component(name="configured-component", services=[ConfiguredService])
class ConfiguredComponent(Component):
    pass


def registry_with_instance() -> LocalComponentRegistry:
    registry = LocalComponentRegistry()
    registry.register(
        component_descriptor(ConfiguredComponent),
        [ChannelAddress(name, "http://127.0.0.1:9") for name in ("dispatch-json", "dispatch-msgpack")],
    )
    return registry


@module(imports=[ServiceModule])
class ConfiguredModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return registry_with_instance()

    @create()
    def create_configuration(self) -> YamlConfigurationSource:
        return YamlConfigurationSource(str(CONFIG[0]))


@pytest.fixture
def manager(tmp_path):
    config = tmp_path / "channels.yaml"
    config.write_text("http:\n  timeout: 3.5\n  dispatch-msgpack:\n    timeout: 0.25\n")
    CONFIG[:] = [config]
    environment = Environment(ConfiguredModule)
    yield environment.get(ServiceManager)
    environment.destroy()


def test_global_and_per_channel_timeouts(manager):
    manager.get_service(ConfiguredService, "dispatch-json")
    manager.get_service(ConfiguredService, "dispatch-msgpack")
    assert manager._channels[("configured-component", "dispatch-json")].timeout == 3.5
    assert manager._channels[("configured-component", "dispatch-msgpack")].timeout == 0.25


def test_default_timeout_is_bounded():
    @module(imports=[ServiceModule])
    class Unconfigured:
        @create()
        def create_registry(self) -> ComponentRegistry:
            return registry_with_instance()

    environment = Environment(Unconfigured)
    try:
        environment.get(ServiceManager).get_service(ConfiguredService, "dispatch-json")
        channel = environment.get(ServiceManager)._channels[("configured-component", "dispatch-json")]
        assert channel.timeout == DEFAULT_TIMEOUT == 10.0
    finally:
        environment.destroy()
