"""``warpcall serve`` run as a real process for the tests: its output read as it comes, its end bounded.

Each test gives it a private embedded-registry directory (``WARPCALL_REGISTRY_DIR``) and ``tests/cli`` on
``PYTHONPATH`` (the ``servepids`` application lives there). The process starts in a session of its own,
so :meth:`ServeProcess.kill` ends it and every worker it started, whatever state it is in.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from rawhttp import Reader, connect, request, wait_until
from warpcall.core import envelope

HERE = Path(__file__).resolve().parent
READY = re.compile(r"ready at (\S+) \((\d+) workers?, pids? ([\d ]+)(?:; supervisor (\d+))?\)")
STARTED_AGAIN = re.compile(r"worker \d+ started again \(pid (\d+)\)")
#: seconds a server has to print its ready line (imports and boot on a loaded machine)
READY_TIMEOUT = 60.0


class ServeProcess:
    """``python -m warpcall serve ARGS`` with its standard output and error collected line by line."""

    def __init__(self, args: list[str], registry_dir: Path, *, cwd: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        environment = dict(os.environ)
        environment.update({
            "WARPCALL_REGISTRY_DIR": str(registry_dir),
            "PYTHONPATH": os.pathsep.join([str(HERE), environment.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "PYTHONUNBUFFERED": "1",
        })
        environment.update(env or {})
        self.registry_dir = registry_dir
        self.out: list[str] = []
        self.err: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "warpcall", "serve", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL, cwd=cwd or HERE, env=environment, start_new_session=True, text=True,
        )
        self._readers = [
            threading.Thread(target=self._collect, args=(stream, lines), daemon=True)
            for stream, lines in ((self.process.stdout, self.out), (self.process.stderr, self.err))
        ]
        for reader in self._readers:
            reader.start()
        self.url = ""
        self.port = 0
        self.pids: list[int] = []
        self.supervisor: int | None = None

    @staticmethod
    def _collect(stream: Any, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(["stdout:", *self.out, "stderr:", *self.err])

    def ready_lines(self) -> list[re.Match[str]]:
        return [match for match in map(READY.search, list(self.out)) if match]

    def wait_ready(self, count: int = 1, timeout: float = READY_TIMEOUT) -> ServeProcess:
        """Wait for the ``count``-th ready line; sets url, port, pids, supervisor from it."""
        def ready() -> bool:
            if self.process.poll() is not None and len(self.ready_lines()) < count:
                raise AssertionError(f"warpcall serve exited ({self.process.returncode}) before ready:\n{self.output()}")
            return len(self.ready_lines()) >= count

        wait_until(ready, timeout=timeout, what=f"ready line {count} of warpcall serve")
        match = self.ready_lines()[count - 1]
        self.url = match.group(1)
        self.port = int(self.url.rsplit(":", 1)[1])
        self.pids = [int(pid) for pid in match.group(3).split()]
        assert len(self.pids) == int(match.group(2))
        self.supervisor = int(match.group(4)) if match.group(4) else None
        return self

    def restarted_pids(self) -> list[int]:
        return [int(match.group(1)) for match in map(STARTED_AGAIN.search, list(self.err)) if match]

    def signal(self, signum: int) -> None:
        os.kill(self.process.pid, signum)

    def wait(self, timeout: float = 30.0) -> int:
        code = self.process.wait(timeout)
        for reader in self._readers:
            reader.join(5.0)
        return code

    def kill(self) -> None:
        """End the process and everything in its session (cleanup: whatever state it is in)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for pid in [*self.pids, *self.restarted_pids()]:  # a worker outlives its group only if it left it
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.process.wait(10.0)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def invoke(port: int, method: str, args: list[Any] | None = None) -> Any:
    """One ``POST /invoke`` (dispatch-json envelope) on a new connection; the result (raises on an error envelope)."""
    sock = connect(port)
    try:
        sock.sendall(request("/invoke", envelope.encode_request_json(method, args or [])))
        status, _, body = Reader(sock).response()
    finally:
        sock.close()
    result, error = envelope.decode_response_json(body)
    if error is not None or status != b"HTTP/1.1 200 OK":
        raise AssertionError(f"{method}: {status!r} {error}")
    return result


def pid_of(port: int) -> int:
    answer = invoke(port, "pids:pid:pid")
    assert isinstance(answer, int)
    return answer


def registered(registry_dir: Path, component: str = "pids") -> list[str]:
    """The addresses (as stored) of the live rows of ``component`` in the registry file of ``registry_dir``."""
    path = registry_dir / "registry.sqlite3"
    if not path.exists():
        return []
    db = sqlite3.connect(path, timeout=5.0)
    try:
        rows = db.execute(
            "SELECT addresses FROM instances WHERE component = ? AND heartbeat >= ?", (component, time.time() - 5.0),
        ).fetchall()
    finally:
        db.close()
    return [row[0] for row in rows]


def gone(pid: int) -> bool:
    """True when no process ``pid`` exists any more (reaped by its parent).

    A zombie does not count: a killed process's first thread turns zombie while its other threads may
    still hold its files (its listening socket among them).
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def ended(pid: int) -> bool:
    """True when ``pid`` has ended even if nobody reaped it yet: gone, or a zombie whose every thread ended
    (an orphan's zombie waits for whatever reaps orphans here, which in a container may be nothing)."""
    if gone(pid):
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            zombie = stat.read().rsplit(")", 1)[1].split()[0] == "Z"
        return zombie and len(os.listdir(f"/proc/{pid}/task")) <= 1
    except OSError:
        return gone(pid)
