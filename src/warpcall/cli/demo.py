"""``warpcall demo``: serve an example component in a child process and call it over every channel."""

from __future__ import annotations

import argparse

HELP = "serve an example component in a child process and call it over every channel"
DESCRIPTION = """Serve the demo component in a child process on 127.0.0.1, find it through the embedded
registry and call it over every channel, printing results and median per-call latency.

examples:
  warpcall demo
  warpcall demo --calls 1000
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``warpcall demo``."""
    parser.add_argument("--calls", type=int, default=200, help="calls per latency measurement (default 200)")


def run(options: argparse.Namespace) -> int:
    """Run the demo; the exit status."""
    from warpcall.demo.run import run as run_demo

    return run_demo(calls=max(1, options.calls))
