"""Requests per second of ``warpcall serve`` with one worker and with N, measured with ``wrk``.

    python benchmarks/workers_wrk.py [--workers 2] [--rounds 5] [--seconds 5] [--connections 64] [--pipeline 1]

Starts ``warpcall serve _workers_app:WorkersBenchModule`` twice on free 127.0.0.1 ports (one worker,
and ``--workers N``), then, round after round, runs ``wrk -t1 -cC -dS`` against each (the order
alternates per round, so drift in the machine's load hits both alike) driving ``POST /invoke`` with a
fixed dispatch-json envelope (``bench:greeter:hello``). Prints each round's req/s, the ratio N/1 and the
median ratio; nothing is asserted (a timed figure depends on the machine: run it on a quiet one).
Beside the rates it prints the CPU time the server's processes and wrk spent per request (from
/proc and the children's rusage): on a loaded machine the rates say little, the CPU per request
still says whether N workers cost more per request than one.
wrk is the Debian package ``wrk``; a C load generator leaves the cores to the server, where a Python
client would take one.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
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
sys.path.insert(0, str(HERE))
from workload import FIELDS  # noqa: E402

MODULE = "_workers_app:WorkersBenchModule"
# --payload: the fixed body wrk sends. hello is the cheapest call there is (the server spends about as much
# CPU per request as wrk does, so on 2 cores the load generator caps the ratio near 1.2); data is the
# aspyx-service workload's dataclass, marshalled both ways, where the server's work dominates.
PAYLOADS = {
    "hello": '{"method":"bench:greeter:hello","args":["wrk"]}',
    "data": json.dumps({"method": "bench:greeter:data", "args": [FIELDS]}, separators=(",", ":")),
}
READY = re.compile(r"ready at (\S+) \(\d+ workers?, pids? ([\d ]+)(?:; supervisor (\d+))?\)")
READY_TIMEOUT = 60.0
LUA = """wrk.method = "POST"
wrk.path = "/invoke"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
"""
# --pipeline N: each write carries N requests (HTTP/1.1 pipelining, as wrk's own pipeline example does), so
# wrk's CPU per request shrinks: on a 2-core machine a load generator taking ~40% of the CPU caps what two
# workers can show. Every request is still answered and counted; the server parses each one on its own.
PIPELINE_LUA = """
init = function(args)
  local requests = {{}}
  for i = 1, {depth} do requests[i] = wrk.format(nil) end
  batch = table.concat(requests)
end
request = function() return batch end
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
        self.pids = [int(pid) for pid in match.group(2).split()] + ([int(match.group(3))] if match.group(3) else [])
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


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes ``pids`` used so far (Linux /proc; 0 elsewhere)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.0


def measure(server: Server, seconds: float, connections: int, script: str) -> tuple[float, float, float]:
    """(req/s, server CPU µs per request, wrk CPU µs per request) of one wrk run."""
    before_server = cpu_seconds(server.pids)
    before_wrk = resource.getrusage(resource.RUSAGE_CHILDREN)
    rate = wrk(server.url, seconds, connections, script)
    after_wrk = resource.getrusage(resource.RUSAGE_CHILDREN)
    requests = rate * seconds
    server_cpu = cpu_seconds(server.pids) - before_server
    wrk_cpu = (after_wrk.ru_utime + after_wrk.ru_stime) - (before_wrk.ru_utime + before_wrk.ru_stime)
    return rate, server_cpu / requests * 1e6, wrk_cpu / requests * 1e6


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
    parser.add_argument("--payload", choices=sorted(PAYLOADS), default="hello", help="the fixed body (default hello)")
    parser.add_argument("--pipeline", type=int, default=1, help="requests per write (HTTP/1.1 pipelining; default 1: none)")
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    print(f"# {shlex.join([sys.executable, *sys.argv])}", flush=True)
    print(f"# wrk -t1 -c{options.connections} -d{options.seconds:g}s, POST /invoke {PAYLOADS[options.payload][:60]}..., "
          f"{options.pipeline} request(s) per write; cpus: {os.cpu_count()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="warpcall-wrk-") as scratch:
        script = os.path.join(scratch, "invoke.lua")
        pipelined = PIPELINE_LUA.format(depth=options.pipeline) if options.pipeline > 1 else ""
        Path(script).write_text(LUA.format(body=PAYLOADS[options.payload]) + pipelined)
        servers: dict[int, Server] = {}
        try:
            for count in (1, options.workers):
                servers[count] = Server(count, os.path.join(scratch, "registry"))
            for server in servers.values():  # warm both up (imports, caches, connections)
                wrk(server.url, options.warmup, options.connections, script)
            ratios = []
            for round_ in range(1, options.rounds + 1):
                order = [1, options.workers] if round_ % 2 else [options.workers, 1]
                runs = {count: measure(servers[count], options.seconds, options.connections, script)
                        for count in order}
                ratio = runs[options.workers][0] / runs[1][0]
                ratios.append(ratio)
                print(f"round {round_}: " + "   ".join(
                    f"{count} worker{'s' if count > 1 else ''} {runs[count][0]:8.0f} req/s "
                    f"(server {runs[count][1]:5.1f} µs CPU/req, wrk {runs[count][2]:4.1f})" for count in (1, options.workers)
                ) + f"   ratio {ratio:.2f}", flush=True)
            print(f"median ratio {options.workers}/1 workers over {options.rounds} rounds: "
                  f"{statistics.median(ratios):.2f}", flush=True)
        finally:
            for server in servers.values():
                server.stop()


if __name__ == "__main__":
    main()
