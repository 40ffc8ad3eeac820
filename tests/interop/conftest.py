"""Fixtures for the aspyx-service interop tests.

aspyx-service pins dependencies that differ from warpcall's, so it runs in a
virtual environment of its own, created once with ``pip install
aspyx-service==<ASPYX_SERVICE_VERSION>`` and cached at
``~/.cache/warpcall-tests/aspyx-venv-<version>`` (reused while it still imports
aspyx_service). The aspyx side of every test is a script in ``aspyx_side/`` run
by that venv's python, always with a timeout and always stopped.

Without network the install fails and the interop tests skip, saying why; with
``CI=true`` they fail instead, so CI never silently loses them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ASPYX_SERVICE_VERSION = "0.11.6"
VENV_DIR = Path.home() / ".cache" / "warpcall-tests" / f"aspyx-venv-{ASPYX_SERVICE_VERSION}"
ASPYX_SIDE = Path(__file__).parent / "aspyx_side"

VENV_TIMEOUT = 120.0
INSTALL_TIMEOUT = 600.0
PROBE_TIMEOUT = 60.0
SERVER_START_TIMEOUT = 30.0
SERVER_STOP_TIMEOUT = 15.0
CLIENT_TIMEOUT = 90.0

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


@pytest.fixture(scope="session")
def aspyx_python() -> Path:
    """The python of a venv holding aspyx-service (built on first use, then reused across runs)."""
    python = venv_python(VENV_DIR)
    with venv_lock(VENV_DIR):
        if not imports_aspyx(python):
            build_venv(VENV_DIR)
    return python


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a child for good: close its stdin (its signal to stop), then terminate, then kill."""
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
    for escalate, timeout in ((None, SERVER_STOP_TIMEOUT), (process.terminate, 5.0), (process.kill, 5.0)):
        if escalate is not None:
            escalate()
        try:
            process.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue


def read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


class AspyxServer:
    """A running ``aspyx_side/server.py``; ``url`` is its base URL on 127.0.0.1."""

    def __init__(self, python: Path, workdir: Path) -> None:
        self.python = python
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> None:
        """Start on a free port and wait for READY; a port taken meanwhile by someone else is retried."""
        failures = []
        for attempt in range(3):
            port = free_port()
            out, err = self.workdir / f"server-{attempt}.out", self.workdir / f"server-{attempt}.err"
            with open(out, "wb") as stdout, open(err, "wb") as stderr:
                self.process = subprocess.Popen(
                    [str(self.python), str(ASPYX_SIDE / "server.py"), str(port)],
                    cwd=ASPYX_SIDE, env=isolated_env(), stdin=subprocess.PIPE, stdout=stdout, stderr=stderr,
                )
            if self._wait_ready(out):
                self.url = f"http://127.0.0.1:{port}"
                return
            stop(self.process)
            failures.append(f"port {port}: exit {self.process.returncode}\n{read(out)}\n{read(err)[-3000:]}")
        pytest.fail("the aspyx server did not start:\n" + "\n".join(failures))

    def _wait_ready(self, out: Path) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if "READY" in read(out).splitlines():
                return True
            if self.process.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)


@pytest.fixture(scope="module")
def aspyx_server(aspyx_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AspyxServer]:
    """An aspyx-service server hosting component ``interop`` over dispatch-json and dispatch-msgpack."""
    server = AspyxServer(aspyx_python, tmp_path_factory.mktemp("aspyx-server"))
    try:
        server.start()
        yield server
    finally:
        server.stop()
    assert server.process is not None and server.process.returncode is not None


def run_script(
    python: Path, script: str, *args: str, timeout: float = CLIENT_TIMEOUT
) -> tuple[int, str, str]:
    """Run an ``aspyx_side`` script to completion (killed at ``timeout``): exit code, stdout, stderr."""
    try:
        done = subprocess.run(
            [str(python), str(ASPYX_SIDE / script), *args],
            cwd=ASPYX_SIDE, env=isolated_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        command = " ".join([script, *args])
        pytest.fail(f"{command} did not finish within {timeout:.0f} s; stderr:\n{exc.stderr!r}")
    return done.returncode, done.stdout, done.stderr


@pytest.fixture(scope="session")
def aspyx_client(aspyx_python: Path) -> Callable[[str], dict[str, Any]]:
    """Runs ``aspyx_side/client.py`` against a URL and returns its report: channel -> call -> outcome."""

    def call(url: str) -> dict[str, Any]:
        code, stdout, stderr = run_script(aspyx_python, "client.py", url)
        lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
        if code != 0 or not lines:
            pytest.fail(f"the aspyx client failed (exit {code}):\n{stdout}\n{stderr[-4000:]}")
        report: dict[str, Any] = json.loads(lines[-1][len("RESULT "):])
        return report

    return call

