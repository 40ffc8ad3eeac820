"""Configuration sources, the manager's conversions, @inject_value, config() parameters, configuration conditions."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from warpcall.di import (
    ConfigurationException,
    Environment,
    conditional,
    create,
    injectable,
    module,
    requires_configuration,
    requires_configuration_value,
)
from warpcall.di.configuration import (
    ConfigurationManager,
    ConfigurationSource,
    EnvConfigurationSource,
    YamlConfigurationSource,
    config,
    inject_value,
)

YAML_PATH = Path(__file__).with_name("wdi_config.yaml")


class Defaults(ConfigurationSource):
    def load(self) -> dict[str, Any]:
        return {"server": {"host": "0.0.0.0", "port": 80, "debug": "no"}, "mode": "test", "ratio": "0.5"}


@injectable(eager=False)
class Settings:
    def __init__(self, host: config(str, "server.host"), retries: config(int, "retries", 3)) -> None:
        self.host = host
        self.retries = retries

    @inject_value("server.port")
    def set_port(self, port: int) -> None:
        self.port = port

    @inject_value("server.debug", default=False)
    def set_debug(self, debug: bool) -> None:
        self.debug = debug

    @inject_value("not.there", default="fallback")
    def set_missing(self, value: str) -> None:
        self.missing = value

    @inject_value("WDI_TEST_TOKEN")
    def set_token(self, token: str) -> None:
        self.token = token


@injectable()
@conditional(requires_configuration("server.host"))
class NeedsHost:
    pass


@injectable()
@conditional(requires_configuration("server.nowhere"))
class NeedsNowhere:
    pass


@injectable()
@conditional(requires_configuration_value("mode", "test"))
class TestModeOnly:
    pass


@injectable()
@conditional(requires_configuration_value("mode", "prod"))
class ProdModeOnly:
    pass


@module()
class ConfigModule:
    @create()
    def defaults(self) -> Defaults:
        return Defaults()

    @create()
    def yaml_source(self) -> YamlConfigurationSource:
        return YamlConfigurationSource(str(YAML_PATH))

    @create()
    def env_source(self) -> EnvConfigurationSource:
        return EnvConfigurationSource()


@pytest.fixture
def environment() -> Environment:
    os.environ["WDI_TEST_TOKEN"] = "secret"
    os.environ["wdi.nested/key"] = "deep"
    env = Environment(ConfigModule)
    yield env
    env.destroy()
    del os.environ["WDI_TEST_TOKEN"]
    del os.environ["wdi.nested/key"]


def test_every_environment_has_a_configuration_manager(environment: Environment) -> None:
    manager = environment.get(ConfigurationManager)
    assert [type(source) for source in manager.sources] == [Defaults, YamlConfigurationSource, EnvConfigurationSource]


def test_later_sources_override_earlier_ones(environment: Environment) -> None:
    manager = environment.get(ConfigurationManager)
    assert manager.get("server.port", int) == 8080  # yaml over defaults
    assert manager.get("server.host", str) == "0.0.0.0"  # kept from defaults
    assert manager.get("database.url", str) == "sqlite://"


def test_manager_converts_types_and_uses_defaults(environment: Environment) -> None:
    manager = environment.get(ConfigurationManager)
    assert manager.get("ratio", float) == 0.5
    assert manager.get("server.port", str) == "8080"
    assert manager.get("server.debug", bool) is False
    assert manager.get("absent.key", int, 7) == 7
    assert manager.get("absent.key", int) is None
    assert manager.has("server") and not manager.has("server.nowhere")
    assert manager.get_raw("server.port") == 8080
    with pytest.raises(ConfigurationException, match="'mode' = 'test' cannot be converted to int"):
        manager.get("mode", int)


def test_env_source_reads_the_process_environment_with_nested_keys(environment: Environment) -> None:
    manager = environment.get(ConfigurationManager)
    assert manager.get("WDI_TEST_TOKEN", str) == "secret"
    assert manager.get("wdi.nested.key", str) == "deep"


def test_inject_value_and_config_parameters(environment: Environment) -> None:
    settings = environment.get(Settings)
    assert settings.port == 8080
    assert settings.debug is False
    assert settings.missing == "fallback"
    assert settings.token == "secret"
    assert settings.host == "0.0.0.0"
    assert settings.retries == 3


def test_configuration_conditions(environment: Environment) -> None:
    assert environment.has_provider(NeedsHost)
    assert not environment.has_provider(NeedsNowhere)
    assert environment.has_provider(TestModeOnly)
    assert not environment.has_provider(ProdModeOnly)


def test_yaml_source_errors_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [1, 2\n")
    with pytest.raises(ConfigurationException, match="broken.yaml' is not valid YAML"):
        YamlConfigurationSource(str(broken)).load()
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigurationException, match="top level must be a mapping"):
        YamlConfigurationSource(str(listing)).load()
    with pytest.raises(ConfigurationException, match="cannot read the configuration file"):
        YamlConfigurationSource(str(tmp_path / "absent.yaml")).load()
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert YamlConfigurationSource(str(empty)).load() == {}
