"""The registration decorators: ``@injectable``, ``@factory``, ``@create``, ``@module``."""

from __future__ import annotations

from typing import Any, Callable, Optional, TypeVar

from warpcall.di._providers import ClassInstanceProvider, FactoryInstanceProvider, Providers
from warpcall.di._reflection import Decorators

C = TypeVar("C", bound=type)
F = TypeVar("F", bound=Callable[..., Any])


def injectable(eager: bool = True, scope: str = "singleton") -> Callable[[C], C]:
    """Let environments create the class; its ``__init__`` parameters are injected by type hint.

    ``eager``: a singleton is created while the environment is built (otherwise on first use).
    ``scope``: "singleton", "environment", "request", "thread" or a name declared with ``@scope``.
    """

    def decorator(cls: C) -> C:
        Decorators.add(cls, injectable, eager, scope)
        Providers.register(ClassInstanceProvider(cls, eager, scope))
        return cls

    return decorator


def factory(eager: bool = True, scope: str = "singleton") -> Callable[[C], C]:
    """Register a ``Factory`` subclass; the type its ``create()`` returns becomes injectable."""

    def decorator(cls: C) -> C:
        Decorators.add(cls, factory, eager, scope)
        Providers.register(ClassInstanceProvider(cls, eager, scope))
        Providers.register(FactoryInstanceProvider(cls, eager, scope))
        return cls

    return decorator


def create(eager: bool = True, scope: str = "singleton") -> Callable[[F], F]:
    """Register what the decorated method of a module or injectable returns (by its return annotation)."""

    def decorator(func: F) -> F:
        Decorators.add(func, create, eager, scope)
        return func

    return decorator


def module(imports: Optional[list[type]] = None, *, packages: Optional[list[str]] = None) -> Callable[[C], C]:
    """Mark a module: an environment built from it manages the injectables of the module's package
    (every ``__module__`` below it) and those of the imported modules.

    ``packages`` names the packages or modules to manage instead of the module's own package, so
    that a module living in a large package (a library's) imports only what it provides; each is
    imported while the environment is built, a package with its submodules.
    """

    def decorator(cls: C) -> C:
        Decorators.add(cls, module, imports, packages)
        Decorators.add(cls, injectable, True, "singleton")
        Providers.register(ClassInstanceProvider(cls, True, "singleton", implicit=True))
        return cls

    return decorator
