"""Compiled twin of warpcall._pure.invokehead: one complete, plain ``POST /invoke`` request in a chunk of bytes."""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.string cimport memcmp

__all__ = ["REQUEST_LINE", "parse"]

REQUEST_LINE = b"POST /invoke HTTP/1.1\r\n"
MAX_HEADERS = 100

cdef bint TOKEN[256]
cdef bint VALUE[256]


cdef void _init_tables():
    cdef int c
    for c in range(256):
        TOKEN[c] = (
            (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122)
            or c in (33, 35, 36, 37, 38, 39, 42, 43, 45, 46, 94, 95, 96, 124, 126)
        )
        # visible ASCII, space and tab: anything else in a value (obs-text, controls) is left to uvicorn
        VALUE[c] = (0x20 <= c < 0x7F) or c == 0x09


_init_tables()


cdef bint _is(const unsigned char* p, Py_ssize_t n, const char* lower) noexcept:
    """p[:n] equals the lowercase ASCII name ``lower``, ignoring case."""
    cdef Py_ssize_t i
    for i in range(n):
        if lower[i] == 0:
            return False
        if (p[i] | 0x20 if 65 <= p[i] <= 90 else p[i]) != <unsigned char>lower[i]:
            return False
    return lower[n] == 0


def parse(data, Py_ssize_t limit):
    """``(content type, x-rpc-method, head length)`` when ``data`` is exactly one plain ``POST /invoke``.

    Plain means: HTTP/1.1, well-formed header lines of visible ASCII, one ``Content-Length``
    of at most ``limit`` matching the bytes after the head, at most one ``Content-Type`` and
    one ``X-Rpc-Method``, no ``Transfer-Encoding``, ``Expect``, ``Upgrade``, ``TE`` or ``Trailer``,
    ``Connection`` only as ``keep-alive``. Values come without surrounding spaces or tabs;
    a missing ``Content-Type`` or ``X-Rpc-Method`` is ``b""``.
    """
    cdef const unsigned char* p
    cdef Py_ssize_t n, pos, name_start, name_end, vs, ve, i, headers = 0
    cdef Py_ssize_t ct_start = -1, ct_end = -1, mh_start = -1, mh_end = -1
    cdef long long content_length = -1
    cdef const char* line = b"POST /invoke HTTP/1.1\r\n"
    if type(data) is not bytes:
        return None
    p = <const unsigned char*>PyBytes_AS_STRING(data)
    n = PyBytes_GET_SIZE(data)
    if n < 23 or memcmp(p, line, 23) != 0:
        return None
    pos = 23
    while True:
        if pos + 1 >= n:
            return None
        if p[pos] == 13 and p[pos + 1] == 10:
            pos += 2
            break
        headers += 1
        if headers > MAX_HEADERS:
            return None
        name_start = pos
        while pos < n and TOKEN[p[pos]]:
            pos += 1
        if pos == name_start or pos >= n or p[pos] != 58:  # ':'
            return None
        name_end = pos
        pos += 1
        while pos < n and p[pos] != 13:
            if not VALUE[p[pos]]:
                return None
            pos += 1
        if pos + 1 >= n or p[pos + 1] != 10:
            return None
        vs = name_end + 1
        ve = pos
        pos += 2
        while vs < ve and (p[vs] == 32 or p[vs] == 9):
            vs += 1
        while ve > vs and (p[ve - 1] == 32 or p[ve - 1] == 9):
            ve -= 1
        if _is(p + name_start, name_end - name_start, "content-length"):
            if content_length >= 0 or ve == vs or ve - vs > 18:
                return None
            content_length = 0
            for i in range(vs, ve):
                if not (48 <= p[i] <= 57):
                    return None
                content_length = content_length * 10 + (p[i] - 48)
        elif _is(p + name_start, name_end - name_start, "content-type"):
            if ct_start >= 0:
                return None
            ct_start, ct_end = vs, ve
        elif _is(p + name_start, name_end - name_start, "x-rpc-method"):
            if mh_start >= 0:
                return None
            mh_start, mh_end = vs, ve
        elif _is(p + name_start, name_end - name_start, "connection"):
            if not _is(p + vs, ve - vs, "keep-alive"):
                return None
        elif (
            _is(p + name_start, name_end - name_start, "transfer-encoding")
            or _is(p + name_start, name_end - name_start, "expect")
            or _is(p + name_start, name_end - name_start, "upgrade")
            or _is(p + name_start, name_end - name_start, "te")
            or _is(p + name_start, name_end - name_start, "trailer")
        ):
            return None
    if content_length < 0 or content_length > limit or n - pos != content_length:
        return None
    return (
        PyBytes_FromStringAndSize(<const char*>p + ct_start, ct_end - ct_start) if ct_start >= 0 else b"",
        PyBytes_FromStringAndSize(<const char*>p + mh_start, mh_end - mh_start) if mh_start >= 0 else b"",
        pos,
    )
