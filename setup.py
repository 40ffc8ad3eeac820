"""Build script: compiles warpcall's hot modules with Cython.

Each hot module is one Python source under src/ whose C types live in an
augmenting ext/warpcall/<pkg>/<mod>.pxd (found through Cython's include path);
a module that needs the C API alone is an ext/warpcall/<pkg>/<mod>.pyx. The
extension lands beside the source and is preferred by Python's import system.

The modules are translated to C and compiled in parallel (one job per CPU, or
WARPCALL_BUILD_JOBS), each step announced on stderr (pip shows it with -v).
A compiled module is kept in a per-user build cache (WARPCALL_BUILD_CACHE,
default ~/.cache/warpcall/build; 0 or off: none) under a fingerprint of
everything that goes into it: its source, every .pxd, the Cython version and
options, the Python ABI, the compiler and its flags. A build that finds its
fingerprint there copies the module instead of translating and compiling it
again, so `pip install .` followed by `pip install -e .` compiles once.

The compiled core is optional. When no C compiler is available the build
still succeeds and the package runs the same sources as plain Python, which
this script says once.
"""

from __future__ import annotations

import hashlib
import os
import runpy
import shutil
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
NO_EXTENSIONS = os.environ.get("WARPCALL_NO_EXTENSIONS", "") not in ("", "0")
# WARPCALL_DEBUG=1 keeps debug info and local symbols in the compiled modules (gdb, perf, valgrind with
# source lines); otherwise they carry neither: -g from Python's own CFLAGS made a wheel's modules 10 MB
# instead of 1.6 MB. Code generation is the same either way (-g never changes the instructions emitted).
DEBUG = os.environ.get("WARPCALL_DEBUG", "") not in ("", "0")
# Cython's options; the generated C lands under build/cython (relative: the sources are named relative to
# this directory, so the C files, and the modules, are the same wherever the tree lies)
BUILD_DIR = "build/cython"
CYTHON_OPTIONS: dict[str, object] = dict(
    language_level=3,
    include_path=[str(HERE / "ext")],
    build_dir=BUILD_DIR,
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
# environment variables that change what the compiler and linker are run with (distutils reads them)
# builds of one module the cache keeps (the most recently made or used)
KEEP_PER_MODULE = 6
EXT_SUFFIX = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
COMPILER_VARIABLES = ("CC", "CXX", "CFLAGS", "CPPFLAGS", "LDFLAGS", "LDSHARED", "ARCHFLAGS", "AR", "ARFLAGS")


_SAY = threading.Lock()


def say(message: str) -> None:
    # one write per line, under a lock: the parallel jobs' lines never run into each other
    with _SAY:
        sys.stderr.write(f"warpcall: {message}\n")
        sys.stderr.flush()


def _count(n: int, noun: str = "module") -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def jobs() -> int:
    """Modules translated and compiled at once: WARPCALL_BUILD_JOBS, else the CPU count."""
    configured = os.environ.get("WARPCALL_BUILD_JOBS", "")
    if configured.strip():
        try:
            return max(1, int(configured))
        except ValueError:
            say(f"WARPCALL_BUILD_JOBS={configured!r} is not a number; using the CPU count")
    return max(1, os.cpu_count() or 1)


def cache_root() -> Path | None:
    """Where compiled modules are kept between builds (None: no cache)."""
    configured = os.environ.get("WARPCALL_BUILD_CACHE", "")
    if configured.strip().lower() in ("0", "off", "false", "no"):
        return None
    if configured.strip():
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "warpcall" / "build"


class OptionalBuildExt(build_ext):
    """Build the compiled core in parallel through the build cache, falling back to the same sources run as
    plain Python on any compiler failure."""

    warned = False
    _lock = threading.Lock()

    def finalize_options(self) -> None:
        super().finalize_options()
        if not self.parallel:  # `-j N` on the command line stands
            self.parallel = jobs()

    def run(self) -> None:
        if not self.extensions:
            return super().run()
        # translation to C stays outside the fallback: an error in a source is the developer's to see
        self._prepare()
        try:
            super().run()
        except Exception as exc:  # no compiler, missing headers, ...
            self._fallback(exc)
        else:
            self._summary()

    # --- the cache and the translation to C -------------------------------------------------------------------

    def _prepare(self) -> None:
        """Fingerprint each module, find it in the cache, and translate the rest to C (in parallel)."""
        self._cache = cache_root()
        self._fingerprints: dict[str, str] = {}
        self._hits: dict[str, Path] = {}
        self._done = 0
        self._started = time.monotonic()
        shared = _shared_fingerprint()
        for ext in self.extensions:
            self._add_flags(ext)
            fingerprint = _fingerprint(ext, shared)
            self._fingerprints[ext.name] = fingerprint
            cached = self._cached(ext, fingerprint)
            if cached is not None:
                self._hits[ext.name] = cached
        missing = [ext for ext in self.extensions if ext.name not in self._hits]
        # the largest first: the parallel compile ends soonest when the long jobs start early
        missing.sort(key=lambda ext: -(HERE / ext.sources[0]).stat().st_size)
        self.extensions = [ext for ext in self.extensions if ext.name in self._hits] + missing
        where = f" ({self._cache})" if self._cache is not None else " (no build cache: WARPCALL_BUILD_CACHE is off)"
        if self._hits:
            say(f"{len(self._hits)} of {len(self.extensions)} modules from the build cache{where}")
        if not missing:
            return
        if self._cache is not None:
            # what is kept under a fingerprint must be compiled with it, not an older object of other flags
            self.force = True
        workers = min(int(self.parallel), len(missing))
        say(f"translating {_count(len(missing))} to C with Cython, {workers} at once ...")
        started = time.monotonic()
        _translate(missing, workers)
        say(f"translated in {time.monotonic() - started:.1f} s; compiling {_count(len(missing))} on {_count(workers, 'core')}"
            + ("" if self._hits else where))

    def _cached(self, ext: Extension, fingerprint: str) -> Path | None:
        if self._cache is None:
            return None
        path = self._cache / f"{ext.name}-{fingerprint}" / Path(self.get_ext_filename(ext.name)).name
        return path if path.is_file() else None

    def _take(self, cached: Path, target: str) -> bool:
        try:
            _replace(cached, target)
            os.utime(cached.parent)  # recently used: the last to go when the cache is pruned
        except FileNotFoundError:
            return False
        return True

    def _store(self, ext: Extension, built: str) -> None:
        """Keep a module just compiled: written aside and renamed, so concurrent builds never see half a file."""
        if self._cache is None:
            return
        entry = self._cache / f"{ext.name}-{self._fingerprints[ext.name]}"
        try:
            _replace(built, entry / Path(built).name)
            # the cache keeps the latest few builds of each module (an edited source adds one each time)
            kept = sorted(self._cache.glob(f"{ext.name}-*"), key=lambda path: path.stat().st_mtime, reverse=True)
            for old in kept[KEEP_PER_MODULE:]:
                shutil.rmtree(old, ignore_errors=True)
        except OSError as exc:  # a read-only or full home: the build itself succeeded
            say(f"could not keep {ext.name} in the build cache ({exc})")

    # --- compiling --------------------------------------------------------------------------------------------

    def _add_flags(self, ext: Extension) -> None:
        # gcc and clang (Linux, macOS, MinGW) only: MSVC writes no debug info unless asked (/Zi)
        if os.name == "nt" and self.compiler in (None, "msvc"):
            return
        if DEBUG:
            ext.extra_compile_args.append("-g")
        else:
            # -g0 comes after Python's CFLAGS, so it wins; -x drops local symbols in GNU ld, lld and
            # Apple's ld alike (the module's exported PyInit_* lives in the dynamic symbol table)
            ext.extra_compile_args.append("-g0")
            ext.extra_link_args.append("-Wl,-x")

    def build_extension(self, ext: Extension) -> None:
        target = self.get_ext_fullpath(ext.name)
        cached = self._hits.get(ext.name)
        started = time.monotonic()
        try:
            if cached is not None and self._take(cached, target):
                how = "from the build cache"
            else:
                if cached is not None:  # gone since it was found (another build pruned it): made here after all
                    with OptionalBuildExt._lock:
                        _translate([ext], 1)
                    self._hits.pop(ext.name, None)
                super().build_extension(ext)
                self._store(ext, target)
                how = f"compiled in {time.monotonic() - started:.1f} s"
        except Exception as exc:
            self._fallback(exc)
            return
        with OptionalBuildExt._lock:
            self._done += 1
            done = self._done
        say(f"[{done}/{len(self.extensions)}] {ext.name} {how}")

    def copy_file(self, infile: Any, outfile: Any, *args: Any, **kwargs: Any) -> Any:
        # a compiled module copied into the source tree (--inplace, editable installs) replaces the old file
        # instead of overwriting it: a running process that has the old one mapped keeps it intact
        if str(outfile).endswith(EXT_SUFFIX) and os.path.isfile(infile) and not self.dry_run:
            _replace(infile, outfile)
            return outfile, True
        return super().copy_file(infile, outfile, *args, **kwargs)

    def _summary(self) -> None:
        if OptionalBuildExt.warned:
            return
        compiled = len(self.extensions) - len(self._hits)
        say(f"{_count(len(self.extensions))} ready in {time.monotonic() - self._started:.1f} s: "
            f"{compiled} compiled, {len(self._hits)} from the build cache")

    def _fallback(self, exc: Exception) -> None:
        with OptionalBuildExt._lock:  # the parallel jobs fail together; the message is said once
            if OptionalBuildExt.warned:
                return
            OptionalBuildExt.warned = True
        with _SAY:
            print(
                f"warpcall: the compiled core could not be built ({exc}); "
                "installing the pure-Python core instead.",
                file=sys.stderr,
            )


def _replace(source: str | Path, target: str | Path) -> None:
    """Copy ``source`` to ``target`` through a temporary file renamed over it (atomic, a new inode)."""
    folder = os.path.dirname(target) or "."
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".partial-")
    try:
        with os.fdopen(handle, "wb") as out, open(source, "rb") as data:
            shutil.copyfileobj(data, out)
        os.chmod(temporary, 0o755)
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise


def _digest(*parts: object) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part if isinstance(part, bytes) else repr(part).encode()
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def _shared_fingerprint() -> str:
    """What every module's build depends on: Cython, its options, every .pxd, Python's ABI, the compiler."""
    import Cython

    pxds = sorted((HERE / "ext").rglob("*.pxd"))
    config = {name: sysconfig.get_config_var(name) for name in (
        "EXT_SUFFIX", "SOABI", "CC", "CFLAGS", "CCSHARED", "LDSHARED", "BLDSHARED", "OPT", "CONFIGURE_CFLAGS",
    )}
    return _digest(
        Cython.__version__,
        {**CYTHON_OPTIONS, "include_path": ["ext"]},  # the tree's own place does not change what is built
        sys.implementation.cache_tag,
        sys.version,
        sysconfig.get_platform(),
        sysconfig.get_paths()["include"],
        sysconfig.get_paths()["platinclude"],
        config,
        {name: os.environ.get(name) for name in COMPILER_VARIABLES},
        *[(str(path.relative_to(HERE)), path.read_bytes()) for path in pxds],
    )


def _fingerprint(ext: Extension, shared: str) -> str:
    """The cache key of one module: what all share, its name, its source and its own flags."""
    source = HERE / ext.sources[0]
    return _digest(shared, ext.name, ext.sources[0], source.read_bytes(), ext.extra_compile_args,
                   ext.extra_link_args, ext.define_macros, ext.include_dirs)[:32]


def _translate(modules: list[Extension], workers: int) -> None:
    """Cython's C for ``modules`` (each Extension's sources become its C file), ``workers`` processes at once."""
    from Cython.Build import cythonize

    # Cython does not see an augmenting .pxd on the include path as a dependency: an edited
    # .pxd must regenerate its module's C file itself
    stale, fresh = [], []
    for ext in modules:
        source = Path(ext.sources[0])
        pxd = HERE / "ext" / Path(*ext.name.split(".")).with_suffix(".pxd")
        generated = HERE / BUILD_DIR / source.with_suffix(".c")
        if pxd.is_file() and generated.is_file() and pxd.stat().st_mtime > generated.stat().st_mtime:
            stale.append(ext)
        else:
            fresh.append(ext)
    translated = []
    for group, force in ((stale, True), (fresh, False)):
        if group:
            translated += cythonize(group, force=force, nthreads=workers if len(group) > 1 else 0, **CYTHON_OPTIONS)
    by_name = {ext.name: ext for ext in translated}
    for ext in modules:
        ext.sources = by_name[ext.name].sources


def extensions() -> list[Extension]:
    if NO_EXTENSIONS:
        print("warpcall: WARPCALL_NO_EXTENSIONS is set; installing the pure-Python core.", file=sys.stderr)
        return []
    try:
        import Cython  # noqa: F401
    except ImportError:
        print("warpcall: Cython is not available; installing the pure-Python core.", file=sys.stderr)
        return []
    only = {name for name in os.environ.get("WARPCALL_BUILD_ONLY", "").split(",") if name}
    # the list lives in the package; run its file alone (the package's dependencies are not installed here)
    listed = runpy.run_path(str(HERE / "src" / "warpcall" / "_compiled.py"))

    modules = []
    for name in listed["SOURCES"] + listed["COMPILED_ONLY"]:
        if only and name.rsplit(".", 1)[1] not in only:
            continue
        relative = Path(*name.split("."))
        pyx = HERE / "ext" / relative.with_suffix(".pyx")
        # a .pyx in ext/ is a module that only the C API serves (pbwire); the rest compile their .py.
        # Translated to C when built (OptionalBuildExt), not here: a module found in the build cache never is
        source = pyx if pyx.is_file() else HERE / "src" / relative.with_suffix(".py")
        modules.append(Extension(name, [str(source.relative_to(HERE))]))
    return modules


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
