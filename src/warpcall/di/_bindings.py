"""Bindings: a provider as one environment sees it, with its scope object and resolved dependencies.

Built and checked once when the environment is built; ``Environment.get``
only walks them. This is where missing providers, ambiguities and cycles are
found and explained.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from warpcall.di._errors import (
    AmbiguousProviderException,
    CyclicDependencyException,
    MissingProviderException,
    UnmetConditionException,
)
from warpcall.di._providers import AbstractInstanceProvider, describe, location
from warpcall.di._scopes import Scope, Scopes, SingletonScope

if TYPE_CHECKING:
    from warpcall.di._conditions import Condition
    from warpcall.di._environment import Environment


class Binding:
    """A provider bound to the environment that creates its instances."""

    __slots__ = ("environment", "provider", "scope", "deps", "caches", "seq")

    def __init__(self, environment: Environment, provider: AbstractInstanceProvider[Any], seq: int) -> None:
        self.environment = environment
        self.provider = provider
        self.seq = seq
        owner = provider.report().removesuffix(".__init__")
        scope_type = Scopes.lookup(provider.get_scope(), owner)
        if issubclass(scope_type, SingletonScope):
            self.scope: Scope = scope_type(environment.lock)
        else:
            self.scope = scope_type()
        #: True when every get returns the same instance, so the environment may cache it per type
        self.caches = bool(scope_type.caches_instance)
        self.deps: list[Binding] | None = None

    def instance(self) -> Any:
        """The instance the scope hands out (created when needed)."""
        return self.scope.get(self.provider, self.environment, self.arguments)

    def arguments(self) -> list[Any]:
        """Instances of the dependencies, in the order the provider lists them."""
        return [dep.instance() for dep in self.deps or ()]

    @property
    def type(self) -> Any:
        return self.provider.get_type()

    def __repr__(self) -> str:
        return f"Binding({self.provider.report()})"


class Ambiguous:
    """Stands for a base class that several bindings implement; using it is an error naming them all."""

    __slots__ = ("base", "candidates")

    def __init__(self, base: type, candidates: list[Binding]) -> None:
        self.base = base
        self.candidates = candidates

    def error(self, requested_by: str) -> AmbiguousProviderException:
        names = " and ".join(
            f"{describe(binding.type)} ({binding.provider.location()})" for binding in self.candidates
        )
        return AmbiguousProviderException(
            f"{describe(self.base)}, requested by {requested_by}, is ambiguous: it is implemented by {names}; "
            f"request one of the concrete classes, or make all but one @conditional"
        )


def missing(
    dep: Any, site: str, environment: Environment, excluded: dict[Any, Condition]
) -> MissingProviderException:
    """The error for ``dep`` having no provider, naming who asked and, when known, the unmet condition."""
    name = describe(dep)
    condition = excluded.get(dep)
    if condition is not None:
        return UnmetConditionException(
            f"no provider for {name}, required by {site}: its injectable is left out because {condition.explain()}"
        )
    return MissingProviderException(
        f"no provider for {name}, required by {site}; make {name} @injectable (or return it from a @create method) "
        f"in a module that {environment} loads, or import that module"
    )


def resolve(binding: Binding, table: dict[Any, Binding | Ambiguous], environment: Environment,
            excluded: dict[Any, Condition]) -> None:
    """Resolve the dependencies of ``binding`` and everything below it, reporting cycles whole."""
    _visit(binding, "", table, environment, excluded, [])


def _visit(binding: Binding, site: str, table: dict[Any, Binding | Ambiguous], environment: Environment,
           excluded: dict[Any, Condition], path: list[tuple[Binding, str]]) -> None:
    for index, (entry, _) in enumerate(path):
        if entry is binding:
            cycle = [*path[index:], (binding, site)]
            names = " -> ".join(describe(entry.type) for entry, _ in cycle)
            links = "; ".join(site for _, site in cycle[1:])
            raise CyclicDependencyException(
                f"dependency cycle: {names} ({links}); break it by injecting one side lazily, "
                "e.g. get it from the Environment when first needed"
            )
    if binding.deps is not None or binding.environment is not environment:
        return
    path.append((binding, site))
    types, _ = binding.provider.get_dependencies()
    sites = binding.provider.dependency_sites()
    deps: list[Binding] = []
    for position, dep in enumerate(types):
        dep_site = sites[position] if position < len(sites) else binding.provider.report()
        target = table.get(dep)
        if target is None:
            raise missing(dep, dep_site, environment, excluded)
        if isinstance(target, Ambiguous):
            raise target.error(dep_site)
        _visit(target, dep_site, table, environment, excluded, path)
        deps.append(target)
    path.pop()
    binding.deps = deps


def injectable_bases(cls: Any) -> list[type]:
    """Base classes a lookup may resolve to ``cls`` through (all but object and typing helpers)."""
    if not isinstance(cls, type):
        return []
    skip = {object}
    try:
        import abc
        import typing

        skip.update({abc.ABC, typing.Generic, typing.Protocol})
    except AttributeError:  # pragma: no cover - every supported Python has these
        pass
    return [base for base in cls.__mro__[1:] if base not in skip]


def where(provider: AbstractInstanceProvider[Any]) -> str:
    """``report (location)`` of a provider, for messages."""
    return f"{provider.report()} ({provider.location() if hasattr(provider, 'location') else location(provider)})"
