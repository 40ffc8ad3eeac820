"""``warpcall serve package.module:Module``: serve a module's components until SIGTERM or SIGINT, then drain."""

from __future__ import annotations

import argparse
import logging
import sys

HELP = "serve a module's components (one process, N workers sharing the port, or reloading on change)"
DESCRIPTION = """Boot the environment of a @module class and serve its components with uvicorn until SIGTERM
or SIGINT; then drain: deregister first, keep serving the server's deregister_delay, finish the calls
under way (grace_period), stop. A second signal cuts the drain short.

Once serving it prints one line on standard output, e.g.
  warpcall serve: shop.app:ShopModule ready at http://127.0.0.1:8000 (2 workers, pids 4242 4243; supervisor 4241)

--workers N runs N processes listening on the one port with SO_REUSEPORT (Linux, macOS; refused
where the platform lacks it): the kernel spreads connections among them. The registry holds one
instance for the address, registered by the supervisor once every worker serves; a worker that dies
is started again (backoff 0.1 s doubling to 5 s) without touching the registry.

--reload (development, one worker) restarts the server when a .py file of the module's package
changes (watchfiles when installed, else polling every 0.5 s; --reload-poll forces polling).

Configuration: the module's own configuration sources, then --config FILE (YAML), then the process
environment, each overriding the one before. An environment variable whose name holds dots (or
slashes) sets that key: `env registry.namespace=shop warpcall serve ...` sets registry.namespace
(`env` passes names a shell cannot export; `registry/namespace=shop` works as well).

Exit status: 0 after a drain, 1 when serving failed, 2 for a bad module path or bad options.

examples:
  warpcall serve shop.app:ShopModule
  warpcall serve shop.app:ShopModule --host 0.0.0.0 --port 8080 --workers 4
  warpcall serve shop.app:ShopModule --port 0 --config shop.yaml --log-level info
  warpcall serve shop.app:ShopModule --reload
"""

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``warpcall serve``."""
    parser.add_argument("module", metavar="MODULE", help="the @module class to serve: package.module:ModuleClass")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8000, help="port to listen on (default 8000; 0: a free one)")
    parser.add_argument(
        "--workers", type=_positive, default=1, metavar="N",
        help="worker processes sharing the port with SO_REUSEPORT (default 1)",
    )
    parser.add_argument("--reload", action="store_true", help="restart when a .py file of the module's package changes")
    parser.add_argument(
        "--reload-poll", action="store_true",
        help="with --reload: poll the files every 0.5 s instead of watchfiles (network or mounted filesystems)",
    )
    parser.add_argument(
        "--log-level", choices=LOG_LEVELS, default="warning", help="level of warpcall's log (default warning)"
    )
    parser.add_argument("--config", metavar="FILE", help="YAML configuration file, loaded after the module's own sources")
    # set by the supervisor and the reloader on the processes they start
    parser.add_argument("--worker-status-fd", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--reloaded", action="store_true", help=argparse.SUPPRESS)


def _worker_options(options: argparse.Namespace) -> list[str]:
    extra = ["--log-level", options.log_level]
    if options.config is not None:
        extra += ["--config", options.config]
    return extra


def run(options: argparse.Namespace) -> int:
    """Serve; the exit status."""
    logging.basicConfig(
        level=options.log_level.upper(), format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
    )
    from warpcall.server import supervisor

    try:
        if options.workers > 1 and options.reload:
            supervisor.say("--reload serves one worker; leave out --workers or --reload")
            return 2
        if options.config is not None:
            import os

            if not os.path.isfile(options.config):
                supervisor.say(f"--config {options.config}: no such file")
                return 2
        if options.worker_status_fd is not None:  # a worker of a supervisor
            return supervisor.serve_process(
                options.module, options.host, options.port, config_file=options.config, register=False,
                reuse_port=True, status_fd=options.worker_status_fd, controlled=True,
            )
        if options.reloaded:  # the server a reloader runs
            return supervisor.serve_process(
                options.module, options.host, options.port, config_file=options.config,
                reuse_port=supervisor.reuse_port_supported(), controlled=True,
            )
        if options.reload:
            from warpcall.server.reload import Reloader

            supervisor.load_module(options.module)  # a bad path is reported here, not by every restart
            reloader = Reloader(
                options.module, options.host, options.port, _worker_options(options), poll=options.reload_poll
            )
            return reloader.run()
        if options.workers > 1:
            if not supervisor.reuse_port_supported():
                supervisor.say(
                    f"--workers {options.workers} needs SO_REUSEPORT, which this platform ({sys.platform}) does not "
                    "have; serve one worker (or one process per port behind a load balancer)"
                )
                return 2
            return supervisor.Supervisor(
                options.module, options.host, options.port, options.workers, config_file=options.config,
                worker_options=_worker_options(options),
            ).run()
        return supervisor.serve_process(options.module, options.host, options.port, config_file=options.config)
    except supervisor.ModulePathError as exc:
        supervisor.say(str(exc))
        return 2
    except OSError as exc:  # the port is taken, the address is not ours
        supervisor.say(f"cannot serve on {options.host}:{options.port}: {exc}")
        return 1
    except Exception as exc:
        logging.getLogger("warpcall.serve").debug("serving failed", exc_info=True)
        supervisor.say(f"serving {options.module} failed: {type(exc).__name__}: {exc}")
        return 1
