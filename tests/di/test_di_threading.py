"""@synchronized: calls of one instance's synchronized methods never overlap, sync or async."""

from __future__ import annotations

import asyncio
import threading
import time

from warpcall.di import Environment, injectable, module
from warpcall.di.threading import synchronized


@injectable()
class Counter:
    def __init__(self) -> None:
        self.inside = 0
        self.overlaps = 0
        self.total = 0

    def _enter(self) -> None:
        self.inside += 1
        if self.inside > 1:
            self.overlaps += 1

    @synchronized()
    def increment(self) -> None:
        self._enter()
        time.sleep(0.001)  # give other threads a chance to enter if the lock were missing
        self.total += 1
        self.inside -= 1

    @synchronized()
    async def increment_async(self) -> None:
        self._enter()
        await asyncio.sleep(0.001)
        self.total += 1
        self.inside -= 1


@module()
class ThreadingModule:
    pass


def test_synchronized_sync_methods_do_not_overlap() -> None:
    env = Environment(ThreadingModule)
    counter = env.get(Counter)
    threads = [threading.Thread(target=lambda: [counter.increment() for _ in range(5)]) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert counter.total == 40
    assert counter.overlaps == 0
    env.destroy()


def test_synchronized_async_methods_do_not_overlap() -> None:
    env = Environment(ThreadingModule)
    counter = env.get(Counter)

    async def main() -> None:
        await asyncio.gather(*(counter.increment_async() for _ in range(20)))

    asyncio.run(main())
    assert counter.total == 20
    assert counter.overlaps == 0
    env.destroy()
