# C types of src/warpcall/core/proxy.py (Cython reads this file beside the source when compiling it).
# The one piece here with a body is _Call's call slot: only the C API can take a call's keywords
# without a dict (the source's __call__, which plain Python runs, gets them as **kwargs).

cimport cython
from cpython.dict cimport PyDict_Copy, PyDict_Size
from cpython.object cimport PyObject, PyTypeObject, ternaryfunc

cdef object _MISSING

cdef str _quoted_names(list names)


cdef class MethodDescriptor:
    cdef public str name
    cdef public str qualified
    cdef public object func
    cdef public object service_type
    cdef public bint is_async
    cdef public object signature
    cdef public tuple param_names
    cdef public dict plans
    cdef object _param_types
    cdef object _return_type
    cdef str _label
    cdef Py_ssize_t _count
    cdef Py_ssize_t _required
    cdef tuple _defaults
    cdef dict _index
    cdef frozenset _positional_only
    cdef str _unbindable

    cdef _resolve_hints(self)
    cpdef tuple bind(self, object args, object kwargs=*)
    cdef str _too_many(self, Py_ssize_t given)
    cdef str _missing(self, list names)


@cython.final
cdef class Invocation:
    cdef public MethodDescriptor descriptor
    cdef public tuple args
    cdef public object keywords


cdef object _methods_lock
cdef object _classes_lock
cdef dict _methods_cache
cdef dict _proxy_classes

cdef dict _collect_methods(object service_type)
cdef object _build_proxy_class(object service_type)


@cython.final
cdef class _Call:
    cdef MethodDescriptor method
    cdef object handler

    cdef inline object _invoke(self, tuple args, object kwargs)


cdef inline object _call_slot(object self, object args, PyObject* kwargs):
    """tp_call of _Call: CPython passes NULL when there are no keywords, so no empty dict is built per call."""
    if kwargs is NULL or PyDict_Size(<object>kwargs) == 0:
        return (<_Call>self)._invoke(<tuple>args, None)
    # the dict may be the caller's own (C callers of PyObject_Call); the invocation keeps a copy, like Python
    return (<_Call>self)._invoke(<tuple>args, PyDict_Copy(<object>kwargs))


# run once at import, from the source's `if cython.compiled:` branch
cdef inline void _install_call_slot() noexcept:
    (<PyTypeObject*>_Call).tp_call = <ternaryfunc>_call_slot
