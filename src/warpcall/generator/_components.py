"""Which components a generator describes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from warpcall.service import ComponentDescriptor, component_descriptor


def described_components(service_manager: Any, components: Sequence[type] | None) -> list[ComponentDescriptor]:
    """The descriptors of ``components`` when given, else of those ``service_manager``'s environment implements."""
    if components is not None:
        return [component_descriptor(component) for component in components]
    found: list[ComponentDescriptor] = service_manager.implemented_components()
    return found
