"""Child processes for the registry resilience tests: started, waited for, always stopped."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path


class Children:
    """Child processes; always stopped (EOF on stdin: deregister and exit; else killed)."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.processes: list[subprocess.Popen[str]] = []

    def start(
        self, script: Path, kind: str, config: dict, ready: str = "READY ", env: dict[str, str] | None = None
    ) -> str:
        """Start ``script kind config``; returns what follows ``ready`` on the line it prints when ready."""
        with open(self.logs / f"child-{len(self.processes)}.log", "w") as log:
            process = subprocess.Popen(
                [sys.executable, str(script), kind, json.dumps(config)],
                env={**os.environ, **(env or {})},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        self.processes.append(process)
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        while True:
            readable, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
            assert readable, f"process {process.pid} did not start within 60 s"
            line = process.stdout.readline()
            assert line, f"process {process.pid} exited with {process.wait(timeout=10)}: {self.log(-1)}"
            if line.startswith(ready):
                return line[len(ready) :].strip()

    def log(self, index: int) -> str:
        return (self.logs / f"child-{index % len(self.processes)}.log").read_text()[-3000:]

    def stop(self) -> None:
        for process in self.processes:
            if process.stdin is not None:
                try:
                    process.stdin.close()
                except BrokenPipeError:
                    pass
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
            if process.stdout is not None:
                process.stdout.close()
