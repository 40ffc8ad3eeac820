"""A -> B -> C -> A through constructors."""
from __future__ import annotations

from warpcall.di import injectable, module


@injectable()
class Alpha:
    def __init__(self, beta: Beta) -> None:
        self.beta = beta


@injectable()
class Beta:
    def __init__(self, gamma: Gamma) -> None:
        self.gamma = gamma


@injectable()
class Gamma:
    def __init__(self, alpha: Alpha) -> None:
        self.alpha = alpha


@module()
class CycleModule:
    pass
