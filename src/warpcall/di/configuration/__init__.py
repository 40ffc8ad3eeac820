"""Configuration for warpcall, with the API of ``aspyx.di.configuration``.

``ConfigurationSource``s (``EnvConfigurationSource``, ``YamlConfigurationSource(path)``),
usually returned by ``@create`` methods of a module, feed the ``ConfigurationManager``
that every environment has; later sources override earlier ones. ``@inject_value(key,
default=)`` setters and ``config(type, key, default)`` constructor parameters receive
converted values; a value that does not convert fails the build of the environment.
"""

from warpcall.di._errors import ConfigurationException
from warpcall.di.configuration._inject import (
    ConfigurationLifecycleCallable,
    ConfigValue,
    config,
    inject_value,
)
from warpcall.di.configuration._manager import ConfigurationManager, ConfigurationSource
from warpcall.di.configuration._sources import EnvConfigurationSource, YamlConfigurationSource

__all__ = [
    "ConfigValue",
    "ConfigurationException",
    "ConfigurationLifecycleCallable",
    "ConfigurationManager",
    "ConfigurationSource",
    "EnvConfigurationSource",
    "YamlConfigurationSource",
    "config",
    "inject_value",
]
