"""Build script: compiles warpcall's hot modules with Cython.

Each hot module is one Python source under src/ whose C types live in an
augmenting ext/warpcall/<pkg>/<mod>.pxd (found through Cython's include path);
a module that needs the C API alone is an ext/warpcall/<pkg>/<mod>.pyx. The
extension lands beside the source and is preferred by Python's import system.

The compiled core is optional. When no C compiler is available the build
still succeeds and the package runs the same sources as plain Python, which
this script says once.
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent
NO_EXTENSIONS = os.environ.get("WARPCALL_NO_EXTENSIONS", "") not in ("", "0")
# WARPCALL_DEBUG=1 keeps debug info and local symbols in the compiled modules (gdb, perf, valgrind with
# source lines); otherwise they carry neither: -g from Python's own CFLAGS made a wheel's modules 10 MB
# instead of 1.6 MB. Code generation is the same either way (-g never changes the instructions emitted).
DEBUG = os.environ.get("WARPCALL_DEBUG", "") not in ("", "0")


class OptionalBuildExt(build_ext):
    """Build the compiled core, falling back to the same sources run as plain Python on any compiler failure."""

    warned = False

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler, missing headers, ...
            self._fallback(exc)

    def build_extension(self, ext: Extension) -> None:
        # gcc and clang (Linux, macOS, MinGW) only: MSVC writes no debug info unless asked (/Zi)
        if self.compiler.compiler_type != "msvc":
            if DEBUG:
                ext.extra_compile_args.append("-g")
            else:
                # -g0 comes after Python's CFLAGS, so it wins; -x drops local symbols in GNU ld, lld and
                # Apple's ld alike (the module's exported PyInit_* lives in the dynamic symbol table)
                ext.extra_compile_args.append("-g0")
                ext.extra_link_args.append("-Wl,-x")
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._fallback(exc)

    def _fallback(self, exc: Exception) -> None:
        if not OptionalBuildExt.warned:
            OptionalBuildExt.warned = True
            print(
                f"warpcall: the compiled core could not be built ({exc}); "
                "installing the pure-Python core instead.",
                file=sys.stderr,
            )


def extensions() -> list[Extension]:
    if NO_EXTENSIONS:
        print("warpcall: WARPCALL_NO_EXTENSIONS is set; installing the pure-Python core.", file=sys.stderr)
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("warpcall: Cython is not available; installing the pure-Python core.", file=sys.stderr)
        return []
    only = {name for name in os.environ.get("WARPCALL_BUILD_ONLY", "").split(",") if name}
    # the list lives in the package; run its file alone (the package's dependencies are not installed here)
    listed = runpy.run_path(str(HERE / "src" / "warpcall" / "_compiled.py"))

    modules, stale = [], []
    for name in listed["SOURCES"] + listed["COMPILED_ONLY"]:
        if only and name.rsplit(".", 1)[1] not in only:
            continue
        relative = Path(*name.split("."))
        pyx = HERE / "ext" / relative.with_suffix(".pyx")
        # a .pyx in ext/ is a module that only the C API serves (pbwire); the rest compile their .py
        source = pyx if pyx.is_file() else HERE / "src" / relative.with_suffix(".py")
        modules.append(Extension(name, [str(source.relative_to(HERE))]))
        # Cython does not see an augmenting .pxd on the include path as a dependency: an edited
        # .pxd must regenerate its module's C file itself
        pxd = HERE / "ext" / relative.with_suffix(".pxd")
        generated = HERE / "build" / "cython" / source.relative_to(HERE).with_suffix(".c")
        if pxd.is_file() and generated.is_file() and pxd.stat().st_mtime > generated.stat().st_mtime:
            stale.append(modules[-1])
    options = dict(
        language_level=3,
        include_path=[str(HERE / "ext")],
        build_dir="build/cython",
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "embedsignature": True,
            # type hints in the sources are for type checkers; C types come from the .pxd files only,
            # so compiled and plain-Python runs accept the same arguments
            "annotation_typing": False,
        },
        quiet=True,
    )
    fresh = [m for m in modules if m not in stale]
    return (cythonize(stale, force=True, **options) if stale else []) + (cythonize(fresh, **options) if fresh else [])


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
