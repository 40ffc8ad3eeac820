"""Choose the compiled core (``warpcall._native``) or its pure twin (``warpcall._pure``) once.

Only the names listed here cross the switch; the rest of the package imports
them from this module and never from ``_native`` or ``_pure`` directly.
``WARPCALL_PURE=1`` forces the twins.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

PURE_REQUESTED = os.environ.get("WARPCALL_PURE", "") not in ("", "0")

#: core module name -> True when the compiled variant was imported
LOADED: dict[str, bool] = {}


def load_variant(name: str, native: bool) -> ModuleType:
    """Import one variant of a core module: ``warpcall._native.<name>`` or ``warpcall._pure.<name>``."""
    package = "warpcall._native" if native else "warpcall._pure"
    return importlib.import_module(f"{package}.{name}")


def _load(name: str) -> ModuleType:
    if not PURE_REQUESTED:
        try:
            module = load_variant(name, native=True)
        except ImportError:
            pass
        else:
            LOADED[name] = True
            return module
    LOADED[name] = False
    return load_variant(name, native=False)


selector = _load("selector")
envelope = _load("envelope")
transport = _load("transport")
proxy = _load("proxy")
weave = _load("weave")
marshal = _load("marshal")
pbwire = _load("pbwire")
invokehead = _load("invokehead")

#: True when every core module runs compiled.
NATIVE = all(LOADED.values())
