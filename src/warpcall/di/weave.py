"""Pure twin of warpcall._native.weave: the joinpoint chain that runs a woven method.

A ``MethodPlan`` is built once per (environment, class, method) from the advice
that matches; ``plan.bind(instance)`` gives the per-instance callable for a sync
method and ``plan.run_async(instance, args, kwargs)`` runs an async one. Order
of a call: every ``before``; the ``around`` chain (first around outermost, the
method innermost); on an ``Exception`` every ``error``; every ``after`` (also
after an error); then the exception is re-raised unless an error advice cleared
``invocation.exception``, otherwise ``invocation.result`` is returned.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable


def _no_chain_error(name: str) -> RuntimeError:
    return RuntimeError(
        f"Invocation.proceed() of {name} has no advice chain: "
        "only invocations handed to advice by a woven method can proceed"
    )


class Invocation:
    """One call of a woven method: ``func``, ``args`` (``self`` first), ``kwargs``, ``result``, ``exception``."""

    __slots__ = ("func", "args", "kwargs", "result", "exception", "_plan", "_index", "_async")

    def __init__(self, func: Callable[..., Any], args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None):
        self.func = func
        self.args = args
        self.kwargs = kwargs if kwargs is not None else {}
        self.result: Any = None
        self.exception: BaseException | None = None
        self._plan: MethodPlan | None = None
        self._index = 0
        self._async = False

    def proceed(self, *args: Any, **kwargs: Any) -> Any:
        """Run the next around advice, finally the method; arguments given here replace the current ones.

        In the chain of an ``async def`` method this returns an awaitable.
        """
        if self._async:
            return self.proceed_async(*args, **kwargs)
        if args or kwargs:
            self.args = args
            self.kwargs = kwargs
        plan = self._plan
        if plan is None:
            raise _no_chain_error(self.func.__qualname__)
        index = self._index
        arounds = plan.arounds
        if index >= len(arounds):
            return self.func(*self.args, **self.kwargs)
        # the index is restored afterwards so that an around may proceed more than once
        self._index = index + 1
        try:
            return arounds[index](self)
        finally:
            self._index = index

    async def proceed_async(self, *args: Any, **kwargs: Any) -> Any:
        """Awaitable ``proceed`` for the chain of an ``async def`` method."""
        if args or kwargs:
            self.args = args
            self.kwargs = kwargs
        plan = self._plan
        if plan is None:
            raise _no_chain_error(self.func.__qualname__)
        index = self._index
        arounds = plan.arounds
        self._index = index + 1
        try:
            if index < len(arounds):
                result = arounds[index](self)
            else:
                result = self.func(*self.args, **self.kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result
        finally:
            self._index = index


class MethodPlan:
    """The advice chain of one method, built once; every call only walks these tuples."""

    __slots__ = ("func", "befores", "arounds", "afters", "errors", "_guarded")

    def __init__(
        self,
        func: Callable[..., Any],
        befores: tuple[Callable[[Invocation], Any], ...] = (),
        arounds: tuple[Callable[[Invocation], Any], ...] = (),
        afters: tuple[Callable[[Invocation], Any], ...] = (),
        errors: tuple[Callable[[Invocation], Any], ...] = (),
    ) -> None:
        self.func = func
        self.befores = tuple(befores)
        self.arounds = tuple(arounds)
        self.afters = tuple(afters)
        self.errors = tuple(errors)
        self._guarded = bool(self.afters or self.errors)

    def bind(self, instance: object) -> WovenMethod:
        """The callable that replaces the sync method on ``instance``."""
        return WovenMethod(self, instance)

    def run(self, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run the chain of a sync method once."""
        invocation = Invocation(self.func, (instance, *args), kwargs)
        invocation._plan = self
        for advice in self.befores:
            advice(invocation)
        if not self._guarded:
            invocation.result = invocation.proceed()
            return invocation.result
        try:
            invocation.result = invocation.proceed()
        except Exception as exc:
            invocation.exception = exc
            for advice in self.errors:
                advice(invocation)
        for advice in self.afters:
            advice(invocation)
        if invocation.exception is not None:
            raise invocation.exception
        return invocation.result

    async def run_async(self, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run the chain of an ``async def`` method once; async advice is awaited, sync advice called."""
        invocation = Invocation(self.func, (instance, *args), kwargs)
        invocation._plan = self
        invocation._async = True
        for advice in self.befores:
            outcome = advice(invocation)
            if inspect.isawaitable(outcome):
                await outcome
        try:
            invocation.result = await invocation.proceed_async()
        except Exception as exc:
            invocation.exception = exc
            for advice in self.errors:
                outcome = advice(invocation)
                if inspect.isawaitable(outcome):
                    await outcome
        for advice in self.afters:
            outcome = advice(invocation)
            if inspect.isawaitable(outcome):
                await outcome
        if invocation.exception is not None:
            raise invocation.exception
        return invocation.result


class WovenMethod:
    """A sync method of one instance with its advice chain; stored on the instance under the method's name."""

    __slots__ = ("_plan", "_instance")

    def __init__(self, plan: MethodPlan, instance: object) -> None:
        self._plan = plan
        self._instance = instance

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._plan.run(self._instance, args, kwargs)

    @property
    def __self__(self) -> object:
        return self._instance

    @property
    def __func__(self) -> Callable[..., Any]:
        return self._plan.func

    def __getattr__(self, name: str) -> Any:
        # __name__/__qualname__ live on the type's metaclass, so they are answered here
        if name in ("__name__", "__qualname__"):
            return getattr(self._plan.func, name)
        raise AttributeError(name)

    @property
    def __wrapped__(self) -> Callable[..., Any]:
        return self._plan.func.__get__(self._instance)

    def __repr__(self) -> str:
        return f"<woven method {self._plan.func.__qualname__} of {self._instance!r}>"


class InstanceCache:
    """Per-environment lookup of instances already created for a type; a miss goes to ``miss(key)``."""

    __slots__ = ("_cache", "_miss")

    def __init__(self, cache: dict[Any, Any], miss: Callable[[Any], Any]) -> None:
        self._cache = cache
        self._miss = miss

    def get(self, key: Any) -> Any:
        """The cached instance for ``key``, else whatever ``miss(key)`` returns."""
        value = self._cache.get(key)
        if value is not None:
            return value
        return self._miss(key)
