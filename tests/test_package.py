"""The package itself: which core runs, the pure switch, typing marker, twin parity."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

import warpcall
from warpcall import _core


def _run(code: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "WARPCALL_PURE"} | env
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=60, check=True
    )
    return result.stdout.strip()


def test_native_flag_matches_what_was_loaded():
    assert warpcall.NATIVE is _core.NATIVE
    assert _core.NATIVE == all(_core.LOADED.values())
    assert set(_core.LOADED) >= {"selector", "envelope"}


def test_native_core_is_active_when_it_was_built(native_expected):
    if _core.PURE_REQUESTED:
        pytest.skip("WARPCALL_PURE is set for this run")
    if not native_expected:
        pytest.skip("no compiled core in this install")
    assert warpcall.NATIVE, f"compiled core built but not imported: {_core.LOADED}"


def test_pure_switch_forces_the_twins():
    assert _run("import warpcall; print(warpcall.NATIVE)", WARPCALL_PURE="1") == "False"
    modules = _run("from warpcall import _core; print(sorted({m.__name__.rsplit('.', 1)[0] for m in [_core.selector, _core.envelope]}))", WARPCALL_PURE="1")
    assert modules == "['warpcall._pure']"


def test_package_ships_py_typed():
    spec = importlib.util.find_spec("warpcall")
    assert spec is not None and spec.origin is not None
    assert (Path(spec.origin).parent / "py.typed").is_file()


@pytest.mark.c_extension
@pytest.mark.parametrize("name", sorted(_core.LOADED))
def test_twins_expose_the_same_public_names(name, native_expected):
    if not native_expected:
        pytest.skip("no compiled core in this install")
    native = _core.load_variant(name, native=True)
    pure = _core.load_variant(name, native=False)

    def public(module):
        # a twin's public surface is its __all__ when it declares one, else what it defines itself
        declared = getattr(module, "__all__", None)
        if declared is not None:
            return set(declared)
        return {
            n for n, value in vars(module).items()
            if not n.startswith("_") and getattr(value, "__module__", None) == module.__name__
        }

    missing = {n for n in public(pure) if not hasattr(native, n)}
    assert not missing, f"warpcall._native.{name} lacks {sorted(missing)}"


def test_the_inline_protocol_fits_the_installed_uvicorn():
    """With httptools installed (uvicorn[standard]) the server's inline protocol must be usable: a uvicorn
    release that moved what it relies on makes this fail rather than quietly costing every call."""
    pytest.importorskip("httptools")
    from warpcall.server import protocol

    assert protocol.SUPPORTED
