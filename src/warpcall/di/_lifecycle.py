"""Lifecycle of a managed instance: injection, post processing, ``@on_init``, ``@on_running``, ``@on_destroy``.

Each instance the environment creates goes through, in this order:

1. its constructor (parameters injected by type hint);
2. the ``Lifecycle.ON_INJECT`` callables: ``@inject_environment``, ``@inject_value``, ``@inject``,
   then custom ``LifecycleCallable``s, ordered by ``@order``;
3. advice weaving (``warpcall.di.aop``);
4. every ``PostProcessor`` (and other ``LifecycleProcessor``) of the environment, by ``@order``;
5. the ``Lifecycle.ON_INIT`` callables (``@on_init``).

``@on_running`` runs once the environment is built, ``@on_destroy`` at ``destroy()``
in reverse creation order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from warpcall.di._errors import DIRuntimeException
from warpcall.di._reflection import DecoratorDescriptor, Decorators, MethodDescriptor, TypeDescriptor

if TYPE_CHECKING:
    from warpcall.di._environment import Environment

F = TypeVar("F", bound=Callable[..., Any])


class Lifecycle(Enum):
    """The phases in which callables and processors run."""

    ON_INJECT = 0
    ON_INIT = 1
    ON_RUNNING = 2
    ON_DESTROY = 3


def order(prio: int = 0) -> Callable[[F], F]:
    """Sort key of a processor, lifecycle callable or advice method: smaller runs first (default 0)."""

    def decorator(target: F) -> F:
        Decorators.add(target, order, prio)
        return target

    return decorator


def order_of(target: Any, default: int = 0) -> int:
    """The ``@order`` of a function or class, or ``default``."""
    found = Decorators.get_decorator(target, order)
    return found.args[0] if found is not None else default


def _marker(name: str, doc: str) -> Callable[[], Callable[[F], F]]:
    def factory() -> Callable[[F], F]:
        def decorator(func: F) -> F:
            Decorators.add(func, factory)
            return func

        return decorator

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = doc
    return factory


on_init = _marker("on_init", "Call the method after the instance is injected and post processed.")
on_running = _marker("on_running", "Call the method once the environment is completely built.")
on_destroy = _marker("on_destroy", "Call the method when the environment is destroyed.")
inject = _marker("inject", "Call the method with instances of its parameters' types after construction.")
inject_environment = _marker("inject_environment", "Call the method with the environment after construction.")


class LifecycleCallable:
    """Calls the methods decorated with ``decorator`` in phase ``lifecycle``; ``args`` computes their arguments.

    Subclasses that are injectable extend the container with new injection decorators;
    the environment uses them for every instance it creates after them.
    """

    def __init__(self, decorator: Callable[..., Any], lifecycle: Lifecycle) -> None:
        self.decorator = decorator
        self.lifecycle = lifecycle
        self.order = order_of(type(self))

    def args(self, decorator: DecoratorDescriptor, method: MethodDescriptor, environment: Environment) -> list[Any]:
        """Arguments of one call of ``method`` (``self`` excluded)."""
        return []

    def dependencies(self, decorator: DecoratorDescriptor, method: MethodDescriptor) -> list[tuple[Any, str]]:
        """Types that ``args`` will ``get`` for ``method``, with who needs them (checked at build)."""
        return []


class LifecycleProcessor(ABC):
    """Runs for every instance the environment creates after it, in every phase."""

    def __init__(self) -> None:
        self.order = order_of(type(self))

    @abstractmethod
    def process_lifecycle(self, lifecycle: Lifecycle, instance: object, environment: Environment) -> object:
        """React to ``instance`` entering ``lifecycle``."""


class PostProcessor(LifecycleProcessor):
    """Injectable subclasses get ``process`` called for each instance created after them (before ``@on_init``)."""

    @abstractmethod
    def process(self, instance: object, environment: Environment) -> None:
        """Work on a new, injected instance."""

    def process_lifecycle(self, lifecycle: Lifecycle, instance: object, environment: Environment) -> object:
        if lifecycle is Lifecycle.ON_INIT:
            self.process(instance, environment)
        return instance


class MethodCall:
    """One decorated method and the callable that supplies its arguments."""

    __slots__ = ("method", "decorator", "callable", "is_async")

    def __init__(self, method: MethodDescriptor, decorator: DecoratorDescriptor, callable_: LifecycleCallable) -> None:
        self.method = method
        self.decorator = decorator
        self.callable = callable_
        self.is_async = method.is_async()

    def call(self, instance: object, environment: Environment) -> Any:
        """Call the method on ``instance``; returns a coroutine for ``async def`` methods."""
        return self.method.method(instance, *self.callable.args(self.decorator, self.method, environment))


class LifecyclePlan:
    """The lifecycle method calls of one class in one environment, per phase, sorted; built once."""

    __slots__ = ("phases",)

    def __init__(self, cls: type, callables: dict[Any, LifecycleCallable]) -> None:
        self.phases: list[list[MethodCall]] = [[], [], [], []]
        for method in TypeDescriptor.for_type(cls).get_methods():
            for decorator in method.decorators:
                callable_ = callables.get(decorator.decorator)
                if callable_ is not None:
                    self.phases[callable_.lifecycle.value].append(MethodCall(method, decorator, callable_))
        for calls in self.phases:
            calls.sort(key=lambda call: call.callable.order)

    def calls(self, lifecycle: Lifecycle) -> list[MethodCall]:
        """The calls of one phase."""
        return self.phases[lifecycle.value]


_Call = MethodCall  # the class attribute MethodCall below would shadow the name in the annotations


class AbstractCallableProcessor(LifecycleProcessor):
    """Calls, in one lifecycle phase, the methods decorated with the decorators of the callables registered with it.

    aspyx.di's base of its per-phase processors. The environment runs the callables it creates
    (injectable ``LifecycleCallable`` subclasses) itself; a processor of this kind brings its own set,
    so a decorator can take effect only where this processor is installed (make the subclass
    injectable in the modules that want it). Register a callable here or with the environment, not
    both: it would run twice. Methods run synchronously; an ``async def`` one raises DIRuntimeException.
    """

    MethodCall = MethodCall

    def __init__(self, lifecycle: Lifecycle) -> None:
        super().__init__()
        self.lifecycle = lifecycle
        self.callables: dict[Any, LifecycleCallable] = {}
        self._plans: dict[type, LifecyclePlan] = {}

    def register(self, callable_: LifecycleCallable) -> None:
        """Run the methods decorated with ``callable_.decorator`` (in ``callable_.lifecycle``) from now on."""
        self.callables[callable_.decorator] = callable_
        self._plans = {}  # plans computed before it do not know its decorator

    def callables_for(self, cls: type) -> list[list[_Call]]:
        """The calls of ``cls``'s decorated methods per phase (indexed by ``Lifecycle.value``), by ``@order``."""
        plan = self._plans.get(cls)
        if plan is None:
            plan = self._plans[cls] = LifecyclePlan(cls, self.callables)
        return plan.phases

    def process_lifecycle(self, lifecycle: Lifecycle, instance: object, environment: Environment) -> object:
        if lifecycle is self.lifecycle:
            for call in self.callables_for(type(instance))[lifecycle.value]:
                if call.is_async:
                    raise DIRuntimeException(
                        f"{call.method.qualified()} is async; {type(self).__name__} calls its methods synchronously"
                    )
                call.call(instance, environment)
        return instance


class _Plain(LifecycleCallable):
    """A callable for decorators whose methods take no arguments."""


class _EnvironmentArgument(LifecycleCallable):
    def args(self, decorator: DecoratorDescriptor, method: MethodDescriptor, environment: Environment) -> list[Any]:
        return [environment]


class _InjectArguments(LifecycleCallable):
    def __init__(self, decorator: Callable[..., Any], lifecycle: Lifecycle) -> None:
        super().__init__(decorator, lifecycle)
        self._plans: dict[Any, Any] = {}

    def args(self, decorator: DecoratorDescriptor, method: MethodDescriptor, environment: Environment) -> list[Any]:
        from warpcall.di._providers import ArgumentPlan

        plan = self._plans.get(method.method)
        if plan is None:
            plan = self._plans[method.method] = ArgumentPlan(method.qualified(), method.params)
        return plan.values(environment, [environment.get(dep) for dep in plan.dependencies])


def builtin_callables() -> list[LifecycleCallable]:
    """The callables every environment has."""
    callables: list[LifecycleCallable] = []
    for decorator, lifecycle, cls, prio in (
        (inject_environment, Lifecycle.ON_INJECT, _EnvironmentArgument, 9),
        (inject, Lifecycle.ON_INJECT, _InjectArguments, 10),
        (on_init, Lifecycle.ON_INIT, _Plain, 1000),
        (on_running, Lifecycle.ON_RUNNING, _Plain, 1000),
        (on_destroy, Lifecycle.ON_DESTROY, _Plain, 1000),
    ):
        callable_ = cls(decorator, lifecycle)
        callable_.order = prio
        callables.append(callable_)
    return callables
