"""The aspyx-service 0.11.6 virtual environment the interop and compatibility tests run aspyx code in.

aspyx-service pins dependencies that differ from warpcall's (its python-consul2
installs the same top-level ``consul`` package as py-consul and would overwrite it),
so it runs in a virtual environment of its own, created once with ``pip install
aspyx-service==<ASPYX_SERVICE_VERSION>`` and cached at
``~/.cache/warpcall-tests/aspyx-venv-<version>`` (reused while it still imports
aspyx_service). Shared by ``tests/interop`` and ``tests/compat`` (tests/ is on
``sys.path`` through its conftest).

Without network the install fails and the tests using it skip, saying why; with
``CI=true`` they fail instead, so CI never silently loses them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ASPYX_SERVICE_VERSION = "0.11.6"
VENV_DIR = Path.home() / ".cache" / "warpcall-tests" / f"aspyx-venv-{ASPYX_SERVICE_VERSION}"
VENV_TIMEOUT = 120.0
INSTALL_TIMEOUT = 600.0
PROBE_TIMEOUT = 60.0

#: what pip prints when it cannot reach the index (offline, no DNS, proxy refusing)
NETWORK_FAILURES = (
    "(from versions: none)",
    "No matching distribution found",
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "Max retries exceeded",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ProxyError",
    "Connection refused",
)


def venv_python(venv: Path) -> Path:
    """The interpreter of a virtual environment."""
    if os.name == "nt":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def isolated_env() -> dict[str, str]:
    """Environment for the aspyx interpreter: none of our import paths leak into it."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def imports_aspyx(python: Path) -> bool:
    """True when ``python`` imports aspyx_service at the pinned version."""
    if not python.exists():
        return False
    probe = (
        "import importlib.metadata, aspyx_service, sys; "
        f"sys.exit(importlib.metadata.version('aspyx-service') != {ASPYX_SERVICE_VERSION!r})"
    )
    try:
        return subprocess.run(
            [str(python), "-c", probe], env=isolated_env(), capture_output=True, timeout=PROBE_TIMEOUT
        ).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def unavailable(reason: str) -> None:
    """Skip the interop tests, or fail them when CI must run them."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and the aspyx-service venv cannot be built: {reason}")
    pytest.skip(f"aspyx-service interop needs a venv with aspyx-service=={ASPYX_SERVICE_VERSION}: {reason}")


@contextlib.contextmanager
def venv_lock(venv: Path) -> Iterator[None]:
    """Serialize venv creation between concurrent pytest runs (POSIX only; elsewhere runs must not race)."""
    venv.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build_venv(venv: Path) -> None:
    """Create ``venv`` and pip-install aspyx-service into it; when offline, see ``unavailable``."""
    python = venv_python(venv)
    shutil.rmtree(venv, ignore_errors=True)
    try:
        created = subprocess.run(
            [sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, timeout=VENV_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        shutil.rmtree(venv, ignore_errors=True)
        pytest.fail(f"python -m venv {venv} did not finish within {VENV_TIMEOUT:.0f} s")
    if created.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        pytest.fail(f"python -m venv {venv} failed:\n{created.stdout}{created.stderr}")
    command = [
        str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
        "--timeout", "30", "--retries", "2", f"aspyx-service=={ASPYX_SERVICE_VERSION}",
    ]
    try:
        installed = subprocess.run(
            command, env=isolated_env(), capture_output=True, text=True, timeout=INSTALL_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        shutil.rmtree(venv, ignore_errors=True)
        unavailable(f"pip install did not finish within {INSTALL_TIMEOUT:.0f} s (no or slow network?)")
        return
    if installed.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        output = installed.stdout + installed.stderr
        if any(marker in output for marker in NETWORK_FAILURES):
            unavailable(f"pip could not reach the package index: {output.strip().splitlines()[-1]}")
        pytest.fail(f"{' '.join(command)} failed:\n{output[-4000:]}")
    if not imports_aspyx(python):
        shutil.rmtree(venv, ignore_errors=True)
        pytest.fail(f"aspyx-service=={ASPYX_SERVICE_VERSION} was installed into {venv} but does not import")


def ensure_aspyx_python() -> Path:
    """The python of a venv holding aspyx-service (built on first use, then reused across runs);
    skips (fails with ``CI=true``) when it cannot be built for want of network."""
    python = venv_python(VENV_DIR)
    with venv_lock(VENV_DIR):
        if not imports_aspyx(python):
            build_venv(VENV_DIR)
    return python
