"""Providers create instances: of a class, from a ``@create`` method, from a ``Factory``.

Decorators register providers globally in ``Providers``; an ``Environment``
picks those that belong to its modules. A provider lists the types it depends
on (``get_dependencies``) and gets their instances, in that order, in ``create``.
"""

from __future__ import annotations

import inspect
import threading
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from warpcall.di._errors import DIRegistrationException
from warpcall.di._reflection import MethodDescriptor, Parameter, TypeDescriptor

if TYPE_CHECKING:
    from warpcall.di._environment import Environment

T = TypeVar("T")


def describe(cls: Any) -> str:
    """A type's name for messages."""
    return getattr(cls, "__qualname__", None) or repr(cls)


def location(obj: Any) -> str:
    """``file:line`` of a class or function, or its module when the source is unknown."""
    try:
        return f"{inspect.getsourcefile(obj)}:{inspect.getsourcelines(obj)[1]}"
    except (OSError, TypeError):
        return getattr(obj, "__module__", "?")


class AnnotationResolver(ABC):
    """Turns ``Annotated[T, meta]`` parameters into values (e.g. configuration values)."""

    def __init__(self, annotation_type: type) -> None:
        self.annotation_type = annotation_type

    @abstractmethod
    def dependencies(self) -> list[type]:
        """Types whose instances ``resolve`` needs."""

    @abstractmethod
    def resolve(self, annotation_value: Any, param_type: Any, environment: Environment, *deps: Any) -> Any:
        """The value to inject for a parameter annotated with ``annotation_value``."""


class AnnotationResolvers:
    """Registry of ``AnnotationResolver`` by annotation class."""

    resolvers: dict[type, AnnotationResolver] = {}

    @classmethod
    def register(cls, resolver: AnnotationResolver) -> None:
        """Register ``resolver`` for its annotation type."""
        cls.resolvers[resolver.annotation_type] = resolver

    @classmethod
    def get_resolver(cls, annotation_type: type) -> AnnotationResolver | None:
        """The resolver of ``annotation_type``, or None."""
        return cls.resolvers.get(annotation_type)


class ArgumentPlan:
    """How to fill the parameters of one callable, computed once: dependencies, environment, annotations."""

    __slots__ = ("entries", "dependencies", "sites")

    def __init__(self, owner: str, params: list[Parameter]) -> None:
        from warpcall.di._environment import Environment

        #: (kind, payload) per parameter; kind is "dep", "env", "annotation" or "default"
        self.entries: list[tuple[str, Any]] = []
        self.dependencies: list[Any] = []
        #: who needs each dependency, for error messages
        self.sites: list[str] = []
        for param in params:
            site = f"{owner} parameter {param.name!r}"
            resolver = next(
                (AnnotationResolvers.get_resolver(type(meta)) for meta in param.metadata
                 if AnnotationResolvers.get_resolver(type(meta)) is not None),
                None,
            )
            if resolver is not None:
                meta = next(meta for meta in param.metadata if isinstance(meta, resolver.annotation_type))
                deps = resolver.dependencies()
                self.entries.append(("annotation", (resolver, meta, param.type, len(deps))))
                self.dependencies.extend(deps)
                self.sites.extend([site] * len(deps))
            elif param.type is Environment:
                self.entries.append(("env", None))
            elif param.has_default and (param.type is None or getattr(param.type, "__module__", "") == "builtins"):
                self.entries.append(("default", param.default))
            elif param.type is None:
                raise DIRegistrationException(
                    f"{site} has no type hint; the container injects by type, so annotate it"
                )
            else:
                self.entries.append(("dep", None))
                self.dependencies.append(param.type)
                self.sites.append(site)

    def values(self, environment: Environment, deps: tuple[Any, ...] | list[Any]) -> list[Any]:
        """The argument list, given the instances of ``self.dependencies`` in order."""
        result = []
        index = 0
        for kind, payload in self.entries:
            if kind == "dep":
                result.append(deps[index])
                index += 1
            elif kind == "env":
                result.append(environment)
            elif kind == "default":
                result.append(payload)
            else:
                resolver, meta, param_type, count = payload
                result.append(resolver.resolve(meta, param_type, environment, *deps[index:index + count]))
                index += count
        return result


class AbstractInstanceProvider(ABC, Generic[T]):
    """Creates instances of one type."""

    def get_host(self) -> type:
        """The class that declares the provider (the injectable, module or factory)."""
        return type(self)

    def get_module(self) -> str:
        """Module of the host; environments pick providers by it."""
        return self.get_host().__module__

    @abstractmethod
    def get_type(self) -> type[T]:
        """The type of the instances."""

    @abstractmethod
    def is_eager(self) -> bool:
        """True when the environment creates the instance while it is built."""

    @abstractmethod
    def get_scope(self) -> str:
        """The scope name."""

    def get_dependencies(self) -> tuple[list[Any], int]:
        """The types whose instances ``create`` receives, and how many constructor arguments they fill."""
        return [], 0

    def dependency_sites(self) -> list[str]:
        """Who needs each dependency (parallel to ``get_dependencies()[0]``), for error messages."""
        return [self.report()] * len(self.get_dependencies()[0])

    @abstractmethod
    def create(self, environment: Environment, *args: Any) -> T:
        """A new instance, given the dependency instances in order."""

    def report(self) -> str:
        """Short description for messages."""
        return str(self)

    def location(self) -> str:
        """Where the provider is declared."""
        return location(self.get_host())

    def check_factories(self) -> None:
        """Register providers this one implies (``@create`` methods); called when environments are built."""


class InstanceProvider(AbstractInstanceProvider[T]):
    """A provider with a host class, a type, eagerness and a scope; subclasses implement ``create``."""

    def __init__(self, host: type, t: type[T], eager: bool, scope: str) -> None:
        self.host = host
        self.type = t
        self.eager = eager
        self.scope = scope

    def get_host(self) -> type:
        return self.host

    def get_type(self) -> type[T]:
        return self.type

    def is_eager(self) -> bool:
        return self.eager

    def get_scope(self) -> str:
        return self.scope

    def module(self) -> str:
        """Module of the host."""
        return self.host.__module__

    @abstractmethod
    def create(self, environment: Environment, *args: Any) -> T: ...


class ClassInstanceProvider(InstanceProvider[T]):
    """Creates instances by calling the class, its ``__init__`` parameters injected by type hint."""

    def __init__(self, t: type[T], eager: bool, scope: str = "singleton", implicit: bool = False) -> None:
        super().__init__(t, t, eager, scope)
        #: registered by @advice or @module rather than @injectable; an explicit registration replaces it
        self.implicit = implicit
        self._plan: ArgumentPlan | None = None
        self._setter_deps: list[tuple[Any, str]] | None = None

    def _argument_plan(self) -> ArgumentPlan:
        if self._plan is None:
            init = self.type.__init__
            if init is object.__init__ or not inspect.isfunction(init):
                self._plan = ArgumentPlan(f"{describe(self.type)}.__init__", [])
            else:
                method = MethodDescriptor(self.type, init)
                self._plan = ArgumentPlan(f"{describe(self.type)}.__init__", method.params)
        return self._plan

    def _setter_dependencies(self) -> list[tuple[Any, str]]:
        # @inject setters are part of the graph, so a cycle through a setter is reported too
        if self._setter_deps is None:
            from warpcall.di._lifecycle import inject

            deps: list[tuple[Any, str]] = []
            for method in TypeDescriptor.for_type(self.type).get_methods():
                if method.has_decorator(inject):
                    plan = ArgumentPlan(method.qualified(), method.params)
                    deps.extend(zip(plan.dependencies, plan.sites))
            self._setter_deps = deps
        return self._setter_deps

    def get_dependencies(self) -> tuple[list[Any], int]:
        plan = self._argument_plan()
        return [*plan.dependencies, *(dep for dep, _ in self._setter_dependencies())], len(plan.dependencies)

    def dependency_sites(self) -> list[str]:
        return [*self._argument_plan().sites, *(site for _, site in self._setter_dependencies())]

    def check_factories(self) -> None:
        register_factories(self.host)

    def create(self, environment: Environment, *args: Any) -> T:
        plan = self._argument_plan()
        instance = self.type(*plan.values(environment, args[: len(plan.dependencies)]))
        return environment.created(instance)

    def report(self) -> str:
        return f"{describe(self.type)}.__init__"

    def __repr__(self) -> str:
        return f"ClassInstanceProvider({describe(self.type)})"


class FunctionInstanceProvider(InstanceProvider[Any]):
    """Creates instances by calling a ``@create`` method of a module or injectable."""

    def __init__(self, host: type, method: MethodDescriptor, eager: bool = True, scope: str = "singleton") -> None:
        return_type = method.return_type
        if return_type is None:
            raise DIRegistrationException(
                f"{method.qualified()} is decorated with @create but declares no return type; "
                "annotate what it returns so the container knows which type it provides"
            )
        super().__init__(host, return_type, eager, scope)
        self.method = method
        self._plan = ArgumentPlan(f"{method.qualified()}()", method.params)

    def get_dependencies(self) -> tuple[list[Any], int]:
        return [self.host, *self._plan.dependencies], 1 + len(self._plan.dependencies)

    def dependency_sites(self) -> list[str]:
        return [f"{self.method.qualified()}() (its own class)", *self._plan.sites]

    def create(self, environment: Environment, *args: Any) -> Any:
        instance = self.method.method(args[0], *self._plan.values(environment, args[1:]))
        return environment.created(instance)

    def location(self) -> str:
        return location(self.method.method)

    def report(self) -> str:
        return f"{self.method.qualified()}() -> {describe(self.type)}"

    def __repr__(self) -> str:
        return f"FunctionInstanceProvider({self.report()})"


class Factory(ABC, Generic[T]):
    """Base of ``@factory`` classes: ``create`` returns the instance of the type it is annotated with."""

    @abstractmethod
    def create(self) -> T:
        """A new instance."""


class FactoryInstanceProvider(InstanceProvider[Any]):
    """Creates instances by calling ``create()`` of a ``@factory`` class."""

    def __init__(self, factory: type, eager: bool, scope: str) -> None:
        method = TypeDescriptor.for_type(factory).get_method("create")
        return_type = method.return_type if method is not None else None
        if return_type is None:
            raise DIRegistrationException(
                f"{describe(factory)}.create is missing or declares no return type; "
                "a @factory must implement create() -> T"
            )
        super().__init__(factory, return_type, eager, scope)

    def get_dependencies(self) -> tuple[list[Any], int]:
        return [self.host], 1

    def dependency_sites(self) -> list[str]:
        return [f"{describe(self.host)}.create()"]

    def create(self, environment: Environment, *args: Any) -> Any:
        return environment.created(args[0].create())

    def report(self) -> str:
        return f"{describe(self.host)}.create() -> {describe(self.type)}"

    def __repr__(self) -> str:
        return f"FactoryInstanceProvider({self.report()})"


class Providers:
    """Every provider that decorators registered, in registration order."""

    providers: list[AbstractInstanceProvider[Any]] = []
    _pending: list[AbstractInstanceProvider[Any]] = []
    _lock = threading.RLock()

    @classmethod
    def register(cls, provider: AbstractInstanceProvider[Any]) -> None:
        """Add ``provider``; an explicit class provider replaces an implicit one of the same class."""
        with cls._lock:
            if isinstance(provider, ClassInstanceProvider):
                for index, existing in enumerate(cls.providers):
                    if isinstance(existing, ClassInstanceProvider) and existing.type is provider.type:
                        if provider.implicit:
                            return
                        if existing.implicit:
                            cls.providers[index] = provider
                            cls._pending.append(provider)
                            return
            cls.providers.append(provider)
            cls._pending.append(provider)

    @classmethod
    def is_registered(cls, t: type) -> bool:
        """True when some provider creates exactly ``t``."""
        cls.check_factories()
        return any(provider.get_type() is t for provider in cls.providers)

    @classmethod
    def check_factories(cls) -> None:
        """Register the ``@create`` methods of providers registered since the last call."""
        with cls._lock:
            while cls._pending:
                pending, cls._pending = cls._pending, []
                for provider in pending:
                    provider.check_factories()

    @classmethod
    def snapshot(cls) -> list[AbstractInstanceProvider[Any]]:
        """All providers, ``@create`` methods included."""
        cls.check_factories()
        with cls._lock:
            return list(cls.providers)


def register_factories(host: type) -> None:
    """Register a provider for every ``@create`` method of ``host``."""
    from warpcall.di._decorators import create

    for method in TypeDescriptor.for_type(host).get_methods(local=True):
        decorator = method.get_decorator(create)
        if decorator is not None:
            eager, scope = decorator.args
            Providers.register(FunctionInstanceProvider(host, method, eager, scope))
