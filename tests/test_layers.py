"""The layers: what each kind of process loads, and which package imports which.

Each check runs in a fresh interpreter, so what it reports is what that process
imported by itself. The calling process of the end-to-end test is
``tests/layers/echo_client.py``; its server, ``tests/layers/echo_server.py``, runs
in a child process booted through FastAPIServer.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import warpcall

LAYERS = Path(__file__).parent / "layers"
SRC = Path(warpcall.__file__).parent

#: what a process that only calls services must not load (sqlite3 belongs to the embedded registry only)
SERVER_AND_REGISTRIES = ("fastapi", "uvicorn", "starlette", "consul", "requests", "sqlite3")

PROCESS_TIMEOUT = 60.0


def python(code: str) -> str:
    """Run ``code`` in a fresh interpreter (the environment, WARPCALL_PURE included, is inherited); its stdout."""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=PROCESS_TIMEOUT
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def loaded_after(statement: str, names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` (modules or packages) are in ``sys.modules`` after running ``statement``."""
    code = (
        f"import json, sys\n{statement}\n"
        f"names = {list(names)!r}\n"
        "print(json.dumps([n for n in names if any(m == n or m.startswith(n + '.') for m in sys.modules)]))\n"
    )
    return json.loads(python(code))


def test_import_warpcall_loads_nothing_else():
    heavy = (*SERVER_AND_REGISTRIES, "google.protobuf", "httpx", "pydantic", "msgpack", "asyncio")
    assert loaded_after("import warpcall", heavy) == []
    own = json.loads(python("import json, sys, warpcall\nprint(json.dumps(sorted(m for m in sys.modules "
                            "if m.startswith('warpcall'))))"))
    assert own == ["warpcall", "warpcall._compiled", "warpcall._lazy"]


def test_every_public_name_resolves_and_the_decorators_win_over_their_modules():
    code = (
        "import warpcall, warpcall.service, warpcall.health\n"
        "from warpcall import *\n"
        "missing = [n for n in warpcall.__all__ if not hasattr(warpcall, n)]\n"
        "print(missing, callable(service), callable(health), warpcall.service is service,\n"
        "      set(warpcall.__all__) <= set(dir(warpcall)))\n"
    )
    assert python(code) == "[] True True True True"


def test_the_aspyx_service_readme_imports_resolve():
    # the names the seed README's examples use, with the import lines changed as a port changes them
    code = (
        "from fastapi import FastAPI\n"
        "from warpcall import (AbstractComponent, Body, Channel, ChannelAddress, Component, ComponentRegistry,\n"
        "    ComponentStatus, ConsulComponentRegistry, FastAPIServer, HealthCheckManager, HealthStatus,\n"
        "    HTTPXChannel, LocalComponentRegistry, QueryParam, Server, Service, ServiceManager, ServiceModule,\n"
        "    component, get, health, health_check, health_checks, implementation, inject_service, post, rest,\n"
        "    service)\n"
        "from warpcall.di import Environment, create, injectable, module\n"
        "from warpcall.di.aop import Invocation, advice, around, methods\n"
        "print(Channel.RoundRobinURLSelector.__name__, Channel.FirstURLSelector.__name__, Server.port)\n"
    )
    assert python(code) == "RoundRobinURLSelector FirstURLSelector 0"


def test_the_server_package_never_imports_the_client_channels():
    offenders = []
    for path in sorted((SRC / "server").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            )
            offenders += [f"{path.name}: {n}" for n in names if n == "warpcall.channels" or n.startswith(
                "warpcall.channels.")]
    assert offenders == []
    # and the endpoint loads without FastAPI or any channel
    assert loaded_after("import warpcall.server.dispatch", ("warpcall.channels", "fastapi", "uvicorn")) == []


def test_the_channel_contract_loads_no_registry_backend():
    backends = ("warpcall.registry.consul", "warpcall.registry.etcd", "warpcall.registry.embedded", "consul",
                "requests", "sqlite3", "httpx")
    assert loaded_after("import warpcall.channels.base", backends) == []


def test_the_container_does_not_import_the_rpc_core():
    rpc = ("warpcall.core", "warpcall.channels", "warpcall.server", "warpcall.registry", "warpcall.service",
           "warpcall.manager", "warpcall.wire")
    assert loaded_after("import warpcall.di, warpcall.di.aop, warpcall.di.configuration", rpc) == []


@pytest.fixture
def echo_server() -> Iterator[str]:
    """``tests/layers/echo_server.py`` in a child process; yields its URL, stops it by closing its stdin."""
    process = subprocess.Popen(
        [sys.executable, str(LAYERS / "echo_server.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # the server prints READY once serving, or exits
        assert line.startswith("READY "), f"echo server did not start: {line!r}"
        yield line.split()[1]
        assert process.stdin is not None
        process.stdin.close()
        assert process.wait(timeout=PROCESS_TIMEOUT) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_calling_process_loads_neither_the_server_nor_a_registry_backend(echo_server):
    result = subprocess.run(
        [sys.executable, str(LAYERS / "echo_client.py"), echo_server],
        capture_output=True, text=True, timeout=PROCESS_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["reply"] == "echo: hello"
    assert report["heavy"] == []
