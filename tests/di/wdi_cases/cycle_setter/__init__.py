"""A cycle through an @inject setter."""
from __future__ import annotations

from warpcall.di import inject, injectable, module


@injectable()
class Left:
    def __init__(self, right: Right) -> None:
        self.right = right


@injectable()
class Right:
    @inject()
    def set_left(self, left: Left) -> None:
        self.left = left


@module()
class SetterCycleModule:
    pass
