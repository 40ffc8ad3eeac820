"""Fixtures for the aspyx-service interop tests.

aspyx-service pins dependencies that differ from warpcall's, so it runs in a
virtual environment of its own (``tests/aspyx_venv.py`` builds and caches it,
shared with ``tests/compat``). The aspyx side of every test is a script in ``aspyx_side/`` run
by that venv's python, always with a timeout and always stopped.

Without network the install fails and the interop tests skip, saying why; with
``CI=true`` they fail instead, so CI never silently loses them.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aspyx_venv import ensure_aspyx_python, isolated_env

ASPYX_SIDE = Path(__file__).parent / "aspyx_side"

SERVER_START_TIMEOUT = 30.0
SERVER_STOP_TIMEOUT = 15.0
CLIENT_TIMEOUT = 90.0


@pytest.fixture(scope="session")
def aspyx_python() -> Path:
    """The python of a venv holding aspyx-service (built on first use, then reused across runs)."""
    return ensure_aspyx_python()


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
    """A running ``aspyx_side/server.py`` (or another ``script`` there); ``url`` is its base URL on 127.0.0.1."""

    def __init__(self, python: Path, workdir: Path, script: str = "server.py") -> None:
        self.python = python
        self.workdir = workdir
        self.script = script
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
                    [str(self.python), str(ASPYX_SIDE / self.script), str(port)],
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


@pytest.fixture(scope="module")
def aspyx_protobuf_server(aspyx_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AspyxServer]:
    """An aspyx-service server hosting component ``pbinterop`` over its dispatch-protobuf (``pb_server.py``)."""
    server = AspyxServer(aspyx_python, tmp_path_factory.mktemp("aspyx-pb-server"), script="pb_server.py")
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
def aspyx_client(aspyx_python: Path) -> Callable[..., dict[str, Any]]:
    """Runs ``aspyx_side/client.py`` (or another client ``script`` there) against a URL and returns its
    report: channel -> call -> outcome."""

    def call(url: str, script: str = "client.py") -> dict[str, Any]:
        code, stdout, stderr = run_script(aspyx_python, script, url)
        lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
        if code != 0 or not lines:
            pytest.fail(f"the aspyx client failed (exit {code}):\n{stdout}\n{stderr[-4000:]}")
        report: dict[str, Any] = json.loads(lines[-1][len("RESULT "):])
        return report

    return call

