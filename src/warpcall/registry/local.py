"""The in-process registry.

``LocalComponentRegistry`` keeps registrations in a dict: components hosted and
called in the same process (tests, single-process deployments).

The watch bookkeeping the registries share (``WatchedChannels``, ``Backoff``,
``group_by_channel``, ``to_instances``) lives in ``warpcall.registry._watch``;
it is imported here too, so the names stay importable from this module.
"""

from __future__ import annotations

import threading
from itertools import count

from warpcall.di import on_destroy
from warpcall.registry._watch import Backoff, URLsByChannel, WatchedChannels, group_by_channel, to_instances
from warpcall.registry.contract import (
    ChannelAddress,
    ChannelInstances,
    ComponentInfo,
    ComponentRegistry,
    WatchedChannel,
    watched_component,
)

__all__ = [
    "Backoff",
    "LocalComponentRegistry",
    "LocalDirectory",
    "URLsByChannel",
    "WatchedChannels",
    "group_by_channel",
    "to_instances",
]


class LocalDirectory:
    """The registrations that several ``LocalComponentRegistry`` objects of one process share."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        #: component -> registration key -> addresses
        self.instances: dict[str, dict[int, list[ChannelAddress]]] = {}
        self.registries: list[LocalComponentRegistry] = []


class _Remote:
    """A component known only by name: one served by another process."""

    __slots__ = ("name",)
    health = ""

    def __init__(self, name: str) -> None:
        self.name = name


class LocalComponentRegistry(ComponentRegistry):
    """Registrations held in memory; for components hosted and called in one process.

    Registries built on the same ``LocalDirectory`` see each other's
    registrations (a test's stand-in for several hosts); by default each
    registry has its own. Watched channels are updated synchronously, in the
    thread that registers or deregisters.
    """

    _keys = count(1)

    def __init__(self, directory: LocalDirectory | None = None) -> None:
        self._directory = directory or LocalDirectory()
        self._key = next(self._keys)
        self._registered: set[str] = set()
        self._watched = WatchedChannels()
        self._closed = False
        with self._directory.lock:
            self._directory.registries.append(self)

    def register(self, descriptor: ComponentInfo, addresses: list[ChannelAddress]) -> None:
        with self._directory.lock:
            self._directory.instances.setdefault(descriptor.name, {})[self._key] = list(addresses)
            self._registered.add(descriptor.name)
            self._notify(descriptor.name)

    def register_remote(self, component: str, addresses: list[ChannelAddress]) -> None:
        """Publish where another process serves the component named ``component``, as if it had registered
        here: how a process calling through this in-process registry learns a server's address."""
        self.register(_Remote(component), addresses)

    def deregister(self, descriptor: ComponentInfo) -> None:
        with self._directory.lock:
            self._directory.instances.get(descriptor.name, {}).pop(self._key, None)
            self._registered.discard(descriptor.name)
            self._notify(descriptor.name)

    def watch(self, channel: WatchedChannel) -> None:
        component = watched_component(channel)
        with self._directory.lock:
            if self._watched.add(channel):
                self._watched.update(component, self._urls(component))

    def get_addresses(self, descriptor: ComponentInfo) -> list[ChannelInstances]:
        with self._directory.lock:
            return to_instances(descriptor.name, self._urls(descriptor.name))

    @on_destroy()  # an environment that created the registry closes it when destroyed
    def close(self) -> None:
        with self._directory.lock:
            if self._closed:
                return
            self._closed = True
            for component in list(self._registered):
                self._directory.instances.get(component, {}).pop(self._key, None)
                self._notify(component)
            self._registered.clear()
            self._directory.registries.remove(self)
            self._watched.clear()

    def _urls(self, component: str) -> URLsByChannel:
        return group_by_channel(self._directory.instances.get(component, {}).values())

    def _notify(self, component: str) -> None:
        urls = self._urls(component)
        for registry in self._directory.registries:
            if component in registry._watched.components():
                registry._watched.update(component, urls)
