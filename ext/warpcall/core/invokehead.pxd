# C types of src/warpcall/core/invokehead.py (Cython reads this file beside the source when compiling it)

cdef Py_ssize_t _HEAD_START, _MAX_TIMEOUT_DIGITS
# read through const unsigned char* locals in parse()
cdef bytes _REQUEST_LINE, _TOKEN, _VALUE

# lower is a C string literal at every call: len() is strlen, which the C compiler folds
cdef bint _is(const unsigned char* p, Py_ssize_t start, Py_ssize_t end, const char* lower) noexcept
