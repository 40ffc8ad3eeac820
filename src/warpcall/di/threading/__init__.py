"""``@synchronized()``: methods of one instance that never run at the same time (``aspyx.di.threading``).

Sync methods share a re-entrant lock per instance; ``async def`` methods share an
``asyncio.Lock`` per instance, so waiting never blocks the event loop.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable, TypeVar
from weakref import WeakKeyDictionary

from warpcall.di._reflection import Decorators
from warpcall.di.aop import Invocation, advice, around, methods

if TYPE_CHECKING:
    import asyncio

F = TypeVar("F", bound=Callable[..., Any])


def synchronized() -> Callable[[F], F]:
    """Serialize calls of the decorated method per instance (the instance must be managed by an environment)."""

    def decorator(func: F) -> F:
        Decorators.add(func, synchronized)
        return func

    return decorator


@advice
class SynchronizeAdvice:
    """Holds the per-instance locks of ``@synchronized`` methods."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: WeakKeyDictionary[Any, threading.RLock] = WeakKeyDictionary()
        self._async_locks: WeakKeyDictionary[Any, asyncio.Lock] = WeakKeyDictionary()

    def _lock(self, instance: Any) -> threading.RLock:
        with self._guard:
            lock = self._locks.get(instance)
            if lock is None:
                lock = self._locks[instance] = threading.RLock()
            return lock

    def _async_lock(self, instance: Any) -> asyncio.Lock:
        import asyncio  # loaded: an async method asks; every environment has this advice, few await

        with self._guard:
            lock = self._async_locks.get(instance)
            if lock is None:
                lock = self._async_locks[instance] = asyncio.Lock()
            return lock

    @around(methods().decorated_with(synchronized).that_are_sync())
    def synchronize_sync(self, invocation: Invocation) -> Any:
        with self._lock(invocation.args[0]):
            return invocation.proceed()

    @around(methods().decorated_with(synchronized).that_are_async())
    async def synchronize_async(self, invocation: Invocation) -> Any:
        async with self._async_lock(invocation.args[0]):
            return await invocation.proceed()


__all__ = ["SynchronizeAdvice", "synchronized"]
