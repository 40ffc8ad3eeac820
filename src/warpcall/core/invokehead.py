"""Recognize one complete, plain ``POST /invoke`` request in a chunk of bytes read from a connection.

The server's protocol asks :func:`parse` about every chunk it receives while the connection
is idle. Only a chunk that is exactly one request of the plainest form gets an answer; for
everything else (a request in pieces, two requests, another route, HTTP/1.0, chunked or
oversized bodies, ``Expect``, ``Upgrade``, any byte a strict parser could read differently)
it returns None and the chunk goes to uvicorn's parser as before. So this parser never has
to agree with llhttp on a bad request: it only has to be sure of the good ones.

One source for both builds: compiled by Cython with the C types of ``ext/warpcall/core/invokehead.pxd``,
the scan below reads the chunk through a ``const unsigned char*``; run as plain Python, the same
names hold the bytes objects themselves, and indexing gives the same integers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # type checkers read the shim: Cython ships no types for its pure-mode names
    from warpcall import _cython_shim as cython
else:
    try:
        import cython
    except ImportError:  # plain Python without Cython installed
        from warpcall import _cython_shim as cython

__all__ = ["MAX_TIMEOUT_DIGITS", "REQUEST_LINE", "parse"]

REQUEST_LINE = b"POST /invoke HTTP/1.1\r\n"
MAX_HEADERS = 100
#: the most digits an ``x-rpc-timeout`` value has (more is malformed: about 31 years of milliseconds)
MAX_TIMEOUT_DIGITS = 12

_REQUEST_LINE = REQUEST_LINE  # compiled, a C global: no module dict lookup per call
_HEAD_START = len(REQUEST_LINE)
_MAX_TIMEOUT_DIGITS = MAX_TIMEOUT_DIGITS  # compiled, a C constant
_TOKEN_CHARS = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# byte -> 1 when it may appear in a header name, else 0
_TOKEN = bytes(c in _TOKEN_CHARS for c in range(256))
# byte -> 1 when it may appear in a header value: visible ASCII, space and tab; anything else
# (obs-text, controls) is left to uvicorn
_VALUE = bytes(0x20 <= c < 0x7F or c == 0x09 for c in range(256))


@cython.locals(n=cython.Py_ssize_t, i=cython.Py_ssize_t, c=cython.Py_ssize_t)
def _is(p: bytes, start: int, end: int, lower: bytes) -> bool:
    """``p[start:end]`` equals the lowercase ASCII name ``lower``, ignoring case."""
    n = end - start
    if n != len(lower):
        return False
    for i in range(n):
        c = p[start + i]
        if 65 <= c <= 90:  # 'A'..'Z'
            c |= 0x20
        if c != lower[i]:
            return False
    return True


@cython.locals(
    raw=bytes, p=cython.p_const_uchar, line=cython.p_const_uchar, token=cython.p_const_uchar,
    visible=cython.p_const_uchar, limit=cython.Py_ssize_t, n=cython.Py_ssize_t, pos=cython.Py_ssize_t, i=cython.Py_ssize_t,
    name_start=cython.Py_ssize_t, name_end=cython.Py_ssize_t, vs=cython.Py_ssize_t, ve=cython.Py_ssize_t,
    headers=cython.Py_ssize_t, max_headers=cython.Py_ssize_t, ct_start=cython.Py_ssize_t,
    ct_end=cython.Py_ssize_t, mh_start=cython.Py_ssize_t, mh_end=cython.Py_ssize_t,
    au_start=cython.Py_ssize_t, au_end=cython.Py_ssize_t, content_length=cython.longlong, timeout=cython.longlong,
    observed=cython.bint,
)
def parse(data: bytes, limit: int) -> tuple[bytes, bytes, int, int, bytes, bool | None] | None:
    """``(content type, x-rpc-method, head length, x-rpc-timeout, authorization, observed)`` when ``data`` is
    exactly one plain ``POST /invoke``.

    Plain means: HTTP/1.1, well-formed header lines of visible ASCII, one ``Content-Length``
    of at most ``limit`` matching the bytes after the head, at most one ``Content-Type``, one
    ``X-Rpc-Method``, at most one ``Authorization`` and one ``X-Rpc-Timeout`` of 1 to :data:`MAX_TIMEOUT_DIGITS`
    ASCII digits, no
    ``Transfer-Encoding``, ``Expect``, ``Upgrade``, ``TE``, ``Trailer`` or ``Proxy-Connection``,
    ``Connection`` only as ``keep-alive``. Values come without surrounding spaces or tabs; a missing
    ``Content-Type``, ``X-Rpc-Method`` or ``Authorization`` is ``b""`` (the server reads the token on this
    path itself: a call with one stays on it). The timeout comes as its number of milliseconds
    (-1: none sent), read here so the server's common call, which carries one, needs no Python to
    read it; any other timeout value (empty, signed, too long) is left to uvicorn's parser, and the
    server answers it 400 there, in one place.

    ``observed`` is None for the common call, True for a request carrying ``x-rpc-timing``, ``traceparent`` or
    ``tracestate``: the server takes its observed path (``warpcall.observe.server``, which reads their values
    from the head) only for those. One flag rather than their positions: more locals in this scan cost the
    common call (the C compiler keeps fewer of them in registers).
    """
    if type(data) is not bytes:
        return None
    raw = data  # typed bytes: compiled, the buffer and the length are read without further checks
    p = raw
    n = len(raw)
    if n < _HEAD_START:
        return None
    # byte by byte rather than startswith(): compiled, a call that is refused here costs next to nothing
    line = _REQUEST_LINE
    for i in range(_HEAD_START):
        if p[i] != line[i]:
            return None
    token = _TOKEN
    visible = _VALUE
    max_headers = MAX_HEADERS
    headers = 0
    ct_start = ct_end = mh_start = mh_end = au_start = au_end = -1
    observed = False
    timeout = -1
    content_length = -1
    pos = _HEAD_START
    while True:
        if pos + 1 >= n:
            return None
        if p[pos] == 13 and p[pos + 1] == 10:  # the empty line that ends the head
            pos += 2
            break
        headers += 1
        if headers > max_headers:
            return None
        name_start = pos
        while pos < n and token[p[pos]]:
            pos += 1
        if pos == name_start or pos >= n or p[pos] != 58:  # ':'
            return None
        name_end = pos
        pos += 1
        while pos < n and p[pos] != 13:
            if not visible[p[pos]]:
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
        if _is(p, name_start, name_end, b"content-length"):
            if content_length >= 0 or ve == vs or ve - vs > 18:
                return None
            content_length = 0
            for i in range(vs, ve):
                if not (48 <= p[i] <= 57):
                    return None
                content_length = content_length * 10 + (p[i] - 48)
        elif _is(p, name_start, name_end, b"content-type"):
            if ct_start >= 0:
                return None
            ct_start, ct_end = vs, ve
        elif _is(p, name_start, name_end, b"x-rpc-method"):
            if mh_start >= 0:
                return None
            mh_start, mh_end = vs, ve
        elif _is(p, name_start, name_end, b"authorization"):
            if au_start >= 0:  # twice: left to the parser's path, whose reading answers differing values 400
                return None
            au_start, au_end = vs, ve
        elif _is(p, name_start, name_end, b"x-rpc-timeout"):
            if timeout >= 0 or ve == vs or ve - vs > _MAX_TIMEOUT_DIGITS:
                return None
            timeout = 0
            for i in range(vs, ve):
                if not (48 <= p[i] <= 57):
                    return None
                timeout = timeout * 10 + (p[i] - 48)
        elif _is(p, name_start, name_end, b"connection"):
            if not _is(p, vs, ve, b"keep-alive"):
                return None
        elif (
            # headers that change how the request is framed or answered: such a request takes uvicorn's path
            _is(p, name_start, name_end, b"transfer-encoding")
            or _is(p, name_start, name_end, b"expect")
            or _is(p, name_start, name_end, b"upgrade")
            or _is(p, name_start, name_end, b"te")
            or _is(p, name_start, name_end, b"trailer")
            # llhttp reads it as Connection (close ends the connection); uvicorn's path honours it
            or _is(p, name_start, name_end, b"proxy-connection")
        ):
            return None
        elif (
            _is(p, name_start, name_end, b"traceparent")
            or _is(p, name_start, name_end, b"tracestate")
            or _is(p, name_start, name_end, b"x-rpc-timing")
        ):
            observed = True
    if content_length < 0 or content_length > limit or n - pos != content_length:
        return None
    return (
        p[ct_start:ct_end] if ct_start >= 0 else b"",
        p[mh_start:mh_end] if mh_start >= 0 else b"",
        pos,
        timeout,
        p[au_start:au_end] if au_start >= 0 else b"",
        True if observed else None,
    )
