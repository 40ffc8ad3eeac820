# C types of src/warpcall/di/weave.py (Cython reads this file beside the source when compiling it)

cimport cython

cdef object _isawaitable

cdef object _no_chain_error(str name)

@cython.locals(n=Py_ssize_t, i=Py_ssize_t, out=tuple, item=object)
cdef tuple _prepend(object first, tuple rest)


cdef class Invocation:
    cdef public object func
    cdef public object args
    cdef public object kwargs
    cdef public object result
    cdef public object exception
    cdef MethodPlan _plan
    cdef Py_ssize_t _index
    cdef bint _async

    @cython.locals(plan=MethodPlan, index=Py_ssize_t)
    cdef object _step(self)


@cython.locals(invocation=Invocation)
cdef Invocation _invocation(MethodPlan plan, object instance, tuple args, dict kwargs)


cdef class MethodPlan:
    cdef readonly object func
    cdef readonly tuple befores
    cdef readonly tuple arounds
    cdef readonly tuple afters
    cdef readonly tuple errors
    cdef Py_ssize_t _around_count
    cdef bint _guarded

    @cython.locals(invocation=Invocation)
    cdef object _run(self, object instance, tuple args, dict kwargs)


cdef class WovenMethod:
    cdef MethodPlan _plan
    cdef object _instance


cdef class InstanceCache:
    cdef dict _cache
    cdef object _miss
