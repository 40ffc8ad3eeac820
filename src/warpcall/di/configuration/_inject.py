"""Injection of configuration values: ``@inject_value(key, default=)`` setters and ``config()`` parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Callable, TypeVar

from warpcall.di import _environment
from warpcall.di._decorators import injectable
from warpcall.di._lifecycle import Lifecycle, LifecycleCallable, order
from warpcall.di._providers import AnnotationResolver, AnnotationResolvers, ClassInstanceProvider
from warpcall.di._reflection import DecoratorDescriptor, Decorators, MethodDescriptor, TypeDescriptor
from warpcall.di.configuration._manager import ConfigurationManager, ConfigurationSource, convert

if TYPE_CHECKING:
    from warpcall.di._bindings import Binding
    from warpcall.di._environment import Environment

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def inject_value(key: str, default: Any = None) -> Callable[[F], F]:
    """Call the decorated setter with the configuration value of ``key`` (dotted path) converted to the
    type of its parameter, or ``default`` when no source defines it."""

    def decorator(func: F) -> F:
        Decorators.add(func, inject_value, key, default)
        return func

    return decorator


def _setter_type(method: MethodDescriptor) -> Any:
    params = method.params
    return params[0].type if params else None


@injectable()
@order(9)
class ConfigurationLifecycleCallable(LifecycleCallable):
    """Runs ``@inject_value`` setters."""

    def __init__(self, manager: ConfigurationManager) -> None:
        super().__init__(inject_value, Lifecycle.ON_INJECT)
        self.manager = manager

    def args(self, decorator: DecoratorDescriptor, method: MethodDescriptor, environment: Environment) -> list[Any]:
        key, default = decorator.args
        value = self.manager.get_raw(key, default)
        return [convert(value, _setter_type(method), key, method.qualified())]


class ConfigValue:
    """``Annotated`` metadata: inject the configuration value of ``key``."""

    __slots__ = ("key", "default")

    def __init__(self, key: str, default: Any = None) -> None:
        self.key = key
        self.default = default

    def __repr__(self) -> str:
        return f"ConfigValue(key={self.key!r}, default={self.default!r})"


def config(typ: type[T], key: str, default: Any = None) -> Any:
    """Type hint for a constructor parameter that receives a configuration value: ``port: config(int, "p", 80)``."""
    return Annotated[typ, ConfigValue(key, default)]


class _ConfigResolver(AnnotationResolver):
    def __init__(self) -> None:
        super().__init__(ConfigValue)

    def dependencies(self) -> list[type]:
        return [ConfigurationManager]

    def resolve(self, annotation_value: Any, param_type: Any, environment: Environment, *deps: Any) -> Any:
        manager: ConfigurationManager = deps[0]
        value = manager.get_raw(annotation_value.key, annotation_value.default)
        return convert(value, param_type, annotation_value.key)


AnnotationResolvers.register(_ConfigResolver())


def check_values(environment: Environment, bindings: list[Binding]) -> None:
    """Convert every configuration value the environment's classes will receive, so a bad one fails the build."""
    if not environment.has_provider(ConfigurationManager):
        return
    manager = environment.get(ConfigurationManager)
    for binding in bindings:
        cls = binding.type
        if not isinstance(cls, type):
            continue
        for method in TypeDescriptor.for_type(cls).get_methods():
            decorator = method.get_decorator(inject_value)
            if decorator is not None:
                key, default = decorator.args
                convert(manager.get_raw(key, default), _setter_type(method), key, method.qualified())
        provider = binding.provider
        if isinstance(provider, ClassInstanceProvider):
            for kind, payload in provider._argument_plan().entries:
                if kind == "annotation" and isinstance(payload[1], ConfigValue):
                    meta, param_type = payload[1], payload[2]
                    convert(manager.get_raw(meta.key, meta.default), param_type, meta.key, f"{cls.__qualname__}.__init__")


_environment.bootstrap_types.append(ConfigurationSource)
_environment.build_checks.append(check_values)
