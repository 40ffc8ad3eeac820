"""Shared fixtures: the ``core`` fixture runs a behaviour test once per core (compiled and pure)."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from warpcall._core import load_variant


def _native_expected() -> bool:
    """The compiled core must import when CI asks for it or when compiled modules sit in the package."""
    if os.environ.get("WARPCALL_REQUIRE_NATIVE", "") not in ("", "0"):
        return True
    spec = importlib.util.find_spec("warpcall._native")
    if spec is None or not spec.submodule_search_locations:
        return False
    return any(
        path.suffix in (".so", ".pyd")
        for location in spec.submodule_search_locations
        for path in Path(location).iterdir()
    )


@dataclass(frozen=True)
class CoreImpl:
    """One implementation of the core; ``core.<module>`` is that variant of ``warpcall._core.<module>``."""

    tag: str
    native: bool

    def __getattr__(self, name: str) -> ModuleType:
        if name.startswith("__"):
            raise AttributeError(name)
        return load_variant(name, self.native)


NATIVE = CoreImpl("native", native=True)
PURE = CoreImpl("pure", native=False)


@pytest.fixture(
    scope="session",
    params=[pytest.param(NATIVE, marks=pytest.mark.c_extension, id="native"), pytest.param(PURE, id="pure")],
)
def core(request: pytest.FixtureRequest) -> CoreImpl:
    impl: CoreImpl = request.param
    if impl.native:
        try:
            impl.selector  # noqa: B018 - import probe
        except ImportError as exc:
            if _native_expected():
                pytest.fail(f"the compiled core was built but does not import: {exc}")
            pytest.skip("the compiled core is not built here (pure-Python install)")
    return impl


@pytest.fixture(scope="session")
def native_expected() -> bool:
    """True when this install must run the compiled core (CI asks for it, or compiled modules are present)."""
    return _native_expected()
