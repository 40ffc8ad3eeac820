"""observe.child: the child server the plugin and ``warpcall profile`` boot (bounded start, SIGTERM then SIGKILL)."""

from __future__ import annotations

import sys

import pytest

from warpcall.demo.example import GreeterService
from warpcall.observe.child import ChildServer, ChildServerError, RemoteServices, resolve_module

STUBBORN = """
import signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("starting", flush=True)
for _ in range(600):  # never READY, never leaves on SIGTERM: only SIGKILL ends it (bounded anyway: 60 s)
    time.sleep(0.1)
"""


def test_serves_stops_cleanly_on_sigterm() -> None:
    child = ChildServer.for_module("warpcall.demo.server:DemoServerModule")
    url = child.start()
    remote = RemoteServices(url)
    try:
        assert url.startswith("http://127.0.0.1:")
        assert remote.get(GreeterService, "dispatch-msgpack").hello("ada") == "hello ada"
    finally:
        remote.close()
        code = child.stop()
    assert code == 0  # it destroyed its environment and left on its own


def test_no_ready_line_in_time_is_killed_and_reported() -> None:
    child = ChildServer([sys.executable, "-c", STUBBORN], stop_timeout=0.5)
    with pytest.raises(ChildServerError, match=r"no READY line within 0.5 s, stopped"):
        child.start(timeout=0.5)
    assert child.process is not None and child.process.returncode == -9  # SIGTERM ignored: SIGKILL


def test_module_resolution() -> None:
    from warpcall.demo.server import DemoServerModule

    assert resolve_module("warpcall.demo.server:DemoServerModule") is DemoServerModule
    assert resolve_module("warpcall.demo.server") is DemoServerModule  # its one @module class
    with pytest.raises(ChildServerError, match="exactly one @module class"):
        resolve_module("warpcall.demo.example")
    with pytest.raises(ChildServerError, match="is not a class"):
        resolve_module("warpcall.demo.server:main")
    with pytest.raises(ChildServerError, match="cannot import"):
        resolve_module("warpcall.no_such_thing")
    with pytest.raises(TypeError, match="not a warpcall @service"):
        RemoteServices.get(object.__new__(RemoteServices), int)
