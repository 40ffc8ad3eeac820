"""Typing stub of the compiled POST /invoke recogniser (twin: warpcall._pure.invokehead)."""

REQUEST_LINE: bytes
MAX_HEADERS: int

def parse(data: bytes, limit: int) -> tuple[bytes, bytes, int] | None: ...
