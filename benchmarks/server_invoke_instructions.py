"""Instructions per one-chunk ``POST /invoke`` through the server's protocol (callgrind), with and without a deadline.

The protocol is fed the bytes of one plain dispatch call straight into ``data_received`` (a stub
transport and loop, no sockets), so the figure is the server's whole work for the common call:
recognising the request, the envelope, the method, the reply. ``--src`` compares other checkouts'
``src`` directories (each measured in its own process) with this one. Run:

    python -m benchmarks.server_invoke_instructions [--calls 2000] [--payload hello|data] [--src /tmp/base/src ...]

Every call of a warpcall client carries ``x-rpc-timeout``: a plain call's server figure is the one with
the header, compared with an older checkout's without it (printed as the ratio). Issue 16's budget: the
plain call path (client, ``benchmarks.instructions channel``, plus this) at most 1.03 times before.
"""

from __future__ import annotations

import argparse

# --- the server under measurement (imported by the measuring process) ---
import asyncio
import json
import tempfile
from abc import abstractmethod
from pathlib import Path

import uvicorn
from benchmarks.instructions.__main__ import count, script_for
from benchmarks.workload import FIELDS, Data
from fastapi import FastAPI
from uvicorn.server import ServerState

from warpcall import (
    AbstractComponent,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    LocalComponentRegistry,
    Service,
    ServiceManager,
    ServiceModule,
    component,
    implementation,
    service,
)
from warpcall.di import create, module


@service(name="bench")
class BenchService(Service):
    @abstractmethod
    def echo(self, value: str) -> str: ...

    @abstractmethod
    def data(self, data: Data) -> Data: ...


@component(name="bc", services=[BenchService])
class BenchComponent(Component):
    pass


@implementation()
class BenchServiceImpl(BenchService):
    def echo(self, value: str) -> str:
        return value

    def data(self, data: Data) -> Data:
        return data


@implementation()
class BenchComponentImpl(AbstractComponent, BenchComponent):
    def get_addresses(self, port):
        return [ChannelAddress("dispatch-json", f"http://127.0.0.1:{port}")]


# only this file's component: the benchmarks package holds others (bulkhead_p99, _workers_app), also named "bench"
@module(imports=[ServiceModule], packages=[__name__])
class BenchModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry)


class Transport:
    def __init__(self):
        self.out = 0
    def get_extra_info(self, name, default=None):
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 40000)}.get(name, default)
    def is_closing(self): return False
    def write(self, data): self.out += len(data)
    def close(self): raise AssertionError("closed")
    def pause_reading(self): pass
    def resume_reading(self): pass
    def get_write_buffer_size(self): return 0


class Handle:
    __slots__ = ()
    def cancel(self):
        pass


HANDLE = Handle()


class Loop:
    """call_later without a heap that grows with every request: the same cheap handle each time."""
    def call_later(self, delay, callback, *args):
        return HANDLE


def make(deadline: bool = False, payload: str = "hello"):
    environment = FastAPIServer.boot(BenchModule, host="127.0.0.1", port=0, start_thread=False)
    server = environment.get(FastAPIServer)
    cls = server.protocol_class
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    config = uvicorn.Config(server._uvicorn_app(), interface="asgi3", http=cls, lifespan="off", log_level="warning")
    config.load()
    proto = cls(config=config, server_state=ServerState(), app_state={}, _loop=Loop())
    proto.connection_made(Transport())
    if payload == "data":  # the aspyx-service workload's dataclass, ten long strings
        body = json.dumps({"method": "bc:bench:data", "args": [FIELDS]}).encode()
    else:
        body = json.dumps({"method": "bc:bench:echo", "args": ["hi"]}).encode()
    data = (b"POST /invoke HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: application/json\r\n"
            b"Accept: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
    if deadline:  # what a client sends once every call carries its deadline
        data = data.replace(b"Accept:", b"X-Rpc-Timeout: 5000\r\nAccept:")
    before = cls.stats.unparsed
    proto.data_received(data)
    assert cls.stats.unparsed == before + 1, "not answered unparsed"
    import gc
    gc.collect()
    gc.disable()
    return proto, data, loop


def _setup(src: str | None, deadline: bool, payload: str = "hello") -> str:
    first = f"sys.path.insert(0, {src!r})\n" if src else ""
    return (
        "import sys\n" + first + f"sys.path.insert(1, {str(Path(__file__).resolve().parents[1])!r})\n"
        "from benchmarks.server_invoke_instructions import make\n"
        f"proto, data, loop = make({deadline!r}, {payload!r})\n"
        "feed = proto.data_received\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--payload", choices=("hello", "data"), default="hello",
                        help="echo a short string (default) or the workload's Data")
    parser.add_argument("--src", action="append", default=[], help="another checkout's src directory to measure")
    options = parser.parse_args()
    import sys

    older: dict[str, float] = {}
    for src in [*options.src, None]:
        for deadline in (False, True):
            label = (f"{src or 'this checkout'}: one-chunk POST /invoke ({options.payload})"
                     f"{' with x-rpc-timeout' if deadline else ''}")
            if deadline and src:
                continue  # older checkouts may not read the header
            with tempfile.TemporaryDirectory() as scratch:
                figures = count(sys.executable, script_for(_setup(src, deadline, options.payload), {label: "feed(data)"}),
                                options.calls, Path(scratch))
            for name, value in figures.items():
                print(f"{name}: {value:,.0f} instructions", flush=True)
                if src:
                    older[src] = value
                elif deadline:
                    for other, before in older.items():
                        print(f"  with x-rpc-timeout / {other} without: {value / before:.3f}", flush=True)


if __name__ == "__main__":
    main()
