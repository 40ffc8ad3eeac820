"""aspyx-service's ``registries`` module: the Consul registry (``warpcall.registry`` has the others)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from warpcall.registry.consul import ConsulComponentRegistry

__all__ = ["ConsulComponentRegistry"]


def __getattr__(name: str) -> Any:
    # the Consul client loads with the name, not with the module
    if name == "ConsulComponentRegistry":
        from warpcall.registry.consul import ConsulComponentRegistry

        return ConsulComponentRegistry
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
