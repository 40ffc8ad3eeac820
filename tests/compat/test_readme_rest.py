"""The README's rest declarations (``@rest``, ``@get``, ``@post``, ``Body``, ``QueryParam``, ``PathParam``, the
unmarked heuristic): called through the rest channel and with raw HTTP requests on a real server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import ModuleType

import pytest
from readme_support import get, port_of, running, stop

import rawhttp
from warpcall import ServiceManager


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[ModuleType]:
    with running("readme_rest.app", tmp_path_factory.mktemp("registry")) as module:
        yield module


@pytest.fixture(scope="module")
def client(app):
    return app.environment.read(ServiceManager).get_service(app.TestService, preferred_channel="rest")


def test_an_unnamed_service_is_named_after_its_class(app) -> None:
    # "If name is not set, the class name converted to snake case is used" (0.11.6: "test-service")
    assert ServiceManager.get_descriptor(app.TestService).name == "test-service"
    assert ServiceManager.get_descriptor(app.TestComponent).name == "test-component"


def test_get_with_a_path_parameter(app, client) -> None:
    assert client.hello("world") == "hello world"
    assert get(port_of(app.environment), "/api/hello/world") == (200, b'"hello world"')


def test_post_with_a_body(app, client) -> None:
    assert client.set_data(app.Data("ann", 1)) == app.Data("ANN", 2)
    body = json.dumps({"name": "bob", "count": 41}).encode()
    with rawhttp.connect(port_of(app.environment)) as sock:
        sock.sendall(rawhttp.request("/api/post/", body))
        status, _, content = rawhttp.Reader(sock).response()
    assert (status.split()[1], json.loads(content)) == (b"200", {"name": "BOB", "count": 42})


def test_path_and_query_param_markers(app, client) -> None:
    assert client.item(7, "seven") == "7:seven"
    assert get(port_of(app.environment), "/api/items/8?text=eight") == (200, b'"8:eight"')
    status, _ = get(port_of(app.environment), "/api/items/x?text=eight")
    assert status == 422  # the path parameter is an int, validated as FastAPI does


def test_unmarked_parameters_follow_the_heuristic(app, client) -> None:
    # the dataclass is the body, `prefix` is in the path, `times` is a query parameter
    assert client.guess("x-", app.Data("y", 2), 3) == app.Data("x-y", 6)
    body = json.dumps({"name": "z", "count": 1}).encode()
    with rawhttp.connect(port_of(app.environment)) as sock:
        sock.sendall(rawhttp.request("/api/guess/p-?times=5", body))
        status, _, content = rawhttp.Reader(sock).response()
    assert (status.split()[1], json.loads(content)) == (b"200", {"name": "p-z", "count": 5})


def test_destroy_stops_the_server(app) -> None:
    stop(app)
