"""Build script: compiles every ext/*.pyx into warpcall._native.<name>.

The compiled core is optional. When no C compiler is available the build
still succeeds and the package runs on its pure-Python twin
(warpcall._pure), which this script says once.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent
NO_EXTENSIONS = os.environ.get("WARPCALL_NO_EXTENSIONS", "") not in ("", "0")


class OptionalBuildExt(build_ext):
    """Build the compiled core, falling back to the pure twin on any compiler failure."""

    warned = False

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler, missing headers, ...
            self._fallback(exc)

    def build_extension(self, ext: Extension) -> None:
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
    modules = [
        Extension(f"warpcall._native.{path.stem}", [str(path.relative_to(HERE))])
        for path in sorted((HERE / "ext").glob("*.pyx"))
        if not only or path.stem in only
    ]
    return cythonize(
        modules,
        language_level=3,
        build_dir="build/cython",
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "embedsignature": True,
        },
        quiet=True,
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
