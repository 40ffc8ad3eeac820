"""The README's services, components, ServiceManager, @inject_service and FastAPI server module, run as written.

The example module (``readme_services/app.py``) boots a real server on 127.0.0.1 when imported; the
tests call it in-process ("local"), over HTTP through the dispatch-json channel, and with raw sockets.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest
from readme_support import port_of, post_invoke, refused, running, server_threads, stop

from warpcall import ComponentRegistry, ComponentStatus, EmbeddedComponentRegistry, ServiceManager
from warpcall.service import declaration_of


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[ModuleType]:
    with running("readme_services.app", tmp_path_factory.mktemp("registry")) as module:
        yield module


def test_the_server_module_without_a_registry_gets_the_embedded_one(app) -> None:
    environment = app.environment
    registry = environment.get(ComponentRegistry)
    assert isinstance(registry, EmbeddedComponentRegistry)
    # the registry the server was created with is the one the service manager registers in
    assert environment.get(ServiceManager).component_registry is registry
    port = port_of(environment)
    assert port != 0
    # Server.get_local_ip() in get_addresses names the address the server listens on
    addresses = {found.channel: list(found.urls) for found in registry.get_addresses(declaration_of(app.TestComponent))}
    assert addresses == {"dispatch-json": [f"http://127.0.0.1:{port}"]}


def test_get_service_without_a_channel_is_the_local_implementation(app) -> None:
    service_manager = app.environment.read(ServiceManager)
    service = service_manager.get_service(app.TestService)
    assert service.hello("world") == "hello world"
    assert isinstance(service, app.TestServiceImpl)  # the first channel of an implemented service is "local"
    local = service_manager.get_service(app.TestService, preferred_channel="local")
    assert local is service


def test_the_dispatch_channel_calls_the_server(app) -> None:
    service_manager = app.environment.read(ServiceManager)
    remote = service_manager.get_service(app.TestService, preferred_channel="dispatch-json")
    assert not isinstance(remote, app.TestServiceImpl) and isinstance(remote, app.TestService)
    assert remote.hello("world") == "hello world"
    # the same method on the wire, as any client (aspyx-service's too) sends it
    status, reply = post_invoke(port_of(app.environment), "test-component:test-service:hello", ["wire"])
    assert (status, reply["result"], reply["exception"]) == (200, "hello wire", None)


def test_set_preferred_channel_is_the_default_of_get_service(app) -> None:
    service_manager = app.environment.read(ServiceManager)
    service_manager.set_preferred_channel("dispatch-json")
    try:
        service = service_manager.get_service(app.TestService)
        assert not isinstance(service, app.TestServiceImpl)
        assert service.hello("default") == "hello default"
        # a channel named in the call still wins over the default
        assert isinstance(service_manager.get_service(app.TestService, preferred_channel="local"), app.TestServiceImpl)
    finally:
        service_manager.set_preferred_channel("")


def test_inject_service_hands_the_setter_the_service(app) -> None:
    user = app.environment.get(app.ServiceUser)
    assert user.service is not None
    assert user.service.hello("injected") == "hello injected"
    assert isinstance(user.service, app.TestServiceImpl)  # @inject_service() with no channel: "local" here


def test_the_component_is_running(app) -> None:
    # "get_status ... one of the ComponentStatus enums VIRGIN, RUNNING, and STOPPED"
    assert app.environment.get(app.TestComponentImpl).get_status() is ComponentStatus.RUNNING


def test_destroy_stops_the_server(app) -> None:  # last: the example's program ends here
    port = port_of(app.environment)
    component = app.environment.get(app.TestComponentImpl)
    assert not refused(port)
    stop(app)
    assert refused(port)
    assert component.get_status() is ComponentStatus.STOPPED
    assert server_threads() == []
