"""Explicit protobuf field numbers: ``Annotated[T, FieldNumber(n)]``.

dispatch-protobuf numbers the fields of a message (a dataclass, a pydantic model, a method's
parameters) 1, 2, 3, ... in declaration order, as aspyx-service does, so the two interoperate.
A field added at the end keeps every other number, but a field removed from the middle would
renumber the fields after it, and an old peer would read them as the fields they replaced.
``FieldNumber(n)`` pins a field to number ``n``; a field without one takes the number after the
previous field's. So when a field is removed, the field that followed it is annotated with its
old number, and the numbers after it stay as they were::

    @dataclass
    class Item:            # version 1: name = 1, note = 2, price = 3
        name: str
        note: str = ""
        price: float = 0.0

    @dataclass
    class Item:            # version 2: note removed; name = 1, price = 3, quantity = 4
        name: str
        price: Annotated[float, FieldNumber(3)] = 0.0
        quantity: int = 1

This module does not load protobuf: declaring a number costs a service module nothing.
"""

from __future__ import annotations

import typing
from typing import Any

__all__ = ["MAX_FIELD_NUMBER", "FieldNumber", "field_number"]

#: the largest field number protobuf allows (2**29 - 1); 19000 to 19999 are protobuf's own
MAX_FIELD_NUMBER = 2**29 - 1
_RESERVED = range(19000, 20000)


class FieldNumber:
    """The protobuf field number of a dataclass field, pydantic field or parameter, in ``Annotated``.

    Raises ``ValueError`` for a number protobuf does not allow (below 1, above 2**29 - 1, or in
    protobuf's reserved 19000..19999).
    """

    __slots__ = ("number",)

    def __init__(self, number: int) -> None:
        if type(number) is not int or not 1 <= number <= MAX_FIELD_NUMBER or number in _RESERVED:
            raise ValueError(
                f"a protobuf field number is an int from 1 to {MAX_FIELD_NUMBER} outside 19000..19999, got {number!r}"
            )
        self.number = number

    def __repr__(self) -> str:
        return f"FieldNumber({self.number})"

    def __eq__(self, other: object) -> bool:
        return type(other) is FieldNumber and other.number == self.number

    def __hash__(self) -> int:
        return hash((FieldNumber, self.number))


def field_number(hint: Any, metadata: typing.Iterable[Any] = ()) -> int:
    """The number a ``FieldNumber`` in ``hint``'s ``Annotated`` metadata (or in ``metadata``, pydantic's
    ``FieldInfo.metadata``) declares; 0 when none does."""
    found = [item for item in metadata if type(item) is FieldNumber]
    while typing.get_origin(hint) is typing.Annotated:
        found.extend(item for item in hint.__metadata__ if type(item) is FieldNumber)
        hint = hint.__origin__
    return found[0].number if found else 0
