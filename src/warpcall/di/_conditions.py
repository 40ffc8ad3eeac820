"""``@conditional``: an injectable takes part in an environment only when all its conditions hold.

Feature conditions are decided from the environment's ``features``; class
conditions once the unconditional providers are known; configuration
conditions once the configuration sources are loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, TypeVar

from warpcall.di._reflection import Decorators

if TYPE_CHECKING:
    from warpcall.di._environment import Environment

C = TypeVar("C", bound=type)


class Condition:
    """One condition; ``phase`` says when it can be decided: "scan", "classes" or "configuration"."""

    phase = "scan"

    def apply(self, environment: Environment) -> bool:
        """True when the condition holds in ``environment``."""
        raise NotImplementedError

    def explain(self) -> str:
        """Why the condition failed, for messages."""
        return repr(self)


class FeatureCondition(Condition):
    """Holds when the environment was created with the feature."""

    def __init__(self, feature: str) -> None:
        self.feature = feature

    def apply(self, environment: Environment) -> bool:
        return environment.has_feature(self.feature)

    def explain(self) -> str:
        return f"requires_feature({self.feature!r}) is not met: pass features=[{self.feature!r}] to the Environment"

    def __repr__(self) -> str:
        return f"requires_feature({self.feature!r})"


class ClassCondition(Condition):
    """Holds when the environment has a provider for the class."""

    phase = "classes"

    def __init__(self, clazz: type) -> None:
        self.clazz = clazz

    def apply(self, environment: Environment) -> bool:
        return environment.has_provider(self.clazz)

    def explain(self) -> str:
        name = getattr(self.clazz, "__qualname__", repr(self.clazz))
        return (
            f"requires_class({name}) is not met: {name} has no provider in this environment; "
            f"make {name} injectable in a module the environment loads"
        )

    def __repr__(self) -> str:
        return f"requires_class({getattr(self.clazz, '__qualname__', self.clazz)})"


class ConfigCondition(Condition):
    """Holds when the configuration has the key."""

    phase = "configuration"

    def __init__(self, key: str) -> None:
        self.key = key

    def apply(self, environment: Environment) -> bool:
        from warpcall.di.configuration import ConfigurationManager

        return environment.get(ConfigurationManager).has(self.key)

    def explain(self) -> str:
        return f"requires_configuration({self.key!r}) is not met: no configuration source defines {self.key!r}"

    def __repr__(self) -> str:
        return f"requires_configuration({self.key!r})"


class ConfigValueCondition(Condition):
    """Holds when the configuration value of the key equals ``value``."""

    phase = "configuration"

    def __init__(self, key: str, value: Any = None) -> None:
        self.key = key
        self.value = value

    def apply(self, environment: Environment) -> bool:
        from warpcall.di.configuration import ConfigurationManager

        return bool(environment.get(ConfigurationManager).get_raw(self.key) == self.value)

    def explain(self) -> str:
        return f"requires_configuration_value({self.key!r}, {self.value!r}) is not met"

    def __repr__(self) -> str:
        return f"requires_configuration_value({self.key!r}, {self.value!r})"


def requires_feature(feature: str) -> Condition:
    """Condition: the environment has ``feature``."""
    return FeatureCondition(feature)


def requires_class(clazz: type) -> Condition:
    """Condition: the environment provides ``clazz``."""
    return ClassCondition(clazz)


def requires_configuration(key: str) -> Condition:
    """Condition: the configuration defines ``key``."""
    return ConfigCondition(key)


def requires_configuration_value(key: str, value: Any = None) -> Condition:
    """Condition: the configuration value of ``key`` equals ``value``."""
    return ConfigValueCondition(key, value)


def conditional(*conditions: Condition) -> Callable[[C], C]:
    """Let the decorated injectable take part only where every condition holds."""

    def decorator(cls: C) -> C:
        Decorators.add(cls, conditional, *conditions)
        return cls

    return decorator


def conditions_of(host: type) -> tuple[Condition, ...]:
    """The conditions declared on ``host``."""
    found = Decorators.get_decorator(host, conditional)
    return tuple(found.args) if found is not None else ()
