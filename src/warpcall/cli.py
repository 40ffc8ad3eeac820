"""The ``warpcall`` command."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``warpcall`` console script."""
    parser = argparse.ArgumentParser(prog="warpcall", description="warpcall command line")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="serve an example component in a child process and call it over every channel")
    demo.add_argument("--calls", type=int, default=200, help="calls per latency measurement (default 200)")
    options = parser.parse_args(argv)
    if options.command == "demo":
        from warpcall.demo.run import run

        return run(calls=max(1, options.calls))
    return 2


if __name__ == "__main__":
    sys.exit(main())
