"""Default names as aspyx-service 0.11.6 derives them, so declarations without ``name=`` interoperate.

A service or component declared without a name is named after its class the way aspyx-service names it
(``to_snake_case``: a hyphen before every capital but the first, then lower case). Both peers must derive
the same ``component:service:method`` for the dispatch envelope and the same component name for registries.
The aspyx side runs in its own venv (``conftest.py``) from ``aspyx_side/names_*.py``, which declare the
same classes as this module, without names.
"""

from __future__ import annotations

import sys
from abc import abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from conftest import AspyxServer, run_script
from rawhttp import wait_until
from warpcall import (
    AbstractComponent,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    LocalComponentRegistry,
    RemoteServiceException,
    Server,
    Service,
    ServiceCommunicationException,
    ServiceManager,
    ServiceModule,
    component,
    implementation,
    service,
)
from warpcall.di import Environment, create, module
from warpcall.service import component_descriptor, service_descriptor, to_snake_case

CHANNELS = ["dispatch-json"]

#: the names aspyx-service gives the declarations below (and aspyx_side/names_contract.py's)
COMPONENT_NAME = "default-names-component"
GREETING_NAME = "h-t-t-p-greeting-service"
LOOKUP_NAME = "order-lookup-service"

#: class names whose derived names differ between naming rules: acronyms, digits, underscores,
#: a non-ASCII capital (not a word boundary for aspyx), single letters, lower-case starts
CLASS_NAMES = [
    "TestComponent", "HTTPService", "HTTPGreetingService", "OrderService", "orderService", "ABC", "plain",
    "X", "V2API", "Service2Go", "IOError", "My_Service", "_Private", "__Dunder", "ÄrgerService",
    "ServiceÄ", "CamelCaseWithABBRInside", "already_snake",
]


@service()
class HTTPGreetingService(Service):
    @abstractmethod
    def greet(self, name: str) -> str: ...

    @abstractmethod
    def fail(self, reason: str) -> str: ...


@service(description="no name either: a description alone keeps the derived name")
class OrderLookupService(Service):
    @abstractmethod
    def total(self, quantities: list[int]) -> int: ...


@component(services=[HTTPGreetingService, OrderLookupService])
class DefaultNamesComponent(Component):
    pass


@implementation()
class HTTPGreetingServiceImpl(HTTPGreetingService):
    def greet(self, name: str) -> str:
        return f"hello {name} from warpcall"

    def fail(self, reason: str) -> str:
        raise ValueError(f"refused by warpcall: {reason}")


@implementation()
class OrderLookupServiceImpl(OrderLookupService):
    def total(self, quantities: list[int]) -> int:
        return sum(quantities) + 2000  # + 2000: says which side answered (aspyx adds 1000)


@implementation()
class DefaultNamesComponentImpl(AbstractComponent, DefaultNamesComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress(channel, f"http://127.0.0.1:{port}") for channel in CHANNELS]


# the names warpcall used before it followed aspyx: a peer still using them is not understood


@service(name="http_greeting_service")
class OldStyleGreetingService(Service):
    @abstractmethod
    def greet(self, name: str) -> str: ...


@component(name="default_names_component", services=[OldStyleGreetingService])
class OldStyleComponent(Component):
    pass


@module(imports=[ServiceModule])
class NamesServerModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry)


@module(imports=[ServiceModule])
class NamesClientModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()


def warpcall_names(class_name: str) -> dict[str, str]:
    """What warpcall's decorators name a service and a component of ``class_name`` declared without a name."""
    declared_service: Any = service()(type(class_name, (Service,), {}))
    declared_component: Any = component(services=[declared_service])(type(class_name, (Component,), {}))
    return {
        "to_snake_case": to_snake_case(class_name),
        "service": service_descriptor(declared_service).name,
        "component": component_descriptor(declared_component).name,
    }


def test_default_names_are_the_names_aspyx_derives(aspyx_python: Path) -> None:
    import json

    code, stdout, stderr = run_script(aspyx_python, "names_probe.py", *CLASS_NAMES)
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert code == 0 and lines, f"names_probe.py failed (exit {code}):\n{stdout}\n{stderr[-4000:]}"
    aspyx = json.loads(lines[-1][len("RESULT "):])

    assert {name: warpcall_names(name) for name in CLASS_NAMES} == aspyx
    # the cases the old rule (underscores, acronyms kept whole) named differently, as aspyx names them
    assert aspyx["HTTPService"]["service"] == "h-t-t-p-service"
    assert aspyx["TestComponent"]["component"] == "test-component"
    assert aspyx["ÄrgerService"]["service"] == "ärger-service"


def test_declarations_without_names_qualify_methods_as_aspyx() -> None:
    assert component_descriptor(DefaultNamesComponent).name == COMPONENT_NAME
    assert [s.name for s in component_descriptor(DefaultNamesComponent).services] == [GREETING_NAME, LOOKUP_NAME]
    assert service_descriptor(OrderLookupService).description.startswith("no name either")
    greet = service_descriptor(HTTPGreetingService).methods["greet"]
    assert greet.qualified == f"{COMPONENT_NAME}:{GREETING_NAME}:greet"


# warpcall client -> aspyx-service server


@pytest.fixture(scope="module")
def aspyx_names_server(aspyx_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AspyxServer]:
    """An aspyx-service server hosting names_contract.py's component (declared without names)."""
    server = AspyxServer(aspyx_python, tmp_path_factory.mktemp("aspyx-names-server"), script="names_server.py")
    try:
        server.start()
        yield server
    finally:
        server.stop()
    assert server.process is not None and server.process.returncode is not None


@pytest.fixture(scope="module")
def warpcall_client(aspyx_names_server: AspyxServer) -> Iterator[ServiceManager]:
    """A warpcall environment whose registry points both components at the aspyx server."""
    environment = Environment(NamesClientModule)
    try:
        registry = environment.get(ComponentRegistry)
        for declared in (DefaultNamesComponent, OldStyleComponent):
            registry.register(
                component_descriptor(declared),
                [ChannelAddress(channel, aspyx_names_server.url) for channel in CHANNELS],
            )
        yield environment.get(ServiceManager)
    finally:
        environment.destroy()


def test_aspyx_server_derived_the_same_names(aspyx_names_server: AspyxServer) -> None:
    outputs = sorted(aspyx_names_server.workdir.glob("server-*.out"))
    lines = [line for line in outputs[-1].read_text().splitlines() if line.startswith("NAMES ")]
    assert lines == [f"NAMES {COMPONENT_NAME} {GREETING_NAME} {LOOKUP_NAME}"]


@pytest.mark.parametrize("channel", CHANNELS)
def test_warpcall_client_calls_aspyx_server_by_default_names(warpcall_client: ServiceManager, channel: str) -> None:
    greeting = warpcall_client.get_service(HTTPGreetingService, channel)
    lookup = warpcall_client.get_service(OrderLookupService, channel)

    assert greeting.greet("warpcall client") == "hello warpcall client from aspyx"
    assert lookup.total([1, 2, 3]) == 1006

    with pytest.raises(RemoteServiceException) as info:
        greeting.fail("no reason")
    assert info.value.remote_message == "refused by aspyx: no reason"
    assert f"{COMPONENT_NAME}:{GREETING_NAME}:fail" in str(info.value)
    assert greeting.greet("again") == "hello again from aspyx"


@pytest.mark.parametrize("channel", CHANNELS)
def test_old_warpcall_names_are_not_what_aspyx_serves(warpcall_client: ServiceManager, channel: str) -> None:
    # what a warpcall peer named before it followed aspyx sent: aspyx-service knows no such method and
    # answers a bare HTTP 500 (its dispatcher fails looking the method up)
    old = warpcall_client.get_service(OldStyleGreetingService, channel)
    with pytest.raises(ServiceCommunicationException) as info:
        old.greet("old names")
    assert "default_names_component:http_greeting_service:greet with HTTP 500" in str(info.value)


# aspyx-service client -> warpcall server


@pytest.fixture(scope="module")
def warpcall_url() -> Iterator[str]:
    """A warpcall server hosting DefaultNamesComponent on a free port of 127.0.0.1."""
    environment = FastAPIServer.boot(NamesServerModule, host="127.0.0.1", port=0)
    try:
        yield environment.get(FastAPIServer).url
    finally:
        environment.destroy()


@pytest.fixture(scope="module")
def aspyx_report(aspyx_client: Callable[..., dict[str, Any]], warpcall_url: str) -> dict[str, Any]:
    """What aspyx_side/names_client.py got back from the warpcall server."""
    return aspyx_client(warpcall_url, "names_client.py")


def test_aspyx_client_derived_the_same_names(aspyx_report: dict[str, Any]) -> None:
    assert aspyx_report["names"] == [COMPONENT_NAME, GREETING_NAME, LOOKUP_NAME]


@pytest.mark.parametrize("channel", CHANNELS)
def test_aspyx_client_calls_warpcall_server_by_default_names(aspyx_report: dict[str, Any], channel: str) -> None:
    calls = aspyx_report[channel]

    assert calls["greet"] == {"ok": True, "value": "hello aspyx client from warpcall"}
    assert calls["total"] == {"ok": True, "value": 2006}
    failed = calls["fail"]
    assert failed["ok"] is False
    assert failed["error_type"] == "RemoteServiceException" and failed["is_remote_service_exception"]
    assert "refused by warpcall: no reason" in failed["message"]


# a mixed fleet in Consul: each side registers under the name it derives and the other finds it by its own


REGISTRY_TESTS = Path(__file__).resolve().parent.parent / "registry"
WAIT = 20.0


@pytest.fixture
def consul() -> Iterator[Any]:
    """A Consul emulator on 127.0.0.1 (tests/registry/consul_emulator.py) of this test alone."""
    if str(REGISTRY_TESTS) not in sys.path:
        sys.path.insert(0, str(REGISTRY_TESTS))
    from consul_emulator import ConsulEmulator

    with ConsulEmulator(reap_interval=0.2, deregister_minimum=0.0) as emulator:
        yield emulator


def registered(emulator: Any, name: str) -> list[dict[str, Any]]:
    """The instances of ``name`` whose checks pass."""
    entries: list[dict[str, Any]] = emulator.health(name, passing=True)[1]
    return entries


def test_warpcall_client_finds_the_aspyx_server_in_consul_by_its_default_name(
    aspyx_python: Path, consul: Any, tmp_path: Path
) -> None:
    from consul import Consul

    from warpcall import ConsulComponentRegistry

    server = AspyxServer(aspyx_python, tmp_path, script="names_server.py")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NAMES_CONSUL_PORT", str(consul.port))
        server.start()
    try:
        wait_until(lambda: len(registered(consul, COMPONENT_NAME)) == 1, timeout=WAIT,
                   what=f"aspyx-service's instance of {COMPONENT_NAME} to pass its Consul check")
        (entry,) = registered(consul, COMPONENT_NAME)
        assert entry["Service"]["Meta"]["channels"] == f"dispatch-json({server.url})"

        @module(imports=[ServiceModule])
        class ConsulClientModule:
            @create()
            def create_registry(self) -> ComponentRegistry:
                return ConsulComponentRegistry(0, Consul(host="127.0.0.1", port=consul.port), wait="1s")

        environment = Environment(ConsulClientModule)
        try:
            manager = environment.get(ServiceManager)
            greeting = manager.get_service(HTTPGreetingService, "dispatch-json")
            assert greeting.greet("consul") == "hello consul from aspyx"
            assert manager.get_service(OrderLookupService, "dispatch-json").total([5]) == 1005
        finally:
            environment.destroy()
    finally:
        server.stop()


def test_aspyx_client_finds_the_warpcall_server_in_consul_by_its_default_name(
    aspyx_client: Callable[..., dict[str, Any]], consul: Any
) -> None:
    from consul import Consul

    from warpcall import ConsulComponentRegistry

    @module(imports=[ServiceModule])
    class ConsulServerModule:
        @create()
        def create_registry(self) -> ComponentRegistry:
            client = Consul(host="127.0.0.1", port=consul.port)
            return ConsulComponentRegistry(Server.port, client, check_interval="200ms")

        @create()
        def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
            return FastAPIServer(FastAPI(), manager, registry)

    environment = FastAPIServer.boot(ConsulServerModule, host="127.0.0.1", port=0)
    try:
        wait_until(lambda: len(registered(consul, COMPONENT_NAME)) == 1, timeout=WAIT,
                   what=f"warpcall's instance of {COMPONENT_NAME} to pass its Consul check")
        report = aspyx_client(f"consul:{consul.port}", "names_client.py")
    finally:
        environment.destroy()
    assert report["names"] == [COMPONENT_NAME, GREETING_NAME, LOOKUP_NAME]
    assert report["dispatch-json"]["greet"] == {"ok": True, "value": "hello aspyx client from warpcall"}
    assert report["dispatch-json"]["total"] == {"ok": True, "value": 2006}
