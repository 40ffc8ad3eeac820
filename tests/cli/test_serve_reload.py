"""``warpcall serve --reload``: an edited file of the served package is served after a restart, on the same port.

The package is written into a temporary directory per test; both ways of seeing changes are run
(watchfiles, and the polling fallback forced with ``--reload-poll``).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from serve_processes import ServeProcess, invoke, registered

from rawhttp import wait_until

APP = '''
from abc import abstractmethod

from fastapi import FastAPI

from warpcall import (AbstractComponent, ChannelAddress, Component, ComponentRegistry, FastAPIServer, Service,
                      ServiceManager, ServiceModule, component, implementation, service)
from warpcall.di import create, module

from reloadme import answer


@service(name="answer")
class AnswerService(Service):
    @abstractmethod
    def get(self) -> str: ...


@component(name="answers", services=[AnswerService])
class AnswerComponent(Component):
    pass


@implementation()
class AnswerImpl(AnswerService):
    def get(self) -> str:
        return answer.ANSWER


@implementation()
class AnswerComponentImpl(AbstractComponent, AnswerComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://127.0.0.1:{port}")]


@module(imports=[ServiceModule])
class AnswerModule:
    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry, grace_period=1.0)
'''


def answer(port: int) -> object:
    try:
        return invoke(port, "answers:answer:get")
    except (OSError, AssertionError):  # between two servers
        return None


@pytest.mark.parametrize("polling", [False, True], ids=["watchfiles", "polling"])
def test_an_edited_file_is_served_after_the_restart(tmp_path: Path, polling: bool) -> None:
    if not polling:
        pytest.importorskip("watchfiles")
    package = tmp_path / "reloadme"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "app.py").write_text(APP)
    (package / "answer.py").write_text('ANSWER = "first"\n')
    args = ["reloadme.app:AnswerModule", "--port", "0", "--reload", *(["--reload-poll"] if polling else [])]
    server = ServeProcess(args, tmp_path / "registry", cwd=tmp_path, env={"PYTHONDONTWRITEBYTECODE": "1"})
    try:
        server.wait_ready()
        port = server.port
        assert answer(port) == "first"
        (package / "answer.py").write_text('ANSWER = "second, edited"\n')
        wait_until(lambda: answer(port) == "second, edited", timeout=30, what="the edited answer served")
        server.wait_ready(count=2)
        assert server.port == port  # the reloader holds the port across restarts
        assert any("answer.py" in line and "restarting" in line for line in server.err), server.output()
        how = "(polling)" if polling else "(watchfiles)"
        assert any(line.startswith("warpcall serve: reloading on changes") and line.endswith(how)
                   for line in server.err), server.output()
        # one edit can be seen as two changes (the file truncated, then written: polling sees two mtimes),
        # so a second restart may be under way: wait for the one registration, bounded
        wait_until(lambda: len(registered(tmp_path / "registry", "answers")) == 1, timeout=15,
                   what="one registration of the reloaded server")

        server.signal(signal.SIGTERM)
        assert server.wait() == 0, server.output()
        assert registered(tmp_path / "registry", "answers") == []
    finally:
        server.kill()


def test_a_file_that_breaks_the_import_waits_for_the_next_change(tmp_path: Path) -> None:
    package = tmp_path / "reloadme"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "app.py").write_text(APP)
    (package / "answer.py").write_text('ANSWER = "first"\n')
    server = ServeProcess(["reloadme.app:AnswerModule", "--port", "0", "--reload", "--reload-poll"],
                          tmp_path / "registry", cwd=tmp_path, env={"PYTHONDONTWRITEBYTECODE": "1"})
    try:
        port = server.wait_ready().port
        (package / "answer.py").write_text("ANSWER = (\n")  # a syntax error: the new server cannot start
        wait_until(lambda: any("starts again on the next change" in line for line in server.err), timeout=30,
                   what="the failed restart reported")
        assert server.process.poll() is None  # the reloader waits
        (package / "answer.py").write_text('ANSWER = "fixed"\n')
        wait_until(lambda: answer(port) == "fixed", timeout=30, what="the fixed answer served")
    finally:
        server.kill()
