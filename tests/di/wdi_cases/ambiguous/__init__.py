"""A dependency on a base class with two implementations."""
from abc import ABC, abstractmethod

from warpcall.di import injectable, module


class Store(ABC):
    @abstractmethod
    def name(self) -> str: ...


@injectable()
class MemoryStore(Store):
    def name(self) -> str:
        return "memory"


@injectable()
class DiskStore(Store):
    def name(self) -> str:
        return "disk"


@injectable()
class Cache:
    def __init__(self, store: Store) -> None:
        self.store = store


@module()
class AmbiguousModule:
    pass
