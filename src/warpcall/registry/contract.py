"""The registry contract: what a component registry does and the data it moves.

A registry publishes the addresses of the components this process hosts
(``register``/``deregister``) and keeps the URL lists of the channels this
process calls through current (``watch``), pushing each change into the
channel with ``channel.set_address(ChannelInstances | None)``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger("warpcall.registry")


@dataclass(frozen=True)
class ChannelAddress:
    """Where one channel of a component instance listens: channel name and base URI."""

    channel: str
    uri: str

    def __str__(self) -> str:
        return f"{self.channel}({self.uri})"


@dataclass
class ChannelInstances:
    """The URLs of every live instance of one component on one channel."""

    component: str
    channel: str
    urls: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.component}.{self.channel}{self.urls}"


class ComponentInfo(Protocol):
    """What a registry reads of a component descriptor."""

    @property
    def name(self) -> str: ...

    @property
    def health(self) -> str:
        """Path of the component's health endpoint, '' when it declares none."""
        ...


class WatchedChannel(Protocol):
    """What a registry reads of and pushes into a channel it watches."""

    @property
    def name(self) -> str: ...

    @property
    def component_descriptor(self) -> ComponentInfo | None:
        """The component the channel calls; None until the channel is set up."""
        ...

    def set_address(self, address: ChannelInstances | None) -> None: ...


class Liveness(Protocol):
    """Whether the process still serves: registries that renew registrations ask before each renewal.

    :class:`warpcall.health.LoopWatchdog` is the one a server installs: alive while its event
    loop runs callbacks within a bound.
    """

    def alive(self) -> bool:
        """True while this process's instances may stay registered."""
        ...


def watched_component(channel: WatchedChannel) -> str:
    """The name of the component ``channel`` calls (a channel is set up before it is watched)."""
    descriptor = channel.component_descriptor
    if descriptor is None:
        raise ValueError(f"the {channel.name!r} channel is watched before it was set up with its component")
    return descriptor.name


class ComponentRegistry(ABC):
    """Publishes hosted components and keeps watched channels' URL lists current.

    Registries that keep registrations alive by renewing them (the embedded registry's
    heartbeat, etcd's lease keep-alive) renew only while :meth:`serving` is true, so an
    instance whose server stalled drops out within the registry's TTL and comes back when it
    recovers. The server installs its :class:`Liveness` with :meth:`set_liveness`.
    """

    #: consulted before each renewal; None (no server installed one): always renew
    _liveness: Liveness | None = None
    _stalled = False

    @abstractmethod
    def register(self, descriptor: ComponentInfo, addresses: list[ChannelAddress]) -> None:
        """Publish the addresses of a component instance hosted by this process."""

    @abstractmethod
    def deregister(self, descriptor: ComponentInfo) -> None:
        """Withdraw this process's instance of the component."""

    @abstractmethod
    def watch(self, channel: WatchedChannel) -> None:
        """Keep ``channel``'s URL list current from now on (starting with the current list)."""

    @abstractmethod
    def get_addresses(self, descriptor: ComponentInfo) -> list[ChannelInstances]:
        """The live instances' URLs of a component, one entry per channel."""

    def map_health(self, health: object) -> int:
        """HTTP status for a health result: 200 when healthy, 503 when not."""
        status = getattr(health, "status", None)
        return 200 if getattr(status, "name", "OK") in ("OK", "WARNING") else 503

    def close(self) -> None:
        """Stop background work (watches, heartbeats). Safe to call twice."""

    def set_liveness(self, liveness: Liveness | None) -> None:
        """Renew this process's registrations only while ``liveness.alive()`` (None: always).

        Registries whose registrations do not expire on their own (the in-process one, Consul's
        health-checked services) ignore it: Consul's check calls the component's health endpoint,
        which a stalled server does not answer.
        """
        self._liveness = liveness

    def serving(self) -> bool:
        """Whether registrations may be renewed now: the installed liveness says alive (or none is).

        Logs when the answer changes, once each way.
        """
        liveness = self._liveness
        alive = liveness is None or liveness.alive()
        if alive == self._stalled:
            self._stalled = not alive
            if alive:
                log.info("the server answers again; renewing its registrations")
            else:
                log.warning(
                    "the server stopped answering (%s); its registrations are no longer renewed", liveness
                )
        return alive
