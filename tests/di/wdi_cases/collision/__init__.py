"""Two providers of one type: the class itself and a @create method."""
from warpcall.di import create, injectable, module


@injectable()
class Clock:
    pass


@module()
class CollisionModule:
    @create()
    def make_clock(self) -> Clock:
        return Clock()
