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
from typing import Any

import pytest

import warpcall

LAYERS = Path(__file__).parent / "layers"
SRC = Path(warpcall.__file__).parent

#: what a process that only calls services must not load (sqlite3 belongs to the embedded registry only)
SERVER_AND_REGISTRIES = ("fastapi", "uvicorn", "starlette", "consul", "requests", "sqlite3")
#: what calling over dispatch-json needs none of, when the messages are dataclasses and nothing awaits:
#: pydantic (no model to marshal), httpx (the channel sends with warpcall's own client) and asyncio
CALL_EXTRAS = ("pydantic", "pydantic_core", "httpx", "asyncio")

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


@pytest.fixture(scope="module")
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


@pytest.fixture(scope="module")
def client_report(echo_server: str) -> dict[str, Any]:
    """What ``tests/layers/echo_client.py`` reports after its call: the reply and the modules it loaded."""
    result = subprocess.run(
        [sys.executable, str(LAYERS / "echo_client.py"), echo_server],
        capture_output=True, text=True, timeout=PROCESS_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["reply"] == "echo: hello"
    return report


def test_a_calling_process_loads_neither_the_server_nor_a_registry_backend(client_report):
    assert [name for name in client_report["heavy"] if name in SERVER_AND_REGISTRIES] == []


def test_a_dispatch_json_call_of_dataclasses_loads_neither_pydantic_nor_httpx_nor_asyncio(client_report):
    assert [name for name in client_report["heavy"] if name in CALL_EXTRAS] == []


def test_a_failed_call_still_raises_service_communication_exception_with_httpx_loaded_by_the_error():
    # a fresh process: the direct path never imported httpx, its connect error does (httpx's ConnectError)
    code = (
        f"import socket, sys; sys.path.insert(0, {str(LAYERS)!r}); import echo_client\n"
        "from warpcall import ServiceCommunicationException\n"
        "probe = socket.socket(); probe.bind(('127.0.0.1', 0)); port = probe.getsockname()[1]; probe.close()\n"
        "try:\n"
        "    echo_client.main(f'http://127.0.0.1:{port}')\n"
        "except ServiceCommunicationException as exc:\n"
        "    print(type(exc.__cause__).__module__, type(exc.__cause__).__name__)\n"
    )
    assert python(code) == "httpx ConnectError"


def test_the_client_reports_every_module_the_layers_forbid():
    # the client checks a list of its own (it runs without the test package): it must cover both tuples here
    code = f"import json, sys; sys.path.insert(0, {str(LAYERS)!r}); import echo_client; print(json.dumps(echo_client.HEAVY))"
    assert sorted(json.loads(python(code))) == sorted(SERVER_AND_REGISTRIES + CALL_EXTRAS)
