"""``warpcall serve`` takes the server's keys from ``--config`` and the environment (issue 18, one configuration
reference): ``server.max_body`` from the file, ``server.limits.idle_timeout`` from an environment variable, seen
on raw sockets; a bad value ends the serve with an error naming the key."""

from __future__ import annotations

import json
import socket

import pytest
from serve_processes import ServeProcess

from rawhttp import Reader, connect, request
from warpcall.server.limits import DEFAULT_IDLE_TIMEOUT

IDLE = 0.3
#: above IDLE, below the default idle time: a server still on the default fails the read with a timeout
CLOSE_BOUND = 2.5
assert IDLE < CLOSE_BOUND < DEFAULT_IDLE_TIMEOUT
MAX_BODY = 300


@pytest.fixture
def serve(tmp_path):
    started: list[ServeProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> ServeProcess:
        process = ServeProcess(list(args), tmp_path / "registry", env=env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


def envelope(size: int) -> bytes:
    """A ``pids:pid:setting`` call's JSON body of exactly ``size`` bytes."""
    empty = len(json.dumps({"method": "pids:pid:setting", "args": [""]}).encode())
    body = json.dumps({"method": "pids:pid:setting", "args": ["p" * (size - empty)]}).encode()
    assert len(body) == size
    return body


def test_server_keys_from_the_config_file_and_the_environment(serve, tmp_path):
    config = tmp_path / "serve.yaml"
    config.write_text(f"server:\n  max_body: {MAX_BODY}\n")
    server = serve("servepids.app:PidModule", "--port", "0", "--config", str(config),
                   env={"server/limits/idle_timeout": str(IDLE)}).wait_ready()
    with connect(server.port, timeout=CLOSE_BOUND) as sock:
        reader = Reader(sock)
        sock.sendall(request("/invoke", envelope(MAX_BODY)))
        status, headers, _ = reader.response()
        assert status == b"HTTP/1.1 200 OK" and headers.get(b"connection") != b"close"
        sock.sendall(request("/invoke", envelope(MAX_BODY + 1)))
        status, _, body = reader.response()
        assert status == b"HTTP/1.1 413 Request Entity Too Large", (status, body)
        assert f"exceeds the limit of {MAX_BODY} bytes" in json.loads(body)["exception"]["message"]
    with connect(server.port, timeout=CLOSE_BOUND) as sock:
        try:
            assert Reader(sock).closed()  # idle from its accept: closed after IDLE, not the default 5 s
        except socket.timeout:
            pytest.fail(f"the idle connection was still open after {CLOSE_BOUND} s (configured: {IDLE} s)")


def test_a_bad_server_key_fails_the_serve_naming_it(serve, tmp_path):
    config = tmp_path / "serve.yaml"
    config.write_text("server:\n  limits:\n    max_queued: -5\n")
    process = serve("servepids.app:PidModule", "--port", "0", "--config", str(config))
    assert process.wait(60.0) == 1, process.output()
    assert "'server.limits.max_queued' = -5" in process.output()
