"""``ConfigurationManager``: merges what the configuration sources load and converts values on the way out."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from typing import Any, Callable, Optional, TypeVar, overload

from warpcall.di._decorators import injectable
from warpcall.di._errors import ConfigurationException
from warpcall.di._lifecycle import inject

T = TypeVar("T")

_MISSING = object()
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@overload
def convert(value: Any, target: type[T], key: str, site: str = "") -> T: ...
@overload
def convert(value: Any, target: Any, key: str, site: str = "") -> Any: ...
def convert(value: Any, target: Any, key: str, site: str = "") -> Any:
    """``value`` as ``target`` (a class or a typing form); raises ConfigurationException naming the key (and ``site``) when it does not fit."""
    if target is None or target is Any or value is None:
        return value
    origin = getattr(target, "__origin__", None) or target
    if isinstance(origin, type) and isinstance(value, origin) and not (origin is int and isinstance(value, bool)):
        return value
    try:
        if target is bool:
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError(value)
        if isinstance(value, (dict, list)) or not isinstance(target, type):
            raise TypeError(value)
        if issubclass(target, enum.Enum):
            try:
                return target(value)
            except ValueError:
                return target[str(value)]
        make: Callable[[Any], Any] = target  # a class that is not an enum: its constructor converts
        return make(value)
    except (TypeError, ValueError, KeyError) as exc:
        where = f" (required by {site})" if site else ""
        raise ConfigurationException(
            f"configuration value {key!r} = {value!r} cannot be converted to "
            f"{getattr(target, '__qualname__', target)}{where}; fix the value in its configuration source"
        ) from exc


def _merge(into: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    for key, value in update.items():
        current = into.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            into[key] = _merge(dict(current), value)
        else:
            into[key] = value
    return into


@injectable()
class ConfigurationManager:
    """Merged configuration of all sources (later sources override earlier ones), read by dotted path."""

    def __init__(self) -> None:
        self.sources: list[ConfigurationSource] = []
        #: what each source loaded, in order (warpcall.settings reports unknown keys from it at startup)
        self.loaded: list[tuple[ConfigurationSource, dict[str, Any]]] = []
        self._data: dict[str, Any] = {}

    def _register(self, source: ConfigurationSource) -> None:
        self.sources.append(source)
        self.load_source(source)

    def load_source(self, source: ConfigurationSource) -> None:
        """Merge what ``source`` loads over the current values."""
        loaded = source.load() or {}
        if not isinstance(loaded, dict):
            raise ConfigurationException(
                f"{type(source).__name__}.load() returned {type(loaded).__name__}; a source must return a dict"
            )
        self.loaded.append((source, loaded))
        self._data = _merge(dict(self._data), loaded)

    def _lookup(self, path: str) -> Any:
        current: Any = self._data
        for part in path.split("."):
            if not isinstance(current, dict) or part not in current:
                return _MISSING
            current = current[part]
        return current

    def has(self, path: str) -> bool:
        """True when ``path`` ("a.b.c") names a value or a section."""
        return self._lookup(path) is not _MISSING

    def get_raw(self, path: str, default: Any = None) -> Any:
        """The value at ``path`` as the source gave it, or ``default``."""
        value = self._lookup(path)
        return default if value is _MISSING else value

    @overload
    def get(self, path: str, type: type[T]) -> Optional[T]: ...
    @overload
    def get(self, path: str, type: type[T], default: T) -> T: ...
    def get(self, path: str, type: type[T], default: Optional[T] = None) -> Optional[T]:
        """The value at ``path`` converted to ``type``, or ``default`` (None unless given) when no source defines it."""
        value = self._lookup(path)
        if value is _MISSING:
            return default
        return convert(value, type, path)


class ConfigurationSource(ABC):
    """A source of configuration values; injectable sources register with the manager when created."""

    @inject()
    def set_manager(self, manager: ConfigurationManager) -> None:
        """Register with the environment's manager (called by the container)."""
        manager._register(self)

    @abstractmethod
    def load(self) -> dict[str, Any]:
        """The values of this source as a (nested) dict."""
