"""What a server serves and with what: the exposure allow-list, cookies (ResponseContext), no factory at all,
checks computed once per method, TokenContextMiddleware on a user's own route. Real uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
from abc import abstractmethod
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from rawhttp import connect, request
from warpcall import (
    AbstractComponent,
    AuthorizationManager,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    LocalComponentRegistry,
    ResponseContext,
    Service,
    ServiceManager,
    ServiceModule,
    TokenContext,
    TokenContextMiddleware,
    UnknownMethodException,
    blocking,
    component,
    implementation,
    service,
)
from warpcall.di import create, module
from warpcall.di.configuration import ConfigurationSource
from warpcall.routes import get, rest

CHANNELS = ["dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest"]


@service(name="desk")
@rest("/api/desk")
class DeskService(Service):
    @get("/token")
    @abstractmethod
    def token(self) -> str: ...

    @get("/login")
    @abstractmethod
    def login(self, user: str) -> str: ...

    @get("/login-async")
    @abstractmethod
    async def login_async(self, user: str) -> str: ...

    @get("/login-blocking")
    @abstractmethod
    def login_blocking(self, user: str) -> str: ...

    @get("/hidden")
    @abstractmethod
    def hidden(self) -> str: ...


@service(name="back")
@rest("/api/back")
class BackOffice(Service):
    @get("/wipe")
    @abstractmethod
    def wipe(self) -> str: ...


@component(name="office", services=[DeskService, BackOffice])
class OfficeComponent(Component):
    pass


def _login(user: str) -> str:
    response = ResponseContext.create()
    response.set_cookie("session", f"s-{user}", httponly=True, max_age=60)
    response.delete_cookie("old")
    return user


@implementation()
class DeskServiceImpl(DeskService):
    def token(self) -> str:
        return str(TokenContext.get_access_token())

    def login(self, user: str) -> str:
        return _login(user)

    async def login_async(self, user: str) -> str:
        await asyncio.sleep(0)
        return _login(user)

    @blocking
    def login_blocking(self, user: str) -> str:  # runs in the thread pool: the cookies still come back
        return _login(user)

    def hidden(self) -> str:
        return "should not be served"


@implementation()
class BackOfficeImpl(BackOffice):
    def wipe(self) -> str:
        return "wiped"


@implementation()
class OfficeComponentImpl(AbstractComponent, OfficeComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress(name, f"http://127.0.0.1:{port}") for name in CHANNELS]


def make_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(TokenContextMiddleware)  # aspyx-service's middleware, for the app's own routes

    @app.get("/own/token")
    def own_token() -> dict[str, Any]:
        return {"token": TokenContext.get_access_token()}

    return app


SETUP: dict[str, Any] = {}


@module(imports=[ServiceModule])
class ServingModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        app = make_app() if SETUP.get("middleware") else FastAPI()
        return FastAPIServer(app, manager, registry, expose=SETUP.get("expose"))


def boot(**setup: Any) -> Any:
    SETUP.clear()
    SETUP.update(setup)
    return FastAPIServer.boot(ServingModule, host="127.0.0.1", port=0)


@pytest.fixture(scope="module")
def plain():
    """No authorization factory, everything exposed, no middleware."""
    environment = boot()
    yield environment
    environment.destroy()


def raw_lines(port: int, data: bytes) -> tuple[bytes, list[bytes], bytes]:
    with connect(port) as sock:
        sock.sendall(data)
        buffer = b""
        for _ in range(100):
            chunk = sock.recv(65536)
            if not chunk:
                break
            buffer += chunk
            end = buffer.find(b"\r\n\r\n")
            if end >= 0:
                lines = buffer[:end].split(b"\r\n")
                length = next(int(h.split(b":")[1]) for h in lines if h.lower().startswith(b"content-length:"))
                if len(buffer) >= end + 4 + length:
                    return lines[0], [h.lower() for h in lines[1:]], buffer[end + 4:end + 4 + length]
        raise AssertionError(f"no complete response: {buffer!r}")


def test_without_a_factory_calls_pass_and_the_token_still_reaches_the_implementation(plain):
    manager = plain.get(ServiceManager)
    server = plain.get(FastAPIServer)
    assert not server.authorization.has_factories()
    for channel in CHANNELS:
        desk = manager.get_service(DeskService, channel)
        assert desk.token() == "None"
        with TokenContext.use("tok-1"):
            assert desk.token() == "tok-1"
            assert asyncio.run(desk.login_async("x")) == "x"


@pytest.mark.parametrize("method", ["login", "login_async", "login_blocking"])
def test_cookies_set_through_response_context_reach_the_caller(plain, method):
    server = plain.get(FastAPIServer)
    body = b'{"method": "office:desk:%s", "args": ["ada"]}' % method.encode()
    for data in (request("/invoke", body), f"GET /api/desk/{method.replace('_', '-')}?user=ada HTTP/1.1\r\nhost: x\r\n\r\n".encode()):
        status, lines, payload = raw_lines(server.port, data)
        assert status == b"HTTP/1.1 200 OK", payload
        cookies = [line for line in lines if line.startswith(b"set-cookie:")]
        assert any(b"session=s-ada" in c and b"httponly" in c and b"max-age=60" in c for c in cookies), lines
        assert any(b"old=" in c and b"max-age=0" in c for c in cookies), lines
    # through a client too: httpx reads the cookie the REST route set
    with httpx.Client(base_url=server.url, timeout=5) as client:
        response = client.get(f"/api/desk/{method.replace('_', '-')}", params={"user": "bob"})
        assert response.status_code == 200 and response.cookies.get("session") == "s-bob"
    # a call that sets none carries none
    status, lines, _ = raw_lines(server.port, request("/invoke", b'{"method": "office:desk:token", "args": []}'))
    assert status == b"HTTP/1.1 200 OK" and not [line for line in lines if line.startswith(b"set-cookie:")]


def test_checks_are_computed_once_per_method_and_a_late_factory_applies(plain):
    manager = plain.get(ServiceManager)
    server = plain.get(FastAPIServer)
    authorization: AuthorizationManager = server.authorization
    computed: list[str] = []
    seen: list[str | None] = []

    class Counting(AuthorizationManager.AuthorizationFactory):
        def compute_authorization(self, method_descriptor: Any) -> AuthorizationManager.Authorization | None:
            computed.append(method_descriptor.get_name())
            if method_descriptor.get_name() != "token":
                return None

            class Check(AuthorizationManager.Authorization):
                def authorize(self, invocation: Any) -> None:
                    seen.append(TokenContext.get_access_token())

            return Check()

    authorization.register_factory(Counting())  # registered while serving: the server's methods get it now
    try:
        desk = manager.get_service(DeskService, "dispatch-json")
        with TokenContext.use("t"):
            for _ in range(5):
                assert desk.token() == "t"
        assert seen == ["t"] * 5
        assert computed.count("token") == 1 and computed.count("login") == 1  # once per method, up front
    finally:
        authorization.factories.clear()
        authorization.checks = {}
        for method in [*server.endpoint.methods.values(), *(f.respond.method for f in server.rest_fast_path.routes.values())]:
            method.checks = ()


@pytest.fixture(scope="module")
def exposed():
    environment = boot(expose=["office:desk:token", "office:desk:login*"], middleware=True)
    yield environment
    environment.destroy()


def test_only_exposed_methods_are_served(exposed):
    manager = exposed.get(ServiceManager)
    server = exposed.get(FastAPIServer)
    assert sorted(server.endpoint.methods) == [
        "office:desk:login", "office:desk:login_async", "office:desk:login_blocking", "office:desk:token",
    ]
    for channel in ("dispatch-json", "dispatch-msgpack"):
        assert manager.get_service(DeskService, channel).token() == "None"
        with pytest.raises(UnknownMethodException):
            manager.get_service(DeskService, channel).hidden()
        with pytest.raises(UnknownMethodException):
            manager.get_service(BackOffice, channel).wipe()
    with httpx.Client(base_url=server.url, timeout=5) as client:
        assert client.get("/api/desk/token").status_code == 200
        assert client.get("/api/desk/hidden").status_code == 404
        assert client.get("/api/back/wipe").status_code == 404
    # unexposed answers exactly as a method no service declares
    unknown = raw_lines(server.port, request("/invoke", b'{"method": "office:back:wipe", "args": []}'))
    nothing = raw_lines(server.port, request("/invoke", b'{"method": "office:back:nothing", "args": []}'))
    assert unknown[0] == nothing[0] == b"HTTP/1.1 404 Not Found"
    assert unknown[2].replace(b"wipe", b"nothing") == nothing[2]


def test_token_context_middleware_serves_the_apps_own_routes(exposed):
    server = exposed.get(FastAPIServer)
    with httpx.Client(base_url=server.url, timeout=5) as client:
        assert client.get("/own/token").json() == {"token": None}
        assert client.get("/own/token", headers={"Authorization": "Bearer abc"}).json() == {"token": "abc"}
        client.cookies.set("access_token", "from-cookie")
        assert client.get("/own/token").json() == {"token": "from-cookie"}
        client.cookies.clear()
        # warpcall's own routes behind the middleware read the same token
        assert client.get("/api/desk/token", headers={"Authorization": "Bearer xyz"}).json() == "xyz"


def test_a_local_server_logs_no_open_server_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="warpcall.server"):
        environment = boot()
        environment.destroy()
    assert not [r for r in caplog.records if "no authorization factory" in r.getMessage()]


def test_the_warning_names_what_a_real_server_exposes(exposed, caplog):
    """Booted on 127.0.0.1; the check is asked about a non-loopback host (nothing binds beyond loopback)."""
    from warpcall.server.security import exposed_methods, warn_if_open

    server = exposed.get(FastAPIServer)
    with caplog.at_level(logging.WARNING, logger="warpcall.server"):
        assert warn_if_open("0.0.0.0", exposed_methods(server), server.authorization)
    message = caplog.records[-1].getMessage()
    assert "office:desk:token" in message and "office:desk:login_async" in message
    assert "office:desk:hidden" not in message and "office:back:wipe" not in message  # not exposed, not named


class ExposeSetting(ConfigurationSource):
    def load(self) -> dict[str, Any]:
        return {"server": {"expose": "office:desk:token, office:back"}}


@module(imports=[ServiceModule])
class ConfiguredModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_settings(self) -> ConfigurationSource:
        return ExposeSetting()

    @create()
    def create_server(
        self, manager: ServiceManager, registry: ComponentRegistry, settings: ConfigurationSource
    ) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry)  # no expose=...: the server.expose setting decides


def test_the_server_expose_setting_is_the_allow_list_when_the_server_names_none():
    environment = FastAPIServer.boot(ConfiguredModule, host="127.0.0.1", port=0)
    try:
        server = environment.get(FastAPIServer)
        assert sorted(server.endpoint.methods) == ["office:back:wipe", "office:desk:token"]
        manager = environment.get(ServiceManager)
        assert manager.get_service(BackOffice, "dispatch-json").wipe() == "wiped"
        with pytest.raises(UnknownMethodException):
            manager.get_service(DeskService, "dispatch-json").login("x")
    finally:
        environment.destroy()


def test_cookies_of_the_very_first_call_in_the_thread_pool_come_back():
    """The server sees at startup that an implementation names ResponseContext, so even the first call, run in a
    worker on a copy of the request's context, finds the cookie holder prepared."""
    from warpcall.server import context

    context.RESPONSES[0] = False  # as in a fresh process
    environment = boot()
    try:
        assert context.RESPONSES[0] is True
        server = environment.get(FastAPIServer)
        status, lines, _ = raw_lines(
            server.port, request("/invoke", b'{"method": "office:desk:login_blocking", "args": ["first"]}')
        )
        assert status == b"HTTP/1.1 200 OK"
        assert any(line.startswith(b"set-cookie: session=s-first") for line in lines), lines
    finally:
        environment.destroy()
