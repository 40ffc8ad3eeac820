"""Weaving: give each new instance its advice chains, planned once per class and environment.

A woven sync method is the compiled ``WovenMethod`` stored on the instance
under the method's name (``isinstance`` and the class stay untouched); an
``async def`` method becomes an ``async def`` wrapper, so it stays awaitable
and ``inspect.iscoroutinefunction`` stays true.

Order of one call: ``@before`` advice, the ``@around`` chain (outermost first),
``@error`` advice when the method (or an around) raised, ``@after`` advice
always; then the exception is re-raised or the result returned. Within each
kind, advice runs by ``@order`` of the advice method (else of its class,
default 0), ties in declaration order.
"""

from __future__ import annotations

import functools
import inspect
import threading
import types
from typing import TYPE_CHECKING, Any, Callable

from warpcall.di import _environment
from warpcall.di._bindings import Binding
from warpcall.di._errors import AOPException
from warpcall.di._reflection import TypeDescriptor
from warpcall.di.aop._advice import AdviceMethod, Advices, AspectType
from warpcall.di.weave import MethodPlan

if TYPE_CHECKING:
    from warpcall.di._environment import Environment


def _async_method(plan: MethodPlan, instance: object) -> Callable[..., Any]:
    run = plan.run_async

    async def woven(*args: Any, **kwargs: Any) -> Any:
        return await run(instance, args, kwargs)

    functools.update_wrapper(woven, plan.func)
    woven.__wrapped__ = plan.func.__get__(instance)  # type: ignore[attr-defined]
    return woven


class Weaver:
    """Weaves the advice managed by one environment into the instances it creates."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self._plans: dict[type, list[tuple[str, MethodPlan, bool]]] = {}
        self._lock = threading.RLock()

    def weave(self, instance: object) -> None:
        """Replace the advised methods of ``instance`` by their chains."""
        cls = type(instance)
        plans = self._plans.get(cls)
        if plans is None:
            with self._lock:
                plans = self._plans.get(cls)
                if plans is None:
                    plans = self._plan_class(cls)
                    self._plans[cls] = plans
        if not plans:
            return
        slots = getattr(instance, "__dict__", None)
        if slots is None:
            raise AOPException(
                f"cannot weave advice into {cls.__qualname__}: its instances have no __dict__; "
                "add '__dict__' to its __slots__"
            )
        for name, plan, is_async in plans:
            slots[name] = _async_method(plan, instance) if is_async else plan.bind(instance)

    def _plan_class(self, cls: type) -> list[tuple[str, MethodPlan, bool]]:
        bindings = self.environment._bindings
        # advice of aspects the environment binds exactly (has_provider, and the binding is the aspect's own)
        candidates = [
            entry for entry in Advices.methods
            if entry.cls is not cls and isinstance(binding := bindings.get(entry.cls), Binding)
            and binding.type is entry.cls
        ]
        if not candidates:
            return []
        plans = []
        for method in TypeDescriptor.for_type(cls).get_methods():
            name = method.name
            if name.startswith("__") and name.endswith("__"):
                continue
            matching = [entry for entry in candidates if entry.matches(cls, method.method)]
            if matching:
                plans.append((name, self._plan_method(cls, method.method, matching), method.is_async()))
        return plans

    def _plan_method(self, cls: type, func: Callable[..., Any], matching: list[AdviceMethod]) -> MethodPlan:
        is_async = inspect.iscoroutinefunction(func)
        chains: dict[AspectType, list[Any]] = {kind: [] for kind in AspectType}
        for entry in sorted(matching, key=lambda entry: (entry.order, entry.seq)):
            if not is_async and inspect.iscoroutinefunction(entry.func):
                raise AOPException(
                    f"the async advice {entry.qualified()} cannot run {entry.kind.value} the sync method "
                    f"{cls.__qualname__}.{func.__name__}; make the advice sync or restrict its pointcut "
                    "with .that_are_async()"
                )
            instance: object = self.environment.get(entry.cls)
            chains[entry.kind].append(types.MethodType(entry.func, instance))
        return MethodPlan(
            func,
            befores=tuple(chains[AspectType.BEFORE]),
            arounds=tuple(chains[AspectType.AROUND]),
            afters=tuple(chains[AspectType.AFTER]),
            errors=tuple(chains[AspectType.ERROR]),
        )


_environment.weaver_factory = Weaver
