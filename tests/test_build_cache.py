"""The build cache of compiled modules (setup.py): a second build of the same sources copies the module
instead of translating and compiling it again; the copy imports and works; a changed source is compiled.

Real builds (``python setup.py build_ext --inplace``) of one small module (``WARPCALL_BUILD_ONLY=selector``)
in fresh copies of the source tree, sharing a cache directory of the test's own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")

pytestmark = pytest.mark.c_extension  # a build test: it needs the compiler and runs once, on the compiled run


def _tree(where: Path) -> Path:
    """A fresh copy of what the build reads: setup.py, pyproject.toml, ext/ and the package's sources."""
    where.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, where / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "*.pyd", "*.c", "*.o")
    shutil.copytree(ROOT / "ext", where / "ext", ignore=ignore)
    shutil.copytree(ROOT / "src" / "warpcall", where / "src" / "warpcall", ignore=ignore)
    return where


def _build(tree: Path, cache: Path) -> str:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WARPCALL_")}
    env.update(WARPCALL_BUILD_ONLY="selector", WARPCALL_BUILD_CACHE=str(cache))
    done = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
        cwd=tree, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "could not be built" not in done.stderr, done.stderr
    return done.stderr


def _module(tree: Path) -> Path:
    (built,) = (tree / "src" / "warpcall" / "core").glob("selector*" + SUFFIX)
    return built


def _use(tree: Path, code: str) -> str:
    """Run ``code`` with ``tree``'s package first on the path; it must have loaded the compiled selector."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("WARPCALL_")}
    env["PYTHONPATH"] = str(tree / "src")
    probe = (
        "import warpcall.core.selector as s\n"
        f"assert s.__file__.endswith({SUFFIX!r}), s.__file__\n"
        f"assert s.__file__.startswith({str(tree)!r}), s.__file__\n" + code
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=tree, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    base = tmp_path_factory.mktemp("build-cache")
    cache = base / "cache"
    first, racing = _tree(base / "first"), _tree(base / "racing")
    # two builds of the same sources at once into the empty cache: both compile, both keep the module
    # (each writes aside and renames), and the cache holds one whole file
    with ThreadPoolExecutor(2) as pool:
        outputs = list(pool.map(lambda tree: _build(tree, cache), (first, racing)))
    second = _tree(base / "second")
    output = _build(second, cache)
    return {"cache": cache, "first": first, "racing": racing, "first_out": outputs, "second": second,
            "second_out": output}


def test_first_build_compiles_and_keeps_the_module(builds):
    for output in builds["first_out"]:
        assert "[1/1] warpcall.core.selector compiled in" in output, output
        assert "1 compiled, 0 from the build cache" in output, output
    entries = list(builds["cache"].glob("warpcall.core.selector-*/selector*" + SUFFIX))
    assert len(entries) == 1
    assert not list(builds["cache"].rglob(".partial-*"))  # no half-written file left behind
    # the module of one of the two builds (the last rename wins)
    assert entries[0].read_bytes() in (_module(builds["first"]).read_bytes(), _module(builds["racing"]).read_bytes())


def test_second_build_takes_the_module_from_the_cache(builds):
    output = builds["second_out"]
    assert "[1/1] warpcall.core.selector from the build cache" in output, output
    assert "0 compiled, 1 from the build cache" in output, output
    assert "translating" not in output
    second: Path = builds["second"]
    # neither translated nor compiled here: no C file, no object file under the tree's build directory
    assert not list(second.rglob("*.c")) and not list(second.rglob("*.o"))
    (entry,) = builds["cache"].glob("warpcall.core.selector-*/selector*" + SUFFIX)
    assert _module(second).read_bytes() == entry.read_bytes()


def test_the_cached_module_imports_and_works(builds):
    out = _use(
        builds["second"],
        "sel = s.RoundRobinURLSelector('owner')\n"
        "sel.set_urls(['http://a', 'http://b'])\n"
        "print(sorted(sel.select() for _ in range(4)))\n",
    )
    assert out.strip() == "['http://a', 'http://a', 'http://b', 'http://b']"


def test_a_changed_source_is_compiled_again(builds, tmp_path):
    changed = _tree(tmp_path / "changed")
    source = changed / "src" / "warpcall" / "core" / "selector.py"
    source.write_text(source.read_text() + "\n\ndef _cache_probe() -> int:\n    return 7\n")
    output = _build(changed, builds["cache"])
    assert "[1/1] warpcall.core.selector compiled in" in output, output
    assert "from the build cache" not in output.replace("0 from the build cache", "")
    assert _use(changed, "print(s._cache_probe())\n").strip() == "7"
    assert len(list(builds["cache"].glob("warpcall.core.selector-*"))) == 2  # kept beside the first
