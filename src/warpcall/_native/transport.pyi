"""Types of warpcall._native.transport (compiled twin of warpcall._pure.transport)."""

from collections.abc import Iterable

MAX_HEAD: int
MAX_LINE: int

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
