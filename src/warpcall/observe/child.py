"""A warpcall server in a child process on 127.0.0.1: what the pytest plugin and ``warpcall profile`` boot.

``python -m warpcall.observe.child pkg.module:ServerModule`` builds ``FastAPIServer.boot(ServerModule,
host="127.0.0.1", port=0)``, prints ``READY <url>`` once serving, and stops (destroying the environment,
so its components deregister) when its standard input closes or it gets SIGTERM. The module is a
warpcall ``@module`` whose environment provides a ``FastAPIServer`` (as any module ``FastAPIServer.boot``
serves). ``pkg.module`` alone names the module holding exactly one ``@module`` class.

``ChildServer`` starts one and waits, bounded, for the ``READY`` line; ``stop()`` sends SIGTERM, waits
(bounded) and kills what is still running.
"""

from __future__ import annotations

import importlib
import inspect
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from typing import Any

from warpcall import ComponentRegistry, LocalComponentRegistry, ServiceModule
from warpcall.di import Environment, create, module

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_MAX_LINES = 10_000  # lines a child may print before its READY line


class ChildServerError(RuntimeError):
    """The child server did not start: bad module path, import error, or no READY line in time."""


def resolve_module(spec: str) -> type:
    """``pkg.module:Name`` -> the class; ``pkg.module`` -> its one ``@module`` class."""
    from warpcall.di._reflection import Decorators

    path, _, name = spec.partition(":")
    if not path:
        raise ChildServerError(f"a server module is given as 'pkg.module:Module' or 'pkg.module', not {spec!r}")
    try:
        imported = importlib.import_module(path)
    except ImportError as exc:
        raise ChildServerError(f"cannot import {path}: {exc}") from exc
    if name:
        try:
            found = getattr(imported, name)
        except AttributeError:
            raise ChildServerError(f"{path} has no attribute {name!r}") from None
        if not inspect.isclass(found):
            raise ChildServerError(f"{spec} is not a class")
        return found
    candidates = [
        value
        for value in vars(imported).values()
        if inspect.isclass(value)
        and value.__module__ == imported.__name__
        and Decorators.has_decorator(value, module)
    ]
    if len(candidates) != 1:
        names = ", ".join(sorted(c.__name__ for c in candidates)) or "none"
        raise ChildServerError(f"{path} must define exactly one @module class (found: {names}); name it as {path}:Module")
    return candidates[0]


def main(argv: list[str] | None = None) -> int:
    """Serve the module named by ``argv[0]`` until stdin closes or SIGTERM arrives."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m warpcall.observe.child pkg.module[:Module]", file=sys.stderr)
        return 2
    from warpcall import FastAPIServer

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        environment = FastAPIServer.boot(resolve_module(args[0]), host="127.0.0.1", port=0)
    except ChildServerError as exc:
        print(f"warpcall child server: {exc}", file=sys.stderr)
        return 2
    try:
        print(f"READY {environment.get(FastAPIServer).url}", flush=True)

        def wait_for_stdin() -> None:
            sys.stdin.read()
            stop.set()

        threading.Thread(target=wait_for_stdin, daemon=True).start()
        stop.wait()
    finally:
        environment.destroy()
    return 0


class ChildServer:
    """One child process serving a warpcall module (or any command printing ``READY <url>``) on 127.0.0.1."""

    def __init__(
        self,
        command: list[str],
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        self.command = command
        self.stop_timeout = stop_timeout
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    @classmethod
    def for_module(cls, spec: str, *, cwd: str | None = None, extra_path: list[str] | None = None) -> ChildServer:
        """A child serving ``spec`` (``pkg.module[:Module]``); ``extra_path`` goes before ``PYTHONPATH``."""
        env = dict(os.environ)
        if extra_path:
            env["PYTHONPATH"] = os.pathsep.join([*extra_path, *filter(None, [env.get("PYTHONPATH", "")])])
        return cls([sys.executable, "-m", "warpcall.observe.child", spec], cwd=cwd, env=env)

    def start(self, timeout: float = READY_TIMEOUT) -> str:
        """Start the process and wait at most ``timeout`` seconds for its ``READY <url>`` line; the URL."""
        process = self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.cwd,
            env=self.env,
        )
        lines: queue.Queue[str] = queue.Queue()
        errors: list[str] = []

        def read_stdout() -> None:
            assert process.stdout is not None
            for _ in range(_MAX_LINES):
                line = process.stdout.readline()
                if not line or line.startswith("READY "):
                    lines.put(line)
                    break
            for _ in iter(process.stdout.readline, ""):  # keep the pipe drained so the child never blocks
                pass

        def read_stderr() -> None:
            assert process.stderr is not None
            for line in iter(process.stderr.readline, ""):
                errors.append(line)
                del errors[:-50]  # the last lines tell why it failed

        threading.Thread(target=read_stdout, daemon=True).start()
        threading.Thread(target=read_stderr, daemon=True).start()
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            line = ""
        if not line.startswith("READY "):
            if line == "":  # stdout closed: the child is exiting; let it finish to tell its code
                try:
                    process.wait(timeout=self.stop_timeout)
                except subprocess.TimeoutExpired:
                    pass
            exited = process.poll()
            self.stop()
            detail = "".join(errors[-20:]).strip()
            why = f"exited with code {exited}" if exited is not None else f"no READY line within {timeout:g} s, stopped"
            raise ChildServerError(
                f"{' '.join(self.command[-1:])} did not serve: {why}"
                + (f":\n{detail}" if detail else "")
            )
        self.url = line.split()[1]
        return self.url

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM and stdin closed, wait at most ``timeout`` s (default: ``stop_timeout``), then SIGKILL; the exit code."""
        timeout = self.stop_timeout if timeout is None else timeout
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        if process.stdin is not None:
            try:
                process.stdin.close()
            except OSError:  # the child is gone: its pipe is broken
                pass
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait(timeout=timeout)

    def __enter__(self) -> ChildServer:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


#: the remote channels every warpcall server serves
CHANNELS = ("dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest")


class RemoteServices:
    """Proxies to one server's services: a ``ServiceManager`` whose registry knows only ``url``.

    ``get(ServiceType, channel)`` registers the service's component at ``url`` on ``channels`` (first
    use) and returns ``ServiceManager.get_service(ServiceType, channel)``. ``close()`` destroys the
    client environment (its connections).
    """

    def __init__(self, url: str, channels: tuple[str, ...] = CHANNELS) -> None:
        from warpcall import ServiceManager

        self.url = url
        self.channels = channels
        self.environment = _client_environment()
        registry = self.environment.get(ComponentRegistry)  # type: ignore[type-abstract]
        assert isinstance(registry, LocalComponentRegistry)
        self.registry = registry
        self.manager = self.environment.get(ServiceManager)
        self._registered: set[str] = set()
        self._lock = threading.Lock()

    def get(self, service_type: type[Any], channel: str = "") -> Any:
        """A proxy of ``service_type`` on ``channel`` ("" lets the manager choose)."""
        from warpcall.registry.contract import ChannelAddress
        from warpcall.service import declaration_of

        declaration = declaration_of(service_type)
        if declaration is None:
            raise TypeError(f"{service_type!r} is not a warpcall @service or @component")
        name = declaration.get_component_descriptor().name
        with self._lock:
            if name not in self._registered:
                self.registry.register_remote(name, [ChannelAddress(c, self.url) for c in self.channels])
                self._registered.add(name)
        return self.manager.get_service(service_type, channel)

    def close(self) -> None:
        """Destroy the client environment."""
        self.environment.destroy()


# packages: this module only, so the environment never picks up an implementation the calling
# process happens to import (a call must go to the server, not to a local instance)
@module(imports=[ServiceModule], packages=[__name__])
class RemoteClientModule:
    """The calling side of ``RemoteServices``: an in-process registry told where the server is."""

    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()


def _client_environment() -> Environment:
    return Environment(RemoteClientModule)


if __name__ == "__main__":
    sys.exit(main())
