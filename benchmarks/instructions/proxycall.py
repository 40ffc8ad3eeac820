"""The caller's whole side of a remote call: ``proxy.data(DATA)`` over each dispatch channel, on loopback.

A service manager with a local registry points the bench component at a raw socket server thread that
answers every request with the reply a warpcall server gave for it (the JSON envelope of ``DATA``), so the figure is everything the caller does: proxy, marshalling, envelope, channel,
URL selection, the exchange and the decoding of the reply (the server thread's few instructions are
the same for every build). The benchmark declarations (``benchmarks/bench_api.py``) come from this
checkout, so two builds run the same service.
"""

SETUP = r"""
import socket
import sys
import threading
sys.path.insert(0, "benchmarks")
from bench_api import BenchService
from workload import DATA
from warpcall import ChannelAddress, ComponentRegistry, LocalComponentRegistry, ServiceManager, ServiceModule
from warpcall.di import Environment, create, module

import json
from workload import FIELDS

BODY = json.dumps({"result": FIELDS, "exception": None}, separators=(",", ":")).encode()
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(8)
BASE = "http://127.0.0.1:%d" % listener.getsockname()[1]


def reply_for(request):
    body = BODY
    return (b"HTTP/1.1 200 OK\r\ndate: Thu, 03 Dec 2026 16:39:08 GMT\r\nserver: uvicorn\r\n"
            b"content-length: %d\r\ncontent-type: application/json\r\n\r\n" % len(body)) + body


def serve():
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            request = conn.recv(65536)
            if not request:
                break
            conn.sendall(reply_for(request))
        conn.close()


threading.Thread(target=serve, daemon=True).start()


@module(imports=[ServiceModule])
class Client:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()


environment = Environment(Client)
registry = environment.get(ComponentRegistry)
addresses = [ChannelAddress("dispatch-json", BASE)]
if hasattr(registry, "register_remote"):
    registry.register_remote("bench-component", addresses)
else:
    from warpcall.service import Declarations
    from bench_api import BenchComponent
    registry.register(Declarations.by_type[BenchComponent], addresses)
proxy = environment.get(ServiceManager).get_service(BenchService, "dispatch-json")
assert proxy.data(DATA) == DATA
data = proxy.data
"""

CASES = {
    "proxy.data(DATA) over dispatch-json, caller side": "data(DATA)",
}
