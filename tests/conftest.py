"""Shared fixtures: the ``core`` fixture runs a behaviour test once per build of the core's one source.

``core.<module>`` is the compiled build of ``warpcall.core.<module>`` (or ``warpcall.di.weave``)
for the ``native`` parameter, and the same source run as plain Python for ``pure``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import ModuleType

import pytest

import platforms
from warpcall._compiled import PURE_REQUESTED, SOURCES, extension_built, load_variant


def _native_expected() -> bool:
    """The compiled core must import when CI asks for it or when compiled modules sit beside their sources."""
    if os.environ.get("WARPCALL_REQUIRE_NATIVE", "") not in ("", "0"):
        return True
    return any(extension_built(name) for name in SOURCES)


@dataclass(frozen=True)
class CoreImpl:
    """One build of the core; ``core.<module>`` is that build of the module of that short name."""

    tag: str
    native: bool

    def __getattr__(self, name: str) -> ModuleType:
        if name.startswith("__"):
            raise AttributeError(name)
        return load_variant(name, self.native)


NATIVE = CoreImpl("native", native=True)
PURE = CoreImpl("pure", native=False)


# under WARPCALL_PURE=1 the run is about the plain-Python build: the compiled one is not a parameter
_BUILDS = [pytest.param(PURE, id="pure")]
if not PURE_REQUESTED:
    _BUILDS.insert(0, pytest.param(NATIVE, marks=pytest.mark.c_extension, id="native"))


@pytest.fixture(scope="session", params=_BUILDS)
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the platform-specific tests (tests/platforms.py); under WARPCALL_PURE=1 deselect, not skip,
    the tests that need the compiled build."""
    root = config.rootpath
    for item in items:
        try:
            relative = item.path.relative_to(root).as_posix()
        except ValueError:
            continue
        marker = platforms.marker_for(relative)
        if marker is not None:
            item.add_marker(marker)
    if not PURE_REQUESTED:
        return
    compiled_only = [item for item in items if item.get_closest_marker("c_extension")]
    if compiled_only:
        config.hook.pytest_deselected(items=compiled_only)
        items[:] = [item for item in items if not item.get_closest_marker("c_extension")]


@pytest.fixture(scope="session")
def native_expected() -> bool:
    """True when this install must run the compiled core (CI asks for it, or compiled modules are present)."""
    return _native_expected()
