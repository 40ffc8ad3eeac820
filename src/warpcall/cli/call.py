"""``warpcall call``: not written yet (issue #18)."""

from __future__ import annotations

import argparse
import sys

HELP = "(call: being written)"
DESCRIPTION = HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``warpcall call``."""


def run(options: argparse.Namespace) -> int:
    """Not written yet."""
    print("warpcall call: not available yet", file=sys.stderr)
    return 2
