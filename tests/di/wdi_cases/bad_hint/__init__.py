"""A constructor hint naming a class that does not exist."""
from __future__ import annotations

from warpcall.di import injectable, module


@injectable()
class Orphan:
    def __init__(self, ghost: Ghost) -> None:  # noqa: F821 - the missing name is the point
        self.ghost = ghost


@module()
class BadHintModule:
    pass
