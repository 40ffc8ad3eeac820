"""Compiled twin of warpcall._pure.weave: the joinpoint chain that runs a woven method.

Same names, results, exceptions and messages as the pure module; see its
docstring for the order of a call.
"""

cimport cython
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_GET_SIZE, PyTuple_GET_ITEM, PyTuple_New, PyTuple_SET_ITEM

import inspect

cdef object _isawaitable = inspect.isawaitable


cdef object _no_chain_error(str name):
    return RuntimeError(
        f"Invocation.proceed() of {name} has no advice chain: "
        "only invocations handed to advice by a woven method can proceed"
    )


cdef inline tuple _prepend(object first, tuple rest):
    # (first, *rest) without building an intermediate tuple
    cdef Py_ssize_t n = PyTuple_GET_SIZE(rest)
    cdef Py_ssize_t i
    cdef tuple out = PyTuple_New(n + 1)
    cdef object item
    Py_INCREF(first)
    PyTuple_SET_ITEM(out, 0, first)
    for i in range(n):
        item = <object>PyTuple_GET_ITEM(rest, i)
        Py_INCREF(item)
        PyTuple_SET_ITEM(out, i + 1, item)
    return out


def _proceed(Invocation self, *args, **kwargs):
    """Run the next around advice, finally the method; arguments given here replace the current ones.

    In the chain of an ``async def`` method this returns an awaitable.
    """
    if self._async:
        return self.proceed_async(*args, **kwargs)
    if args or kwargs:
        self.args = args
        self.kwargs = kwargs
    return self._step()


@cython.freelist(32)
cdef class Invocation:
    """One call of a woven method: ``func``, ``args`` (``self`` first), ``kwargs``, ``result``, ``exception``."""

    cdef public object func
    cdef public object args
    cdef public object kwargs
    cdef public object result
    cdef public object exception
    cdef MethodPlan _plan
    cdef Py_ssize_t _index
    cdef bint _async

    def __init__(self, func, args=(), kwargs=None):
        self.func = func
        self.args = args
        self.kwargs = kwargs if kwargs is not None else {}
        self.result = None
        self.exception = None
        self._plan = None
        self._index = 0
        self._async = False

    cdef object _step(self):
        # run around number _index, or the method itself when the arounds are used up
        cdef MethodPlan plan = self._plan
        cdef Py_ssize_t index = self._index
        if plan is None:
            raise _no_chain_error(self.func.__qualname__)
        if index >= plan._around_count:
            if self.kwargs:
                return self.func(*self.args, **self.kwargs)
            return self.func(*self.args)
        # the index is restored afterwards so that an around may proceed more than once
        self._index = index + 1
        try:
            return (<object>PyTuple_GET_ITEM(plan.arounds, index))(self)
        finally:
            self._index = index

    # proceed is a module-level function bound here: a cyfunction takes *args/**kwargs
    # through vectorcall, which costs far less per call than a method of a cdef class
    proceed = _proceed

    async def proceed_async(self, *args, **kwargs):
        """Awaitable ``proceed`` for the chain of an ``async def`` method."""
        if args or kwargs:
            self.args = args
            self.kwargs = kwargs
        cdef MethodPlan plan = self._plan
        cdef Py_ssize_t index = self._index
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


cdef class MethodPlan:
    """The advice chain of one method, built once; every call only walks these tuples."""

    cdef readonly object func
    cdef readonly tuple befores
    cdef readonly tuple arounds
    cdef readonly tuple afters
    cdef readonly tuple errors
    cdef Py_ssize_t _around_count
    cdef bint _guarded

    def __init__(self, func, befores=(), arounds=(), afters=(), errors=()):
        self.func = func
        self.befores = tuple(befores)
        self.arounds = tuple(arounds)
        self.afters = tuple(afters)
        self.errors = tuple(errors)
        self._around_count = len(self.arounds)
        self._guarded = bool(self.afters or self.errors)

    def bind(self, instance):
        """The callable that replaces the sync method on ``instance``."""
        cdef WovenMethod woven = WovenMethod.__new__(WovenMethod)
        woven._plan = self
        woven._instance = instance
        return woven

    def run(self, instance, tuple args, dict kwargs):
        """Run the chain of a sync method once."""
        return self._run(instance, args, kwargs)

    cdef object _run(self, object instance, tuple args, dict kwargs):
        cdef Invocation invocation = Invocation.__new__(Invocation)
        invocation.func = self.func
        invocation.args = _prepend(instance, args)
        invocation.kwargs = kwargs
        invocation._plan = self
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

    async def run_async(self, instance, tuple args, dict kwargs):
        """Run the chain of an ``async def`` method once; async advice is awaited, sync advice called."""
        cdef Invocation invocation = Invocation.__new__(Invocation)
        invocation.func = self.func
        invocation.args = _prepend(instance, args)
        invocation.kwargs = kwargs
        invocation._plan = self
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


cdef class WovenMethod:
    """A sync method of one instance with its advice chain; stored on the instance under the method's name."""

    cdef MethodPlan _plan
    cdef object _instance

    def __init__(self, MethodPlan plan, instance):
        self._plan = plan
        self._instance = instance

    def __call__(self, *args, **kwargs):
        return self._plan._run(self._instance, args, kwargs)

    @property
    def __self__(self):
        return self._instance

    @property
    def __func__(self):
        return self._plan.func

    @property
    def __name__(self):
        return self._plan.func.__name__

    @property
    def __qualname__(self):
        return self._plan.func.__qualname__

    @property
    def __wrapped__(self):
        return self._plan.func.__get__(self._instance)

    def __repr__(self):
        return f"<woven method {self._plan.func.__qualname__} of {self._instance!r}>"


cdef class InstanceCache:
    """Per-environment lookup of instances already created for a type; a miss goes to ``miss(key)``."""

    cdef dict _cache
    cdef object _miss

    def __init__(self, dict cache, miss):
        self._cache = cache
        self._miss = miss

    def get(self, key):
        """The cached instance for ``key``, else whatever ``miss(key)`` returns."""
        value = self._cache.get(key)
        if value is not None:
            return value
        return self._miss(key)
