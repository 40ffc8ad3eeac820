"""``warpcall serve --reload``: serve in a child process and start it again when a ``.py`` file changes.

For development. The watched files are the ``.py`` files under the served module's top-level package
(for a module outside any package: the ``.py`` files of its directory, not below). Changes are seen
with ``watchfiles`` when it is importable (``uvicorn[standard]`` brings it), else by polling the files'
modification times every ``POLL_INTERVAL`` seconds (``--reload-poll`` forces polling). The
port stays the same across restarts: with ``SO_REUSEPORT`` the reloader holds it with a socket that
never listens, so ``--port 0`` keeps the free port it got.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from warpcall.server.supervisor import DRAIN, HURRY, _describe, reserve_port, reuse_port_supported, say

#: seconds between two scans of the polling fallback
POLL_INTERVAL = 0.5
#: seconds a server told to stop has before it is killed
STOP_TIMEOUT = 30.0


def watched_roots(path: str) -> tuple[list[Path], bool]:
    """The directories to watch for ``path``'s module and whether below them too (a package) or not."""
    module_name = path.partition(":")[0]
    top = module_name.partition(".")[0]
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    spec = importlib.util.find_spec(top)
    if spec is None:
        return [], False
    if spec.submodule_search_locations:
        return [Path(location) for location in spec.submodule_search_locations], True
    if spec.origin:
        return [Path(spec.origin).parent], False
    return [], False


def _python_file(name: str) -> bool:
    return name.endswith(".py")


def _snapshot(roots: Sequence[Path], recursive: bool) -> dict[str, tuple[int, int]]:
    """(modification time, size) of every ``.py`` file under ``roots`` (``__pycache__`` and hidden directories skipped)."""
    found: dict[str, tuple[int, int]] = {}
    for root in roots:
        for directory, subdirectories, files in os.walk(root):
            subdirectories[:] = [
                name for name in subdirectories if recursive and name != "__pycache__" and not name.startswith(".")
            ]
            for name in files:
                if _python_file(name):
                    full = os.path.join(directory, name)
                    try:
                        stat = os.stat(full)
                    except OSError:  # removed between the listing and now
                        continue
                    found[full] = (stat.st_mtime_ns, stat.st_size)
    return found


def _polled_changes(roots: Sequence[Path], recursive: bool, stop: threading.Event) -> Iterator[list[str]]:
    before = _snapshot(roots, recursive)
    while not stop.wait(POLL_INTERVAL):
        now = _snapshot(roots, recursive)
        if now != before:
            changed = sorted(set(now.items()) ^ set(before.items()))
            before = now
            yield sorted({name for name, _ in changed})


def _watched_changes(
    roots: Sequence[Path], recursive: bool, stop: threading.Event, poll: bool = False
) -> Iterator[list[str]]:
    """Changed ``.py`` files, a batch at a time, until ``stop`` is set (``poll``: never watchfiles)."""
    watchfiles: Any = None
    if not poll:
        try:
            import watchfiles
        except ImportError:
            watchfiles = None
    if watchfiles is None:
        yield from _polled_changes(roots, recursive, stop)
        return
    for changes in watchfiles.watch(
        *roots, watch_filter=lambda change, name: _python_file(name), stop_event=stop, recursive=recursive,
        yield_on_timeout=False, rust_timeout=500,
    ):
        yield sorted({name for _, name in changes})


class Reloader:
    """Runs ``warpcall serve MODULE`` in a child process and starts it again on every change of a watched file."""

    def __init__(
        self, path: str, host: str, port: int, child_options: Sequence[str] = (), *, poll: bool = False
    ) -> None:
        self.path, self.host, self.port = path, host, port
        self.poll = poll
        self.child_options = list(child_options)
        self.child: subprocess.Popen[bytes] | None = None
        self._events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._signals = 0
        self._stop = threading.Event()

    def run(self) -> int:
        """Serve and reload until SIGTERM or SIGINT; 0 once the server stopped cleanly."""
        roots, recursive = watched_roots(self.path)
        previous = {signum: signal.signal(signum, self._on_signal) for signum in (signal.SIGTERM, signal.SIGINT)}
        reservation: socket.socket | None = None
        if reuse_port_supported():
            reservation = reserve_port(self.host, self.port)
            self.port = reservation.getsockname()[1]
        elif self.port == 0:  # no way to hold it: pick a free one now and hope it stays free
            with socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET) as probe:
                probe.bind((self.host, 0))
                self.port = probe.getsockname()[1]
        threading.Thread(
            target=self._watch, args=(roots, recursive), name="warpcall-reload-watch", daemon=True
        ).start()
        how = "polling" if self.poll or importlib.util.find_spec("watchfiles") is None else "watchfiles"
        say(f"reloading on changes of the .py files under {', '.join(map(str, roots)) or '(nothing found)'} ({how})")
        try:
            self._start()
            while not self._signals:
                kind, payload = self._events.get()
                if kind == "change":
                    say(f"{', '.join(payload[:3])}{' and more' if len(payload) > 3 else ''} changed: restarting")
                    self._stop_child()
                    if not self._signals:
                        self._start()
                elif kind == "exit" and payload[0] is self.child:
                    say(f"the server exited ({_describe(payload[1])}); it starts again on the next change")
                    self.child = None
            return self._stop_child()
        finally:
            self._stop.set()
            if reservation is not None:
                reservation.close()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1 and self.child is not None and self.child.stdin is not None:
            try:  # a second signal: the server's drain is cut short
                os.write(self.child.stdin.fileno(), HURRY)
            except OSError:
                pass
        self._events.put(("signal", signum))

    def _watch(self, roots: Sequence[Path], recursive: bool) -> None:
        for changed in _watched_changes(roots, recursive, self._stop, self.poll):
            self._events.put(("change", changed))

    def _start(self) -> None:
        command = [
            sys.executable, "-m", "warpcall", "serve", self.path, "--host", self.host, "--port", str(self.port),
            *self.child_options, "--reloaded",
        ]
        child = self.child = subprocess.Popen(command, stdin=subprocess.PIPE)
        threading.Thread(
            target=lambda: self._events.put(("exit", (child, child.wait()))), name="warpcall-reload-child", daemon=True
        ).start()

    def _stop_child(self) -> int:
        """Tell the server to drain and wait for it (killed after ``STOP_TIMEOUT``); 0 when it stopped cleanly."""
        child, self.child = self.child, None
        if child is None:
            return 0
        if child.stdin is not None:
            try:
                child.stdin.write(DRAIN)
                child.stdin.flush()
            except OSError:
                pass
        try:
            code = child.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            say(f"the server (pid {child.pid}) did not stop within {STOP_TIMEOUT:g} s; killing it")
            child.kill()
            code = child.wait(5.0)
        if child.stdin is not None:
            child.stdin.close()
        return 0 if code == 0 else 1
