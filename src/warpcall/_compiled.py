"""Which warpcall modules Cython compiles, and the ``WARPCALL_PURE=1`` switch.

Each hot module is one Python source (``src/warpcall/.../<mod>.py``) that Cython compiles with
the C types of its augmenting ``ext/warpcall/.../<mod>.pxd``. The compiled extension sits beside
the source, and Python's import system prefers it; the same source runs as plain Python where
no extension was built. ``WARPCALL_PURE=1`` installs a finder that loads the sources even when
the extensions are present. ``warpcall.core.pbwire`` has no Python source: where it is absent
the protobuf codec uses protobuf alone.

This module is imported first by ``warpcall/__init__.py`` and imports nothing heavy.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from types import ModuleType

#: modules compiled from their single Python source
SOURCES: tuple[str, ...] = (
    "warpcall.core.selector",
    "warpcall.core.envelope",
    "warpcall.core.transport",
    "warpcall.core.proxy",
    "warpcall.core.marshal",
    "warpcall.core.invokehead",
    "warpcall.di.weave",
)
#: modules that exist only compiled (their fallback lives with their caller)
COMPILED_ONLY: tuple[str, ...] = ("warpcall.core.pbwire",)

PURE_REQUESTED = os.environ.get("WARPCALL_PURE", "") not in ("", "0")


def _source_path(name: str) -> str:
    package, _, leaf = name.rpartition(".")
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations is not None, package
    for location in spec.submodule_search_locations:
        candidate = os.path.join(location, f"{leaf}.py")
        if os.path.isfile(candidate):
            return candidate
    raise ModuleNotFoundError(f"no Python source for {name}", name=name)


class _PureFinder:
    """Loads the compiled modules from their Python sources, never from an extension.

    A meta path finder by its ``find_spec`` alone: subclassing ``importlib.abc.MetaPathFinder``
    would import ``importlib.abc`` (and with it ``importlib.resources``, ``tempfile``...) on every
    ``import warpcall``.
    """

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname in COMPILED_ONLY:
            raise ModuleNotFoundError(f"{fullname} is compiled only and WARPCALL_PURE is set", name=fullname)
        if fullname not in SOURCES:
            return None
        return importlib.util.spec_from_file_location(fullname, _source_path(fullname))


def install_pure_finder() -> None:
    """Make every later import of a compiled module load its Python source (idempotent)."""
    if not any(isinstance(finder, _PureFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PureFinder())


def is_compiled(module: ModuleType) -> bool:
    """True when ``module`` was loaded from a compiled extension."""
    return isinstance(getattr(module, "__loader__", None), importlib.machinery.ExtensionFileLoader)


def extension_built(name: str) -> bool:
    """True when a compiled extension for ``name`` sits beside its source (built, maybe not loaded)."""
    package, _, leaf = name.rpartition(".")
    spec = importlib.util.find_spec(package)
    if spec is None or spec.submodule_search_locations is None:
        return False
    return any(
        os.path.isfile(os.path.join(location, f"{leaf}{suffix}"))
        for location in spec.submodule_search_locations
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
    )


def native() -> bool:
    """True when every compiled module runs compiled in this process (imports them)."""
    return all(is_compiled(importlib.import_module(name)) for name in SOURCES + COMPILED_ONLY) if not PURE_REQUESTED else False


_pure_copies: dict[str, ModuleType] = {}


def load_pure(name: str) -> ModuleType:
    """A plain-Python copy of compiled module ``name``, run from its source beside the compiled one.

    Tests and benchmarks use it to hold both builds of one source in one process; the copy is
    registered as ``<package>._pure_<leaf>`` so it never replaces the module the package uses.
    """
    if PURE_REQUESTED:
        return importlib.import_module(name)
    copy = _pure_copies.get(name)
    if copy is None:
        package, _, leaf = name.rpartition(".")
        alias = f"{package}._pure_{leaf}"
        spec = importlib.util.spec_from_file_location(alias, _source_path(name))
        assert spec is not None and spec.loader is not None
        copy = importlib.util.module_from_spec(spec)
        sys.modules[alias] = copy
        spec.loader.exec_module(copy)
        _pure_copies[name] = copy
    return copy


def load_compiled(name: str) -> ModuleType:
    """The compiled build of ``name``; ImportError when it is not built or ``WARPCALL_PURE`` is set."""
    if PURE_REQUESTED:
        raise ImportError(f"WARPCALL_PURE is set: {name} runs from its Python source")
    module = importlib.import_module(name)
    if not is_compiled(module):
        raise ImportError(f"{name} is not compiled in this install")
    return module


def load_variant(name: str, native: bool) -> ModuleType:
    """One build of a compiled module, by its short name (``"marshal"``) or dotted name."""
    full = name if "." in name else next(n for n in SOURCES + COMPILED_ONLY if n.rsplit(".", 1)[1] == name)
    return load_compiled(full) if native else load_pure(full)
