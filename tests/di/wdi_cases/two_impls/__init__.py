"""A base class with two implementations that nobody injects: building works, get(base) does not."""
from abc import ABC, abstractmethod

from warpcall.di import injectable, module


class Codec(ABC):
    @abstractmethod
    def encode(self, value: str) -> bytes: ...


@injectable()
class JsonCodec(Codec):
    def encode(self, value: str) -> bytes:
        return value.encode()


@injectable()
class MsgpackCodec(Codec):
    def encode(self, value: str) -> bytes:
        return value.encode()


@module()
class TwoImplsModule:
    pass
