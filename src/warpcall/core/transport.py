# mypy: always-false=compiled
# (the branches on ``cython.compiled`` work on C pointers; the type hints describe the plain-Python run)
"""HTTP/1.1 at the byte level: write a request, parse a response fed in pieces, carry both on a socket.

``build_request`` turns values into bytes, ``ResponseParser`` bytes into values, and ``Connection``
moves them over one connected blocking socket (connect, pool and timeouts per call live in
``warpcall.channels``). Every protocol error is a ``ValueError`` (``TypeError`` for wrong argument
types) whose message says what was wrong; the caller adds the URL. A response over one of the size
limits (``MAX_HEAD``, ``MAX_HEADERS``, ``MAX_LINE``, the parser's ``max_body``) raises
``ResponseTooLarge``, a ``ValueError``, after reading at most about the limit plus one receive.

One source for both builds: Cython compiles it with the C types of ``ext/warpcall/core/transport.pxd``,
and without the extension it runs as plain Python. The byte scans index a ``const unsigned char*``
when compiled and the bytes object itself in plain Python (an int either way), and slicing either
gives bytes. Compiled, three things use C where Python has no equal: ``memchr`` finds a CR,
``memcpy`` writes a request into one bytes object, and ``send``/``recv``/``poll`` go straight to the
socket's descriptor with the GIL released. Plain Python takes ``bytes.find``, ``bytes.join`` and the
socket's methods, which behave the same.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterable
from operator import index
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from warpcall import _cython_shim as cython
else:
    try:
        import cython
    except ImportError:  # plain Python without Cython installed
        from warpcall import _cython_shim as cython

if cython.compiled:
    from cython.cimports.cpython.bytes import PyBytes_FromStringAndSize
    from cython.cimports.cpython.exc import PyErr_CheckSignals
    from cython.cimports.libc.string import memchr, memcpy
    from cython.cimports.warpcall.core.transport import _sys_monotonic, _sys_poll_in, _sys_recv, _sys_send

    # helpers of the compiled branches only (C types in the .pxd)

    def _put(o, s, n):
        """Copy the ``n`` bytes at ``s`` to ``o``; return the end of the copy."""
        memcpy(o, s, n)
        return o + n

    def _retry_or_raise(err):
        """After a failed system call: on EINTR run the signal handlers (the caller retries, as Python does
        since PEP 475), else raise the ``OSError`` the socket module would."""
        if err != errno.EINTR:
            raise OSError(err, os.strerror(err))
        PyErr_CheckSignals()  # raises what a handler raised

__all__ = [
    "DEFAULT_KEEPALIVE_EXPIRY",
    "MAX_HEAD",
    "MAX_HEADERS",
    "MAX_LINE",
    "READ_SIZE",
    "TLS_RECORD",
    "Connection",
    "ResponseParser",
    "ResponseTooLarge",
    "build_request",
    "deadline_after",
    "deadline_after_ms",
    "keepalive_limit",
]

#: the response head (status line, header lines and the empty line), interim 1xx heads before it included,
#: may not be larger than this; neither may a chunked body's extensions and trailers together
MAX_HEAD = 65536
#: the most header lines in one head, and the most trailer lines of one response
MAX_HEADERS = 100
#: a status line, a chunk-size line (extensions included) or a trailer line may not be longer than this
MAX_LINE = 8192
#: the most bytes one receive asks the OS for
READ_SIZE = 65536
#: the most bytes of plain text in one TLS record: a TLS connection sends at most this much per write
TLS_RECORD = 16384
#: seconds a kept-alive connection may stay idle before it is no longer reused: below uvicorn's 5 s
#: ``timeout_keep_alive``, so that a request never meets a server closing the connection it arrives on
DEFAULT_KEEPALIVE_EXPIRY = 4.0
# the same limits as C integers when compiled
#: a deadline sets a socket's timeouts again only when it is this much shorter than them (seconds): a wait may
#: end this much past the deadline (the kernel counts socket timeouts in ticks of up to 10 ms anyway)
_DEADLINE_SLACK = 0.01
_max_head = MAX_HEAD
_max_headers = MAX_HEADERS
_max_line = MAX_LINE
_read_size = READ_SIZE


class ResponseTooLarge(ValueError):
    """A response broke one of the parser's size limits: head, header count, a line, trailers or body.

    The connection is in an unknown state after it: the caller closes it.
    """

_POSIX = sys.platform != "win32"
_NO_UPGRADE = "unexpected 101 Switching Protocols: this client does not upgrade connections"

# parser states
_HEAD = 0
_LENGTH = 1
_CHUNK_SIZE = 2
_CHUNK_DATA = 3
_CHUNK_END = 4
_TRAILERS = 5
_UNTIL_CLOSE = 6
_DONE = 7

# 1 at the tchar of RFC 9110 (! # $ % & ' * + - . ^ _ ` | ~ DIGIT ALPHA), else 0
_TOKEN_CHARS = bytes(
    c in b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" for c in range(256)
)


def _as_bytes(value: object, what: str) -> bytes:
    if type(value) is bytes:
        return value
    if isinstance(value, str):
        try:
            return str.encode(value, "latin-1")  # compiled: str's encoder called directly, no method lookup
        except UnicodeEncodeError:
            raise ValueError(f"{what} {value!r} is not latin-1 text: encode it to bytes first") from None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")


@cython.locals(i=cython.Py_ssize_t, table="const unsigned char*")
def _is_token(p: bytes, start: int, end: int) -> bool:
    """p[start:end] is a non-empty token."""
    table = _TOKEN_CHARS
    if start >= end:
        return False
    for i in range(start, end):
        if not table[p[i]]:
            return False
    return True


@cython.locals(i=cython.Py_ssize_t, c="unsigned char")
def _bad_value(p: bytes, n: int) -> bool:
    """p[:n] has CR, LF or NUL (not allowed in a header value)."""
    for i in range(n):
        c = p[i]
        if c == 13 or c == 10 or c == 0:
            return True
    return False


@cython.locals(i=cython.Py_ssize_t, c="unsigned char")
def _bad_target(p: bytes, n: int) -> bool:
    """p[:n] is empty or has a space or control character (not allowed in a request target or Host)."""
    if n == 0:
        return True
    for i in range(n):
        c = p[i]
        if c <= 32 or c == 127:
            return True
    return False


@cython.locals(i=cython.Py_ssize_t, c="unsigned char")
def _ieq(p: bytes, start: int, end: int, lower_name: bytes, m: int) -> bool:
    """p[start:end] equals the ``m`` bytes of the lowercase ASCII ``lower_name``, ignoring case."""
    if end - start != m:
        return False
    for i in range(m):
        c = p[start + i]
        if 65 <= c <= 90:
            c += 32
        if c != lower_name[i]:
            return False
    return True


@cython.locals(
    i=cython.Py_ssize_t, s=cython.Py_ssize_t, e=cython.Py_ssize_t, k=cython.Py_ssize_t, c="unsigned char",
    value="double", scale="double", digits=cython.bint,
)
def _announced_timeout(p: bytes, start: int, end: int) -> float:
    """The seconds of ``timeout=N`` in the Keep-Alive header value p[start:end]; -1.0 when absent or not a number.

    The value is a list of parameters (``timeout=5, max=100``); ``N`` may have a fraction.
    """
    i = start
    while i < end:
        s = i  # one parameter, p[s:e], up to the next comma
        while i < end and p[i] != 44:
            i += 1
        e = i
        i += 1
        k = s
        while k < e and p[k] != 61:  # =
            k += 1
        while s < k and (p[s] == 32 or p[s] == 9):
            s += 1
        if k == e or not _ieq(p, s, _trim_end(p, s, k), b"timeout", 7):
            continue
        k += 1
        while k < e and (p[k] == 32 or p[k] == 9):
            k += 1
        e = _trim_end(p, k, e)
        if k < e and p[k] == 34 and p[e - 1] == 34 and e - k >= 2:  # a quoted-string value
            k += 1
            e -= 1
        value = 0.0
        scale = 0.0  # 0 before the point, then the weight of the next fraction digit
        digits = False
        while k < e:
            c = p[k]
            if 48 <= c <= 57:
                digits = True
                if scale == 0.0:
                    value = value * 10.0 + (c - 48)
                else:
                    value += (c - 48) * scale
                    scale /= 10.0
            elif c == 46 and scale == 0.0:  # .
                scale = 0.1
            else:
                return -1.0
            k += 1
        return value if digits else -1.0
    return -1.0


@cython.locals(e=cython.Py_ssize_t)
def _trim_end(p: bytes, start: int, end: int) -> int:
    """``end`` moved back over the spaces and tabs that end p[start:end]."""
    e = end
    while e > start and (p[e - 1] == 32 or p[e - 1] == 9):
        e -= 1
    return e


@cython.locals(
    m=bytes, t=bytes, h=bytes, b=bytes, n=bytes, v=bytes, cl=bytes, parts=list, has_host=cython.bint,
    nlen=cython.Py_ssize_t, blen=cython.Py_ssize_t, has_timeout=cython.bint, left="long long",
    deadline="double",  # a C double: a float annotation leaves it an object, and the arithmetic boxed (~700 instructions)
)
def build_request(
    method: str | bytes,
    target: str | bytes,
    host: str | bytes,
    headers: Iterable[tuple[str | bytes, str | bytes]],
    body: bytes,
    deadline: float = 0.0,
) -> bytes:
    """Return the bytes of one HTTP/1.1 request.

    Writes ``Host`` (unless ``headers`` has one), the caller's headers in order,
    and ``Content-Length`` computed from ``body`` (omitted for an empty body unless
    the method is POST, PUT or PATCH). A caller's ``Content-Length`` or
    ``Transfer-Encoding`` is replaced, since the body is always sent whole.

    ``deadline`` (a ``time.monotonic()`` instant; 0: none) adds ``x-rpc-timeout``: the whole
    milliseconds left until it, at least 0, unless ``headers`` has that header already.
    """
    m = _as_bytes(method, "HTTP method")
    if not _is_token(m, 0, len(m)):
        raise ValueError(f"invalid HTTP method {method!r}: use a token such as 'GET' or 'POST'")
    t = _as_bytes(target, "request target")
    if _bad_target(t, len(t)):
        raise ValueError(
            f"invalid request target {target!r}: it must be non-empty, without spaces or control characters"
        )
    h = _as_bytes(host, "Host")
    if _bad_target(h, len(h)):
        raise ValueError(f"invalid Host {host!r}: it must be non-empty, without spaces or control characters")
    if type(body) is bytes:
        b = body
    elif isinstance(body, (bytearray, memoryview)):
        b = bytes(body)
    else:
        raise TypeError(f"body must be bytes, not {type(body).__name__}")

    parts = []  # name, value, name, value, ... of the headers written as given
    has_host = has_timeout = False
    for pair in headers:
        try:
            name, value = pair
        except (TypeError, ValueError):
            raise TypeError(f"each header must be a (name, value) pair, not {pair!r}") from None
        n = _as_bytes(name, "header name")
        v = _as_bytes(value, "header value")
        nlen = len(n)
        if not _is_token(n, 0, nlen):
            raise ValueError(f"invalid header name {name!r}: use a token such as 'Content-Type'")
        if _bad_value(v, len(v)):
            raise ValueError(f"invalid value for header {name!r}: it must not contain CR, LF or NUL")
        if _ieq(n, 0, nlen, b"content-length", 14) or _ieq(n, 0, nlen, b"transfer-encoding", 17):
            continue
        if _ieq(n, 0, nlen, b"host", 4):
            has_host = True
        elif _ieq(n, 0, nlen, b"x-rpc-timeout", 13):
            has_timeout = True
        parts.append(n)
        parts.append(v)
    left = -1  # no x-rpc-timeout
    if deadline > 0 and not has_timeout:
        # the time left, measured as late as possible: the server counts its deadline from reading this
        if cython.compiled:  # a C conversion: int() would make a Python int first
            left = cython.cast(cython.longlong, (deadline - _now()) * 1000.0)
        else:
            left = int((deadline - _now()) * 1000.0)
        if left < 0:
            left = 0
        elif left > 999999999999:  # 12 digits at most: a server refuses a longer value as malformed
            left = 999999999999
    blen = len(b)
    cl = None
    if blen or m == b"POST" or m == b"PUT" or m == b"PATCH":
        cl = f"{blen}".encode("ascii")  # compiled: C formats the number (b"%d" % n costs 0.7k instructions)
    return _assemble(m, t, None if has_host else h, parts, cl, b, left)


@cython.locals(
    k=cython.Py_ssize_t, pieces=list, total=cython.Py_ssize_t, out=bytes, o="char*", item=bytes,
    digits="char[24]", nd=cython.Py_ssize_t, rest="long long",
)
def _assemble(
    m: bytes, t: bytes, h: bytes | None, parts: list[bytes], cl: bytes | None, b: bytes, left: int
) -> bytes:
    """``m t HTTP/1.1``, ``Host: h`` unless None, the header pairs, ``x-rpc-timeout: left`` unless ``left``
    < 0, ``Content-Length: cl`` unless None, the body."""
    if cython.compiled:  # one bytes object of the summed size filled by memcpy: bytes.join costs 1.7x the call
        nd = 0
        if left >= 0:  # the digits, written backwards from the end of the buffer: no int or str object made
            rest = left
            while True:
                nd += 1
                digits[24 - nd] = cython.cast("char", 48 + rest % 10)  # noqa: F821 - a C array, declared by the locals above
                rest //= 10
                if rest == 0:
                    break
        total = len(m) + len(t) + 14 + len(b)
        if left >= 0:
            total += 17 + nd
        if h is not None:
            total += len(h) + 8
        for k in range(len(parts)):
            total += len(cython.cast(bytes, parts[k])) + 2
        if cl is not None:
            total += len(cl) + 18
        out = PyBytes_FromStringAndSize(cython.NULL, total)
        o = out
        o = _put(o, m, len(m))
        o = _put(o, b" ", 1)
        o = _put(o, t, len(t))
        o = _put(o, b" HTTP/1.1\r\n", 11)
        if h is not None:
            o = _put(o, b"Host: ", 6)
            o = _put(o, h, len(h))
            o = _put(o, b"\r\n", 2)
        for k in range(0, len(parts), 2):
            item = parts[k]
            o = _put(o, item, len(item))
            o = _put(o, b": ", 2)
            item = parts[k + 1]
            o = _put(o, item, len(item))
            o = _put(o, b"\r\n", 2)
        if left >= 0:
            o = _put(o, b"x-rpc-timeout: ", 15)
            o = _put(o, cython.address(digits[24 - nd]), nd)  # noqa: F821
            o = _put(o, b"\r\n", 2)
        if cl is not None:
            o = _put(o, b"Content-Length: ", 16)
            o = _put(o, cl, len(cl))
            o = _put(o, b"\r\n", 2)
        o = _put(o, b"\r\n", 2)
        _put(o, b, len(b))
        return out
    else:
        pieces = [m, b" ", t, b" HTTP/1.1\r\n"]
        if h is not None:
            pieces += (b"Host: ", h, b"\r\n")
        for k in range(0, len(parts), 2):
            pieces += (parts[k], b": ", parts[k + 1], b"\r\n")
        if left >= 0:
            pieces += (b"x-rpc-timeout: ", b"%d" % left, b"\r\n")
        if cl is not None:
            pieces += (b"Content-Length: ", cl, b"\r\n")
        pieces += (b"\r\n", b)
        return b"".join(pieces)


@cython.locals(i=cython.Py_ssize_t, q="const unsigned char*")
def _find_crlf(p: bytes, start: int, n: int) -> int:
    """Index of the next CRLF in p[start:n], or -1."""
    if cython.compiled:  # memchr: the C library's scan for the CR, many bytes a step
        i = start
        while i + 1 < n:
            q = cython.cast("const unsigned char*", memchr(p + i, 13, n - 1 - i))
            if q == cython.NULL:
                return -1
            i = q - p
            if p[i + 1] == 10:
                return i
            i += 1
        return -1
    else:
        return p.find(b"\r\n", start, n)


@cython.locals(i=cython.Py_ssize_t)
def _find_head_end(p: bytes, start: int, n: int) -> int:
    """Index of the next CRLFCRLF in p[start:n], or -1."""
    i = start
    while True:
        i = _find_crlf(p, i, n)
        if i < 0 or i + 3 >= n:
            return -1
        if p[i + 2] == 13 and p[i + 3] == 10:
            return i
        i += 2


def _excerpt(p: bytes, start: int, end: int) -> bytes:
    """At most the first 100 bytes of p[start:end], for error messages."""
    return p[start : end if end - start < 100 else start + 100]


def _head_too_large() -> ValueError:
    return ResponseTooLarge(f"response head is larger than {MAX_HEAD} bytes (interim 1xx heads included)")


def _trailers_too_large() -> ValueError:
    return ResponseTooLarge(f"chunk extensions and trailers of the response are larger than {MAX_HEAD} bytes")


def _too_large(max_body: int) -> ValueError:
    return ResponseTooLarge(f"response body exceeds the limit of {max_body} bytes; raise max_body if this is expected")


class ResponseParser:
    """Parses one HTTP/1.1 response from the pieces a socket returns.

    ``feed(data)`` returns True once the response is complete; ``feed(b"")`` says
    the peer closed the connection. Then ``status``, ``reason``, ``headers``
    (``(name, value)`` str pairs as sent), ``body`` and ``keep_alive`` (whether the
    connection may carry another request) hold the result, and ``keep_alive_timeout``
    the seconds of a ``Keep-Alive: timeout=N`` header (-1.0 without one). Informational (1xx)
    responses are skipped. ``head=True`` is for the answer to a HEAD request,
    which never has a body.

    Limits (``ResponseTooLarge`` when broken): the head, interim 1xx heads included,
    at most ``MAX_HEAD`` bytes and ``MAX_HEADERS`` header lines, the status line at
    most ``MAX_LINE``; a chunked body's size lines at most ``MAX_LINE`` each, their
    extensions and the trailers at most ``MAX_HEAD`` bytes together, at most
    ``MAX_HEADERS`` trailer lines of at most ``MAX_LINE``; the body at most ``max_body``.
    """

    # plain Python; compiled, the fields are those the .pxd declares
    __slots__ = (
        "status",
        "reason",
        "headers",
        "body",
        "keep_alive",
        "keep_alive_timeout",
        "_max_body",
        "_head",
        "_state",
        "_pending",
        "_parts",
        "_remaining",
        "_received",
        "_left",
        "_lines",
    )

    def __init__(self, max_body: int = 64 * 2**20, head: object = False) -> None:
        self.status = 0
        self.reason = ""
        self.headers: list[tuple[str, str]] = []
        self.body = b""
        self.keep_alive = True
        self.keep_alive_timeout = -1.0
        # an int or TypeError in both builds, as the compiled build's conversion to a C integer has it
        self._max_body: int = max_body if type(max_body) is int else index(max_body)
        self._head = bool(head)
        self._state = _HEAD
        self._pending = b""
        self._parts: bytearray | None = None  # the body gathered from pieces (chunks, reads), or None
        self._remaining = 0
        self._received = False
        # bytes the heads may still take; once a chunked body starts, its extensions and trailers
        self._left = _max_head
        self._lines = 0  # trailer lines so far

    @property
    def complete(self) -> bool:
        """True once the whole response has been parsed."""
        return self._state == _DONE

    def feed(self, data: bytes) -> bool:
        """Take the next bytes from the socket (``b""``: the peer closed); True once the response is whole."""
        return self._feed(data if type(data) is bytes else bytes(data))

    def _nparts(self) -> int:
        return 0 if self._parts is None else len(self._parts)

    def _append(self, data: bytes, start: int, end: int) -> None:
        if self._parts is None:
            self._parts = bytearray(data[start:end])
        elif start == 0 and end == len(data):
            self._parts += data
        else:
            self._parts += data[start:end]

    @cython.locals(
        n=cython.Py_ssize_t, p="const unsigned char*", pos=cython.Py_ssize_t, end=cython.Py_ssize_t,
        want=cython.Py_ssize_t, avail=cython.Py_ssize_t, size=cython.Py_ssize_t, state="int", digit="int",
        i=cython.Py_ssize_t, k=cython.Py_ssize_t, stop=cython.Py_ssize_t, c="unsigned char",
    )
    def _feed(self, d: bytes) -> bool:
        n = len(d)
        if n == 0:
            return self._eof()
        if self._state == _DONE:
            self.keep_alive = False
            return True
        self._received = True
        if len(self._pending):
            d = self._pending + d
            n = len(d)
            self._pending = b""
        p = d
        pos = 0
        state = self._state
        while True:
            if state == _HEAD:
                end = _find_head_end(p, pos, n)
                if end < 0:
                    if n - pos >= self._left:  # no end yet: the head will not fit
                        raise _head_too_large()
                    self._pending = d[pos:]
                    break
                if end + 4 - pos > self._left:
                    raise _head_too_large()
                self._left -= end + 4 - pos  # interim (1xx) heads use up the budget too
                state = self._parse_head(p, pos, end)
                pos = end + 4
            elif state == _LENGTH or state == _CHUNK_DATA:
                want = self._remaining
                avail = n - pos
                if avail >= want:
                    if state == _LENGTH and self._parts is None:
                        self.body = d if pos == 0 and want == n else p[pos : pos + want]
                    else:
                        self._append(d, pos, pos + want)
                    pos += want
                    self._remaining = 0
                    state = _DONE if state == _LENGTH else _CHUNK_END
                else:
                    self._append(d, pos, n)
                    self._remaining = want - avail
                    pos = n
            elif state == _CHUNK_SIZE:
                end = _find_crlf(p, pos, n)
                if end < 0:
                    if n - pos > _max_line:
                        raise ResponseTooLarge(f"chunk size line is longer than {MAX_LINE} bytes")
                    self._pending = d[pos:]
                    break
                if end - pos > _max_line:
                    raise ResponseTooLarge(f"chunk size line is longer than {MAX_LINE} bytes")
                # the size is hex digits, optionally padded and followed by ;extensions
                stop = pos
                while stop < end and p[stop] != 59:
                    stop += 1
                if stop < end:
                    # extensions carry no body: without a bound, tiny chunks could bring gigabytes of them
                    self._left -= end - stop
                    if self._left < 0:
                        raise _trailers_too_large()
                i = pos
                while i < stop and (p[i] == 32 or p[i] == 9):
                    i += 1
                while stop > i and (p[stop - 1] == 32 or p[stop - 1] == 9):
                    stop -= 1
                if stop == i or stop - i > 16:
                    raise ValueError(f"malformed chunk size line {_excerpt(p, pos, end)!r}")
                for k in range(i, stop):
                    c = p[k]
                    if not ((48 <= c <= 57) or (97 <= c <= 102) or (65 <= c <= 70)):
                        raise ValueError(f"malformed chunk size line {_excerpt(p, pos, end)!r}")
                size = 0
                while i < stop:
                    c = p[i]
                    if c <= 57:
                        digit = c - 48
                    elif c >= 97:
                        digit = c - 87
                    else:
                        digit = c - 55
                    if size > (self._max_body >> 4) + 1:  # too large already, and no C overflow below
                        raise _too_large(self._max_body)
                    size = size * 16 + digit
                    i += 1
                pos = end + 2
                if size == 0:
                    state = _TRAILERS
                else:
                    if self._nparts() + size > self._max_body:
                        raise _too_large(self._max_body)
                    self._remaining = size
                    state = _CHUNK_DATA
            elif state == _CHUNK_END:
                if n - pos < 2:
                    self._pending = d[pos:]
                    break
                if p[pos] != 13 or p[pos + 1] != 10:
                    raise ValueError("chunk data is not followed by CRLF")
                pos += 2
                state = _CHUNK_SIZE
            elif state == _TRAILERS:
                end = _find_crlf(p, pos, n)
                if end < 0:
                    if n - pos > _max_line:
                        raise ResponseTooLarge(f"trailer line is longer than {MAX_LINE} bytes")
                    self._pending = d[pos:]
                    break
                if end == pos:
                    state = _DONE
                else:
                    # trailers are skipped, but counted: a server must not send them forever
                    if end - pos > _max_line:
                        raise ResponseTooLarge(f"trailer line is longer than {MAX_LINE} bytes")
                    self._left -= end + 2 - pos
                    if self._left < 0:
                        raise _trailers_too_large()
                    self._lines += 1
                    if self._lines > _max_headers:
                        raise ResponseTooLarge(f"the response has more than {MAX_HEADERS} trailer lines")
                pos = end + 2
            else:  # _UNTIL_CLOSE
                self._append(d, pos, n)
                if self._nparts() > self._max_body:
                    raise _too_large(self._max_body)
                pos = n
            if state == _DONE:
                if pos < n:
                    # bytes beyond the response: the peer is not speaking plain request/response
                    self.keep_alive = False
                self._finish()
                return True
            if pos >= n:
                break
        self._state = state
        return False

    def _finish(self) -> None:
        self._state = _DONE
        self._pending = b""
        if self._parts is not None and len(self._parts):
            self.body = bytes(self._parts)
        self._parts = None

    @cython.locals(state="int")
    def _eof(self) -> bool:
        state = self._state
        if state == _DONE:
            return True
        if state == _UNTIL_CLOSE:
            self.keep_alive = False
            self._finish()
            return True
        if state == _HEAD and not self._received:
            raise ValueError("the server closed the connection without sending a response")
        raise ValueError("the server closed the connection before the response was complete")

    @cython.locals(
        line_end=cython.Py_ssize_t, llen=cython.Py_ssize_t, s=cython.Py_ssize_t, status="int", http11=cython.bint, headers=list,
        length="long long", number="long long", chunked=cython.bint, has_te=cython.bint, close=cython.bint,
        keep=cython.bint, announced="double", pos=cython.Py_ssize_t, eol=cython.Py_ssize_t, colon=cython.Py_ssize_t,
        vs=cython.Py_ssize_t, ve=cython.Py_ssize_t, i=cython.Py_ssize_t, ts=cython.Py_ssize_t,
        te=cython.Py_ssize_t,
    )
    def _parse_head(self, p: bytes, start: int, end: int) -> int:
        """Read the head in p[start:end] (its final CRLFCRLF follows); return the next state."""
        line_end = _find_crlf(p, start, end + 2)
        llen = line_end - start
        s = start
        if llen > _max_line:
            raise ResponseTooLarge(f"status line is longer than {MAX_LINE} bytes")
        if (
            llen < 12
            or p[s] != 72 or p[s + 1] != 84 or p[s + 2] != 84 or p[s + 3] != 80  # HTTP
            or p[s + 4] != 47 or p[s + 5] != 49 or p[s + 6] != 46  # /1.
            or (p[s + 7] != 48 and p[s + 7] != 49)
            or p[s + 8] != 32
            or not (48 <= p[s + 9] <= 57 and 48 <= p[s + 10] <= 57 and 48 <= p[s + 11] <= 57)
            or (llen > 12 and p[s + 12] != 32)
        ):
            raise ValueError(f"malformed status line {_excerpt(p, start, line_end)!r}")
        status = (p[s + 9] - 48) * 100 + (p[s + 10] - 48) * 10 + (p[s + 11] - 48)
        http11 = p[s + 7] == 49
        if status < 100:
            raise ValueError(f"malformed status line {_excerpt(p, start, line_end)!r}")
        headers = []
        length = -1
        chunked = has_te = close = keep = False
        announced = -1.0
        pos = line_end + 2
        while pos < end:
            eol = _find_crlf(p, pos, end + 2)
            colon = pos
            while colon < eol and p[colon] != 58:
                colon += 1
            if colon == pos or colon == eol or not _is_token(p, pos, colon):  # a space or tab is no token
                raise ValueError(f"malformed header line {_excerpt(p, pos, eol)!r}")
            vs = colon + 1
            ve = eol
            while vs < ve and (p[vs] == 32 or p[vs] == 9):
                vs += 1
            while ve > vs and (p[ve - 1] == 32 or p[ve - 1] == 9):
                ve -= 1
            headers.append((p[pos:colon].decode("latin-1"), p[vs:ve].decode("latin-1")))
            if _ieq(p, pos, colon, b"content-length", 14):
                if ve == vs or ve - vs > 18:
                    raise ValueError(f"invalid Content-Length {_excerpt(p, vs, ve)!r}")
                number = 0
                for i in range(vs, ve):
                    if not (48 <= p[i] <= 57):
                        raise ValueError(f"invalid Content-Length {_excerpt(p, vs, ve)!r}")
                    number = number * 10 + (p[i] - 48)
                if length >= 0 and number != length:
                    raise ValueError("conflicting Content-Length headers")
                length = number
            elif _ieq(p, pos, colon, b"transfer-encoding", 17):
                has_te = True
                # the last coding decides: is it chunked?
                ts = ve
                while ts > vs and p[ts - 1] != 44:
                    ts -= 1
                while ts < ve and (p[ts] == 32 or p[ts] == 9):
                    ts += 1
                chunked = _ieq(p, ts, ve, b"chunked", 7)
            elif _ieq(p, pos, colon, b"connection", 10):
                ts = vs
                while ts < ve:
                    te = ts
                    while te < ve and p[te] != 44:
                        te += 1
                    i = te
                    while ts < i and (p[ts] == 32 or p[ts] == 9):
                        ts += 1
                    while i > ts and (p[i - 1] == 32 or p[i - 1] == 9):
                        i -= 1
                    if _ieq(p, ts, i, b"close", 5):
                        close = True
                    elif _ieq(p, ts, i, b"keep-alive", 10):
                        keep = True
                    ts = te + 1
            elif _ieq(p, pos, colon, b"keep-alive", 10):
                announced = _announced_timeout(p, vs, ve)
            pos = eol + 2
        if len(headers) > _max_headers:
            raise ResponseTooLarge(f"the response head has more than {MAX_HEADERS} header lines")
        if status < 200:
            if status == 101:
                raise ValueError(_NO_UPGRADE)
            return _HEAD
        self.status = status
        self.reason = p[s + 13 : line_end].decode("latin-1") if llen > 13 else ""
        self.headers = headers
        self.keep_alive = not close and (http11 or keep)
        self.keep_alive_timeout = announced
        if self._head or status == 204 or status == 304:
            return _DONE
        if has_te:
            if not chunked:
                self.keep_alive = False
                return _UNTIL_CLOSE
            if length >= 0:
                # both framings present (RFC 9112 6.3): trust chunked, never reuse the connection
                self.keep_alive = False
            self._left = _max_head  # from here on, the budget of the extensions and trailers
            return _CHUNK_SIZE
        if length >= 0:
            if length > self._max_body:
                raise _too_large(self._max_body)
            if length == 0:
                return _DONE
            self._remaining = length
            return _LENGTH
        self.keep_alive = False
        return _UNTIL_CLOSE


class Connection:
    """One connected, blocking socket carrying one HTTP/1.1 exchange at a time.

    ``reusable()`` says whether a kept-alive connection is fit for the next request,
    ``send`` writes a request, ``receive`` reads until a ``ResponseParser`` has the
    whole response; ``set_timeout`` bounds each send and each receive. Given a
    ``deadline`` (a ``time.monotonic()`` instant), ``send`` and ``receive`` also bound
    each wait by the time left before it, so that a peer trickling bytes cannot hold
    the exchange past it. Errors are the socket's ``OSError`` (``BlockingIOError`` or
    ``TimeoutError`` when a timeout or the deadline expires) and the parser's ``ValueError``. The socket must be blocking
    (``settimeout(None)``) when the connection is made; closing it stays the caller's job. An ``ssl.SSLSocket``
    (handshake done) is carried the same way through its own ``send`` and ``recv``, its waits bounded by
    ``settimeout``; ``ssl.SSLError`` is an ``OSError`` too.

    ``expiry`` is how many seconds the connection may stay idle between a response and
    the next request; a response announcing ``Keep-Alive: timeout=N`` shortens it to a
    little less than ``N`` (see ``keepalive_limit``) until the next response.
    """

    # plain Python; compiled, the fields are those the .pxd declares
    __slots__ = (
        "sock", "sent", "timeout", "expiry", "idle_since", "tls", "_limit", "_kernel", "_fd", "_buf", "_poll",
        "_bounded",
    )

    def __init__(self, sock: socket.socket, expiry: float = DEFAULT_KEEPALIVE_EXPIRY) -> None:
        self.sock = sock
        self.sent = 0
        self.timeout = -1.0
        expiry = float(expiry)
        if not expiry >= 0:  # NaN too
            raise ValueError(f"expiry must be a number of seconds >= 0, not {expiry!r}")
        self.expiry = expiry
        self._limit = expiry  # the expiry of the current idle period: the server's announcement may shorten it
        self.idle_since = _now()
        #: the socket is an ``ssl.SSLSocket``: its own send and recv encrypt, and OpenSSL may hold decrypted bytes
        self.tls = _is_tls(sock)
        # a blocking socket where the OS has SO_RCVTIMEO/SO_SNDTIMEO: no poll() before each call as settimeout() does
        # (not under TLS: the bytes on the descriptor are records, and OpenSSL retries a read the kernel timed out
        # forever on a blocking socket, so its waits are bounded by settimeout's poll instead)
        self._kernel = _POSIX and sock.gettimeout() is None and not self.tls
        self._fd = sock.fileno()
        self._buf: bytearray | None = None
        self._poll: Callable[[int], object] | None = None
        self._bounded = 0.0  # the deadline the last send bounded its timeouts by, just before it returned
        if cython.compiled and _POSIX:  # poll(2) on the descriptor; recv(2) into one buffer on a blocking socket
            if self._kernel:
                self._buf = bytearray(READ_SIZE)
        else:
            self._poll = _readable_check(sock)

    def set_timeout(self, seconds: float) -> None:
        """Bound each later send and each receive to ``seconds`` (kernel timeouts where the OS has them)."""
        seconds = float(seconds)
        if seconds == self.timeout:
            return
        if seconds <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {seconds!r}")
        self._arm(seconds)
        self._bounded = 0.0  # a receive bounds its first read again

    def _arm(self, seconds: float) -> None:
        """Set the OS's timeouts of each send and receive to ``seconds`` (> 0)."""
        if self._kernel:
            whole = int(seconds)
            tv = struct.pack("ll", whole, int((seconds - whole) * 1e6) or (0 if whole else 1))  # 0 means never
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
        else:
            self.sock.settimeout(seconds)
        self.timeout = seconds

    @cython.locals(left="double")
    def _bound(self, deadline: float) -> None:
        """Before a wait: TimeoutError when ``deadline`` has passed, else bound the wait by the time left.

        The timeouts are set again only when the time left is shorter than them by over
        ``_DEADLINE_SLACK`` (the OS keeps them in clock ticks of a few ms anyway), so a call whose
        deadline is its timeout, the default, makes no system call for it.
        """
        left = deadline - _now()
        if left <= 0.0:
            raise TimeoutError("the call's deadline passed")
        if self.timeout < 0.0 or left < self.timeout - _DEADLINE_SLACK:
            self._arm(left)

    def idle(self) -> bool:
        """True when nothing waits to be read: no data and no EOF, so the peer still expects a request."""
        return self._nothing_to_read()

    def reusable(self) -> bool:
        """True when the connection may carry the next request: idle for less than its expiry, and
        nothing waits to be read (a server that closed it, or sent what was not asked for, left EOF or data)."""
        if _now() - self.idle_since >= self._limit:
            return False  # the server may be closing it right now: a request sent there could meet the close
        return self._nothing_to_read()

    def rest(self, parser: ResponseParser) -> None:
        """``parser``'s response ended the exchange: the connection is idle from now on, for at most its expiry,
        shortened by the server's ``Keep-Alive: timeout`` if it announced one. ``receive`` does this itself."""
        if not isinstance(parser, ResponseParser):
            raise TypeError(f"parser must be a ResponseParser, not {type(parser).__name__}")
        self._rested(parser)

    @cython.locals(announced="double")
    def _rested(self, reader: ResponseParser) -> None:
        self.idle_since = _now()
        announced = reader.keep_alive_timeout
        if announced < 0:
            self._limit = self.expiry
        else:
            self._limit = min(self.expiry, keepalive_limit(announced))

    @cython.locals(ready="int")
    def _nothing_to_read(self) -> bool:
        # decrypted bytes OpenSSL holds: the descriptor would not show them (tls: sock is an ssl.SSLSocket)
        if self.tls and self.sock.pending():  # type: ignore[attr-defined]
            return False
        if cython.compiled and _POSIX:  # poll(2) with no wait: no Python call before each pooled request
            while True:
                ready = _sys_poll_in(self._fd)
                if ready >= 0:
                    return ready == 0
                _retry_or_raise(-ready)
        else:
            assert self._poll is not None
            return not self._poll(0)

    @cython.locals(d=bytes, n=cython.Py_ssize_t, k=cython.Py_ssize_t, fd="int", p="const char*", deadline="double")
    def send(self, data: bytes, deadline: float = 0.0) -> None:
        """Write all of ``data``; on an error ``sent`` says how many bytes went out before it.

        ``deadline`` (> 0): each wait for the socket to take more is bounded by the time left before it.
        """
        d = data if type(data) is bytes else bytes(data)
        n = len(d)
        self.sent = 0
        self._bounded = 0.0
        if deadline > 0.0:
            self._bound(deadline)
        if cython.compiled and self._kernel:  # send(2) from the bytes themselves, the GIL released
            p = d
            fd = self._fd
            while self.sent < n:
                with cython.nogil:
                    k = _sys_send(fd, p + self.sent, n - self.sent)
                if k < 0:
                    _retry_or_raise(-k)
                else:
                    self.sent += k
                    if deadline > 0.0 and k < n:  # it waited: bound the next wait, or the receive's first
                        self._bound(deadline)
        else:
            view = memoryview(d)
            # TLS writes a piece whole or fails: one record at a time, so that ``sent`` counts what went out
            piece = TLS_RECORD if self.tls else n
            while self.sent < n:
                k = self.sock.send(view[self.sent : self.sent + piece])
                self.sent += k
                if deadline > 0.0 and k < n:
                    self._bound(deadline)
        # the timeouts stand for the response's first read too: a receive right after this needs no check
        self._bounded = deadline

    @cython.locals(reader=ResponseParser, k=cython.Py_ssize_t, fd="int", buf="char*", deadline="double")
    def receive(self, parser: ResponseParser, deadline: float = 0.0) -> ResponseParser:
        """Read and feed ``parser`` until the response is complete (EOF included); returns ``parser``.

        ``deadline`` (> 0): each read waits at most the time left before it (TimeoutError once it passed);
        after ``send(data, deadline)`` the timeouts it left bound the first read.
        """
        if not isinstance(parser, ResponseParser):
            raise TypeError(f"parser must be a ResponseParser, not {type(parser).__name__}")
        reader = parser
        if deadline > 0.0 and deadline != self._bounded:
            self._bound(deadline)
        self._bounded = 0.0
        if cython.compiled and self._kernel:  # recv(2) into this connection's buffer, the GIL released
            buf = self._buf
            fd = self._fd
            while True:
                with cython.nogil:
                    k = _sys_recv(fd, buf, _read_size)
                if k < 0:
                    _retry_or_raise(-k)
                elif reader._feed(buf[:k]):
                    self._rested(reader)
                    return parser
                elif deadline > 0.0:
                    self._bound(deadline)
        else:
            recv = self.sock.recv
            while not reader._feed(recv(READ_SIZE)):
                if deadline > 0.0:
                    self._bound(deadline)
            self._rested(reader)
            return parser


def keepalive_limit(announced: float) -> float:
    """How long a connection may stay idle when its server announced ``Keep-Alive: timeout=announced``.

    A quarter of the timeout less, at most one second less (5 s: 4 s, 1 s: 0.75 s): the request must reach
    the server, and be read, before its timer closes the connection.
    """
    return announced - min(1.0, announced * 0.25)


@cython.locals(seconds="double")
def deadline_after(seconds: float) -> float:
    """The ``time.monotonic()`` instant ``seconds`` from now: a call's deadline in one step (compiled, the
    clock is read in C and one float made, where ``time.monotonic() + seconds`` makes two)."""
    return _now() + seconds


@cython.locals(milliseconds="long long")
def deadline_after_ms(milliseconds: int) -> float:
    """:func:`deadline_after` for whole ``milliseconds`` (an ``x-rpc-timeout`` value): no Python float between."""
    return _now() + milliseconds / 1000.0


def _now() -> float:
    """Seconds on the monotonic clock (CLOCK_MONOTONIC on Linux, which is ``time.monotonic()``'s there)."""
    if cython.compiled and _POSIX:  # clock_gettime(2) without a Python call
        return _sys_monotonic()
    return time.monotonic()


def _is_tls(sock: socket.socket) -> bool:
    """``sock`` is an ``ssl.SSLSocket`` (none exists unless the ssl module is loaded: nothing imported here)."""
    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(sock, ssl.SSLSocket)


def _readable_check(sock: socket.socket) -> Callable[[int], object]:
    """``check(0)`` is empty while nothing waits to be read on ``sock``."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return poller.poll
    return lambda timeout: select.select([sock], [], [], timeout)[0]
