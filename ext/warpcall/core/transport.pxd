# C types of src/warpcall/core/transport.py (Cython reads this file beside the source when compiling it)

# send, recv and poll straight on a socket's descriptor, -errno on failure, and the monotonic clock (the one
# time.monotonic() reads on Linux); Connection calls them only
# where sys.platform is not win32 (on Windows they are stubs so that the module still compiles)
cdef extern from *:
    """
    #ifdef _WIN32
    static Py_ssize_t wc_recv(int fd, char *buf, Py_ssize_t n) { return -1; }
    static Py_ssize_t wc_send(int fd, const char *buf, Py_ssize_t n) { return -1; }
    static int wc_poll_in(int fd) { return -1; }
    static double wc_monotonic(void) { return -1.0; }
    #else
    #include <errno.h>
    #include <poll.h>
    #include <sys/types.h>
    #include <sys/socket.h>
    #include <time.h>
    static Py_ssize_t wc_recv(int fd, char *buf, Py_ssize_t n) {
        Py_ssize_t k = recv(fd, buf, (size_t)n, 0);
        return k < 0 ? -(Py_ssize_t)errno : k;
    }
    static Py_ssize_t wc_send(int fd, const char *buf, Py_ssize_t n) {
        Py_ssize_t k = send(fd, buf, (size_t)n, 0);
        return k < 0 ? -(Py_ssize_t)errno : k;
    }
    static int wc_poll_in(int fd) {
        struct pollfd p;
        int ready;
        p.fd = fd;
        p.events = POLLIN;
        p.revents = 0;
        ready = poll(&p, 1, 0);
        return ready < 0 ? -errno : ready;
    }
    static double wc_monotonic(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
    }
    #endif
    """
    Py_ssize_t _sys_recv "wc_recv" (int fd, char* buf, Py_ssize_t n) nogil
    Py_ssize_t _sys_send "wc_send" (int fd, const char* buf, Py_ssize_t n) nogil
    int _sys_poll_in "wc_poll_in" (int fd) nogil
    double _sys_monotonic "wc_monotonic" () nogil

cdef Py_ssize_t _max_head, _max_headers, _max_line, _read_size
cdef double _DEADLINE_SLACK
cdef bint _POSIX
cdef int _HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _UNTIL_CLOSE, _DONE
cdef bytes _TOKEN_CHARS

cdef bytes _as_bytes(object value, str what)
cdef bint _is_token(const unsigned char* p, Py_ssize_t start, Py_ssize_t end) noexcept
cdef bint _bad_value(const unsigned char* p, Py_ssize_t n) noexcept
cdef bint _bad_target(const unsigned char* p, Py_ssize_t n) noexcept
cdef bint _ieq(const unsigned char* p, Py_ssize_t start, Py_ssize_t end, const char* lower_name, Py_ssize_t m) noexcept
cdef double _announced_timeout(const unsigned char* p, Py_ssize_t start, Py_ssize_t end) noexcept
cdef Py_ssize_t _trim_end(const unsigned char* p, Py_ssize_t start, Py_ssize_t end) noexcept
cdef double _now() except? -1.0
cdef bytes _assemble(bytes m, bytes t, bytes h, list parts, bytes cl, bytes b, long long left)
cdef Py_ssize_t _find_crlf(const unsigned char* p, Py_ssize_t start, Py_ssize_t n) noexcept
cdef Py_ssize_t _find_head_end(const unsigned char* p, Py_ssize_t start, Py_ssize_t n) noexcept
cdef bytes _excerpt(const unsigned char* p, Py_ssize_t start, Py_ssize_t end)
cdef object _too_large(Py_ssize_t max_body)
cdef object _head_too_large()
cdef object _trailers_too_large()
cdef char* _put(char* o, const char* s, Py_ssize_t n) noexcept
cdef void _retry_or_raise(int err) except *


cdef class ResponseParser:
    cdef public int status
    cdef public str reason
    cdef public list headers
    cdef public bytes body
    cdef public bint keep_alive
    cdef public double keep_alive_timeout
    cdef Py_ssize_t _max_body
    cdef bint _head
    cdef int _state
    cdef bytes _pending
    cdef bytearray _parts
    cdef Py_ssize_t _remaining
    cdef bint _received
    cdef Py_ssize_t _left
    cdef Py_ssize_t _lines

    cdef inline Py_ssize_t _nparts(self)
    cdef inline void _append(self, bytes data, Py_ssize_t start, Py_ssize_t end)
    cdef bint _feed(self, bytes d) except -1
    cdef void _finish(self)
    cdef bint _eof(self) except -1
    cdef int _parse_head(self, const unsigned char* p, Py_ssize_t start, Py_ssize_t end) except -1


cdef class Connection:
    cdef readonly object sock
    cdef public Py_ssize_t sent
    cdef readonly double timeout
    cdef readonly double expiry
    cdef readonly double idle_since
    cdef readonly bint tls
    cdef double _limit
    cdef bint _kernel
    cdef int _fd
    cdef bytearray _buf
    cdef object _poll
    cdef double _bounded

    cdef void _rested(self, ResponseParser reader) except *
    cdef void _arm(self, double seconds) except *
    cdef void _bound(self, double deadline) except *
    cdef bint _nothing_to_read(self) except -1
