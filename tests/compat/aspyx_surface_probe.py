"""Run by aspyx-service's own interpreter: prints aspyx-service 0.11.6's public surface as one JSON line.

Usage: ``python aspyx_surface_probe.py '<request json>'`` where the request is
``{"callables": ["module:qualname", ...], "classes": ["module:qualname", ...]}``.

Output (``SURFACE {...}``):
- ``names``: module -> its public names (``__all__`` where the module has one, else
  the names it defines: objects whose ``__module__`` is that module), for every
  module of the ``aspyx_service`` package and for ``aspyx.di``, ``aspyx.di.aop``,
  ``aspyx.di.configuration``, ``aspyx.reflection``;
- ``callables``: "module:qualname" -> signature of that callable;
- ``classes``: "module:qualname" -> method name -> signature, for ``__init__`` and
  every public method the class has from an aspyx class (its own or inherited).

A signature is a list of parameters ``[name, kind, default]``; the default is
``repr()`` of it, or null when the parameter has none. Annotations are left out.
This file runs under a different interpreter than the tests: standard library only.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import sys
from typing import Any

EXTRA_MODULES = ("aspyx.di", "aspyx.di.aop", "aspyx.di.configuration", "aspyx.reflection")


def public_names(module: Any) -> list[str]:
    declared = getattr(module, "__all__", None)
    if declared is not None:
        return sorted(set(declared))
    return sorted(
        name for name, value in vars(module).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == module.__name__
    )


def signature(func: Any) -> list[list[Any]] | str:
    try:
        found = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        return f"no signature: {exc}"
    return [
        [p.name, p.kind.name, None if p.default is inspect.Parameter.empty else repr(p.default)]
        for p in found.parameters.values()
    ]


def resolve(path: str) -> Any:
    module_name, _, qualname = path.partition(":")
    value: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        value = getattr(value, part)
    return value


def methods(cls: type, package: str = "aspyx") -> dict[str, Any]:
    """``__init__`` and the public methods ``cls`` has from classes of ``package`` (its own or inherited)."""
    found: dict[str, Any] = {}
    for name in sorted(set(dir(cls))):
        if name.startswith("_") and name != "__init__":
            continue
        owner = next((base for base in cls.__mro__ if name in vars(base)), None)
        if owner is None or not owner.__module__.startswith(package):
            continue  # object's, ABC's, pydantic's: not the package's API
        described = member(cls, name)
        if described is not None:
            found[name] = described
    return found


def member(cls: type, name: str) -> dict[str, Any] | None:
    """How method ``name`` of ``cls`` is declared (static, class, async or plain method) and its signature;
    None when ``cls`` has no such method."""
    owner = next((base for base in cls.__mro__ if name in vars(base)), None)
    if owner is None:
        return None
    raw = vars(owner)[name]
    if isinstance(raw, staticmethod):
        kind, func = "staticmethod", raw.__func__
    elif isinstance(raw, classmethod):
        kind, func = "classmethod", raw.__func__
    else:
        kind, func = ("async" if inspect.iscoroutinefunction(raw) else "method"), raw
    if not callable(func) or isinstance(func, type):
        return None
    return {"kind": kind, "signature": signature(func)}


def main() -> None:
    request = json.loads(sys.argv[1])
    import aspyx_service

    modules = ["aspyx_service"]
    modules += sorted(info.name for info in pkgutil.walk_packages(aspyx_service.__path__, "aspyx_service."))
    modules += EXTRA_MODULES
    report = {
        "names": {name: public_names(importlib.import_module(name)) for name in modules},
        "callables": {path: signature(resolve(path)) for path in request["callables"]},
        "classes": {path: methods(resolve(path)) for path in request["classes"]},
    }
    print("SURFACE " + json.dumps(report))


if __name__ == "__main__":
    main()
