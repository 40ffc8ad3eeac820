"""Raw-socket HTTP/1.1 for tests: what is sent is exactly what the test says, and what comes back is read bounded.

Shared by the server tests (tests/ is on ``sys.path`` through its conftest):

- :func:`connect`, :func:`request`, :class:`Reader`: a raw client on 127.0.0.1;
- :func:`wait_until`: poll a condition, bounded, instead of sleeping;
- :class:`UvicornReference`: any FastAPI app under a bare uvicorn on a free loopback port, the reference a
  warpcall server is compared with.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Callable

TIMEOUT = 5.0
MAX_READS = 10_000


def connect(port: int, timeout: float = TIMEOUT) -> socket.socket:
    """A TCP connection to 127.0.0.1:``port``, Nagle off, every read bounded by ``timeout``."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def request(path: str, body: bytes, content_type: str | None = "application/json", *, version: str = "1.1",
            extra: str = "", method: str = "POST", length: int | None = None) -> bytes:
    """One request's bytes; ``length`` overrides the announced content-length (a body that will not all come)."""
    head = f"{method} {path} HTTP/{version}\r\nhost: 127.0.0.1\r\n"
    if content_type is not None:
        head += f"content-type: {content_type}\r\n"
    announced = len(body) if length is None else length
    return f"{head}content-length: {announced}\r\n{extra}\r\n".encode("latin-1") + body


class Reader:
    """Reads whole content-length framed responses from a socket, bounded in reads."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buffer = sock, b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def response(self) -> tuple[bytes, dict[bytes, bytes], bytes]:
        """(status line, headers with lower-case names, body) of the next response."""
        for _ in range(MAX_READS):
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                head, rest = self.buffer[:end], self.buffer[end + 4:]
                status, *lines = head.split(b"\r\n")
                headers = {}
                for line in lines:
                    name, _, value = line.partition(b":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get(b"content-length", b"0"))
                if len(rest) >= length:
                    self.buffer = rest[length:]
                    return status, headers, rest[:length]
            if not self._fill():
                raise ConnectionError(f"connection closed mid-response: {self.buffer[:200]!r}")
        raise AssertionError("response never completed")

    def closed(self) -> bool:
        """True when the server closed the connection (and sent nothing more)."""
        try:
            return not self.buffer and not self._fill()
        except ConnectionResetError:
            return True


def wait_until(condition: Callable[[], Any], timeout: float = TIMEOUT, what: str = "the condition") -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never held within {timeout} s")
        time.sleep(0.002)


class UvicornReference:
    """``app`` served by a bare uvicorn (httptools) on a free 127.0.0.1 port, in a thread; a context manager.

    ``config`` goes to ``uvicorn.Config`` (for example ``timeout_keep_alive``).
    """

    def __init__(self, app: Any, **config: Any) -> None:
        import uvicorn

        config.setdefault("http", "httptools")
        config.setdefault("log_level", "warning")
        config.setdefault("lifespan", "off")
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, **config))
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def __enter__(self) -> UvicornReference:
        self._thread.start()
        wait_until(lambda: self.server.started, timeout=10, what="the reference server's start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self._thread.join(10)
        self._sock.close()
