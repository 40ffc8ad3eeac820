"""Component registries: the contract and its implementations.

``LocalComponentRegistry`` is in-process; ``EmbeddedComponentRegistry`` (the
default when none is configured) works across the processes of one machine
with nothing to install; ``ConsulComponentRegistry`` and
``EtcdComponentRegistry`` are for production.

Each name is imported on first use (PEP 562): importing the contract or one
registry does not load the others' clients (consul, requests, sqlite3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

_EXPORTS = {
    **dict.fromkeys(("ChannelAddress", "ChannelInstances", "ComponentRegistry"), "warpcall.registry.contract"),
    "ConsulComponentRegistry": "warpcall.registry.consul",
    "EmbeddedComponentRegistry": "warpcall.registry.embedded",
    "EtcdComponentRegistry": "warpcall.registry.etcd",
    "LocalComponentRegistry": "warpcall.registry.local",
}

if TYPE_CHECKING:
    from warpcall.registry.consul import ConsulComponentRegistry
    from warpcall.registry.contract import ChannelAddress, ChannelInstances, ComponentRegistry
    from warpcall.registry.embedded import EmbeddedComponentRegistry
    from warpcall.registry.etcd import EtcdComponentRegistry
    from warpcall.registry.local import LocalComponentRegistry
else:
    from warpcall._lazy import export_lazily

    __getattr__, __dir__ = export_lazily(__name__, _EXPORTS)

__all__ = [
    "ChannelAddress",
    "ChannelInstances",
    "ComponentRegistry",
    "ConsulComponentRegistry",
    "EmbeddedComponentRegistry",
    "EtcdComponentRegistry",
    "LocalComponentRegistry",
]
