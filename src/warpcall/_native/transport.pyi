"""Types of warpcall._native.transport (compiled twin of warpcall._pure.transport)."""

import socket
from collections.abc import Iterable

MAX_HEAD: int
MAX_LINE: int
READ_SIZE: int

def build_request(
    method: str | bytes,
    target: str | bytes,
    host: str | bytes,
    headers: Iterable[tuple[str | bytes, str | bytes]],
    body: bytes,
) -> bytes: ...

class ResponseParser:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    keep_alive: bool
    def __init__(self, max_body: int = ..., head: bool = ...) -> None: ...
    @property
    def complete(self) -> bool: ...
    def feed(self, data: bytes) -> bool: ...

class Connection:
    sent: int
    @property
    def timeout(self) -> float: ...
    def set_timeout(self, seconds: float) -> None: ...
    @property
    def sock(self) -> socket.socket: ...
    def __init__(self, sock: socket.socket) -> None: ...
    def idle(self) -> bool: ...
    def send(self, data: bytes) -> None: ...
    def receive(self, parser: ResponseParser) -> ResponseParser: ...
