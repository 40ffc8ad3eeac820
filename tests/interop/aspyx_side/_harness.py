"""What the aspyx-side scripts share: their modules' providers, a server's boot/ready/stop, a client's bootstrap
and report.

Runs in aspyx-service's venv (it cannot import warpcall); the scripts import it from their folder. A script's
module class subclasses ``ServerModuleBase`` or ``ClientModuleBase`` and is declared in the script itself
with ``@module(imports=[ServiceModule])``: aspyx registers what is declared beside the module class (for a
script, in ``__main__``), and takes the ``@create`` methods it inherits as its own.
"""

import json
import sys
import time
from typing import Any, Callable, Optional

from aspyx.di import Environment, create
from aspyx_service import (
    ChannelAddress,
    ChannelInstances,
    ComponentRegistry,
    FastAPIServer,
    RemoteServiceException,
    ServiceManager,
    SessionManager,
)
from aspyx_service.service import LocalComponentRegistry
from fastapi import FastAPI

STARTUP_TIMEOUT = 20.0
CALL_TIMEOUT = 10.0


def target_url() -> str:
    """What a client script was given to call: a URL, or ``consul:PORT`` (its first argument)."""
    return sys.argv[1]


def loopback_addresses(port: int, channels: list[str]) -> list[ChannelAddress]:
    """A component's addresses on ``channels``: all on 127.0.0.1 at ``port``."""
    return [ChannelAddress(channel, f"http://127.0.0.1:{port}") for channel in channels]


class _ModuleBase:
    @create()
    def create_session_storage(self) -> SessionManager.Storage:
        # aspyx-service's ServiceModule needs one, even when no session is used
        return SessionManager.InMemoryStorage()


class ServerModuleBase(_ModuleBase):
    """A server's providers: an in-process registry, session storage, the FastAPIServer on :meth:`make_app`."""

    @create()
    def create_registry(self) -> ComponentRegistry:
        # in-process registry: nothing to reach, the test tells the client where the server is
        return LocalComponentRegistry()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(self.make_app(), manager, registry)

    def make_app(self) -> FastAPI:
        """The FastAPI app the server serves (a script adds its middleware here)."""
        return FastAPI()


def serve(server_module: type, announce: Optional[Callable[[], None]] = None) -> int:
    """Boot ``server_module`` on 127.0.0.1 at the port of the first argument, print ``READY`` once uvicorn
    accepts connections (after what ``announce`` prints), and serve until stdin closes (the test's signal)."""
    port = int(sys.argv[1])
    environment = FastAPIServer.boot(server_module, host="127.0.0.1", port=port)
    server = environment.get(FastAPIServer)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.server.started:
            if not server.thread.is_alive() or time.monotonic() > deadline:
                print("FAILED to start uvicorn", flush=True)
                return 1
            time.sleep(0.02)
        if announce is not None:
            announce()
        print("READY", flush=True)
        sys.stdin.read()  # the test closes our stdin to stop us
    finally:
        environment.destroy()
    return 0


class FixedURLRegistry(ComponentRegistry):
    """Answers every lookup with one URL on each of ``channels``; registers nothing."""

    def __init__(self, url: str, channels: list[str]) -> None:
        self.url = url
        self.channels = channels

    def register(self, descriptor, addresses) -> None:
        pass

    def deregister(self, descriptor) -> None:
        pass

    def watch(self, channel) -> None:
        pass

    def get_addresses(self, descriptor) -> list[ChannelInstances]:
        return [ChannelInstances(descriptor.name, channel, [self.url]) for channel in self.channels]


class ClientModuleBase(_ModuleBase):
    """A client's providers: session storage and a :class:`FixedURLRegistry` on :attr:`channels` with the
    command line's URL."""

    channels: list[str] = []

    @create()
    def create_registry(self) -> ComponentRegistry:
        return FixedURLRegistry(target_url(), self.channels)


def short_timeouts(manager: ServiceManager) -> None:
    """Bound the calls of the channels made so far (aspyx defaults to 1000 s)."""
    for instance in manager.channel_cache.values():
        instance.timeout = CALL_TIMEOUT


def run_client(client_module: type, calls: Callable[[ServiceManager], dict]) -> int:
    """Build ``client_module``'s environment, make ``calls`` with its ServiceManager, and print their report as
    one line ``RESULT <json>``."""
    environment = Environment(client_module)
    manager = environment.get(ServiceManager)
    try:
        results = calls(manager)
    finally:
        environment.destroy()
    print("RESULT " + json.dumps(results), flush=True)
    return 0


def plain(value: Any) -> dict:
    """A returned value as the report has it."""
    return {"value": value}


def failed(exc: Exception) -> dict:
    """A raised exception as the report has it."""
    return {
        "ok": False,
        "error_type": type(exc).__name__,
        "is_remote_service_exception": isinstance(exc, RemoteServiceException),
        "message": str(exc),
    }


def outcome(call: Callable[[], Any], describe: Callable[[Any], dict] = plain) -> dict:
    """What ``call`` returned (as ``describe`` reports it) or raised."""
    try:
        return {"ok": True, **describe(call())}
    except Exception as exc:  # reported to the test, which asserts on it
        return failed(exc)


async def outcome_async(call: Callable[[], Any], describe: Callable[[Any], dict] = plain) -> dict:
    """What the coroutine ``call`` makes returned (as ``describe`` reports it) or raised."""
    try:
        return {"ok": True, **describe(await call())}
    except Exception as exc:  # reported to the test, which asserts on it
        return failed(exc)
