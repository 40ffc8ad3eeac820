"""``warpcall profile``: the observability command (implemented in :mod:`warpcall.observe.command`)."""

from __future__ import annotations

import argparse

HELP = "call a service N times per channel with profiling on: a percentile table, and a picture with --out"
DESCRIPTION = """Call a service N times over each chosen channel with profiling on; print per-phase
percentiles and draw a percentile curve and a stacked bar of phases per channel (--out, needs warpcall[plot]).

examples:
  warpcall profile --demo -n 2000
  warpcall profile --serve myapp.server:Module --service myapp.api:Greeter --method hello --args '["x"]' --out p.svg
  warpcall profile --url http://127.0.0.1:8000 --service myapp.api:Greeter --method hello --channel rest
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``warpcall profile``."""
    from warpcall.observe.command import add_arguments as add

    add(parser)


def run(options: argparse.Namespace) -> int:
    """Run the profile; the exit status."""
    from warpcall.observe.command import run as run_profile

    return run_profile(options)
