"""Fixtures and helpers of the ``warpcall call`` / ``services`` / ``health`` tests.

Every test gets a registry directory of its own (``WARPCALL_REGISTRY_DIR``), no namespace or registry from
the environment, and servers of ``cliapp`` booted in this process on 127.0.0.1 (port 0), stopped after it.
The command runs in-process through ``main(argv)`` (:func:`run_cli`) for most cases, and as a real
``python -m warpcall`` process (:func:`run_process`) for a few end-to-end ones.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest

from warpcall import ChannelAddress, FastAPIServer
from warpcall.cli import main
from warpcall.registry.embedded import EmbeddedComponentRegistry

HERE = Path(__file__).resolve().parent
#: seconds a child ``warpcall`` process may take (imports on a loaded machine); it is killed past that
PROCESS_TIMEOUT = 60.0


@dataclass
class Result:
    """What a run of the command gave: its exit status and what it printed."""

    status: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def registry_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private embedded registry for this test; nothing from the environment chooses another."""
    directory = tmp_path / "registry"
    directory.mkdir()
    monkeypatch.setenv("WARPCALL_REGISTRY_DIR", str(directory))
    for name in ("WARPCALL_REGISTRY_NAMESPACE", "WARPCALL_REGISTRY", "CLIAPP_EXPOSE", "CLIAPP_JWT", "CLIAPP_HEALTH",
                 "CLIAPP_REGISTRY", "CLIAPP_MIDDLEWARE", "CLIAPP_ASGI"):
        monkeypatch.delenv(name, raising=False)
    return directory


@pytest.fixture
def boot(registry_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FastAPIServer]]:
    """``boot(**env)``: a ``cliapp`` server on 127.0.0.1 with those ``CLIAPP_*`` settings; all stopped afterwards."""
    environments: list[Any] = []

    def start(**env: str) -> FastAPIServer:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        import cliapp

        environment = FastAPIServer.boot(cliapp.Module, host="127.0.0.1", port=0)
        environments.append(environment)
        server: FastAPIServer = environment.get(FastAPIServer)
        return server

    yield start
    for environment in reversed(environments):
        environment.destroy()


@pytest.fixture
def server(boot: Callable[..., FastAPIServer]) -> FastAPIServer:
    """One plain ``cliapp`` server."""
    return boot()


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Result:
    """``warpcall ARGV`` in this process; argparse's own exits (usage errors) count as the status they carry."""
    capsys.readouterr()
    try:
        status = main(list(argv))
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else 1
    captured = capsys.readouterr()
    return Result(status, captured.out, captured.err)


def run_process(*argv: str, env: dict[str, str] | None = None) -> Result:
    """``python -m warpcall ARGV`` as a child process with this process's environment (plus ``env``)."""
    environment = dict(os.environ)
    environment.update(env or {})
    done = subprocess.run(
        [sys.executable, "-m", "warpcall", *argv], capture_output=True, text=True, timeout=PROCESS_TIMEOUT,
        env=environment, stdin=subprocess.DEVNULL, cwd=HERE,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Named:
    """What a registry reads of a component descriptor."""

    def __init__(self, name: str, health: str = "") -> None:
        self.name = name
        self.health = health


@pytest.fixture
def ghost(registry_dir: Path) -> Iterator[Callable[..., str]]:
    """``ghost(component, namespace, channels)``: register an instance whose server is not there (a dead one
    whose row is still live); returns its URL. The rows are withdrawn afterwards."""
    registries: list[EmbeddedComponentRegistry] = []

    def register(component: str = "shapes", namespace: str = "cliapp",
                 channels: tuple[str, ...] = ("dispatch-json",), url: str | None = None) -> str:
        url = url or f"http://127.0.0.1:{closed_port()}"
        registry = EmbeddedComponentRegistry(namespace=namespace)
        registries.append(registry)
        registry.register(_Named(component), [ChannelAddress(channel, url) for channel in channels])
        return url

    yield register
    for registry in registries:
        registry.close()


class Silent:
    """A listening socket on 127.0.0.1 that never answers: connections are queued, never accepted."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def silent() -> Iterator[Silent]:
    server = Silent()
    yield server
    server.close()


SECRET = "a-secret-of-32-bytes-or-more-for-hs256!"


def token(*role_names: str, audience: str = "cliapp", expires_in: float = 300) -> str:
    """A JWT the ``cliapp`` server's factory accepts (with ``CLIAPP_JWT=1``)."""
    claims = {"sub": "ada", "roles": list(role_names), "aud": audience, "exp": int(time.time() + expires_in)}
    return jwt.encode(claims, SECRET, algorithm="HS256")
