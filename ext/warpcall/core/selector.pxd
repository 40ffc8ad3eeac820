# C types of src/warpcall/core/selector.py (Cython reads this file beside the source when compiling it)

cdef object _no_url(str owner)


cdef class URLSelector:
    cdef public str owner
    cdef tuple _urls
    cdef tuple _all
    cdef object _guard
    cdef public Py_ssize_t picks


cdef class FirstURLSelector(URLSelector):
    pass


cdef class RoundRobinURLSelector(URLSelector):
    cdef object _counter
