"""Component registries: the contract and its implementations.

``LocalComponentRegistry`` is in-process; ``EmbeddedComponentRegistry`` (the
default when none is configured) works across the processes of one machine
with nothing to install; ``ConsulComponentRegistry`` and
``EtcdComponentRegistry`` are for production.
"""

from warpcall.registry.consul import ConsulComponentRegistry
from warpcall.registry.contract import ChannelAddress, ChannelInstances, ComponentRegistry
from warpcall.registry.embedded import EmbeddedComponentRegistry
from warpcall.registry.etcd import EtcdComponentRegistry
from warpcall.registry.local import LocalComponentRegistry

__all__ = [
    "ChannelAddress",
    "ChannelInstances",
    "ComponentRegistry",
    "ConsulComponentRegistry",
    "EmbeddedComponentRegistry",
    "EtcdComponentRegistry",
    "LocalComponentRegistry",
]
