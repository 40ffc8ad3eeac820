# PYTHON_ARGCOMPLETE_OK  (argcomplete's marker: global completion, activate-global-python-argcomplete, finds it)
"""The ``warpcall`` command: argparse, with shell completion through argcomplete.

Completion in bash: ``eval "$(register-python-argcomplete warpcall)"`` (zsh: the same after
``autoload -U bashcompinit && bashcompinit``; fish: ``register-python-argcomplete --shell fish warpcall | source``).
Subcommands and options complete, and so does ``warpcall call``'s ``component:service:method``, from the
servers the registry lists.

Each subcommand lives in a module of its own that exposes ``HELP`` (one line), ``DESCRIPTION``
(the ``--help`` text, with examples), ``add_arguments(parser)`` and ``run(options) -> int`` (the exit
status). Subcommand modules import nothing heavy at module level, so ``warpcall --help`` and
``warpcall --version`` stay fast; the work is imported inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

#: subcommand name -> module implementing it (see the module docstring for the protocol)
COMMANDS: dict[str, str] = {
    "serve": "warpcall.cli.serve",
    "call": "warpcall.cli.call",
    "services": "warpcall.cli.services",
    "health": "warpcall.cli.health",
    "demo": "warpcall.cli.demo",
    "profile": "warpcall.cli.profile",
}


EPILOG = """examples:
  warpcall serve myapp.server:Module --port 8000
  warpcall services
  warpcall call shapes:geometry:mirror '{"x": 1, "y": 2}'
  warpcall health shapes
  warpcall <command> --help

shell completion (bash): eval "$(register-python-argcomplete warpcall)"
"""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("warpcall")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The whole ``warpcall`` parser, every subcommand included."""
    parser = argparse.ArgumentParser(
        prog="warpcall",
        description="warpcall command line: serve components, call and inspect services, run the demo, profile calls.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"warpcall {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module: Any = importlib.import_module(module_name)
        sub = commands.add_parser(
            name,
            help=module.HELP,
            description=module.DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``warpcall`` console script and of ``python -m warpcall``."""
    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:  # the shell asks for completions: answered here, then the process exits
        import argcomplete

        argcomplete.autocomplete(parser)
    options = parser.parse_args(argv)
    try:
        return int(options._run(options))
    except BrokenPipeError:  # the reader went away (warpcall services | head): no traceback for that
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's final flush of stdout must not fail again
        os.close(devnull)
        return 1


if __name__ == "__main__":
    sys.exit(main())
