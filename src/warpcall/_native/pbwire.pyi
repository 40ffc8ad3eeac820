"""Typing stub of the compiled protobuf wire fast path (twin: warpcall._pure.pbwire)."""

from typing import Any, Callable, Sequence

SINT64: int
DOUBLE: int
BOOL: int
STRING: int
BYTES: int
MESSAGE: int

class MessageWire:
    def __init__(self) -> None: ...
    def define(
        self,
        fields: Sequence[tuple[int, bool, bool, Any, Any, MessageWire | None]],
        build: Callable[[list[Any]], Any] | None = None,
        cls: Any = object,
        read: Callable[[Any], Sequence[Any]] | None = None,
        reject: Sequence[int] = (),
    ) -> None: ...
    def encode(self, values: Sequence[Any]) -> bytes | None: ...
    def decode(self, body: bytes | bytearray | memoryview) -> list[Any] | None: ...
