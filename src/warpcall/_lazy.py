"""Lazy exports for warpcall's packages (PEP 562): a name is imported from its module on first use.

``import warpcall`` then costs almost nothing, and a process loads only what it
touches: a client never imports the server (FastAPI, uvicorn), a registry it does
not use (Consul, etcd, sqlite3), or protobuf before its first protobuf call.
Each package lists its exports in a table and keeps ``TYPE_CHECKING`` imports of
the same names, so type checkers and editors see every name as before.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any


class LazyPackage(ModuleType):
    """A package whose exports win over its submodules of the same name.

    ``warpcall.service`` is the ``@service`` decorator, as in aspyx-service, and also the name of
    the module defining it; the import system binds a submodule to its package's attribute when
    it is first loaded, which would replace the export. ``sys.modules`` still has the module.
    """

    __lazy_exports__: Mapping[str, str] = {}

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, ModuleType) and name in self.__lazy_exports__:
            return  # the submodule shares its name with an export (never a module itself): keep the export
        super().__setattr__(name, value)


def export_lazily(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` (already in ``sys.modules``; a plain module too),
    exporting each name of ``exports`` from the module it maps to (``"module:attribute"`` where that module
    calls it otherwise); a resolved name is stored in the package, so later lookups are plain attribute
    reads."""
    module = sys.modules[package]
    namespace = vars(module)
    module.__class__ = LazyPackage
    module.__lazy_exports__ = exports  # type: ignore[attr-defined]

    def __getattr__(name: str) -> Any:
        source = exports.get(name)
        if source is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        source, _, attribute = source.partition(":")
        value = getattr(importlib.import_module(source), attribute or name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
