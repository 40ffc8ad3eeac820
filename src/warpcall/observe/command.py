"""``warpcall profile``: call a running service N times per channel with profiling on; a table and a picture.

The target is a running server (``--url``), or one this command boots in a child process on 127.0.0.1:
``--serve pkg.module:ServerModule`` (any module ``FastAPIServer.boot`` serves) or ``--demo`` (the demo
component of ``warpcall demo``, whose ``greeter`` service's ``hello`` is the default call). The call is
``--service pkg.module:ServiceClass --method name --args JSON``: a JSON list of positional arguments or
an object of keyword arguments (the current directory is importable, as with ``python -m``), each converted to the parameter's declared type (pydantic), so a
dataclass argument is written as a JSON object.

Per channel: ``--warmup`` calls (not counted: connections, first-call caches), then ``-n`` calls inside
``warpcall.profile()``. The table (percentiles of the total and of every phase) goes to the terminal;
``--out report.svg`` (or ``.png``) draws the picture (needs ``pip install 'warpcall[plot]'``),
``--json report.json`` writes the summary for tools. A channel whose client does not record phases
gets its totals measured around the call by this command (the table says so).

Exit status: 0; 1 when a call failed; 2 for bad arguments or a server that did not start; 3 when
``--out`` was asked and matplotlib is missing (the table is printed first).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import os
import sys
import time
import typing
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from warpcall.observe.profile import profile
from warpcall.observe.records import CallRecord

#: the remote channels (warpcall.observe.child.CHANNELS, repeated so that parsing imports nothing heavy)
CHANNELS = ("dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest")

DEMO_SERVICE = "warpcall.demo.example:GreeterService"
DEMO_COMMAND = [sys.executable, "-c", "from warpcall.demo.server import main; main()"]
MAX_CALLS = 1_000_000


class UsageError(Exception):
    """A bad argument: the message says which and why."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``warpcall profile``."""
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="a running warpcall server, e.g. http://127.0.0.1:8000")
    target.add_argument("--serve", metavar="MODULE", help="boot pkg.module[:ServerModule] in a child process on 127.0.0.1")
    target.add_argument("--demo", action="store_true", help="boot the demo component in a child process and call it")
    parser.add_argument("--service", help=f"pkg.module:ServiceClass (default with --demo: {DEMO_SERVICE})")
    parser.add_argument("--method", help="the method to call (default with --demo: hello)")
    parser.add_argument("--args", default=None, help='JSON: a list of positional arguments or an object of keyword ones (default [])')
    parser.add_argument(
        "--channel", action="append", choices=CHANNELS, help="a channel to profile; repeat for several (default: all four)"
    )
    parser.add_argument("-n", "--calls", type=int, default=500, help="profiled calls per channel (default 500)")
    parser.add_argument("--warmup", type=int, default=20, help="calls per channel before profiling (default 20)")
    parser.add_argument("--out", help="write the picture: .svg or .png (needs warpcall[plot], i.e. matplotlib)")
    parser.add_argument("--json", dest="json_out", help="write the summary as JSON (nanoseconds)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a child server may take to start (default 30)")


def _import(spec: str) -> Any:
    path, _, name = spec.partition(":")
    if not path or not name:
        raise UsageError(f"--service takes pkg.module:ServiceClass, not {spec!r}")
    try:
        return getattr(importlib.import_module(path), name)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"cannot import {spec}: {exc}") from exc


def prepare_arguments(function: Callable[..., Any], raw: str | None) -> tuple[list[Any], dict[str, Any]]:
    """``--args`` JSON -> positional and keyword arguments converted to the declared parameter types."""
    from pydantic import TypeAdapter, ValidationError

    try:
        value = json.loads(raw) if raw else []
    except json.JSONDecodeError as exc:
        raise UsageError(f"--args is not JSON: {exc}") from exc
    if not isinstance(value, (list, dict)):
        raise UsageError("--args is a JSON list (positional arguments) or object (keyword arguments)")
    signature = inspect.signature(function)
    parameters = [p for p in signature.parameters.values() if p.name != "self"]
    hints = typing.get_type_hints(function)
    try:
        bound = (
            signature.bind(None, *value) if isinstance(value, list) else signature.bind(None, **value)
        ) if "self" in signature.parameters else (
            signature.bind(*value) if isinstance(value, list) else signature.bind(**value)
        )
    except TypeError as exc:
        raise UsageError(f"--args does not fit {function.__qualname__}{signature}: {exc}") from exc
    converted: dict[str, Any] = {}
    for parameter in parameters:
        if parameter.name in bound.arguments:
            hint = hints.get(parameter.name, Any)
            try:
                converted[parameter.name] = TypeAdapter(hint).validate_python(bound.arguments[parameter.name])
            except ValidationError as exc:
                raise UsageError(f"--args: {parameter.name} is not a {hint}: {exc}") from exc
    names = [p.name for p in parameters]
    if isinstance(value, list):
        return [converted[n] for n in names if n in converted], {}
    return [], converted


def _measured(
    method: Callable[..., Any], args: list[Any], kwargs: dict[str, Any], calls: int, is_async: bool
) -> tuple[list[int], list[BaseException]]:
    # one timing per call around the proxy, kept for channels that record no phases themselves
    timings: list[int] = []
    errors: list[BaseException] = []
    if is_async:  # the declaration's, not the proxy's: a proxy method returns a coroutine without being one

        async def run() -> None:
            for _ in range(calls):
                start = time.perf_counter_ns()
                try:
                    await method(*args, **kwargs)
                except Exception as exc:  # counted and reported; the other calls go on
                    errors.append(exc)
                timings.append(time.perf_counter_ns() - start)

        asyncio.run(run())
    else:
        for _ in range(calls):
            start = time.perf_counter_ns()
            try:
                method(*args, **kwargs)
            except Exception as exc:  # counted and reported; the other calls go on
                errors.append(exc)
            timings.append(time.perf_counter_ns() - start)
    return timings, errors


def profile_channels(
    url: str, service_type: type, method_name: str, raw_args: str | None, channels: Sequence[str],
    calls: int, warmup: int, out: TextIO | None = None,
) -> tuple[profile, dict[str, list[BaseException]], list[str]]:
    """Call ``method_name`` of ``service_type`` at ``url`` over each channel; the profile, errors by channel,
    and the channels whose totals this function measured (their clients recorded nothing)."""
    out = out or sys.stdout
    declared = getattr(service_type, method_name, None)
    if declared is None or not callable(declared):
        raise UsageError(f"{service_type.__name__} has no method {method_name!r}")
    args, kwargs = prepare_arguments(declared, raw_args)
    is_async = inspect.iscoroutinefunction(declared)
    from warpcall.observe.child import RemoteServices

    remote = RemoteServices(url)
    collected = profile()
    errors: dict[str, list[BaseException]] = {}
    measured_here: list[str] = []
    try:
        for channel in channels:
            method = getattr(remote.get(service_type, channel), method_name)
            _measured(method, args, kwargs, warmup, is_async)
            before = len(collected.records) + collected.dropped
            with collected:
                timings, failures = _measured(method, args, kwargs, calls, is_async)
            if failures:
                errors[channel] = failures
                print(f"{channel}: {len(failures)} of {calls} calls failed, first: {failures[0]!r}", file=out)
            if len(collected.records) + collected.dropped == before:
                measured_here.append(channel)
                qualified = _qualified(service_type, method_name)
                for ns in timings:
                    collected.add(CallRecord(qualified, channel, url, ns))
    finally:
        remote.close()
    return collected, errors, measured_here


def _qualified(service_type: type, method_name: str) -> str:
    from warpcall.service import service_descriptor

    descriptor = service_descriptor(service_type)
    return f"{descriptor.get_component_descriptor().name}:{descriptor.name}:{method_name}"


def run(options: argparse.Namespace, out: TextIO | None = None) -> int:
    """Carry out ``warpcall profile`` with parsed ``options``; the exit status (``out``: default stdout)."""
    out = out or sys.stdout
    from warpcall.observe.child import ChildServer, ChildServerError

    # like ``python -m`` and uvicorn: the current directory's modules are importable (--service, --serve)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())

    try:
        if not 1 <= options.calls <= MAX_CALLS:
            raise UsageError(f"-n is between 1 and {MAX_CALLS}, not {options.calls}")
        if options.warmup < 0:
            raise UsageError("--warmup is >= 0")
        service_spec = options.service or (DEMO_SERVICE if options.demo else None)
        method_name = options.method or ("hello" if options.demo else None)
        raw_args = options.args if options.args is not None else ('["world"]' if options.demo and not options.method else None)
        if not service_spec or not method_name:
            raise UsageError("--service and --method are needed (except with --demo)")
        service_type = _import(service_spec)
        channels = list(dict.fromkeys(options.channel or CHANNELS))
        child: ChildServer | None = None
        if options.serve:
            child = ChildServer.for_module(options.serve, extra_path=[p for p in sys.path if p])
        elif options.demo:
            child = ChildServer(DEMO_COMMAND)
        try:
            url = child.start(options.timeout) if child is not None else options.url
            print(f"profiling {service_spec}.{method_name} at {url}: {options.calls} calls per channel "
                  f"over {', '.join(channels)}", file=out)
            collected, errors, measured_here = profile_channels(
                url, service_type, method_name, raw_args, channels, options.calls, options.warmup, out
            )
        finally:
            if child is not None:
                child.stop()
    except (UsageError, ChildServerError) as exc:
        print(f"warpcall profile: {exc}", file=sys.stderr)
        return 2
    summary = collected.summary()
    print(summary.table(), file=out)
    if measured_here:
        print(f"(no phases recorded by {', '.join(measured_here)}: totals measured around the call)", file=out)
    if options.json_out:
        with open(options.json_out, "w", encoding="utf-8") as handle:
            handle.write(collected.to_json(indent=2))
        print(f"wrote {options.json_out}", file=out)
    status = 1 if errors else 0
    if options.out:
        from warpcall.observe.plot import PlotUnavailable, write_report

        try:
            write_report(summary, options.out, title=f"{service_spec}.{method_name}, {options.calls} calls per channel")
        except PlotUnavailable as exc:
            print(f"warpcall profile: --out {options.out}: {exc}", file=sys.stderr)
            return 3
        print(f"wrote {options.out}", file=out)
    return status
