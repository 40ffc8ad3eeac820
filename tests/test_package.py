"""The package itself: which build of the core runs, the pure switch, the typing marker."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

import warpcall
from warpcall import _compiled


def _run(code: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "WARPCALL_PURE"} | env
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=60, check=True
    )
    return result.stdout.strip()


def test_native_flag_says_whether_every_compiled_module_runs_compiled():
    modules = [importlib.import_module(name) for name in _compiled.SOURCES]
    if _compiled.PURE_REQUESTED:
        assert warpcall.NATIVE is False
        assert not any(_compiled.is_compiled(m) for m in modules)
    else:
        assert warpcall.NATIVE == all(_compiled.is_compiled(m) for m in modules)


@pytest.mark.c_extension
def test_native_core_is_active_when_it_was_built(native_expected):
    if _compiled.PURE_REQUESTED:
        pytest.skip("WARPCALL_PURE is set for this run")
    if not native_expected:
        pytest.skip("no compiled core in this install")
    assert warpcall.NATIVE, "compiled core built but not imported"


def test_pure_switch_runs_the_sources(native_expected):
    code = (
        "import warpcall, importlib\n"
        "from warpcall import _compiled\n"
        "files = [importlib.import_module(n).__file__ for n in _compiled.SOURCES]\n"
        "try:\n"
        "    import warpcall.core.pbwire\n"
        "    pbwire = 'importable'\n"
        "except ImportError:\n"
        "    pbwire = 'absent'\n"
        "print(warpcall.NATIVE, all(f.endswith('.py') for f in files), pbwire)\n"
    )
    assert _run(code, WARPCALL_PURE="1") == "False True absent"
    if native_expected:  # and without the switch the same imports load the extensions
        assert _run(code).startswith("True False")


def test_package_ships_py_typed():
    spec = importlib.util.find_spec("warpcall")
    assert spec is not None and spec.origin is not None
    assert (Path(spec.origin).parent / "py.typed").is_file()


@pytest.mark.c_extension
@pytest.mark.parametrize("name", _compiled.SOURCES)
def test_both_builds_expose_the_same_public_names(name, native_expected):
    if not native_expected or _compiled.PURE_REQUESTED:
        pytest.skip("no compiled core in this run")
    compiled = _compiled.load_compiled(name)
    pure = _compiled.load_pure(name)

    def public(module):
        declared = getattr(module, "__all__", None)
        if declared is not None:
            return set(declared)
        # what the module defines itself (classes and functions), not what it imported
        return {
            n for n, value in vars(module).items()
            if not n.startswith("_") and getattr(value, "__module__", None) == module.__name__
        }

    missing = public(pure) - public(compiled)
    assert not missing, f"compiled {name} lacks {sorted(missing)}"


def test_the_inline_protocol_fits_the_installed_uvicorn():
    """With httptools installed (uvicorn[standard]) the server's inline protocol must be usable: a uvicorn
    release that moved what it relies on makes this fail rather than quietly costing every call."""
    pytest.importorskip("httptools")
    from warpcall.server import protocol

    assert protocol.SUPPORTED
