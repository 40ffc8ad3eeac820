"""Component registries: the contract and its implementations."""

from warpcall.registry.contract import ChannelAddress, ChannelInstances, ComponentRegistry

__all__ = ["ChannelAddress", "ChannelInstances", "ComponentRegistry"]
