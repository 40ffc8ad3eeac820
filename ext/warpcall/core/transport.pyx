"""Compiled twin of warpcall._pure.transport: HTTP/1.1 request writing and response parsing."""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.exc cimport PyErr_CheckSignals, PyErr_SetFromErrno
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.unicode cimport PyUnicode_DecodeLatin1
from libc.errno cimport EINTR, errno
from libc.string cimport memchr, memcpy

import select

# Socket calls straight to the OS where it is POSIX; elsewhere (Windows) Connection uses the socket's methods.
cdef extern from *:
    """
    #ifdef _WIN32
    #define WC_C_IO 0
    static Py_ssize_t wc_recv(int fd, char* buf, Py_ssize_t n) { return -1; }
    static Py_ssize_t wc_send(int fd, const char* buf, Py_ssize_t n) { return -1; }
    static int wc_poll_in(int fd) { return -1; }
    static int wc_set_timeouts(int fd, double seconds) { return -1; }
    #else
    #define WC_C_IO 1
    #include <sys/types.h>
    #include <sys/socket.h>
    #include <poll.h>
    #include <sys/time.h>
    static Py_ssize_t wc_recv(int fd, char* buf, Py_ssize_t n) { return recv(fd, buf, (size_t)n, 0); }
    static Py_ssize_t wc_send(int fd, const char* buf, Py_ssize_t n) { return send(fd, buf, (size_t)n, 0); }
    static int wc_poll_in(int fd) {
        struct pollfd p;
        p.fd = fd;
        p.events = POLLIN;
        p.revents = 0;
        return poll(&p, 1, 0);
    }
    static int wc_set_timeouts(int fd, double seconds) {
        struct timeval tv;
        tv.tv_sec = (time_t)seconds;
        tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
        if (tv.tv_sec == 0 && tv.tv_usec == 0) tv.tv_usec = 1;  /* zero would mean "no timeout" */
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) return -1;
        return setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    #endif
    """
    int WC_C_IO
    Py_ssize_t wc_recv(int fd, char* buf, Py_ssize_t n) nogil
    Py_ssize_t wc_send(int fd, const char* buf, Py_ssize_t n) nogil
    int wc_poll_in(int fd) nogil
    int wc_set_timeouts(int fd, double seconds) nogil

__all__ = ["MAX_HEAD", "MAX_LINE", "READ_SIZE", "Connection", "ResponseParser", "build_request"]

MAX_HEAD = 65536
MAX_LINE = 8192
#: the most bytes one receive asks the OS for
READ_SIZE = 65536

_NO_UPGRADE = "unexpected 101 Switching Protocols: this client does not upgrade connections"

cdef enum:
    C_MAX_HEAD = 65536
    C_MAX_LINE = 8192
    C_READ_SIZE = 65536

cdef enum:
    S_HEAD = 0
    S_LENGTH = 1
    S_CHUNK_SIZE = 2
    S_CHUNK_DATA = 3
    S_CHUNK_END = 4
    S_TRAILERS = 5
    S_UNTIL_CLOSE = 6
    S_DONE = 7

# tchar of RFC 9110: ! # $ % & ' * + - . ^ _ ` | ~ DIGIT ALPHA
cdef bint TOKEN_CHAR[256]


cdef void _init_tables():
    cdef int c
    for c in range(256):
        TOKEN_CHAR[c] = (
            (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122)
            or c in (33, 35, 36, 37, 38, 39, 42, 43, 45, 46, 94, 95, 96, 124, 126)
        )


_init_tables()


cdef bytes _as_bytes(object value, str what):
    if type(value) is bytes:
        return <bytes>value
    if isinstance(value, str):
        try:
            return (<str>value).encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"{what} {value!r} is not latin-1 text: encode it to bytes first") from None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")


cdef bint _is_token(bytes b):
    cdef Py_ssize_t i, n = PyBytes_GET_SIZE(b)
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(b)
    if n == 0:
        return False
    for i in range(n):
        if not TOKEN_CHAR[p[i]]:
            return False
    return True


cdef bint _bad_value(bytes b):
    cdef Py_ssize_t i, n = PyBytes_GET_SIZE(b)
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(b)
    cdef unsigned char c
    for i in range(n):
        c = p[i]
        if c == 13 or c == 10 or c == 0:
            return True
    return False


cdef bint _bad_target(bytes b):
    cdef Py_ssize_t i, n = PyBytes_GET_SIZE(b)
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(b)
    cdef unsigned char c
    if n == 0:
        return True
    for i in range(n):
        c = p[i]
        if c <= 32 or c == 127:
            return True
    return False


cdef inline unsigned char _lower(unsigned char c):
    if 65 <= c <= 90:
        return c + 32
    return c


cdef bint _ieq(const unsigned char* p, Py_ssize_t n, const char* lower_name, Py_ssize_t m):
    """p[:n] equals the lowercase ASCII name, ignoring case."""
    cdef Py_ssize_t i
    if n != m:
        return False
    for i in range(n):
        if _lower(p[i]) != <unsigned char>lower_name[i]:
            return False
    return True


def build_request(method, target, host, headers, body):
    """Return the bytes of one HTTP/1.1 request.

    Writes ``Host`` (unless ``headers`` has one), the caller's headers in order,
    and ``Content-Length`` computed from ``body`` (omitted for an empty body unless
    the method is POST, PUT or PATCH). A caller's ``Content-Length`` or
    ``Transfer-Encoding`` is replaced, since the body is always sent whole.
    """
    cdef bytes m = _as_bytes(method, "HTTP method")
    if not _is_token(m):
        raise ValueError(f"invalid HTTP method {method!r}: use a token such as 'GET' or 'POST'")
    cdef bytes t = _as_bytes(target, "request target")
    if _bad_target(t):
        raise ValueError(
            f"invalid request target {target!r}: it must be non-empty, without spaces or control characters"
        )
    cdef bytes h = _as_bytes(host, "Host")
    if _bad_target(h):
        raise ValueError(f"invalid Host {host!r}: it must be non-empty, without spaces or control characters")
    cdef bytes b
    if type(body) is bytes:
        b = <bytes>body
    elif isinstance(body, (bytearray, memoryview)):
        b = bytes(body)
    else:
        raise TypeError(f"body must be bytes, not {type(body).__name__}")

    cdef list parts = []
    cdef bint has_host = False
    cdef bytes n, v
    cdef Py_ssize_t total = 0
    cdef Py_ssize_t nlen
    cdef const unsigned char* np
    for pair in headers:
        try:
            name, value = pair
        except (TypeError, ValueError):
            raise TypeError(f"each header must be a (name, value) pair, not {pair!r}") from None
        n = _as_bytes(name, "header name")
        v = _as_bytes(value, "header value")
        if not _is_token(n):
            raise ValueError(f"invalid header name {name!r}: use a token such as 'Content-Type'")
        if _bad_value(v):
            raise ValueError(f"invalid value for header {name!r}: it must not contain CR, LF or NUL")
        np = <const unsigned char*>PyBytes_AS_STRING(n)
        nlen = PyBytes_GET_SIZE(n)
        if _ieq(np, nlen, "content-length", 14) or _ieq(np, nlen, "transfer-encoding", 17):
            continue
        if _ieq(np, nlen, "host", 4):
            has_host = True
        parts.append(n)
        parts.append(v)
        total += nlen + PyBytes_GET_SIZE(v) + 4

    cdef Py_ssize_t blen = PyBytes_GET_SIZE(b)
    cdef bytes cl = None
    if blen or m == b"POST" or m == b"PUT" or m == b"PATCH":
        cl = b"%d" % blen
        total += 18 + PyBytes_GET_SIZE(cl)
    if not has_host:
        total += 8 + PyBytes_GET_SIZE(h)
    total += PyBytes_GET_SIZE(m) + 1 + PyBytes_GET_SIZE(t) + 11 + 2 + blen

    cdef bytes out = PyBytes_FromStringAndSize(NULL, total)
    cdef char* o = PyBytes_AS_STRING(out)
    cdef Py_ssize_t k
    o = _put(o, m)
    o[0] = 32
    o += 1
    o = _put(o, t)
    memcpy(o, b" HTTP/1.1\r\n", 11)
    o += 11
    if not has_host:
        memcpy(o, b"Host: ", 6)
        o += 6
        o = _put(o, h)
        o[0] = 13
        o[1] = 10
        o += 2
    for k in range(0, len(parts), 2):
        o = _put(o, <bytes>parts[k])
        o[0] = 58
        o[1] = 32
        o += 2
        o = _put(o, <bytes>parts[k + 1])
        o[0] = 13
        o[1] = 10
        o += 2
    if cl is not None:
        memcpy(o, b"Content-Length: ", 16)
        o += 16
        o = _put(o, cl)
        o[0] = 13
        o[1] = 10
        o += 2
    o[0] = 13
    o[1] = 10
    o += 2
    if blen:
        memcpy(o, PyBytes_AS_STRING(b), blen)
    return out


cdef inline char* _put(char* o, bytes b):
    cdef Py_ssize_t n = PyBytes_GET_SIZE(b)
    memcpy(o, PyBytes_AS_STRING(b), n)
    return o + n


cdef Py_ssize_t _find_crlf(const unsigned char* p, Py_ssize_t start, Py_ssize_t n):
    """Index of the next CRLF in p[start:n], or -1."""
    cdef const unsigned char* q
    cdef Py_ssize_t i = start
    while i + 1 < n:
        q = <const unsigned char*>memchr(p + i, 13, n - 1 - i)
        if q == NULL:
            return -1
        i = q - p
        if p[i + 1] == 10:
            return i
        i += 1
    return -1


cdef Py_ssize_t _find_head_end(const unsigned char* p, Py_ssize_t start, Py_ssize_t n):
    """Index of the next CRLFCRLF in p[start:n], or -1."""
    cdef Py_ssize_t i = start
    while True:
        i = _find_crlf(p, i, n)
        if i < 0 or i + 3 >= n:
            return -1
        if p[i + 2] == 13 and p[i + 3] == 10:
            return i
        i += 2


cdef bytes _excerpt(const unsigned char* p, Py_ssize_t n):
    """At most the first 100 bytes, for error messages."""
    return PyBytes_FromStringAndSize(<const char*>p, n if n < 100 else 100)


cdef object _too_large(Py_ssize_t max_body):
    return ValueError(
        f"response body exceeds the limit of {max_body} bytes; raise max_body if this is expected"
    )


cdef class ResponseParser:
    """Parses one HTTP/1.1 response from the pieces a socket returns.

    ``feed(data)`` returns True once the response is complete; ``feed(b"")`` says
    the peer closed the connection. Then ``status``, ``reason``, ``headers``
    (``(name, value)`` str pairs as sent), ``body`` and ``keep_alive`` (whether the
    connection may carry another request) hold the result. Informational (1xx)
    responses are skipped. ``head=True`` is for the answer to a HEAD request,
    which never has a body.
    """

    cdef public int status
    cdef public str reason
    cdef public list headers
    cdef public bytes body
    cdef public bint keep_alive
    cdef Py_ssize_t _max_body
    cdef bint _head
    cdef int _state
    cdef bytes _pending
    cdef bytearray _parts
    cdef Py_ssize_t _remaining
    cdef bint _received

    def __init__(self, Py_ssize_t max_body=64 * 2**20, head=False):
        self.status = 0
        self.reason = ""
        self.headers = []
        self.body = b""
        self.keep_alive = True
        self._max_body = max_body
        self._head = bool(head)
        self._state = S_HEAD
        self._pending = b""
        self._parts = None
        self._remaining = 0
        self._received = False

    @property
    def complete(self):
        """True once the whole response has been parsed."""
        return self._state == S_DONE

    cdef inline Py_ssize_t _nparts(self):
        return 0 if self._parts is None else len(self._parts)

    cdef inline void _append(self, bytes data, Py_ssize_t start, Py_ssize_t end):
        if self._parts is None:
            self._parts = bytearray(data[start:end])
        elif start == 0 and end == PyBytes_GET_SIZE(data):
            self._parts += data
        else:
            self._parts += data[start:end]

    def feed(self, data):
        """Take the next bytes from the socket (``b""``: the peer closed); True once the response is whole."""
        return self._feed(<bytes>data if type(data) is bytes else bytes(data))

    cdef object _feed(self, bytes d):
        cdef Py_ssize_t n = PyBytes_GET_SIZE(d)
        if n == 0:
            return self._eof()
        if self._state == S_DONE:
            self.keep_alive = False
            return True
        self._received = True
        if PyBytes_GET_SIZE(self._pending):
            d = self._pending + d
            n = PyBytes_GET_SIZE(d)
            self._pending = b""
        cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(d)
        cdef Py_ssize_t pos = 0, end, want, avail, size
        cdef int state = self._state
        cdef int digit
        cdef Py_ssize_t i, k, stop
        cdef unsigned char c
        while True:
            if state == S_HEAD:
                end = _find_head_end(p, pos, n)
                if end < 0:
                    if n - pos > C_MAX_HEAD:
                        raise ValueError(f"response head is larger than {MAX_HEAD} bytes")
                    self._pending = d[pos:]
                    break
                if end - pos > C_MAX_HEAD:
                    raise ValueError(f"response head is larger than {MAX_HEAD} bytes")
                state = self._parse_head(p, pos, end)
                pos = end + 4
            elif state == S_LENGTH or state == S_CHUNK_DATA:
                want = self._remaining
                avail = n - pos
                if avail >= want:
                    if state == S_LENGTH and self._parts is None:
                        if pos == 0 and want == n:
                            self.body = d
                        else:
                            self.body = PyBytes_FromStringAndSize(<const char*>p + pos, want)
                    else:
                        self._append(d, pos, pos + want)
                    pos += want
                    self._remaining = 0
                    state = S_DONE if state == S_LENGTH else S_CHUNK_END
                else:
                    self._append(d, pos, n)
                    self._remaining = want - avail
                    pos = n
            elif state == S_CHUNK_SIZE:
                end = _find_crlf(p, pos, n)
                if end < 0:
                    if n - pos > C_MAX_LINE:
                        raise ValueError(f"chunk size line is longer than {MAX_LINE} bytes")
                    self._pending = d[pos:]
                    break
                # the size is hex digits, optionally padded and followed by ;extensions
                stop = pos
                while stop < end and p[stop] != 59:
                    stop += 1
                i = pos
                while i < stop and (p[i] == 32 or p[i] == 9):
                    i += 1
                while stop > i and (p[stop - 1] == 32 or p[stop - 1] == 9):
                    stop -= 1
                if stop == i or stop - i > 16:
                    raise ValueError(f"malformed chunk size line {d[pos:end][:100]!r}")
                for k in range(i, stop):
                    c = p[k]
                    if not ((48 <= c <= 57) or (97 <= c <= 102) or (65 <= c <= 70)):
                        raise ValueError(f"malformed chunk size line {d[pos:end][:100]!r}")
                size = 0
                while i < stop:
                    c = p[i]
                    if c <= 57:
                        digit = c - 48
                    elif c >= 97:
                        digit = c - 87
                    else:
                        digit = c - 55
                    if size > (self._max_body >> 4) + 1:
                        raise _too_large(self._max_body)
                    size = size * 16 + digit
                    i += 1
                pos = end + 2
                if size == 0:
                    state = S_TRAILERS
                else:
                    if self._nparts() + size > self._max_body:
                        raise _too_large(self._max_body)
                    self._remaining = size
                    state = S_CHUNK_DATA
            elif state == S_CHUNK_END:
                if n - pos < 2:
                    self._pending = d[pos:]
                    break
                if p[pos] != 13 or p[pos + 1] != 10:
                    raise ValueError("chunk data is not followed by CRLF")
                pos += 2
                state = S_CHUNK_SIZE
            elif state == S_TRAILERS:
                end = _find_crlf(p, pos, n)
                if end < 0:
                    if n - pos > C_MAX_LINE:
                        raise ValueError(f"trailer line is longer than {MAX_LINE} bytes")
                    self._pending = d[pos:]
                    break
                state = S_DONE if end == pos else S_TRAILERS
                pos = end + 2
            else:  # S_UNTIL_CLOSE
                self._append(d, pos, n)
                if self._nparts() > self._max_body:
                    raise _too_large(self._max_body)
                pos = n
            if state == S_DONE:
                if pos < n:
                    # bytes beyond the response: the peer is not speaking plain request/response
                    self.keep_alive = False
                self._finish()
                return True
            if pos >= n:
                break
        self._state = state
        return False

    cdef void _finish(self):
        self._state = S_DONE
        self._pending = b""
        if self._parts is not None and len(self._parts):
            self.body = bytes(self._parts)
        self._parts = None

    cdef object _eof(self):
        cdef int state = self._state
        if state == S_DONE:
            return True
        if state == S_UNTIL_CLOSE:
            self.keep_alive = False
            self._finish()
            return True
        if state == S_HEAD and not self._received:
            raise ValueError("the server closed the connection without sending a response")
        raise ValueError("the server closed the connection before the response was complete")

    cdef int _parse_head(self, const unsigned char* p, Py_ssize_t start, Py_ssize_t end) except -1:
        cdef Py_ssize_t line_end = _find_crlf(p, start, end + 2)
        cdef Py_ssize_t llen = line_end - start
        cdef const unsigned char* s = p + start
        if (
            llen < 12
            or s[0] != 72 or s[1] != 84 or s[2] != 84 or s[3] != 80 or s[4] != 47 or s[5] != 49 or s[6] != 46
            or (s[7] != 48 and s[7] != 49)
            or s[8] != 32
            or not (48 <= s[9] <= 57 and 48 <= s[10] <= 57 and 48 <= s[11] <= 57)
            or (llen > 12 and s[12] != 32)
        ):
            raise ValueError(f"malformed status line {_excerpt(s, llen)!r}")
        cdef int status = (s[9] - 48) * 100 + (s[10] - 48) * 10 + (s[11] - 48)
        cdef bint http11 = s[7] == 49
        if status < 100:
            raise ValueError(f"malformed status line {_excerpt(s, llen)!r}")
        cdef list headers = []
        cdef long long length = -1, number
        cdef bint chunked = False, has_te = False, close = False, keep = False
        cdef Py_ssize_t pos = line_end + 2, eol, colon, vs, ve, i, ts, te
        cdef const unsigned char* q
        while pos < end:
            eol = _find_crlf(p, pos, end + 2)
            q = p + pos
            colon = -1
            for i in range(eol - pos):
                if q[i] == 58:
                    colon = i
                    break
            if colon <= 0 or q[0] == 32 or q[0] == 9:
                raise ValueError(f"malformed header line {_excerpt(q, eol - pos)!r}")
            for i in range(colon):
                if not TOKEN_CHAR[q[i]]:
                    raise ValueError(f"malformed header line {_excerpt(q, eol - pos)!r}")
            vs = pos + colon + 1
            ve = eol
            while vs < ve and (p[vs] == 32 or p[vs] == 9):
                vs += 1
            while ve > vs and (p[ve - 1] == 32 or p[ve - 1] == 9):
                ve -= 1
            headers.append((
                PyUnicode_DecodeLatin1(<const char*>q, colon, NULL),
                PyUnicode_DecodeLatin1(<const char*>p + vs, ve - vs, NULL),
            ))
            if _ieq(q, colon, "content-length", 14):
                if ve == vs or ve - vs > 18:
                    raise ValueError(f"invalid Content-Length {_excerpt(p + vs, ve - vs)!r}")
                number = 0
                for i in range(vs, ve):
                    if not (48 <= p[i] <= 57):
                        raise ValueError(f"invalid Content-Length {_excerpt(p + vs, ve - vs)!r}")
                    number = number * 10 + (p[i] - 48)
                if length >= 0 and number != length:
                    raise ValueError("conflicting Content-Length headers")
                length = number
            elif _ieq(q, colon, "transfer-encoding", 17):
                has_te = True
                # the last coding decides: is it chunked?
                ts = ve
                while ts > vs and p[ts - 1] != 44:
                    ts -= 1
                while ts < ve and (p[ts] == 32 or p[ts] == 9):
                    ts += 1
                chunked = _ieq(p + ts, ve - ts, "chunked", 7)
            elif _ieq(q, colon, "connection", 10):
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
                    if _ieq(p + ts, i - ts, "close", 5):
                        close = True
                    elif _ieq(p + ts, i - ts, "keep-alive", 10):
                        keep = True
                    ts = te + 1
            pos = eol + 2
        if status < 200:
            if status == 101:
                raise ValueError(_NO_UPGRADE)
            return S_HEAD
        self.status = status
        self.reason = PyUnicode_DecodeLatin1(<const char*>s + 13, llen - 13, NULL) if llen > 13 else ""
        self.headers = headers
        self.keep_alive = not close and (http11 or keep)
        if self._head or status == 204 or status == 304:
            return S_DONE
        if has_te:
            if not chunked:
                self.keep_alive = False
                return S_UNTIL_CLOSE
            if length >= 0:
                # both framings present (RFC 9112 6.3): trust chunked, never reuse the connection
                self.keep_alive = False
            return S_CHUNK_SIZE
        if length >= 0:
            if length > self._max_body:
                raise _too_large(self._max_body)
            if length == 0:
                return S_DONE
            self._remaining = length
            return S_LENGTH
        self.keep_alive = False
        return S_UNTIL_CLOSE


cdef class Connection:
    """One connected, blocking socket carrying one HTTP/1.1 exchange at a time.

    ``idle()`` says whether a kept-alive connection is fit for reuse, ``send`` writes
    a request, ``receive`` reads until a ``ResponseParser`` has the whole response;
    ``set_timeout`` bounds each send and each receive. Errors are the socket's
    ``OSError`` (``BlockingIOError`` or ``TimeoutError`` when a timeout expires) and
    the parser's ``ValueError``. The socket must be blocking (``settimeout(None)``)
    when the connection is made; closing it stays the caller's job.
    """

    cdef readonly object sock
    cdef public Py_ssize_t sent
    cdef readonly double timeout
    cdef int _fd
    cdef bint _c_io
    cdef char* _buf
    cdef object _poll

    def __cinit__(self):
        self._buf = NULL

    def __init__(self, sock):
        self.sock = sock
        self.sent = 0
        self.timeout = -1.0
        # straight OS calls only on a blocking POSIX socket; timeouts then come from SO_RCVTIMEO/SO_SNDTIMEO
        self._c_io = WC_C_IO and sock.gettimeout() is None
        if self._c_io:
            self._fd = sock.fileno()
            self._buf = <char*>PyMem_Malloc(C_READ_SIZE)
            if self._buf == NULL:
                raise MemoryError()
        else:
            self._fd = -1
            self._poll = _readable_check(sock)

    def __dealloc__(self):
        if self._buf != NULL:
            PyMem_Free(self._buf)
            self._buf = NULL

    def set_timeout(self, double seconds):
        """Bound each later send and each receive to ``seconds`` (kernel timeouts where the OS has them)."""
        cdef int failed
        if seconds == self.timeout:
            return
        if seconds <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {seconds!r}")
        if self._c_io:
            with nogil:
                failed = wc_set_timeouts(self._fd, seconds)
            if failed:
                PyErr_SetFromErrno(OSError)
        else:
            self.sock.settimeout(seconds)
        self.timeout = seconds

    def idle(self):
        """True when nothing waits to be read: no data and no EOF, so the peer still expects a request."""
        cdef int ready
        if not self._c_io:
            return not self._poll(0)
        with nogil:
            ready = wc_poll_in(self._fd)
        return ready == 0

    def send(self, data):
        """Write all of ``data``; on an error ``sent`` says how many bytes went out before it."""
        cdef bytes d = <bytes>data if type(data) is bytes else bytes(data)
        cdef const char* p = PyBytes_AS_STRING(d)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(d), k
        self.sent = 0
        if not self._c_io:
            view = memoryview(d)
            while self.sent < n:
                self.sent += self.sock.send(view[self.sent:])
            return
        while self.sent < n:
            with nogil:
                k = wc_send(self._fd, p + self.sent, n - self.sent)
            if k < 0:
                if errno == EINTR:
                    PyErr_CheckSignals()
                    continue
                PyErr_SetFromErrno(OSError)
                return
            self.sent += k

    def receive(self, ResponseParser parser):
        """Read and feed ``parser`` until the response is complete (EOF included); returns ``parser``."""
        cdef Py_ssize_t k
        if not self._c_io:
            recv = self.sock.recv
            while not parser._feed(recv(READ_SIZE)):
                pass
            return parser
        while True:
            with nogil:
                k = wc_recv(self._fd, self._buf, C_READ_SIZE)
            if k < 0:
                if errno == EINTR:
                    PyErr_CheckSignals()
                    continue
                PyErr_SetFromErrno(OSError)
                return
            if parser._feed(PyBytes_FromStringAndSize(self._buf, k)):
                return parser


cdef object _readable_check(sock):
    """``check(0)`` is empty while nothing waits to be read on ``sock``."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return poller.poll
    return lambda timeout: select.select([sock], [], [], timeout)[0]
