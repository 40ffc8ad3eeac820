"""``warpcall serve``: real processes on 127.0.0.1, each with a private embedded registry.

One process: the ready line, calls, the registration, SIGTERM drains (deregistered, exit 0);
configuration from --config and the environment; bad module paths and options (one line, exit 2).
``--workers``: see test_serve_workers.py; ``--reload``: test_serve_reload.py.
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from serve_processes import ServeProcess, invoke, pid_of, registered


@pytest.fixture
def serve(tmp_path: Path):
    """Start ``warpcall serve`` processes; each is killed (with its session) at the end, whatever happened."""
    started: list[ServeProcess] = []

    def start(*args: str, **options: object) -> ServeProcess:
        process = ServeProcess(list(args), tmp_path / "registry", **options)  # type: ignore[arg-type]
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


def test_serves_until_sigterm_then_deregisters_and_exits_0(serve, tmp_path):
    server = serve("servepids.app:PidModule", "--port", "0").wait_ready()
    assert server.url.startswith("http://127.0.0.1:") and server.port > 0
    assert server.pids == [server.process.pid]  # one process: it serves itself
    assert pid_of(server.port) == server.process.pid
    assert registered(tmp_path / "registry") == [f'[["dispatch-json", "http://127.0.0.1:{server.port}"]]']

    server.signal(signal.SIGTERM)
    assert server.wait() == 0, server.output()
    assert registered(tmp_path / "registry") == []
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()


def test_sigint_drains_too(serve, tmp_path):
    server = serve("servepids.app:PidModule", "--port", "0").wait_ready()
    server.signal(signal.SIGINT)
    assert server.wait() == 0, server.output()
    assert registered(tmp_path / "registry") == []


def test_host_and_fixed_port(serve):
    with socket.socket() as probe:  # a port free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = serve("servepids.app:PidModule", "--host", "127.0.0.1", "--port", str(port)).wait_ready()
    assert server.url == f"http://127.0.0.1:{port}"
    assert pid_of(port) == server.process.pid


def test_a_taken_port_is_a_one_line_error_with_status_1(serve):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        server = serve("servepids.app:PidModule", "--port", str(port))
        assert server.wait() == 1
    assert any(f"127.0.0.1:{port}" in line and "in use" in line for line in server.err), server.output()


def test_configuration_from_file_then_environment(serve, tmp_path):
    config = tmp_path / "serve.yaml"
    config.write_text("app:\n  from_file: file\n  both: file\n")
    server = serve(
        "servepids.app:PidModule", "--port", "0", "--config", str(config), env={"app.both": "environment"}
    ).wait_ready()
    assert invoke(server.port, "pids:pid:setting", ["app.from_file"]) == "file"
    assert invoke(server.port, "pids:pid:setting", ["app.both"]) == "environment"  # the environment wins
    assert invoke(server.port, "pids:pid:setting", ["app.nowhere"]) == ""


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("nosuchpackage.app:PidModule", "no module named 'nosuchpackage'"),
        ("servepids.nosuchmodule:PidModule", "no module named 'servepids.nosuchmodule'"),
        ("servepids.app:NoSuchModule", "has no attribute 'NoSuchModule'"),
        ("servepids.app:PidService", "is not a @module class"),
        ("servepids.app:", "is not a module path"),
        (":PidModule", "is not a module path"),
    ],
)
def test_a_bad_module_path_is_one_line_and_status_2(serve, path, says):
    server = serve(path, "--port", "0")
    assert server.wait() == 2
    assert server.out == []
    assert len(server.err) == 1, server.output()
    assert server.err[0].startswith("warpcall serve: ") and says in server.err[0]


def test_a_module_path_without_class_takes_the_one_module_defined_there(serve):
    server = serve("servepids.app", "--port", "0").wait_ready()
    assert pid_of(server.port) == server.process.pid


@pytest.mark.parametrize(
    "args",
    [["--workers", "0"], ["--workers", "two"], ["--port", "70000"], ["--log-level", "loud"],
     ["--workers", "2", "--reload"], ["--config", "/nonexistent/serve.yaml"]],
)
def test_bad_options_exit_2(serve, args):
    server = serve("servepids.app:PidModule", "--port", "0", *args)
    assert server.wait() == 2
    assert server.out == [] and server.err, server.output()


def test_help_has_examples():
    done = subprocess.run(
        [sys.executable, "-m", "warpcall", "serve", "--help"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0
    assert "examples:" in done.stdout and "--workers N" in done.stdout and "--reload" in done.stdout


def test_workers_are_refused_where_the_platform_has_no_so_reuseport(monkeypatch, capsys):
    from warpcall.cli import serve as serve_command

    monkeypatch.delattr(socket, "SO_REUSEPORT")
    options = argparse.Namespace(
        module="servepids.app:PidModule", host="127.0.0.1", port=0, workers=2, reload=False, log_level="warning",
        config=None, worker_status_fd=None, reloaded=False,
    )
    assert serve_command.run(options) == 2
    err = capsys.readouterr().err
    assert "SO_REUSEPORT" in err and "--workers 2" in err



BARE_APP = '''
from abc import abstractmethod

from warpcall import AbstractComponent, ChannelAddress, Component, Service, ServiceModule, component, implementation, service
from warpcall.di import module


@service(name="plain")
class PlainService(Service):
    @abstractmethod
    def ping(self) -> str: ...


@component(name="bare", services=[PlainService])
class BareComponent(Component):
    pass


@implementation()
class PlainImpl(PlainService):
    def ping(self) -> str:
        return "pong"


@implementation()
class BareComponentImpl(AbstractComponent, BareComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://127.0.0.1:{port}")]


@module(imports=[ServiceModule])
class BareModule:
    """Creates no FastAPIServer: warpcall serve brings a default one."""
'''


def test_a_module_without_a_server_of_its_own_is_served_by_a_default_one(serve, tmp_path):
    package = tmp_path / "barepkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "app.py").write_text(BARE_APP)
    server = serve("barepkg.app:BareModule", "--port", "0", cwd=tmp_path).wait_ready()
    assert invoke(server.port, "bare:plain:ping") == "pong"
    assert registered(tmp_path / "registry", "bare") == [f'[["dispatch-json", "http://127.0.0.1:{server.port}"]]']
    server.signal(signal.SIGTERM)
    assert server.wait() == 0, server.output()
    assert registered(tmp_path / "registry", "bare") == []
