# C types of src/warpcall/core/selector.py

cdef object _no_url(str owner)


cdef class URLSelector:
    cdef public str owner
    cdef tuple _urls


cdef class FirstURLSelector(URLSelector):
    pass


cdef class RoundRobinURLSelector(URLSelector):
    cdef Py_ssize_t _next
    cdef object _counter

    @cython.locals(urls=tuple, n=Py_ssize_t, i=Py_ssize_t)
    cpdef select(self)
