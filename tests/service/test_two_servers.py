"""Two FastAPIServer environments in one process, each with its own port, host and components.

Each module provides its own implementations through ``@create`` methods, so
each environment hosts one component. Both are booted in this process on free
127.0.0.1 ports, called over HTTP, and stopped.
"""

from __future__ import annotations

import http.client
import json
import threading
from abc import abstractmethod
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from warpcall import (
    AbstractComponent,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    LocalComponentRegistry,
    Server,
    Service,
    ServiceException,
    ServiceManager,
    ServiceModule,
    component,
    service,
)
from warpcall.di import Environment, create, module

BOOT_TIMEOUT = 30.0


@service(name="alpha-greeter")
class AlphaService(Service):
    @abstractmethod
    def whoami(self) -> str: ...


@component(name="alpha", services=[AlphaService])
class AlphaComponent(Component):
    pass


@service(name="beta-greeter")
class BetaService(Service):
    @abstractmethod
    def whoami(self) -> str: ...


@component(name="beta", services=[BetaService])
class BetaComponent(Component):
    pass


class AlphaServiceImpl(AlphaService):
    def whoami(self) -> str:
        return "alpha"


class BetaServiceImpl(BetaService):
    def whoami(self) -> str:
        return "beta"


class DispatchComponentImpl(AbstractComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://127.0.0.1:{port}")]


class AlphaComponentImpl(DispatchComponentImpl, AlphaComponent):
    pass


class BetaComponentImpl(DispatchComponentImpl, BetaComponent):
    pass


#: ``Server.port`` as each module's factory read it while its environment was booted
ports_seen: dict[str, int] = {}
#: when set, each boot waits here inside its factory until the other boot is there too
rendezvous: threading.Barrier | None = None


def read_server_port(name: str) -> None:
    if rendezvous is not None:
        rendezvous.wait(BOOT_TIMEOUT)  # both environments are being built now
    ports_seen[name] = Server.port  # as aspyx-service programs read it: ConsulComponentRegistry(Server.port, ...)


@module(imports=[ServiceModule])
class AlphaModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        read_server_port("alpha")
        return LocalComponentRegistry()

    @create()
    def create_component(self) -> AlphaComponentImpl:
        return AlphaComponentImpl()

    @create()
    def create_service(self) -> AlphaServiceImpl:
        return AlphaServiceImpl()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry)


@module(imports=[ServiceModule])
class BetaModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        read_server_port("beta")
        return LocalComponentRegistry()

    @create()
    def create_component(self) -> BetaComponentImpl:
        return BetaComponentImpl()

    @create()
    def create_service(self) -> BetaServiceImpl:
        return BetaServiceImpl()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry)


@module(imports=[ServiceModule])
class CallerModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()


def invoke(server: FastAPIServer, method: str) -> tuple[int, dict[str, Any]]:
    """POST a dispatch-json envelope to ``server``; the status and the decoded reply."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        body = json.dumps({"method": method, "args": []})
        connection.request("POST", "/invoke", body, {"content-type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def stopped(server: FastAPIServer) -> bool:
    """True when the server's uvicorn thread and socket are gone."""
    return server.thread is None and server.server is None and server.socket is None


@pytest.fixture
def servers() -> Iterator[dict[str, Environment]]:
    booted: dict[str, Environment] = {}
    ports_seen.clear()
    try:
        booted["alpha"] = FastAPIServer.boot(AlphaModule, host="127.0.0.1", port=0)
        booted["beta"] = FastAPIServer.boot(BetaModule, host="127.0.0.1", port=0)
        yield booted
    finally:
        for environment in booted.values():
            environment.destroy()


def test_two_servers_each_serve_their_own_component(servers):
    alpha, beta = servers["alpha"].get(FastAPIServer), servers["beta"].get(FastAPIServer)
    assert alpha.port != beta.port and 0 not in (alpha.port, beta.port)
    assert ports_seen == {"alpha": alpha.port, "beta": beta.port}
    assert servers["alpha"].get(ServiceManager).settings.port == alpha.port

    assert invoke(alpha, "alpha:alpha-greeter:whoami") == (200, {"result": "alpha", "exception": None})
    assert invoke(beta, "beta:beta-greeter:whoami") == (200, {"result": "beta", "exception": None})
    status, reply = invoke(alpha, "beta:beta-greeter:whoami")
    assert status == 404 and reply["exception"]["type"] == "UnknownMethodException"
    status, reply = invoke(beta, "alpha:alpha-greeter:whoami")
    assert status == 404 and reply["exception"]["type"] == "UnknownMethodException"

    hosted = {name: [h.name for h in env.get(ServiceManager).hosted_components()] for name, env in servers.items()}
    assert hosted == {"alpha": ["alpha"], "beta": ["beta"]}


def test_a_third_environment_calls_both_through_typed_proxies(servers):
    alpha, beta = servers["alpha"].get(FastAPIServer), servers["beta"].get(FastAPIServer)
    caller = Environment(CallerModule)
    try:
        registry = caller.get(ComponentRegistry)
        assert isinstance(registry, LocalComponentRegistry)
        registry.register_remote("alpha", [ChannelAddress("dispatch-json", alpha.url)])
        registry.register_remote("beta", [ChannelAddress("dispatch-json", beta.url)])
        manager = caller.get(ServiceManager)
        assert manager.get_service(AlphaService).whoami() == "alpha"
        assert manager.get_service(BetaService, "dispatch-json").whoami() == "beta"
    finally:
        caller.destroy()


def test_both_stop_cleanly(servers):
    alpha, beta = servers["alpha"].get(FastAPIServer), servers["beta"].get(FastAPIServer)
    servers.pop("alpha").destroy()
    assert stopped(alpha) and not stopped(beta)
    assert invoke(beta, "beta:beta-greeter:whoami")[0] == 200
    with pytest.raises(ConnectionRefusedError):
        invoke(alpha, "alpha:alpha-greeter:whoami")
    servers.pop("beta").destroy()
    assert stopped(beta)


def test_boots_under_way_at_once_each_see_their_own_port():
    global rendezvous
    booted: dict[str, Environment] = {}
    failures: list[BaseException] = []

    def boot(name: str, module_type: type) -> None:
        try:
            booted[name] = FastAPIServer.boot(module_type, host="127.0.0.1", port=0)
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)

    ports_seen.clear()
    rendezvous = threading.Barrier(2)
    threads = [threading.Thread(target=boot, args=("alpha", AlphaModule)),
               threading.Thread(target=boot, args=("beta", BetaModule))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(BOOT_TIMEOUT)
        assert not failures, failures
        assert set(booted) == {"alpha", "beta"}
        ports = {name: environment.get(FastAPIServer).port for name, environment in booted.items()}
        assert ports_seen == ports and ports["alpha"] != ports["beta"]
        assert invoke(booted["alpha"].get(FastAPIServer), "alpha:alpha-greeter:whoami")[1]["result"] == "alpha"
        assert invoke(booted["beta"].get(FastAPIServer), "beta:beta-greeter:whoami")[1]["result"] == "beta"
    finally:
        rendezvous = None
        for environment in booted.values():
            environment.destroy()


@service(name="twin-greeter")
class FirstTwinService(Service):
    @abstractmethod
    def whoami(self) -> str: ...


@component(name="twin", services=[FirstTwinService])
class FirstTwin(Component):
    pass


@service(name="twin-greeter")
class SecondTwinService(Service):
    @abstractmethod
    def whoami(self) -> str: ...


@component(name="twin", services=[SecondTwinService])
class SecondTwin(Component):
    pass


class FirstTwinImpl(DispatchComponentImpl, FirstTwin):
    pass


class SecondTwinImpl(DispatchComponentImpl, SecondTwin):
    pass


@module(imports=[ServiceModule])
class FirstTwinModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_component(self) -> FirstTwinImpl:
        return FirstTwinImpl()


@module(imports=[FirstTwinModule])
class BothTwinsModule:
    @create()
    def create_component(self) -> SecondTwinImpl:
        return SecondTwinImpl()


def test_component_names_are_unique_per_environment_not_per_process():
    first = Environment(FirstTwinModule)
    both = Environment(BothTwinsModule)
    try:
        first.get(ServiceManager).startup(port=1)
        assert [h.descriptor.type for h in first.get(ServiceManager).hosted_components()] == [FirstTwin]
        with pytest.raises(ServiceException, match=r"FirstTwin and SecondTwin are both named 'twin'"):
            both.get(ServiceManager).startup(port=2)
    finally:
        both.destroy()
        first.destroy()
