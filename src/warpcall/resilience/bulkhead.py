"""The client's bulkhead: a limit on the calls in flight to one component.

A slow or stuck dependency can hold every thread (or task) of a caller that keeps calling it.
With a limit of N, the N+1st call waits, first come first served, until one of the N finishes;
when that does not happen before the call's deadline (the deadline in force,
:func:`warpcall.resilience.deadline.remaining`, or else the channel's timeout) it fails with
:class:`~warpcall.exceptions.OverloadedException` naming the component and the limit, never
having been sent.

One :class:`Bulkhead` is shared by the sync threads and the async tasks (on any event loops) of a
process: a sync caller waits on a lock of its own, an async caller on a future that the releasing
thread resolves through its loop's ``call_soon_threadsafe``, so neither blocks the other.

Configuration: ``http.bulkhead.max_in_flight`` for every channel, ``http.<channel>.bulkhead.max_in_flight``
for one (e.g. ``http.dispatch-json.bulkhead.max_in_flight``). The default, 0, means no limit: the
channel then does not wrap its calls at all, so an unlimited channel pays nothing. Each channel
instance serves one component, so the limit holds per component and channel.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Any, Callable

from warpcall.exceptions import OverloadedException, ServiceException
from warpcall.resilience.deadline import remaining

if TYPE_CHECKING:
    import asyncio

    from warpcall.di.configuration import ConfigurationManager

__all__ = ["Bulkhead", "max_in_flight", "wrap_async", "wrap_sync"]


def max_in_flight(configuration: ConfigurationManager | None, channel: str) -> int:
    """``http.<channel>.bulkhead.max_in_flight``, else ``http.bulkhead.max_in_flight``, else 0 (no limit)."""
    if configuration is None:
        return 0
    limit = configuration.get("http.bulkhead.max_in_flight", int, 0)
    if channel:
        limit = configuration.get(f"http.{channel}.bulkhead.max_in_flight", int, limit)
    if limit < 0:
        raise ServiceException(f"http.bulkhead.max_in_flight must be 0 (no limit) or more, got {limit}")
    return limit


class _Waiter:
    """One call waiting for a place: a sync thread's lock, or an async task's future on its loop."""

    __slots__ = ("lock", "loop", "future", "granted")

    def __init__(
        self, loop: asyncio.AbstractEventLoop | None = None, future: asyncio.Future[None] | None = None
    ) -> None:
        self.lock: threading.Lock | None = None
        if future is None:
            self.lock = threading.Lock()
            self.lock.acquire()  # released by the call handing its place over
        self.loop = loop
        self.future = future
        #: the place was handed to this waiter (it must use it or pass it on)
        self.granted = False

    def wake(self) -> bool:
        """Tell the waiter its place came; False when it can no longer take it (its loop is closed)."""
        if self.lock is not None:
            self.lock.release()
            return True
        assert self.loop is not None
        try:
            self.loop.call_soon_threadsafe(_resolve, self.future)
        except RuntimeError:  # its loop is closed: the task waits no more
            return False
        return True


def _resolve(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


class Bulkhead:
    """At most ``limit`` calls in flight at once; the others wait in turn, up to their deadline.

    ``owner`` names the component (and channel) in the error; ``limit`` must be 1 or more.
    """

    def __init__(self, limit: int, owner: str = "") -> None:
        if limit < 1:
            raise ServiceException(f"a bulkhead needs a limit of 1 or more, got {limit}")
        self.limit = limit
        self.owner = owner
        self._lock = threading.Lock()
        self._in_flight = 0
        self._waiters: deque[_Waiter] = deque()

    @property
    def in_flight(self) -> int:
        """Calls holding a place now."""
        return self._in_flight

    @property
    def waiting(self) -> int:
        """Calls waiting for a place now."""
        return len(self._waiters)

    def _try(self) -> bool:
        with self._lock:
            if self._in_flight < self.limit and not self._waiters:
                self._in_flight += 1
                return True
            return False

    def _full(self, waited: float) -> OverloadedException:
        return OverloadedException(
            f"{self.owner or 'this channel'}: {self.limit} calls already in flight (its bulkhead's "
            f"http.bulkhead.max_in_flight); none finished within the call's {waited:.3f} s, so it was not sent"
        )

    def acquire(self, timeout: float) -> None:
        """Take a place, waiting up to ``timeout`` seconds; OverloadedException when none came free."""
        if self._try():
            return
        waiter = _Waiter()
        with self._lock:
            if self._in_flight < self.limit and not self._waiters:  # freed meanwhile
                self._in_flight += 1
                return
            self._waiters.append(waiter)
        assert waiter.lock is not None
        if waiter.lock.acquire(timeout=max(timeout, 0.0)):
            return  # handed over: the place is ours
        with self._lock:
            if waiter.granted:  # handed over just as the wait ended: use it
                return
            self._waiters.remove(waiter)
        raise self._full(timeout)

    async def acquire_async(self, timeout: float) -> None:
        """Async :meth:`acquire`: waits without blocking the event loop."""
        if self._try():
            return
        import asyncio  # loaded: this coroutine runs on its loop

        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        waiter = _Waiter(loop, future)
        with self._lock:
            if self._in_flight < self.limit and not self._waiters:
                self._in_flight += 1
                return
            self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(future), max(timeout, 0.0))
            return
        except asyncio.TimeoutError:
            with self._lock:
                if waiter.granted:
                    return
                self._waiters.remove(waiter)
            raise self._full(timeout) from None
        except BaseException:  # cancelled: a place handed over meanwhile goes to the next in line
            with self._lock:
                if not waiter.granted:
                    self._waiters.remove(waiter)
                    raise
            self.release()
            raise

    def release(self) -> None:
        """Give a place back: to the first waiter, if any, else to the pool."""
        while True:
            with self._lock:
                if not self._waiters:
                    self._in_flight -= 1
                    return
                waiter = self._waiters.popleft()
                waiter.granted = True  # the place passes on: in flight stays the same
            if waiter.wake():
                return

    def timeout_for(self, channel_timeout: float) -> float:
        """How long a call may wait for a place: what is left of its deadline, at most the channel's timeout."""
        left = remaining()
        return channel_timeout if left is None or left > channel_timeout else left


Request = Callable[[str, str, list[tuple[str, str]], bytes], Any]


def wrap_sync(bulkhead: Bulkhead, request: Request, timeout: Callable[[], float]) -> Request:
    """``request`` holding a place of ``bulkhead`` while it runs (``timeout()``: the channel's timeout)."""

    def request_in_bulkhead(method: str, url: str, headers: list[tuple[str, str]], body: bytes, *call: Any) -> Any:
        bulkhead.acquire(bulkhead.timeout_for(timeout()))
        try:
            return request(method, url, headers, body, *call)
        finally:
            bulkhead.release()

    return request_in_bulkhead


def wrap_async(bulkhead: Bulkhead, request: Request, timeout: Callable[[], float]) -> Request:
    """Async :func:`wrap_sync`."""

    async def request_in_bulkhead(
        method: str, url: str, headers: list[tuple[str, str]], body: bytes, *call: Any
    ) -> Any:
        await bulkhead.acquire_async(bulkhead.timeout_for(timeout()))
        try:
            return await request(method, url, headers, body, *call)
        finally:
            bulkhead.release()

    return request_in_bulkhead
