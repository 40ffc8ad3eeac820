"""HTTP/1.1 at the byte level: write a request, parse a response fed in pieces.

The socket work (connect, pool, timeouts) lives in ``warpcall.channels.transport``;
this module only turns values into bytes and bytes into values. Every error is a
``ValueError`` (``TypeError`` for wrong argument types) whose message says what was
wrong; the caller adds the URL.
"""

from __future__ import annotations

import re
import select
import socket
import struct
import sys

__all__ = ["MAX_HEAD", "MAX_LINE", "READ_SIZE", "Connection", "ResponseParser", "build_request"]

#: the response head (status line and headers) may not be larger than this
MAX_HEAD = 65536
#: a chunk-size line or trailer line may not be longer than this
MAX_LINE = 8192
#: the most bytes one receive asks the OS for
READ_SIZE = 65536

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(rb"[\r\n\x00]")
_BAD_TARGET = re.compile(rb"[\x00-\x20\x7f]")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_DIGITS = re.compile(rb"[0-9]{1,18}")
_KERNEL_TIMEOUTS = sys.platform != "win32"
_BODY_METHODS = frozenset((b"POST", b"PUT", b"PATCH"))
_NO_UPGRADE = "unexpected 101 Switching Protocols: this client does not upgrade connections"

_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _UNTIL_CLOSE, _DONE = range(8)


def _as_bytes(value: object, what: str) -> bytes:
    if type(value) is bytes:
        return value
    if isinstance(value, str):
        try:
            return value.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"{what} {value!r} is not latin-1 text: encode it to bytes first") from None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")


def build_request(method: str, target: str | bytes, host: str | bytes, headers: list, body: bytes) -> bytes:
    """Return the bytes of one HTTP/1.1 request.

    Writes ``Host`` (unless ``headers`` has one), the caller's headers in order,
    and ``Content-Length`` computed from ``body`` (omitted for an empty body unless
    the method is POST, PUT or PATCH). A caller's ``Content-Length`` or
    ``Transfer-Encoding`` is replaced, since the body is always sent whole.
    """
    m = _as_bytes(method, "HTTP method")
    if _TOKEN.fullmatch(m) is None:
        raise ValueError(f"invalid HTTP method {method!r}: use a token such as 'GET' or 'POST'")
    t = _as_bytes(target, "request target")
    if not t or _BAD_TARGET.search(t) is not None:
        raise ValueError(
            f"invalid request target {target!r}: it must be non-empty, without spaces or control characters"
        )
    h = _as_bytes(host, "Host")
    if not h or _BAD_TARGET.search(h) is not None:
        raise ValueError(f"invalid Host {host!r}: it must be non-empty, without spaces or control characters")
    if type(body) is not bytes:
        if not isinstance(body, (bytearray, memoryview)):
            raise TypeError(f"body must be bytes, not {type(body).__name__}")
        body = bytes(body)
    out = [m, b" ", t, b" HTTP/1.1\r\n", b"", b""]
    has_host = False
    for pair in headers:
        try:
            name, value = pair
        except (TypeError, ValueError):
            raise TypeError(f"each header must be a (name, value) pair, not {pair!r}") from None
        n = _as_bytes(name, "header name")
        v = _as_bytes(value, "header value")
        if _TOKEN.fullmatch(n) is None:
            raise ValueError(f"invalid header name {name!r}: use a token such as 'Content-Type'")
        if _BAD_VALUE.search(v) is not None:
            raise ValueError(f"invalid value for header {name!r}: it must not contain CR, LF or NUL")
        lower = n.lower()
        if lower == b"content-length" or lower == b"transfer-encoding":
            continue
        if lower == b"host":
            has_host = True
        out += (n, b": ", v, b"\r\n")
    if not has_host:
        out[4] = b"Host: " + h + b"\r\n"
    if body or m in _BODY_METHODS:
        out.append(b"Content-Length: %d\r\n" % len(body))
    out.append(b"\r\n")
    out.append(body)
    return b"".join(out)


def _too_large(max_body: int) -> ValueError:
    return ValueError(
        f"response body exceeds the limit of {max_body} bytes; raise max_body if this is expected"
    )


class ResponseParser:
    """Parses one HTTP/1.1 response from the pieces a socket returns.

    ``feed(data)`` returns True once the response is complete; ``feed(b"")`` says
    the peer closed the connection. Then ``status``, ``reason``, ``headers``
    (``(name, value)`` str pairs as sent), ``body`` and ``keep_alive`` (whether the
    connection may carry another request) hold the result. Informational (1xx)
    responses are skipped. ``head=True`` is for the answer to a HEAD request,
    which never has a body.
    """

    __slots__ = (
        "status",
        "reason",
        "headers",
        "body",
        "keep_alive",
        "_max_body",
        "_head",
        "_state",
        "_pending",
        "_parts",
        "_remaining",
        "_received",
    )

    def __init__(self, max_body: int = 64 * 2**20, head: bool = False) -> None:
        self.status = 0
        self.reason = ""
        self.headers: list[tuple[str, str]] = []
        self.body = b""
        self.keep_alive = True
        self._max_body = max_body
        self._head = bool(head)
        self._state = _HEAD
        self._pending = b""
        self._parts = bytearray()
        self._remaining = 0
        self._received = False

    @property
    def complete(self) -> bool:
        """True once the whole response has been parsed."""
        return self._state == _DONE

    def feed(self, data: bytes) -> bool:
        """Take the next bytes from the socket (``b""``: the peer closed); True once the response is whole."""
        if type(data) is not bytes:
            data = bytes(data)
        if not data:
            return self._eof()
        if self._state == _DONE:
            self.keep_alive = False
            return True
        self._received = True
        if self._pending:
            data = self._pending + data
            self._pending = b""
        pos = 0
        n = len(data)
        state = self._state
        while True:
            if state == _HEAD:
                end = data.find(b"\r\n\r\n", pos)
                if end < 0:
                    if n - pos > MAX_HEAD:
                        raise ValueError(f"response head is larger than {MAX_HEAD} bytes")
                    self._pending = data[pos:]
                    break
                if end - pos > MAX_HEAD:
                    raise ValueError(f"response head is larger than {MAX_HEAD} bytes")
                state = self._parse_head(data[pos:end])
                pos = end + 4
            elif state == _LENGTH or state == _CHUNK_DATA:
                want = self._remaining
                avail = n - pos
                if avail >= want:
                    if state == _LENGTH and not self._parts:
                        self.body = data[pos : pos + want]
                    else:
                        self._parts += data[pos : pos + want]
                    pos += want
                    self._remaining = 0
                    state = _DONE if state == _LENGTH else _CHUNK_END
                else:
                    self._parts += data[pos:] if pos else data
                    self._remaining = want - avail
                    pos = n
            elif state == _CHUNK_SIZE:
                end = data.find(b"\r\n", pos)
                if end < 0:
                    if n - pos > MAX_LINE:
                        raise ValueError(f"chunk size line is longer than {MAX_LINE} bytes")
                    self._pending = data[pos:]
                    break
                line = data[pos:end]
                size_text = line.split(b";", 1)[0].strip(b" \t")
                if _HEX.fullmatch(size_text) is None:
                    raise ValueError(f"malformed chunk size line {line[:100]!r}")
                size = int(size_text, 16)
                pos = end + 2
                if size == 0:
                    state = _TRAILERS
                else:
                    if len(self._parts) + size > self._max_body:
                        raise _too_large(self._max_body)
                    self._remaining = size
                    state = _CHUNK_DATA
            elif state == _CHUNK_END:
                if n - pos < 2:
                    self._pending = data[pos:]
                    break
                if data[pos : pos + 2] != b"\r\n":
                    raise ValueError("chunk data is not followed by CRLF")
                pos += 2
                state = _CHUNK_SIZE
            elif state == _TRAILERS:
                end = data.find(b"\r\n", pos)
                if end < 0:
                    if n - pos > MAX_LINE:
                        raise ValueError(f"trailer line is longer than {MAX_LINE} bytes")
                    self._pending = data[pos:]
                    break
                state = _DONE if end == pos else _TRAILERS
                pos = end + 2
            else:  # _UNTIL_CLOSE
                self._parts += data[pos:] if pos else data
                if len(self._parts) > self._max_body:
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
        if self._parts:
            self.body = bytes(self._parts)
            self._parts = bytearray()

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

    def _parse_head(self, head: bytes) -> int:
        lines = head.split(b"\r\n")
        line = lines[0]
        if (
            len(line) < 12
            or not line.startswith(b"HTTP/1.")
            or line[7] not in b"01"
            or line[8] != 0x20
            or _DIGITS.fullmatch(line, 9, 12) is None
            or (len(line) > 12 and line[12] != 0x20)
        ):
            raise ValueError(f"malformed status line {line[:100]!r}")
        status = int(line[9:12])
        http11 = line[7] == 0x31
        if status < 100:
            raise ValueError(f"malformed status line {line[:100]!r}")
        headers = []
        length = -1
        chunked = False
        has_te = False
        close = False
        keep = False
        for raw in lines[1:]:
            colon = raw.find(b":")
            if colon <= 0 or raw[0] in b" \t":
                raise ValueError(f"malformed header line {raw[:100]!r}")
            name = raw[:colon]
            if _TOKEN.fullmatch(name) is None:
                raise ValueError(f"malformed header line {raw[:100]!r}")
            value = raw[colon + 1 :].strip(b" \t")
            headers.append((name.decode("latin-1"), value.decode("latin-1")))
            lower = name.lower()
            if lower == b"content-length":
                if _DIGITS.fullmatch(value) is None:
                    raise ValueError(f"invalid Content-Length {value[:100]!r}")
                number = int(value)
                if length >= 0 and number != length:
                    raise ValueError("conflicting Content-Length headers")
                length = number
            elif lower == b"transfer-encoding":
                has_te = True
                chunked = value.rsplit(b",", 1)[-1].strip(b" \t").lower() == b"chunked"
            elif lower == b"connection":
                for token in value.split(b","):
                    token = token.strip(b" \t").lower()
                    if token == b"close":
                        close = True
                    elif token == b"keep-alive":
                        keep = True
        if status < 200:
            if status == 101:
                raise ValueError(_NO_UPGRADE)
            return _HEAD
        self.status = status
        self.reason = line[13:].decode("latin-1")
        self.headers = headers
        self.keep_alive = not close and (http11 or keep)
        if self._head or status == 204 or status == 304:
            return _DONE
        if has_te:
            if not chunked:
                self.keep_alive = False
                return _UNTIL_CLOSE
            if length >= 0:
                # both framings present (RFC 9112 6.3): trust chunked, never reuse the connection
                self.keep_alive = False
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

    ``idle()`` says whether a kept-alive connection is fit for reuse, ``send`` writes
    a request, ``receive`` reads until a ``ResponseParser`` has the whole response;
    ``set_timeout`` bounds each send and each receive. Errors are the socket's
    ``OSError`` (``BlockingIOError`` or ``TimeoutError`` when a timeout expires) and
    the parser's ``ValueError``. The socket must be blocking (``settimeout(None)``)
    when the connection is made; closing it stays the caller's job.
    """

    __slots__ = ("sock", "sent", "timeout", "_poll")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sent = 0
        self.timeout = -1.0
        self._poll = _readable_check(sock)

    def set_timeout(self, seconds: float) -> None:
        """Bound each later send and each receive to ``seconds`` (kernel timeouts where the OS has them)."""
        seconds = float(seconds)
        if seconds == self.timeout:
            return
        if seconds <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {seconds!r}")
        if _KERNEL_TIMEOUTS and self.sock.gettimeout() is None:
            # a blocking socket with SO_RCVTIMEO/SO_SNDTIMEO: no poll() before each call, as settimeout() does
            whole = int(seconds)
            tv = struct.pack("ll", whole, int((seconds - whole) * 1e6) or (0 if whole else 1))
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
        else:
            self.sock.settimeout(seconds)
        self.timeout = seconds

    def idle(self) -> bool:
        """True when nothing waits to be read: no data and no EOF, so the peer still expects a request."""
        return not self._poll(0)

    def send(self, data: bytes) -> None:
        """Write all of ``data``; on an error ``sent`` says how many bytes went out before it."""
        view = memoryview(data if type(data) is bytes else bytes(data))
        n = len(view)
        self.sent = 0
        while self.sent < n:
            self.sent += self.sock.send(view[self.sent :])

    def receive(self, parser: ResponseParser) -> ResponseParser:
        """Read and feed ``parser`` until the response is complete (EOF included); returns ``parser``."""
        recv = self.sock.recv
        while not parser.feed(recv(READ_SIZE)):
            pass
        return parser


def _readable_check(sock: socket.socket):  # noqa: ANN202 - a poll-like callable
    """``check(0)`` is empty while nothing waits to be read on ``sock``."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return poller.poll
    return lambda timeout: select.select([sock], [], [], timeout)[0]
