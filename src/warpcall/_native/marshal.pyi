"""Types of the compiled marshalling core (twin: warpcall._pure.marshal)."""

from typing import Any

class TypePlan:
    """How to dump and load one type; built once by ``plan_for`` and cached."""

    @property
    def tp(self) -> Any: ...
    @property
    def name(self) -> str: ...
    def dump(self, value: Any) -> Any:
        """Turn ``value`` (an instance of ``tp``) into a JSON-safe primitive tree."""
    def load(self, data: Any) -> Any:
        """Turn a primitive tree back into a validated value of ``tp``; errors name type and path."""

def plan_for(tp: Any) -> TypePlan:
    """The marshalling plan for ``tp``: built once per type (thread-safe) and cached."""

__all__ = ["TypePlan", "plan_for"]
