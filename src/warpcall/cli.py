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
    profile = commands.add_parser(
        "profile",
        help="call a service N times per channel with profiling on: a percentile table, and a picture with --out",
        description="Call a service N times over each chosen channel with profiling on; print per-phase "
        "percentiles and draw a percentile curve and a stacked bar of phases per channel (--out, needs warpcall[plot]).",
    )
    from warpcall.observe.command import add_arguments

    add_arguments(profile)
    options = parser.parse_args(argv)
    if options.command == "demo":
        from warpcall.demo.run import run

        return run(calls=max(1, options.calls))
    if options.command == "profile":
        from warpcall.observe.command import run as run_profile

        return run_profile(options)
    return 2


if __name__ == "__main__":
    sys.exit(main())
