"""Requests per second of ``warpcall serve`` with one worker and with N, measured with ``wrk``.

    python benchmarks/workers_wrk.py [--workers 2] [--rounds 5] [--seconds 5] [--connections 64]

Starts ``warpcall serve _workers_app:WorkersBenchModule`` twice on free 127.0.0.1 ports (one worker,
and ``--workers N``), then, round after round, runs ``wrk -t1 -cC -dS`` against each (the order
alternates per round, so drift in the machine's load hits both alike) driving ``POST /invoke`` with a
fixed dispatch-json envelope (``bench:greeter:hello``). Prints each round's req/s, the ratio N/1 and the
median ratio; nothing is asserted (a timed figure depends on the machine: run it on a quiet one).
wrk is the Debian package ``wrk``; a C load generator leaves the cores to the server, where a Python
client would take one.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODULE = "_workers_app:WorkersBenchModule"
BODY = '{"method":"bench:greeter:hello","args":["wrk"]}'
READY = re.compile(r"ready at (\S+) ")
READY_TIMEOUT = 60.0
LUA = f"""wrk.method = "POST"
wrk.path = "/invoke"
wrk.body = '{BODY}'
wrk.headers["Content-Type"] = "application/json"
"""


class Server:
    """``warpcall serve MODULE --port 0 --workers N`` in a session of its own."""

    def __init__(self, workers: int, registry: str) -> None:
        env = dict(os.environ, WARPCALL_REGISTRY_DIR=registry, PYTHONPATH=str(HERE), PYTHONUNBUFFERED="1")
        self.command = [sys.executable, "-m", "warpcall", "serve", MODULE, "--port", "0", "--workers", str(workers)]
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env,
                                        text=True, start_new_session=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + READY_TIMEOUT
        while not any(READY.search(line) for line in self.lines):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"{shlex.join(self.command)} did not start: {self.lines}")
            time.sleep(0.05)
        match = next(m for m in map(READY.search, self.lines) if m)
        self.url = match.group(1)
        print(f"# {shlex.join(self.command)}: {self.lines[-1]}", flush=True)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def stop(self) -> None:
        """SIGTERM (a drain), then the process group killed if it is still there after 30 s."""
        try:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(10)


def wrk(url: str, seconds: float, connections: int, script: str) -> float:
    """Requests per second wrk measured (one thread) against ``url``/invoke."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", script, f"{url}/invoke"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30)
    match = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", done.stdout)
    if done.returncode != 0 or match is None:
        raise SystemExit(f"wrk failed: {shlex.join(command)}\n{done.stdout}{done.stderr}")
    if errors:
        print(f"#   wrk reported: {errors.group(0)}", flush=True)
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--warmup", type=float, default=2.0)
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    print(f"# {shlex.join([sys.executable, *sys.argv])}", flush=True)
    print(f"# wrk -t1 -c{options.connections} -d{options.seconds:g}s, POST /invoke {BODY}; cpus: {os.cpu_count()}",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="warpcall-wrk-") as scratch:
        script = os.path.join(scratch, "invoke.lua")
        Path(script).write_text(LUA)
        servers: dict[int, Server] = {}
        try:
            for count in (1, options.workers):
                servers[count] = Server(count, os.path.join(scratch, "registry"))
            for server in servers.values():  # warm both up (imports, caches, connections)
                wrk(server.url, options.warmup, options.connections, script)
            ratios = []
            for round_ in range(1, options.rounds + 1):
                order = [1, options.workers] if round_ % 2 else [options.workers, 1]
                rates = {count: wrk(servers[count].url, options.seconds, options.connections, script)
                         for count in order}
                ratio = rates[options.workers] / rates[1]
                ratios.append(ratio)
                print(f"round {round_}: 1 worker {rates[1]:9.0f} req/s   {options.workers} workers "
                      f"{rates[options.workers]:9.0f} req/s   ratio {ratio:.2f}", flush=True)
            print(f"median ratio {options.workers}/1 workers over {options.rounds} rounds: "
                  f"{statistics.median(ratios):.2f}", flush=True)
        finally:
            for server in servers.values():
                server.stop()


if __name__ == "__main__":
    main()
