"""The part of the ``cython`` module the core's sources use, for plain Python without Cython installed.

Compiled, Cython reads these names itself; here they do nothing: decorators return their function,
C types are the Python types they stand for.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

compiled = False
Py_ssize_t = int
bint = bool
longlong = int
double = float
# a pointer into a bytes object's buffer, compiled; the bytes object itself here (indexing gives ints)
p_const_uchar = bytes


def locals(**types: Any) -> Callable[[F], F]:  # noqa: A001 - the name Cython gives it
    """Cython types these locals; plain Python ignores the declaration."""
    return lambda function: function


def cast(tp: Any, value: Any, typecheck: bool = False) -> Any:
    """A C cast, compiled; the value itself in plain Python."""
    return value


def cclass(cls: F) -> F:
    """Compiled, the class is an extension type; plain Python leaves it a class."""
    return cls


def freelist(size: int) -> Callable[[F], F]:
    """Compiled, instances of the class are recycled through a free list; plain Python ignores it."""
    return lambda cls: cls
