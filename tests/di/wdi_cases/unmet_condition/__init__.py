"""A conditional injectable whose required class is missing, and a dependent of it."""
from warpcall.di import conditional, injectable, module, requires_class


class Redis:
    pass


@injectable()
@conditional(requires_class(Redis))
class RedisCache:
    pass


@injectable()
class Sessions:
    def __init__(self, cache: RedisCache) -> None:
        self.cache = cache


@module()
class UnmetConditionModule:
    pass
