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

Rolling upgrades
----------------

A client and a server one interface version apart keep working on every channel (dispatch-json,
dispatch-msgpack, dispatch-protobuf, rest; sync and async) through these changes:

- **a parameter added at the end with a default.** An older client's call takes the newer server's
  default. A newer client does not send its last arguments that are their parameter's default object
  (not passed; or passed as that very object, except, on dispatch-json and dispatch-msgpack, as the only
  argument of a one-parameter method), so an older server takes the call; a value other than the
  default reaches the older server and is refused there with 422 ``InvalidArgumentsException`` naming
  the method (dispatch-json/msgpack: "takes 1 argument(s), got 2"; dispatch-protobuf: "carries field
  number 2"), never dropped silently. On rest an older route ignores a query parameter it does not
  declare, as FastAPI does: keep a new parameter at its default while older servers run.
- **a dataclass or pydantic field added with a default.** The older side ignores it; the newer side
  reads the default when the older side does not send it (on protobuf too: a scalar declared with a
  default is written even when zero, so an absent field means "not in the writer's version").
- **a field removed.** The newer side ignores it; the older side reads its own default, so remove a
  field only once it has had a default in the version before (without one, JSON and msgpack readers
  refuse the reply or call with ``MarshalException``/422 naming the missing field; a protobuf scalar
  without a default reads as protobuf's zero, a list or map as empty). On protobuf, pin the field after
  the gap with ``FieldNumber`` (above).
- **an enum value added.** Values both versions have travel as before. An older server refuses the new
  value as an argument with 422 ``InvalidArgumentsException`` naming the parameter, the enum and the
  value (rest: FastAPI's 422, which the caller gets as ``InvalidArgumentsException`` naming the query
  parameter and the value); an older client receiving it in a result raises ``MarshalException`` naming
  the enum and the value (never a wrong member, never a crash; the channel stays usable).

Not compatible: removing or reordering parameters (the dispatch envelope is positional, as aspyx-service's
is), changing a field's or parameter's type, adding a parameter or field without a default, renaming
(JSON and msgpack match fields by name, protobuf by number).
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
