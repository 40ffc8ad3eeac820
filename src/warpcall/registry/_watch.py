"""The watch bookkeeping every registry in this package shares.

``group_by_channel`` and ``to_instances`` turn the addresses of a component's
instances into one URL list per channel and back into ``get_addresses`` answers.
``WatchedChannels`` remembers which channels watch which component and pushes a
channel's URL list only when it changed; ``Backoff`` is the capped exponential
delay between retries when a registry server cannot be reached;
``BackgroundTasks`` is the one-loop, one-thread home of a registry's watches.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from warpcall.registry.contract import ChannelAddress, ChannelInstances, WatchedChannel, watched_component

if TYPE_CHECKING:
    import asyncio

#: channel name -> URLs of every live instance on that channel, in a stable order
URLsByChannel = dict[str, list[str]]


def group_by_channel(instances: Iterable[Iterable[ChannelAddress]]) -> URLsByChannel:
    """Merge the addresses of several instances into one URL list per channel (order kept, no duplicates)."""
    urls: URLsByChannel = {}
    for addresses in instances:
        for address in addresses:
            channel_urls = urls.setdefault(address.channel, [])
            if address.uri not in channel_urls:
                channel_urls.append(address.uri)
    return urls


def to_instances(component: str, urls: URLsByChannel) -> list[ChannelInstances]:
    """The ``get_addresses`` answer for one component: one ``ChannelInstances`` per channel."""
    return [
        ChannelInstances(component, channel, list(channel_urls)) for channel, channel_urls in urls.items()
    ]


class WatchedChannels:
    """The channels watched per component, and the URL list last pushed into each.

    A registry calls ``update`` whenever it learns a component's current
    instances; each channel of that component gets ``set_address`` only when
    its own URL list changed. A channel whose name no instance offers gets an
    empty list. Pushes happen under one lock, so a channel never sees an older
    list after a newer one.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._channels: dict[str, list[WatchedChannel]] = {}
        self._known: dict[str, URLsByChannel] = {}
        self._pushed: dict[int, tuple[str, ...]] = {}

    def add(self, channel: WatchedChannel) -> bool:
        """Watch ``channel``; True when its component was not watched before.

        When the component's instances are already known, the channel gets them at once.
        """
        component = watched_component(channel)
        with self._lock:
            channels = self._channels.setdefault(component, [])
            first = not channels
            if any(existing is channel for existing in channels):
                return False
            channels.append(channel)
            known = self._known.get(component)
            if known is not None:
                self._push(component, channel, known)
            return first

    def components(self) -> list[str]:
        """Names of the components at least one channel watches."""
        with self._lock:
            return list(self._channels)

    def known(self, component: str) -> URLsByChannel | None:
        """The last URL lists learnt for ``component``, or None before the first answer."""
        with self._lock:
            known = self._known.get(component)
            return None if known is None else {channel: list(urls) for channel, urls in known.items()}

    def update(self, component: str, urls: URLsByChannel) -> None:
        """Record ``component``'s current instances and push changed lists into its channels."""
        with self._lock:
            self._known[component] = {channel: list(channel_urls) for channel, channel_urls in urls.items()}
            for channel in self._channels.get(component, ()):
                self._push(component, channel, urls)

    def clear(self) -> None:
        """Forget every channel (the registry is closing)."""
        with self._lock:
            self._channels.clear()
            self._known.clear()
            self._pushed.clear()

    def _push(self, component: str, channel: WatchedChannel, urls: URLsByChannel) -> None:
        new = tuple(urls.get(channel.name, ()))
        if self._pushed.get(id(channel)) == new:
            return
        self._pushed[id(channel)] = new
        channel.set_address(ChannelInstances(component, channel.name, list(new)))


class Backoff:
    """Capped exponential delays with jitter between retries against an unreachable registry.

    ``failed`` logs the first failure of a streak as a warning and the
    following ones at debug level, so a long outage does not flood the log;
    ``succeeded`` says when the registry answers again.
    """

    def __init__(self, initial: float = 0.2, maximum: float = 10.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.failures = 0
        self._next = initial

    def failed(self, logger: logging.Logger, message: str, exc: BaseException) -> float:
        """Count a failure, log it, and return the delay before the next attempt."""
        delay = self.next()
        self.failures += 1
        level = logging.WARNING if self.failures == 1 else logging.DEBUG
        logger.log(level, "%s; retry in %.1f s (failure %d): %r", message, delay, self.failures, exc)
        return delay

    def succeeded(self, logger: logging.Logger, message: str) -> None:
        """The registry answered: log the recovery after a streak of failures and start over."""
        if self.failures:
            logger.info("%s after %d failed attempt(s)", message, self.failures)
        self.failures = 0
        self.reset()

    def next(self) -> float:
        """The delay before the next attempt; doubles up to ``maximum``."""
        delay = self._next
        self._next = min(self._next * 2, self.maximum)
        return delay * random.uniform(0.8, 1.0)

    def reset(self) -> None:
        """The registry answered again: start from ``initial`` next time."""
        self._next = self.initial


ClientT = TypeVar("ClientT")


class BackgroundTasks(Generic[ClientT]):
    """One asyncio loop in one daemon thread, running at most one task per key until :meth:`stop`.

    Registries watch and renew from here so that ``stop`` can cancel a blocked
    query at once; a thread blocked in a synchronous HTTP call could not be.
    ``client`` is made on the loop's thread when it starts and closed there when it stops.
    """

    def __init__(
        self,
        thread_name: str,
        open_client: Callable[[], ClientT],
        close_client: Callable[[ClientT], Coroutine[Any, Any, Any]],
    ) -> None:
        self.thread_name = thread_name
        self._client: ClientT | None = None
        self._open_client = open_client
        self._close_client = close_client
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopped = False
        self._lock = threading.Lock()

    @property
    def client(self) -> ClientT:
        """The client the loop's thread made; the tasks run on that thread, after it was made."""
        client = self._client
        assert client is not None, "the background loop has not started"
        return client

    def start(self, key: str, factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``factory()`` as the task of ``key`` (once per key), starting the thread on first use."""
        with self._lock:
            if self._stopped:
                return
            if self._thread is None:
                ready = threading.Event()
                self._thread = threading.Thread(target=self._run, args=(ready,), name=self.thread_name, daemon=True)
                self._thread.start()
                ready.wait()
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._spawn, key, factory)

    def stop(self) -> None:
        """Cancel every task, close the client and join the thread. Safe to call twice."""
        with self._lock:
            self._stopped = True
            loop, thread = self._loop, self._thread
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(self._cancel_all)
            thread.join()

    def _run(self, ready: threading.Event) -> None:
        import asyncio  # here, not at the top: the in-process registries never start a loop

        loop = asyncio.new_event_loop()
        self._loop = loop
        client = self._client = self._open_client()
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._close_client(client))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _spawn(self, key: str, factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
        if not self._stopped and key not in self._tasks:
            assert self._loop is not None  # _spawn runs on it
            self._tasks[key] = self._loop.create_task(factory())

    def _cancel_all(self) -> None:
        import asyncio

        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        loop = asyncio.get_running_loop()
        if tasks:
            asyncio.gather(*tasks, return_exceptions=True).add_done_callback(lambda _: loop.stop())
        else:
            loop.stop()

