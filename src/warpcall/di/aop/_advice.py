"""``@advice`` classes and their ``@before`` / ``@around`` / ``@after`` / ``@error`` methods."""

from __future__ import annotations

import inspect
import itertools
from enum import Enum
from typing import Any, Callable, TypeVar

from warpcall.di._errors import AOPException
from warpcall.di._lifecycle import order_of
from warpcall.di._providers import ClassInstanceProvider, Providers
from warpcall.di._reflection import Decorators, TypeDescriptor
from warpcall.di.aop._pointcuts import AspectTarget

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)


class AspectType(Enum):
    """Where an advice method joins a call."""

    BEFORE = "before"
    AROUND = "around"
    AFTER = "after"
    ERROR = "error"


class AdviceMethod:
    """One advice method: its class, function, kind, pointcuts and sort key."""

    __slots__ = ("cls", "func", "kind", "targets", "order", "seq")

    def __init__(self, cls: type, func: Callable[..., Any], kind: AspectType,
                 targets: tuple[AspectTarget, ...], seq: int) -> None:
        self.cls = cls
        self.func = func
        self.kind = kind
        self.targets = targets
        self.order = order_of(func, order_of(cls))
        self.seq = seq

    def matches(self, cls: type, func: Callable[..., Any]) -> bool:
        """True when any of the pointcuts matches ``func`` of ``cls``."""
        return any(target._matches(cls, func) for target in self.targets)

    def qualified(self) -> str:
        return f"{self.cls.__qualname__}.{self.func.__name__}"


class Advices:
    """Every advice method of every ``@advice`` class, in declaration order."""

    methods: list[AdviceMethod] = []
    _counter = itertools.count()


def _joinpoint(kind: AspectType) -> Callable[..., Callable[[F], F]]:
    def decorator_factory(*targets: AspectTarget) -> Callable[[F], F]:
        if not targets or not all(isinstance(target, AspectTarget) for target in targets):
            raise AOPException(
                f"@{kind.value} needs one or more pointcuts built with methods() or classes(), got {targets!r}"
            )

        def decorator(func: F) -> F:
            Decorators.add(func, decorator_factory, kind, targets)
            return func

        return decorator

    decorator_factory.__name__ = decorator_factory.__qualname__ = kind.value
    decorator_factory.__doc__ = f"Run the decorated advice method {kind.value} the methods its pointcuts match."
    return decorator_factory


before = _joinpoint(AspectType.BEFORE)
around = _joinpoint(AspectType.AROUND)
after = _joinpoint(AspectType.AFTER)
error = _joinpoint(AspectType.ERROR)
_KINDS = (before, around, after, error)


def advice(cls: Any = None) -> Any:
    """Declare an advice class (``@advice`` or ``@advice()``); it is injectable, alone or with ``@injectable()``."""
    if cls is None:
        return advice
    Decorators.add(cls, advice)
    for method in TypeDescriptor.for_type(cls).get_methods(local=True):
        for entry in method.decorators:
            if entry.decorator in _KINDS:
                kind, targets = entry.args
                params = [p for p in inspect.signature(method.method).parameters.values()]
                if len(params) != 2:
                    raise AOPException(
                        f"advice method {cls.__qualname__}.{method.name} must take exactly one parameter "
                        f"(the Invocation) besides self"
                    )
                Advices.methods.append(AdviceMethod(cls, method.method, kind, targets, next(Advices._counter)))
    Providers.register(ClassInstanceProvider(cls, True, "singleton", implicit=True))
    return cls
