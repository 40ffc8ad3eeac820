"""Scopes decide how often a provider creates an instance: once, per request, per thread, per environment.

A scope class subclasses ``Scope``, is decorated with ``@scope(name)`` and
overrides ``get``; the environment makes one scope object per provider.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from warpcall.di._errors import UnknownScopeException
from warpcall.di._reflection import Decorators

if TYPE_CHECKING:
    from warpcall.di._environment import Environment
    from warpcall.di._providers import AbstractInstanceProvider

T = TypeVar("T")


class Scope:
    """Base of all scopes: ``get`` returns an instance of ``provider``, creating it when the scope says so."""

    __slots__ = ()

    #: True when the scope hands out one instance per environment, so ``Environment.get`` may cache it
    caches_instance = False

    def get(
        self, provider: AbstractInstanceProvider[T], environment: Environment, arg_provider: Callable[[], list[Any]]
    ) -> T:
        """Create a new instance from the dependencies ``arg_provider()`` returns."""
        return provider.create(environment, *arg_provider())


class Scopes:
    """Registry of scope names."""

    scopes: dict[str, type[Scope]] = {}

    @classmethod
    def register(cls, scope_type: type[Scope], name: str) -> None:
        """Make ``name`` resolve to ``scope_type``."""
        cls.scopes[name] = scope_type

    @classmethod
    def lookup(cls, name: str, owner: str) -> type[Scope]:
        """The scope class of ``name``; ``owner`` names who asked, for the error message."""
        scope_type = cls.scopes.get(name)
        if scope_type is None:
            known = ", ".join(sorted(cls.scopes))
            raise UnknownScopeException(
                f"{owner} declares the unknown scope {name!r}; known scopes: {known}. "
                "Declare it with a @scope(name) class or fix the name"
            )
        return scope_type


def scope(name: str, register: bool = True) -> Callable[[type[Scope]], type[Scope]]:
    """Declare a ``Scope`` subclass under ``name`` so that ``@injectable(scope=name)`` can use it.

    ``register`` is accepted for compatibility; scope objects are always made by the environment.
    """

    def decorator(cls: type[Scope]) -> type[Scope]:
        Scopes.register(cls, name)
        Decorators.add(cls, scope, name)
        return cls

    return decorator


@scope("request")
class RequestScope(Scope):
    """A new instance on every ``get`` and every injection."""

    __slots__ = ()


@scope("singleton")
class SingletonScope(Scope):
    """One instance, created on first use under a lock so that concurrent first gets create it once."""

    __slots__ = ("value", "lock")
    caches_instance = True

    def __init__(self, lock: Any = None) -> None:
        self.value: Any = None
        self.lock = lock if lock is not None else threading.RLock()

    def get(
        self, provider: AbstractInstanceProvider[T], environment: Environment, arg_provider: Callable[[], list[Any]]
    ) -> T:
        value: T = self.value
        if value is None:
            with self.lock:
                value = self.value
                if value is None:
                    value = provider.create(environment, *arg_provider())
                    self.value = value
        return value


@scope("environment")
class EnvironmentScope(SingletonScope):
    """Like singleton, but a child environment makes its own instance instead of sharing its parent's."""

    __slots__ = ()


@scope("thread")
class ThreadScope(Scope):
    """One instance per thread."""

    __slots__ = ("_local",)

    def __init__(self) -> None:
        self._local = threading.local()

    def get(
        self, provider: AbstractInstanceProvider[T], environment: Environment, arg_provider: Callable[[], list[Any]]
    ) -> T:
        try:
            value: T = self._local.value
        except AttributeError:
            value = provider.create(environment, *arg_provider())
            self._local.value = value
        return value
