"""``warpcall services``: not written yet (issue #18)."""

from __future__ import annotations

import argparse
import sys

HELP = "(services: being written)"
DESCRIPTION = HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``warpcall services``."""


def run(options: argparse.Namespace) -> int:
    """Not written yet."""
    print("warpcall services: not available yet", file=sys.stderr)
    return 2
