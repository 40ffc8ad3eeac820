"""Issue 18, "one configuration reference": the server's options and limits are configuration keys.

``server.max_body``, ``server.limits.idle_timeout`` and the other ``server.*`` / ``server.limits.*`` keys
are read once when the ``FastAPIServer`` is built, from a YAML file or the process environment; an
argument given to the constructor wins over them, and they win over the built-in defaults. Checked on a
real server on 127.0.0.1 with raw sockets: a body of N bytes is served and N+1 refused with 413 for the
configured N; an idle connection is closed after the configured idle time (well before the default's 5 s);
a bad value fails the boot with ``ConfigurationException`` naming the key.
"""

from __future__ import annotations

import json
import logging
import socket
from abc import abstractmethod
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from rawhttp import Reader, connect, request
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
from warpcall.di import ConfigurationException, Environment, create, module
from warpcall.di.configuration import ConfigurationSource, EnvConfigurationSource, YamlConfigurationSource
from warpcall.server import protocol
from warpcall.server.dispatch import DEFAULT_MAX_BODY
from warpcall.server.fastapi_server import DEREGISTER_DELAY, GRACE_PERIOD
from warpcall.server.limits import DEFAULT_IDLE_TIMEOUT, ServerLimits

pytestmark = pytest.mark.skipif(not protocol.SUPPORTED, reason="the installed uvicorn has no httptools protocol")

#: the configured idle time: short, so the test takes well under a second
IDLE = 0.3
#: how long a read waits for the server to close an idle connection: above IDLE, below the default idle time
#: (5 s), so a server still on the default fails the read with a timeout instead of passing
CLOSE_BOUND = 2.5
assert IDLE < CLOSE_BOUND < DEFAULT_IDLE_TIMEOUT


@service(name="keys-gauge")
class KeysGauge(Service):
    @abstractmethod
    def size(self, text: str) -> int: ...


@component(name="keys", services=[KeysGauge])
class KeysComponent(Component):
    pass


@implementation()
class KeysGaugeImpl(KeysGauge):
    def size(self, text: str) -> int:
        return len(text)


@implementation()
class KeysComponentImpl(AbstractComponent, KeysComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://127.0.0.1:{port}")]


def boot(source: ConfigurationSource | None, **options: Any) -> Environment:
    """A real server on a free 127.0.0.1 port, configured by ``source`` (None: no configuration), built with
    ``options``."""

    @module(imports=[ServiceModule])
    class KeysModule:
        @create()
        def create_registry(self) -> ComponentRegistry:
            return LocalComponentRegistry()

        @create()
        def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
            return FastAPIServer(FastAPI(), manager, registry, **options)

    @module(imports=[KeysModule])
    class ConfiguredKeysModule:
        @create()
        def create_source(self) -> ConfigurationSource:
            assert source is not None
            return source

    return FastAPIServer.boot(KeysModule if source is None else ConfiguredKeysModule, host="127.0.0.1", port=0)


def yaml_source(tmp_path: Path, text: str) -> YamlConfigurationSource:
    path = tmp_path / "warpcall.yaml"
    path.write_text(text, encoding="utf-8")
    return YamlConfigurationSource(str(path))


def envelope(size: int) -> bytes:
    """An /invoke JSON body of exactly ``size`` bytes."""
    empty = len(json.dumps({"method": "keys:keys-gauge:size", "args": [""]}).encode())
    body = json.dumps({"method": "keys:keys-gauge:size", "args": ["p" * (size - empty)]}).encode()
    assert len(body) == size
    return body


def post(port: int, size: int) -> tuple[bytes, dict[str, Any]]:
    """(status line, decoded envelope) of an /invoke call whose body is ``size`` bytes."""
    with connect(port) as sock:
        sock.sendall(request("/invoke", envelope(size)))
        status, _, body = Reader(sock).response()
    return status, json.loads(body)


def assert_max_body(port: int, limit: int) -> None:
    """N bytes are served, N+1 are refused with 413 naming the limit."""
    status, reply = post(port, limit)
    assert status == b"HTTP/1.1 200 OK" and reply["exception"] is None, (status, reply)
    status, reply = post(port, limit + 1)
    assert status == b"HTTP/1.1 413 Request Entity Too Large", (status, reply)
    assert reply["exception"]["type"] == "RequestTooLargeException"
    assert f"exceeds the limit of {limit} bytes" in reply["exception"]["message"]


def assert_idle_close(port: int) -> None:
    """A connection is served, then closed by the server once idle, within CLOSE_BOUND (not the default 5 s)."""
    with connect(port, timeout=CLOSE_BOUND) as sock:
        sock.sendall(request("/invoke", envelope(100)))
        reader = Reader(sock)
        status, headers, _ = reader.response()
        assert status == b"HTTP/1.1 200 OK" and headers.get(b"connection") != b"close"
        try:
            closed = reader.closed()  # blocks until the server closes it, or the read times out
        except socket.timeout:
            pytest.fail(f"the idle connection was still open after {CLOSE_BOUND} s (configured: {IDLE} s)")
        assert closed


@pytest.fixture
def serve():
    environments: list[Environment] = []

    def start(source: ConfigurationSource | None, **options: Any) -> FastAPIServer:
        environment = boot(source, **options)
        environments.append(environment)
        return environment.get(FastAPIServer)

    yield start
    for environment in environments:
        environment.destroy()


def test_yaml_keys_set_the_body_limit_and_the_idle_timeout(serve, tmp_path):
    server = serve(yaml_source(tmp_path, f"""
server:
  max_body: 300
  grace_period: 2.5
  deregister_delay: 0.25
  limits:
    idle_timeout: {IDLE}
    max_headers: 40
    max_connections: none
"""))
    assert server.limits.idle_timeout == IDLE and server.limits.max_headers == 40
    assert server.limits.max_connections is None and server.limits.limit_concurrency is None
    assert (server.grace_period, server.deregister_delay) == (2.5, 0.25)
    assert server.endpoint.max_body == 300
    assert_max_body(server.port, 300)
    assert_idle_close(server.port)


def test_environment_variables_set_the_body_limit_and_the_idle_timeout(serve, monkeypatch):
    monkeypatch.setenv("server.max_body", "200")
    monkeypatch.setenv("server/limits/idle_timeout", str(IDLE))  # "/" stands for "." where a shell needs it
    monkeypatch.setenv("server.limits.max_queued", "7")
    server = serve(EnvConfigurationSource())
    assert (server.endpoint.max_body, server.limits.idle_timeout, server.limits.max_queued) == (200, IDLE, 7)
    assert_max_body(server.port, 200)
    assert_idle_close(server.port)


def test_the_constructor_arguments_win_over_the_configuration(serve, tmp_path):
    server = serve(
        yaml_source(tmp_path, """
server:
  max_body: 300
  grace_period: 7
  limits:
    idle_timeout: 30
    max_headers: 40
"""),
        max_body=500, grace_period=1.5, limits=ServerLimits(idle_timeout=IDLE),
    )
    assert server.grace_period == 1.5
    # a ServerLimits given wins whole: its defaults too, not the configured max_headers
    assert server.limits == ServerLimits(idle_timeout=IDLE)
    assert_max_body(server.port, 500)
    assert_idle_close(server.port)


def test_without_configuration_the_built_in_defaults_apply(serve):
    server = serve(None)
    assert server.limits == ServerLimits()
    assert (server.endpoint.max_body, server.grace_period, server.deregister_delay) == (
        DEFAULT_MAX_BODY, GRACE_PERIOD, DEREGISTER_DELAY
    )
    status, reply = post(server.port, 1000)
    assert status == b"HTTP/1.1 200 OK" and reply["result"] > 0


@pytest.mark.parametrize("key, value", [
    ("server.max_body", "-1"),
    ("server.max_body", "2.5"),
    ("server.max_body", "true"),
    ("server.grace_period", "-0.5"),
    ("server.deregister_delay", "soon"),
    ("server.limits.idle_timeout", "0"),
    ("server.limits.idle_timeout", "nan"),
    ("server.limits.max_headers", "[3]"),
    ("server.limits.max_connections", "-3"),
    ("server.limits.method_share", "1.5"),
    ("server.sync_calls", "sometimes"),
    ("server.include_traceback", "maybe"),
])
def test_a_bad_yaml_value_fails_the_boot_naming_its_key(tmp_path, key, value):
    *sections, leaf = key.split(".")
    text = "".join(f"{'  ' * depth}{name}:\n" for depth, name in enumerate(sections))
    text += f"{'  ' * len(sections)}{leaf}: {value}\n"
    with pytest.raises(ConfigurationException, match=repr(key).replace(".", r"\.")):
        boot(yaml_source(tmp_path, text)).destroy()


@pytest.mark.parametrize("key, value", [("server.max_body", "ten"), ("server.limits.head_timeout", "-1")])
def test_a_bad_environment_value_fails_the_boot_naming_its_key(monkeypatch, key, value):
    monkeypatch.setenv(key, value)
    with pytest.raises(ConfigurationException, match=repr(key).replace(".", r"\.")):
        boot(EnvConfigurationSource()).destroy()


def test_a_bad_value_does_not_matter_when_the_argument_is_given(serve, monkeypatch):
    # the configuration is not read for what the constructor was given
    monkeypatch.setenv("server.max_body", "ten")
    server = serve(EnvConfigurationSource(), max_body=400)
    assert_max_body(server.port, 400)


def test_a_misspelt_server_key_is_reported_at_boot_with_the_closest_one(serve, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="warpcall.config"):
        server = serve(yaml_source(tmp_path, "server:\n  limits:\n    idle_timeot: 0.3\n"))
    messages = [record.getMessage() for record in caplog.records if record.name == "warpcall.config"]
    assert any("'server.limits.idle_timeot'" in m and "did you mean 'server.limits.idle_timeout'?" in m
               for m in messages), messages
    assert server.limits.idle_timeout == DEFAULT_IDLE_TIMEOUT  # the misspelt key sets nothing
