"""Remote calls of two builds of warpcall, interleaved round by round in one session.

    python benchmarks/before_after.py BEFORE_CHECKOUT AFTER_CHECKOUT [--rounds 15] [--calls 300]

Each checkout must have its own installed ``.venv`` (``pip install -e .`` there). For each one a
worker process (that checkout's interpreter and benchmark server, ``benchmarks/serve.py``) is
started; then, round after round, each worker in turn (the order alternating) makes ``--calls``
sync calls of one case and reports their median. Load on the machine hits both builds alike; the
figure per case is the median of the round medians, and the ratio is after / before.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

WORKER = r'''
import json, sys, time, statistics
sys.path.insert(0, sys.argv[1])
import floors
floors.pin_client()  # WARPCALL_BENCH_PIN=same|split places this process as the benchmarks do
from bench_api import BenchComponent, BenchService
from workload import DATA, PYDANTIC
from warpcall import ChannelAddress, ComponentRegistry, LocalComponentRegistry, ServiceManager, ServiceModule
from warpcall.di import Environment, create, module

@module(imports=[ServiceModule])
class Client:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

process, url = floors.launch("serve.py", "warpcall")
environment = Environment(Client)
registry = environment.get(ComponentRegistry)
addresses = [ChannelAddress(n, url) for n in ("dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest")]
if hasattr(registry, "register_remote"):  # the declaration tables moved into the environment
    registry.register_remote("bench-component", addresses)
else:
    from warpcall.service import Declarations
    registry.register(Declarations.by_type[BenchComponent], addresses)
manager = environment.get(ServiceManager)
payloads = {"hello": "hello world", "data": DATA, "pydantic": PYDANTIC}
proxies = {}
print("READY", flush=True)
for line in sys.stdin:
    channel, payload, calls = line.split()
    proxy = proxies.get(channel) or proxies.setdefault(channel, manager.get_service(BenchService, channel))
    method, arg = getattr(proxy, payload), payloads[payload]
    times = []
    for _ in range(int(calls)):
        started = time.perf_counter_ns()
        method(arg)
        times.append(time.perf_counter_ns() - started)
    print(json.dumps(statistics.median(times)), flush=True)
environment.destroy()
floors.stop(process)
'''

CASES = [(channel, payload) for channel in ("dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest")
         for payload in ("hello", "data", "pydantic")]


class Worker:
    def __init__(self, checkout: Path) -> None:
        python = checkout / ".venv" / "bin" / "python"
        self.process = subprocess.Popen(
            [str(python), "-c", WORKER, str(checkout / "benchmarks")], cwd=checkout / "benchmarks",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.process.stdout is not None and self.process.stdin is not None
        ready = self.process.stdout.readline()
        if not ready.startswith("READY"):
            raise RuntimeError(f"worker for {checkout} did not start: {ready!r}")

    def run(self, channel: str, payload: str, calls: int) -> float:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{channel} {payload} {calls}\n")
        self.process.stdin.flush()
        return float(json.loads(self.process.stdout.readline()))

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    workers = [Worker(args.before.resolve()), Worker(args.after.resolve())]
    try:
        medians: dict[tuple[str, str], list[list[float]]] = {case: [[], []] for case in CASES}
        for round_number in range(args.rounds):
            for case in CASES:
                order = (0, 1) if (round_number + CASES.index(case)) % 2 == 0 else (1, 0)
                for side in order:
                    medians[case][side].append(workers[side].run(*case, args.calls))
        print(f"{'case':32}{'before µs':>12}{'after µs':>12}{'ratio':>8}")
        ratios = []
        for case, (before, after) in medians.items():
            b, a = statistics.median(before) / 1000, statistics.median(after) / 1000
            ratios.append(a / b)
            print(f"{case[0] + ' ' + case[1]:32}{b:12.1f}{a:12.1f}{a / b:8.3f}")
        print(f"median ratio {statistics.median(ratios):.3f}, worst {max(ratios):.3f}")
    finally:
        for worker in workers:
            worker.close()


if __name__ == "__main__":
    sys.exit(main())
