"""Shared by the tests/compat/test_readme_*.py files: each README example is a package of its own here
(an environment manages its module's package, so each example's module sees only its own classes),
imported by a test as a program would run it, and stopped cleanly afterwards."""

from __future__ import annotations

import importlib
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parents[1]
for extra in (TESTS, TESTS / "registry"):  # rawhttp, and the Consul emulator of tests/registry
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import rawhttp  # noqa: E402

#: the Consul emulator's port, for the README's Consul example (set by test_readme_consul)
consul = {"port": 0}


def consul_port() -> int:
    """Where the README's ``Consul(host="localhost", port=8500)`` points instead: the emulator."""
    return consul["port"]


@contextmanager
def running(module_name: str, registry_dir: Path) -> Iterator[ModuleType]:
    """Import a README example module (its module-level code boots it) and destroy its environment after.

    Once per process: importing it again would declare its classes a second time.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WARPCALL_REGISTRY_DIR", str(registry_dir))
        # the examples' servers and clients are separate packages: one application, so one namespace (each
        # package would otherwise be a namespace of its own), as the README says to configure it
        patch.setenv("WARPCALL_REGISTRY_NAMESPACE", "readme-examples")
        module = importlib.import_module(module_name)
        port = port_of(module.environment)
        try:
            yield module
        finally:
            module.environment.destroy()  # idempotent: a test may have stopped it already
            rawhttp.wait_until(
                lambda: not [t for t in threading.enumerate() if t.name == f"warpcall-uvicorn-{port}"],
                what=f"the server on port {port} to stop",
            )


def stop(*modules: ModuleType) -> None:
    """Destroy the examples' environments and wait, bounded, until no server thread is left."""
    for module in modules:
        module.environment.destroy()
    rawhttp.wait_until(lambda: not server_threads(), what="the examples' server threads to stop")


def server_threads() -> list[threading.Thread]:
    """The threads a warpcall server runs (uvicorn, registry heartbeats and watches)."""
    return [t for t in threading.enumerate() if t.name.startswith("warpcall-")]


def port_of(environment: Any) -> int:
    """The port the environment's FastAPIServer listens on."""
    from warpcall import ServiceManager

    port: int = environment.get(ServiceManager).settings.port
    return port


def post_invoke(port: int, method: str, args: list[Any]) -> tuple[int, dict[str, Any]]:
    """A raw ``POST /invoke`` with the dispatch-json envelope; the status and the decoded reply."""
    import json

    body = json.dumps({"method": method, "args": args}).encode()
    with rawhttp.connect(port) as sock:
        sock.sendall(rawhttp.request("/invoke", body))
        status_line, _, content = rawhttp.Reader(sock).response()
    return int(status_line.split()[1]), json.loads(content)


def get(port: int, path: str) -> tuple[int, bytes]:
    """A raw ``GET path``; the status and the body."""
    with rawhttp.connect(port) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n".encode())
        status_line, _, content = rawhttp.Reader(sock).response()
    return int(status_line.split()[1]), content


def refused(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:port any more."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return True
    return False
