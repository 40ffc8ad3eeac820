"""The registry contract: what a component registry does and the data it moves.

A registry publishes the addresses of the components this process hosts
(``register``/``deregister``) and keeps the URL lists of the channels this
process calls through current (``watch``), pushing each change into the
channel with ``channel.set_address(ChannelInstances | None)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Protocol


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


def watched_component(channel: WatchedChannel) -> str:
    """The name of the component ``channel`` calls (a channel is set up before it is watched)."""
    descriptor = channel.component_descriptor
    if descriptor is None:
        raise ValueError(f"the {channel.name!r} channel is watched before it was set up with its component")
    return descriptor.name


class ComponentRegistry(ABC):
    """Publishes hosted components and keeps watched channels' URL lists current."""

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
