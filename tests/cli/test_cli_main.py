# ruff: noqa: F811 - the fixtures imported from cli_support are parameters of the tests
"""The ``warpcall`` command itself: subcommands, ``--version``, ``--help`` with examples that parse, and shell
completion through argcomplete, run for real (the console script asked as a shell asks it, and bash itself)."""

from __future__ import annotations

import importlib
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import PROCESS_TIMEOUT, boot, registry_dir, run_cli, server  # noqa: F401 - fixtures

from warpcall.cli import COMMANDS, EPILOG, build_parser

BIN = Path(sys.executable).parent
CONSOLE_SCRIPT = BIN / "warpcall"
IFS = "\013"  # argcomplete's separator between completions


def examples(text: str) -> list[str]:
    """The command lines of a help text's ``examples:`` block."""
    _, found, block = text.partition("examples:\n")
    assert found, f"no examples block in:\n{text}"
    lines = []
    for line in block.splitlines():
        if not line.startswith("  "):
            break
        lines.append(line.strip())
    return [line for line in lines if line.startswith("warpcall ")]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_subcommand_has_examples_that_parse(name, capsys):
    module = importlib.import_module(COMMANDS[name])
    lines = examples(module.DESCRIPTION)
    assert lines, f"{name}: an empty examples block"
    parser = build_parser()
    for line in lines:
        argv = shlex.split(line)
        assert argv[1] == name, line
        options = parser.parse_args(argv[1:])  # argparse exits on anything it refuses: that fails the test
        assert options.command == name
    # and --help shows them
    result = run_cli(capsys, name, "--help")
    assert result.status == 0 and "examples:" in result.out and lines[0] in result.out


def test_the_top_level_examples_parse():
    parser = build_parser()
    for line in examples(EPILOG):
        if "<" not in line:
            parser.parse_args(shlex.split(line)[1:])


def test_no_command_or_an_unknown_one_is_a_usage_error(capsys):
    result = run_cli(capsys)
    assert result.status == 2 and "required: COMMAND" in result.err
    result = run_cli(capsys, "frobnicate")
    assert result.status == 2 and "invalid choice: 'frobnicate'" in result.err


def test_version_and_python_dash_m():
    from importlib.metadata import version

    for command in ([sys.executable, "-m", "warpcall", "--version"], [str(CONSOLE_SCRIPT), "--version"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=PROCESS_TIMEOUT, stdin=subprocess.DEVNULL)
        assert (done.returncode, done.stdout.strip()) == (0, f"warpcall {version('warpcall')}")
    done = subprocess.run([sys.executable, "-m", "warpcall", "call", "--help"], capture_output=True, text=True,
                          timeout=PROCESS_TIMEOUT, stdin=subprocess.DEVNULL)
    assert done.returncode == 0 and "examples:" in done.stdout and "exit status" in done.stdout.lower()


def complete(line: str, **env: str) -> list[str]:
    """What the console script answers a shell asking to complete ``line`` (the cursor at its end), written to
    an inherited file descriptor, as argcomplete's shell function has it write to fd 8."""
    read_end, write_end = os.pipe()
    environment = {**os.environ, "_ARGCOMPLETE": "1", "_ARGCOMPLETE_SHELL": "bash", "COMP_LINE": line,
                   "COMP_POINT": str(len(line.encode())), "_ARGCOMPLETE_STDOUT_FILENAME": f"/dev/fd/{write_end}",
                   **env}
    try:
        done = subprocess.run([str(CONSOLE_SCRIPT)], env=environment, pass_fds=(write_end,), capture_output=True,
                              text=True, timeout=PROCESS_TIMEOUT, stdin=subprocess.DEVNULL)
    finally:
        os.close(write_end)
    with os.fdopen(read_end) as answer:
        written = answer.read()
    assert done.returncode == 0, done.stderr
    return sorted(word.strip() for word in written.split(IFS) if word.strip())


def test_completion_of_subcommands_and_options():
    assert complete("warpcall ") == sorted(["-h", "--help", "--version", *COMMANDS])
    assert complete("warpcall ca") == ["call"]
    assert complete("warpcall se") == ["serve", "services"]
    assert complete("warpcall call --ti") == ["--timeout"]
    assert complete("warpcall call --channel dispatch-") == ["dispatch-json", "dispatch-msgpack"]
    assert complete("warpcall services --j") == ["--json"]
    assert "--namespace" in complete("warpcall health --")


def test_completion_of_methods_from_the_running_servers(server):
    assert complete("warpcall call shapes:geometry:m") == ["shapes:geometry:mirror"]
    assert complete("warpcall call vault:") == ["vault:vault:ping", "vault:vault:secret"]
    # bash breaks words at ':' (COMP_WORDBREAKS): it is given what follows the last one
    assert complete("warpcall call shapes:geometry:a", _ARGCOMPLETE_COMP_WORDBREAKS=" \t\n\"'><=;|&(:") == ["add"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completes_through_register_python_argcomplete():
    """``eval "$(register-python-argcomplete warpcall)"`` in a real bash, then its completion function."""
    script = r'''
eval "$(register-python-argcomplete warpcall)"
ask() {
    COMP_LINE="$1"; COMP_POINT=${#1}; read -ra COMP_WORDS <<< "$1"
    [[ "$1" == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMPREPLY=()
    _python_argcomplete warpcall "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}"
    echo "${COMPREPLY[*]}"
}
ask "warpcall hea"
ask "warpcall call --chan"
ask "warpcall services --re"
'''
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True, text=True,
                          timeout=PROCESS_TIMEOUT, env=environment, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert [line.strip() for line in done.stdout.splitlines()] == ["health", "--channel", "--registry"]


def test_a_reader_that_went_away_is_no_traceback(server):
    """``warpcall services | head -0``: the output pipe is closed before the command writes."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "warpcall", "services"], stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=PROCESS_TIMEOUT, stdin=subprocess.DEVNULL)
    finally:
        os.close(write_end)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr


def test_building_the_parser_loads_no_http_client():
    """--help, --version and completion build the whole parser: the subcommands import their work only when run."""
    probe = "import sys; from warpcall.cli import build_parser; build_parser(); print(sorted(m for m in ('httpx', 'msgpack', 'sqlite3', 'fastapi') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=PROCESS_TIMEOUT,
                          stdin=subprocess.DEVNULL)
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr
