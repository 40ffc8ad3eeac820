"""The joinpoint chain that runs a woven method; compiled with the C types of ext/warpcall/di/weave.pxd.

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
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # type checkers read the shim: Cython ships no types for its pure-mode names
    from warpcall import _cython_shim as cython
else:
    try:
        import cython
    except ImportError:  # plain Python without Cython installed
        from warpcall import _cython_shim as cython

if cython.compiled:
    # (first, *rest) compiled by Cython builds a list and copies it into a tuple; _prepend fills one tuple
    from cython.cimports.cpython.ref import Py_INCREF
    from cython.cimports.cpython.tuple import (
        PyTuple_GET_ITEM,
        PyTuple_GET_SIZE,
        PyTuple_New,
        PyTuple_SET_ITEM,
    )

_isawaitable = inspect.isawaitable


def _no_chain_error(name: str) -> RuntimeError:
    return RuntimeError(
        f"Invocation.proceed() of {name} has no advice chain: "
        "only invocations handed to advice by a woven method can proceed"
    )


def _prepend(first: object, rest: tuple[Any, ...]) -> tuple[Any, ...]:
    # (first, *rest): the arguments of the method with its instance as self
    if not cython.compiled:
        return (first, *rest)
    n = PyTuple_GET_SIZE(rest)
    out: tuple[Any, ...] = PyTuple_New(n + 1)
    Py_INCREF(first)
    PyTuple_SET_ITEM(out, 0, first)
    for i in range(n):
        item = cython.cast(object, PyTuple_GET_ITEM(rest, i))
        Py_INCREF(item)
        PyTuple_SET_ITEM(out, i + 1, item)
    return out


class WovenMethod:
    """A sync method of one instance with its advice chain; stored on the instance under the method's name."""

    __slots__ = ("_plan", "_instance")

    def __init__(self, plan: MethodPlan, instance: object) -> None:
        self._plan = plan
        self._instance = instance

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._plan._run(self._instance, args, kwargs)

    @property
    def __self__(self) -> object:
        return self._instance

    @property
    def __func__(self) -> Callable[..., Any]:
        return self._plan.func

    def __getattr__(self, name: str) -> Any:
        # answered here, not by properties: a class body cannot define __qualname__ as a property
        if name in ("__name__", "__qualname__"):
            return getattr(self._plan.func, name)
        raise AttributeError(name)

    @property
    def __wrapped__(self) -> Callable[..., Any]:
        bound: Callable[..., Any] = self._plan.func.__get__(self._instance)
        return bound

    def __repr__(self) -> str:
        return f"<woven method {self._plan.func.__qualname__} of {self._instance!r}>"


class MethodPlan:
    """The advice chain of one method, built once; every call only walks these tuples."""

    __slots__ = ("func", "befores", "arounds", "afters", "errors", "_around_count", "_guarded")

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
        self._around_count: int = len(self.arounds)
        self._guarded: bool = bool(self.afters or self.errors)

    @cython.locals(woven=WovenMethod)
    def bind(self, instance: object) -> WovenMethod:
        """The callable that replaces the sync method on ``instance``."""
        woven = WovenMethod.__new__(WovenMethod)
        woven._plan = self
        woven._instance = instance
        return woven

    @cython.locals(args=tuple, kwargs=dict)
    def run(self, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run the chain of a sync method once."""
        return self._run(instance, args, kwargs)

    def _run(self, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        invocation = _invocation(self, instance, args, kwargs)
        for advice in self.befores:
            advice(invocation)
        if not self._guarded:
            invocation.result = invocation._step()
            return invocation.result
        try:
            invocation.result = invocation._step()
        except Exception as exc:
            invocation.exception = exc
            for advice in self.errors:
                advice(invocation)
        for advice in self.afters:
            advice(invocation)
        if invocation.exception is not None:
            raise invocation.exception
        return invocation.result

    @cython.locals(args=tuple, kwargs=dict)
    async def run_async(self, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run the chain of an ``async def`` method once; async advice is awaited, sync advice called."""
        invocation = _invocation(self, instance, args, kwargs)
        invocation._async = True
        for advice in self.befores:
            outcome = advice(invocation)
            if _isawaitable(outcome):
                await outcome
        try:
            invocation.result = await invocation.proceed_async()
        except Exception as exc:
            invocation.exception = exc
            for advice in self.errors:
                outcome = advice(invocation)
                if _isawaitable(outcome):
                    await outcome
        for advice in self.afters:
            outcome = advice(invocation)
            if _isawaitable(outcome):
                await outcome
        if invocation.exception is not None:
            raise invocation.exception
        return invocation.result


def _proceed(self: Invocation, *args: Any, **kwargs: Any) -> Any:
    """Run the next around advice, finally the method; arguments given here replace the current ones.

    In the chain of an ``async def`` method this returns an awaitable.
    """
    invocation = cython.cast(Invocation, self, typecheck=True)
    if invocation._async:
        return invocation.proceed_async(*args, **kwargs)
    if args or kwargs:
        invocation.args = args
        invocation.kwargs = kwargs
    return invocation._step()


# compiled, invocations are recycled (one per call); Cython takes the free list only on a class
# marked cclass in the source, though the .pxd alone makes the other classes extension types
@cython.freelist(32)
@cython.cclass
class Invocation:
    """One call of a woven method: ``func``, ``args`` (``self`` first), ``kwargs``, ``result``, ``exception``."""

    __slots__ = ("func", "args", "kwargs", "result", "exception", "_plan", "_index", "_async")

    def __init__(
        self, func: Callable[..., Any], args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> None:
        self.func = func
        self.args = args
        self.kwargs = kwargs if kwargs is not None else {}
        self.result: Any = None
        self.exception: BaseException | None = None
        self._plan: MethodPlan | None = None
        self._index: int = 0
        self._async: bool = False

    def _step(self) -> Any:
        # run around number _index, or the method itself when the arounds are used up
        plan = self._plan
        index = self._index
        if plan is None:
            raise _no_chain_error(self.func.__qualname__)
        if index >= plan._around_count:
            if self.kwargs:
                return self.func(*self.args, **self.kwargs)
            return self.func(*self.args)
        # the index is restored afterwards so that an around may proceed more than once
        self._index = index + 1
        try:
            return plan.arounds[index](self)
        finally:
            self._index = index

    # proceed is a module-level function bound here: compiled, a function takes *args/**kwargs
    # through vectorcall, which costs far less per call than a method of an extension type
    proceed = _proceed

    @cython.locals(plan=MethodPlan, index=cython.Py_ssize_t)
    async def proceed_async(self, *args: Any, **kwargs: Any) -> Any:
        """Awaitable ``proceed`` for the chain of an ``async def`` method."""
        if args or kwargs:
            self.args = args
            self.kwargs = kwargs
        plan = self._plan
        index = self._index
        if plan is None:
            raise _no_chain_error(self.func.__qualname__)
        self._index = index + 1
        try:
            if index < plan._around_count:
                result = plan.arounds[index](self)
            else:
                result = self.func(*self.args, **self.kwargs)
            if _isawaitable(result):
                result = await result
            return result
        finally:
            self._index = index


def _invocation(plan: MethodPlan, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Invocation:
    # a new invocation of plan's method with ``instance`` as self, without running __init__
    invocation = Invocation.__new__(Invocation)
    invocation.func = plan.func
    invocation.args = _prepend(instance, args)
    invocation.kwargs = kwargs
    invocation.result = None
    invocation.exception = None
    invocation._plan = plan
    invocation._index = 0
    invocation._async = False
    return invocation


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
