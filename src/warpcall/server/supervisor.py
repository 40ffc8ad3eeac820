"""What ``warpcall serve`` runs: one server process, or a supervisor of worker processes sharing a port.

One process (``--workers 1``, the default) boots the module with
:meth:`FastAPIServer.serve_forever <warpcall.server.fastapi_server.FastAPIServer.serve_forever>` and
drains on SIGTERM or SIGINT.

``--workers N`` runs a :class:`Supervisor`: N worker processes (``python -m warpcall serve ...`` with
hidden worker options), each listening on the same port with ``SO_REUSEPORT``, so the kernel spreads
the connections among them. One address is one instance in the registry however many workers serve
it, so the workers register nothing (``register=False``): once they all serve, the supervisor builds
the module's environment itself without serving (``FastAPIServer.boot(start_thread=False)``) and that
environment registers the address, once. A worker that dies or is restarted therefore changes nothing
in the registry; the registration is renewed while at least one worker is up (the supervisor is the
registry's liveness). On SIGTERM or SIGINT the supervisor deregisters first, then tells every worker
to drain (a line on its standard input, not a signal, so a worker that got the signal too, from a
terminal or a process-group kill, does not count it twice), waits for them and exits 0 after a clean
drain. A worker whose standard input closes (the supervisor died) drains and exits on its own.

A worker that exits when it was not told to is started again after a backoff doubling from
``RESTART_DELAY`` up to ``MAX_RESTART_DELAY`` (back to the start once a worker stayed up
``STABLE_AFTER`` seconds).
"""

from __future__ import annotations

import importlib
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import IO, Any

from warpcall.di.configuration import EnvConfigurationSource, YamlConfigurationSource

logger = logging.getLogger("warpcall.server.supervisor")

#: seconds the workers have to boot and serve before the supervisor gives up
STARTUP_TIMEOUT = 60.0
#: first delay before a worker that died is started again, doubled per quick death, capped
RESTART_DELAY = 0.1
MAX_RESTART_DELAY = 5.0
#: a worker up this long has its restart delay start from RESTART_DELAY again
STABLE_AFTER = 10.0
#: seconds the supervisor waits beyond the server's deregister_delay + grace_period for its workers to stop
DRAIN_MARGIN = 5.0
#: what the supervisor writes on a worker's standard input (a worker drains on end of file too)
DRAIN, HURRY = b"drain\n", b"hurry\n"
PREFIX = "warpcall serve:"


class ModulePathError(ValueError):
    """``warpcall serve``'s module path names nothing servable (exit status 2)."""


def say(message: str) -> None:
    """One line of the command's own on standard error, flushed."""
    print(f"{PREFIX} {message}", file=sys.stderr, flush=True)


def load_module(path: str) -> type:
    """The ``@module`` class named by ``package.module:Class`` (``package.module`` alone when it defines one).

    The current directory is importable, as with ``python -m``. Raises :class:`ModulePathError` when the
    module does not exist, has no such attribute or the attribute is not a ``@module`` class; an
    exception raised by the module's own code while it imports propagates as it is.
    """
    from warpcall.di import module as module_decorator
    from warpcall.di._reflection import Decorators

    module_name, colon, attribute = path.partition(":")
    if not module_name or (colon and not attribute) or module_name.startswith(".") or ":" in attribute:
        raise ModulePathError(f"{path!r} is not a module path; write package.module:ModuleClass")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        imported = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            raise ModulePathError(
                f"no module named {missing!r} (from {path!r}); check the spelling, and that it is installed, "
                "on PYTHONPATH or in the current directory"
            ) from None
        raise
    if not colon:
        found = [
            value for value in vars(imported).values()
            if isinstance(value, type) and value.__module__ == module_name
            and Decorators.has_decorator(value, module_decorator)
        ]
        if len(found) != 1:
            names = ", ".join(sorted(f"{module_name}:{cls.__name__}" for cls in found)) or "none"
            raise ModulePathError(
                f"{module_name!r} defines {len(found)} @module classes ({names}); name one: {module_name}:ModuleClass"
            )
        return found[0]
    target: Any = imported
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ModulePathError(f"module {module_name!r} has no attribute {attribute!r} (from {path!r})")
        target = getattr(target, part)
    if not isinstance(target, type) or not Decorators.has_decorator(target, module_decorator):
        raise ModulePathError(f"{path!r} is not a @module class (it is {type(target).__name__} {target!r})")
    return target


class CommandLineFile(YamlConfigurationSource):
    """``warpcall serve --config FILE``: a YAML configuration source (nothing when no file is given)."""

    def __init__(self, file: str | None) -> None:
        super().__init__(file or "")
        self.given = file is not None

    def load(self) -> dict[str, Any]:
        return super().load() if self.given else {}


class CommandLineEnvironment(EnvConfigurationSource):
    """The process environment as ``warpcall serve`` reads it: ``server.grace_period=5`` sets that key."""


def _default_server_module() -> type:
    """A module providing ``FastAPIServer(FastAPI(), ...)`` to an environment that has no server of its own."""
    global _DEFAULT_SERVER
    if _DEFAULT_SERVER is not None:
        return _DEFAULT_SERVER
    from fastapi import FastAPI

    from warpcall.di import Condition, conditional, create
    from warpcall.di import module as module_decorator
    from warpcall.manager import ServiceManager
    from warpcall.registry.contract import ComponentRegistry
    from warpcall.server.fastapi_server import FastAPIServer

    class NoServerProvided(Condition):
        """Holds when the served module's environment creates no ``FastAPIServer`` itself."""

        phase = "classes"

        def apply(self, environment: Any) -> bool:
            return not environment.has_provider(FastAPIServer)

        def explain(self) -> str:
            return "the module creates a FastAPIServer of its own"

    class DefaultServer:
        """``warpcall serve``'s server for a module that creates none: a plain FastAPI app, default options."""

        @create()
        def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
            return FastAPIServer(FastAPI(), manager, registry)

    # the hints as classes: the names are local to this function, not globals the container could resolve
    DefaultServer.create_server.__annotations__ = {
        "manager": ServiceManager, "registry": ComponentRegistry, "return": FastAPIServer,
    }
    # the condition first: a module's own server always wins
    _DEFAULT_SERVER = module_decorator(packages=[])(conditional(NoServerProvided())(DefaultServer))
    return _DEFAULT_SERVER


_DEFAULT_SERVER: type | None = None


def serving_module(module: type, config_file: str | None) -> type:
    """A module importing ``module`` that adds ``warpcall serve``'s configuration sources after the module's own.

    Sources loaded later override earlier ones: the module's own sources, then ``config_file`` (YAML),
    then the process environment. A module that creates no ``FastAPIServer`` is served by a default one
    (``FastAPIServer(FastAPI(), ...)``). The wrapper keeps ``module``'s ``__module__``, so what is derived
    from the booted module (the embedded registry's default namespace) stays what it would be.
    """
    from warpcall.di import create
    from warpcall.di import module as module_decorator

    class Serving:
        @create()
        def create_file_source(self) -> CommandLineFile:
            return CommandLineFile(config_file)

        @create()
        def create_environment_source(self) -> CommandLineEnvironment:
            return CommandLineEnvironment()

    Serving.__module__ = module.__module__
    Serving.__qualname__ = Serving.__name__ = f"{module.__qualname__}[serve]"
    decorated: type = module_decorator(imports=[module, _default_server_module()], packages=[])(Serving)
    return decorated


def reuse_port_supported() -> bool:
    """Whether this platform has ``SO_REUSEPORT`` (Linux, macOS, the BSDs; not Windows)."""
    return hasattr(socket, "SO_REUSEPORT")


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound to (``host``, ``port``) with ``SO_REUSEPORT`` that never listens: it holds the port
    (0: a free one) for the workers, who bind it too, and gets no connection of its own.

    OSError when the port is in use, by anyone: ``SO_REUSEPORT`` alone would let a second ``warpcall
    serve --workers`` of the same user join the first one's port silently, so the port is first bound
    without it.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if port:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed connection's TIME_WAIT is no user
            probe.bind((host, port))
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def ready_line(path: str, url: str, pids: Sequence[int], extra: str = "") -> str:
    """The line ``warpcall serve`` prints once it accepts calls (scripts and tests wait for it)."""
    workers = f"{len(pids)} worker{'s' if len(pids) != 1 else ''}"
    return f"{PREFIX} {path} ready at {url} ({workers}, pid{'s' if len(pids) != 1 else ''} " \
        f"{' '.join(map(str, pids))}{extra})"


def serve_process(
    path: str,
    host: str,
    port: int,
    *,
    config_file: str | None = None,
    register: bool = True,
    reuse_port: bool = False,
    status_fd: int | None = None,
    controlled: bool = False,
) -> int:
    """Serve the module named by ``path`` in this process until SIGTERM or SIGINT, then drain; exit status.

    ``status_fd``: write ``ready <pid> <url>`` there once serving, instead of printing the ready line.
    ``controlled``: this process is a worker (of a supervisor or a reloader): SIGINT is left to the
    parent, and the parent's lines on standard input (``drain``, ``hurry``, end of file) stop it.
    """
    from warpcall.server.fastapi_server import SHUTDOWN_SIGNALS, FastAPIServer

    module = serving_module(load_module(path), config_file)
    servers: list[Any] = []

    def ready(environment: Any) -> None:
        server = environment.get(FastAPIServer)
        servers.append(server)
        if status_fd is not None:
            os.write(status_fd, f"ready {os.getpid()} {server.url}\n".encode())
        else:
            print(ready_line(path, server.url, [os.getpid()]), flush=True)

    signals: tuple[int, ...] = SHUTDOWN_SIGNALS
    if controlled:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's ^C reaches the parent, which tells us
        signals = (signal.SIGTERM,)
        threading.Thread(target=_obey_parent, args=(servers,), name="warpcall-serve-parent", daemon=True).start()
    FastAPIServer.serve_forever(module, host, port, signals=signals, ready=ready, register=register,
                                reuse_port=reuse_port)
    return 0


def _obey_parent(servers: list[Any]) -> None:
    """A worker's reader of its parent's commands: drain on ``drain`` or end of file, hurry on ``hurry``.

    Reads the file descriptor itself: a daemon thread blocked in ``sys.stdin``'s buffered reader would
    hold its lock when the interpreter finalizes.
    """
    told, pending = False, b""
    while True:
        try:
            chunk = os.read(0, 4096)
        except OSError:
            chunk = b""
        pending += chunk
        lines = pending.split(b"\n")
        pending = lines.pop()
        if not chunk:
            lines.append(b"")  # end of file: the parent is gone
        for line in lines:
            draining = bool(servers) and servers[0].draining
            if line + b"\n" == HURRY and servers:
                servers[0].hurry()
            elif (line + b"\n" == DRAIN or not line) and not told and not draining:
                # a signal of its own may have started the drain already: not a second one (that hurries)
                told = True
                os.kill(os.getpid(), signal.SIGTERM)
        if not chunk:
            return


class Worker:
    """One worker process of a :class:`Supervisor`."""

    def __init__(self, slot: int, process: subprocess.Popen[bytes], status: IO[bytes]) -> None:
        self.slot = slot
        self.process = process
        self.status = status
        self.pid = process.pid
        self.started = time.monotonic()
        self.ready = False
        self.url = ""
        self.told = False  # told to drain: its exit is expected

    def tell(self, line: bytes) -> None:
        """Write a command on the worker's standard input (ignored when it is gone)."""
        stdin = self.process.stdin
        if stdin is None:
            return
        try:
            stdin.write(line)
            stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass


class Supervisor:
    """Runs ``workers`` processes serving ``path`` on one port and registers the address once (see the module).

    ``worker_options``: extra ``warpcall serve`` options given to every worker (``--config``, ``--log-level``).
    """

    def __init__(
        self,
        path: str,
        host: str,
        port: int,
        workers: int,
        *,
        config_file: str | None = None,
        worker_options: Sequence[str] = (),
        restart_delay: float = RESTART_DELAY,
        max_restart_delay: float = MAX_RESTART_DELAY,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.path, self.host, self.port, self.count = path, host, port, workers
        self.config_file = config_file
        self.worker_options = list(worker_options)
        self.restart_delay, self.max_restart_delay = restart_delay, max_restart_delay
        self.workers: dict[int, Worker] = {}
        self._events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._signals = 0
        self._quick_deaths: dict[int, int] = {}
        self._restarts: dict[int, float] = {}  # slot -> monotonic time its worker is started again
        self.registrar: Any = None  # the environment that registers the address

    # the registry's liveness: the registration is renewed while a worker serves

    def alive(self) -> bool:
        """True while at least one worker is up and serving."""
        return any(worker.ready and worker.process.poll() is None for worker in list(self.workers.values()))

    def __repr__(self) -> str:
        return f"Supervisor({self.path}, {self.count} workers)"

    # running

    def run(self) -> int:
        """Start the workers, register, serve until SIGTERM or SIGINT, drain; the exit status."""
        module = serving_module(load_module(self.path), self.config_file)  # a bad path fails before any worker
        reservation = reserve_port(self.host, self.port)
        self.port = reservation.getsockname()[1]
        previous = {signum: signal.signal(signum, self._on_signal) for signum in (signal.SIGTERM, signal.SIGINT)}
        try:
            status = self._start_all()
            if status is None and not self._signals:
                status = self._register(module)
            if status is None and not self._signals:
                print(self._ready_line(), flush=True)
                self._supervise()
            return self._drain() if status is None else self._abort(status)
        finally:
            reservation.close()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        self._events.put(("signal", signum))

    def _ready_line(self) -> str:
        workers = sorted(self.workers.values(), key=lambda worker: worker.slot)
        url = workers[0].url if workers else ""
        return ready_line(self.path, url, [worker.pid for worker in workers], f"; supervisor {os.getpid()}")

    def _spawn(self, slot: int) -> Worker:
        read, write = os.pipe()
        command = [
            sys.executable, "-m", "warpcall", "serve", self.path, "--host", self.host, "--port", str(self.port),
            *self.worker_options, "--worker-status-fd", str(write),
        ]
        try:
            process = subprocess.Popen(command, stdin=subprocess.PIPE, pass_fds=(write,))
        finally:
            os.close(write)
        worker = Worker(slot, process, os.fdopen(read, "rb"))
        self.workers[slot] = worker
        threading.Thread(target=self._watch, args=(worker,), name=f"warpcall-worker-{slot}", daemon=True).start()
        return worker

    def _watch(self, worker: Worker) -> None:
        """Report the worker's ready line, then its exit (its status pipe ends when it does)."""
        with worker.status:
            for line in worker.status:
                parts = line.decode(errors="replace").split()
                if len(parts) == 3 and parts[0] == "ready":
                    self._events.put(("ready", (worker, parts[2])))
        self._events.put(("exit", (worker, worker.process.wait())))

    def _start_all(self) -> int | None:
        """Start every worker and wait until each serves; None when they do, else the exit status."""
        for slot in range(1, self.count + 1):
            self._spawn(slot)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not all(worker.ready for worker in self.workers.values()):
            left = deadline - time.monotonic()
            if left <= 0:
                say(f"the workers did not all serve within {STARTUP_TIMEOUT:g} s; stopping")
                return 1
            try:
                kind, payload = self._events.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if kind == "signal":
                return None
            if kind == "ready":
                self._on_ready(*payload)
            elif kind == "exit":
                worker, code = payload
                say(f"worker {worker.slot} (pid {worker.pid}) exited while starting ({_describe(code)}); stopping")
                return 1
        return None

    def _on_ready(self, worker: Worker, url: str) -> None:
        worker.ready, worker.url = True, url
        logger.info("worker %d (pid %d) serves %s", worker.slot, worker.pid, url)

    def _register(self, module: type) -> int | None:
        """Build the module's environment here, without serving: it registers the address, once."""
        from warpcall.manager import ServiceManager
        from warpcall.server.fastapi_server import FastAPIServer

        try:
            self.registrar = FastAPIServer.boot(module, self.host, self.port, start_thread=False)
        except Exception as exc:
            logger.exception("registering the workers' address failed")
            say(f"registering {self.host}:{self.port} failed: {type(exc).__name__}: {exc}")
            return 1
        registry = self.registrar.get(ServiceManager).component_registry
        if registry is not None:
            registry.set_liveness(self)
        return None

    def _supervise(self) -> None:
        """Restart workers that exit until a signal arrives."""
        while not self._signals:
            now = time.monotonic()
            for slot, due in list(self._restarts.items()):
                if due <= now:
                    del self._restarts[slot]
                    worker = self._spawn(slot)
                    say(f"worker {slot} started again (pid {worker.pid})")
            timeout = min([0.5, *(due - now for due in self._restarts.values())])
            try:
                kind, payload = self._events.get(timeout=max(0.01, timeout))
            except queue.Empty:
                continue
            if kind == "ready":
                self._on_ready(*payload)
            elif kind == "exit":
                self._on_exit(*payload)

    def _on_exit(self, worker: Worker, code: int) -> None:
        if self.workers.get(worker.slot) is not worker:
            return
        uptime = time.monotonic() - worker.started
        deaths = 1 if uptime >= STABLE_AFTER else self._quick_deaths.get(worker.slot, 0) + 1
        self._quick_deaths[worker.slot] = deaths
        delay = min(self.max_restart_delay, self.restart_delay * 2 ** (deaths - 1))
        self._restarts[worker.slot] = time.monotonic() + delay
        say(f"worker {worker.slot} (pid {worker.pid}) exited ({_describe(code)}); starting it again in {delay:g} s")

    def _drain(self) -> int:
        """Deregister, tell every worker to drain, wait for them (bounded), unregister; 0 when all stopped cleanly."""
        from warpcall.manager import ServiceManager
        from warpcall.server.fastapi_server import FastAPIServer

        say("draining: deregistering, then stopping the workers")
        bound = DRAIN_MARGIN + 10.0
        if self.registrar is not None:
            self.registrar.get(ServiceManager).deregister()  # first: clients stop choosing this address
            server = self.registrar.get(FastAPIServer)
            bound = server.deregister_delay + server.grace_period + DRAIN_MARGIN
        self._restarts.clear()
        clean = self._stop_workers(bound)
        if self.registrar is not None:
            self.registrar.destroy()
            self.registrar = None
        if clean:
            say("drained; every worker stopped cleanly")
            return 0
        say("stopped; not every worker stopped cleanly (see above)")
        return 1

    def _abort(self, status: int) -> int:
        self._restarts.clear()
        self._stop_workers(DRAIN_MARGIN + 10.0)
        return status

    def _stop_workers(self, bound: float) -> bool:
        """Tell the running workers to drain and wait for each (a further signal hurries them); True when all
        exited with status 0 within ``bound`` seconds."""
        running = {worker.pid: worker for worker in self.workers.values() if worker.process.poll() is None}
        for worker in running.values():
            worker.told = True
            worker.tell(DRAIN)
        clean = all(worker.process.poll() == 0 for worker in self.workers.values() if worker.pid not in running)
        signals = self._signals
        deadline = time.monotonic() + bound
        while running:
            left = deadline - time.monotonic()
            if left <= 0:
                for worker in running.values():
                    say(f"worker {worker.slot} (pid {worker.pid}) did not stop within {bound:g} s; killing it")
                    worker.process.kill()
                    worker.process.wait(5.0)
                return False
            try:
                kind, payload = self._events.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if kind == "signal" and self._signals > signals:
                signals = self._signals
                say("second signal: the workers stop now")
                for worker in running.values():
                    worker.tell(HURRY)
            elif kind == "exit":
                worker, code = payload
                if running.pop(worker.pid, None) is not None and code != 0:
                    say(f"worker {worker.slot} (pid {worker.pid}) stopped with {_describe(code)}")
                    clean = False
        return clean


def _describe(code: int) -> str:
    """An exit status as words: ``status 1`` or ``killed by SIGKILL``."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"status {code}"
