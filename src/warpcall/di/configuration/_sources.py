"""Configuration sources: the process environment and YAML files."""

from __future__ import annotations

import os
from typing import Any

from warpcall.di._errors import ConfigurationException
from warpcall.di.configuration._manager import ConfigurationSource, _merge


class EnvConfigurationSource(ConfigurationSource):
    """The process environment; a key with ``.`` or ``/`` ("DB.HOST") becomes a nested path."""

    def load(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in os.environ.items():
            parts = key.replace("/", ".").split(".")
            node: dict[str, Any] = {parts[-1]: value}
            for part in reversed(parts[:-1]):
                node = {part: node}
            _merge(result, node)
        return result


class YamlConfigurationSource(ConfigurationSource):
    """A YAML file (read with ``yaml.safe_load``)."""

    def __init__(self, file: str) -> None:
        self.file = file

    def load(self) -> dict[str, Any]:
        import yaml

        try:
            with open(self.file, encoding="utf-8") as stream:
                data = yaml.safe_load(stream)
        except OSError as exc:
            raise ConfigurationException(f"cannot read the configuration file {self.file!r}: {exc}") from exc
        except yaml.YAMLError as exc:
            raise ConfigurationException(f"the configuration file {self.file!r} is not valid YAML: {exc}") from exc
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ConfigurationException(
                f"the configuration file {self.file!r} holds a {type(data).__name__}; its top level must be a mapping"
            )
        return data
