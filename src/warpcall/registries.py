"""aspyx-service's ``registries`` module: the Consul registry (``warpcall.registry`` has the others)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from warpcall.registry.consul import ConsulComponentRegistry
else:
    from warpcall._lazy import export_lazily

    # the Consul client loads with the name, not with the module
    __getattr__, __dir__ = export_lazily(__name__, {"ConsulComponentRegistry": "warpcall.registry.consul"})

__all__ = ["ConsulComponentRegistry"]
