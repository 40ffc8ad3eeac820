"""Authorization end to end: real uvicorn on 127.0.0.1, real clients, every channel, sync and async, every server path.

The server paths: ``inline`` (the server's protocol answers /invoke from the bytes or after uvicorn's parser,
and the REST routes without FastAPI), ``asgi`` (``inline_protocol=False``: /invoke through the dispatch
endpoint's ASGI app, REST through the fast path's ASGI answer) and ``middleware`` (a user middleware: every
request through FastAPI, /invoke included).
"""

from __future__ import annotations

import asyncio
import time
from abc import abstractmethod
from typing import Any

import jwt
import pytest
from fastapi import FastAPI

from rawhttp import Reader, connect, request, wait_until
from warpcall import (
    AbstractComponent,
    AuthorizationException,
    AuthorizationManager,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    InvalidTokenException,
    LocalComponentRegistry,
    MissingTokenException,
    RequestContext,
    Service,
    ServiceManager,
    ServiceModule,
    TokenContext,
    TokenExpiredException,
    UnknownMethodException,
    component,
    implementation,
    service,
)
from warpcall.auth import JWTAuthorizationFactory, current_claims, public, roles
from warpcall.di import create, module
from warpcall.exceptions import TokenException
from warpcall.routes import get, rest

CHANNELS = ["dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest"]
SECRET = "a-secret-of-32-bytes-or-more-for-hs256!"
AUDIENCE = "vault-api"
ISSUER = "https://issuer.test"


def token(sub: str = "ada", role_names: tuple[str, ...] = ("user",), *, expires_in: float = 300,
          secret: str = SECRET, audience: str = AUDIENCE, **extra: Any) -> str:
    claims = {"sub": sub, "roles": list(role_names), "aud": audience, "iss": ISSUER,
              "exp": int(time.time() + expires_in), **extra}
    return jwt.encode(claims, secret, algorithm="HS256")


@service(name="vault")
@rest("/api/vault")
class VaultService(Service):
    @get("/whoami")
    @abstractmethod
    def whoami(self) -> str: ...

    @get("/secret")
    @roles("admin")
    @abstractmethod
    def secret(self) -> str: ...

    @get("/ping")
    @public()
    @abstractmethod
    def ping(self) -> str: ...

    @get("/probe")
    @abstractmethod
    def probe(self) -> str: ...

    @get("/async/whoami")
    @abstractmethod
    async def whoami_async(self) -> str: ...

    @get("/async/secret")
    @roles("admin")
    @abstractmethod
    async def secret_async(self) -> str: ...


@component(name="bank", services=[VaultService])
class BankComponent(Component):
    pass


CALLS: list[str] = []


def _who() -> str:
    claims = current_claims()
    return f"{claims['sub'] if claims else None}|{TokenContext.get_access_token()}"


@implementation()
class VaultServiceImpl(VaultService):
    def whoami(self) -> str:
        CALLS.append("whoami")
        return _who()

    def secret(self) -> str:
        CALLS.append("secret")
        return "the gold is in the basement"

    def ping(self) -> str:
        return f"pong|{TokenContext.get_access_token()}"

    def probe(self) -> str:
        request = RequestContext.get_request()
        return f"{request.headers.get('x-probe')}|{request.url.path}|{request.client.host if request.client else None}"

    async def whoami_async(self) -> str:
        await asyncio.sleep(0)
        CALLS.append("whoami_async")
        return _who()

    async def secret_async(self) -> str:
        await asyncio.sleep(0)
        CALLS.append("secret_async")
        return "async gold"


@implementation()
class BankComponentImpl(AbstractComponent, BankComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress(name, f"http://127.0.0.1:{port}") for name in CHANNELS]


def make_app(kind: str) -> FastAPI:
    app = FastAPI()
    if kind == "middleware":
        @app.middleware("http")
        async def passthrough(request: Any, call_next: Any) -> Any:  # any middleware sends every call via FastAPI
            return await call_next(request)
    return app


SERVER_KIND = {"kind": "inline"}


@module(imports=[ServiceModule])
class AuthModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_server(
        self, manager: ServiceManager, registry: ComponentRegistry, authorization: AuthorizationManager
    ) -> FastAPIServer:
        kind = SERVER_KIND["kind"]
        authorization.register_factory(
            JWTAuthorizationFactory(SECRET, audience=AUDIENCE, issuer=ISSUER, leeway=0)
        )
        return FastAPIServer(make_app(kind), manager, registry, inline_protocol=kind != "asgi")


@pytest.fixture(scope="module", params=["inline", "asgi", "middleware"])
def environment(request):
    SERVER_KIND["kind"] = request.param
    environment = FastAPIServer.boot(AuthModule, host="127.0.0.1", port=0)
    yield environment
    environment.destroy()


@pytest.fixture(scope="module")
def server(environment) -> FastAPIServer:
    return environment.get(FastAPIServer)


@pytest.fixture(scope="module")
def manager(environment) -> ServiceManager:
    return environment.get(ServiceManager)


def call(manager: ServiceManager, channel: str, name: str, mode: str) -> Any:
    proxy = manager.get_service(VaultService, channel)
    if mode == "sync":
        return getattr(proxy, name)()
    return asyncio.run(getattr(proxy, name + "_async")())


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("channel", CHANNELS)
def test_the_token_reaches_the_implementation(manager, channel, mode):
    admin = token("ada", ("admin",))
    with TokenContext.use(admin):
        assert call(manager, channel, "whoami", mode) == f"ada|{admin}"
        assert call(manager, channel, "secret", mode) in ("the gold is in the basement", "async gold")
    # each call carries its own token: another caller, another identity
    with TokenContext.use(token("bob")):
        assert call(manager, channel, "whoami", mode).startswith("bob|")


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("channel", CHANNELS)
def test_refusals_raise_their_exception_type_and_never_run_the_implementation(manager, channel, mode):
    cases = [
        (None, MissingTokenException),
        (token(expires_in=-60), TokenExpiredException),
        (token(secret="another-secret-of-32-bytes-or-more!!"), InvalidTokenException),
        (token(audience="someone-else"), InvalidTokenException),
        ("not.a.jwt", InvalidTokenException),
    ]
    for value, expected in cases:
        CALLS.clear()
        if value is None:
            with pytest.raises(expected) as info:
                call(manager, channel, "whoami", mode)
        else:
            with TokenContext.use(value), pytest.raises(expected) as info:
                call(manager, channel, "whoami", mode)
        assert type(info.value) is expected, (value, info.value)
        assert CALLS == [], value  # refused before the implementation
    # a valid token without the role: 403, an AuthorizationException that is no token error
    CALLS.clear()
    with TokenContext.use(token("bob", ("user",))), pytest.raises(AuthorizationException) as denied:
        call(manager, channel, "secret", mode)
    assert not isinstance(denied.value, TokenException)
    assert CALLS == []


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_public_method_needs_no_token_and_still_sees_one(manager, channel):
    vault = manager.get_service(VaultService, channel)
    assert vault.ping() == "pong|None"
    with TokenContext.use("anything"):
        assert vault.ping() == "pong|anything"


def invoke(server: FastAPIServer, body: bytes, extra: str = "", *, in_pieces: bool = False) -> tuple[bytes, dict[bytes, bytes], bytes]:
    data = request("/invoke", body, extra=extra)
    with connect(server.port) as sock:
        if in_pieces:  # the head's end in a second write, once the server read the first: uvicorn's parser takes it
            cut = data.index(b"\r\n\r\n") + 2
            sock.sendall(data[:cut])
            assert server.server is not None
            wait_until(lambda: any(
                getattr(c, "_in_message", c.headers is not None and c.cycle is None)
                for c in server.server.server_state.connections
            ))
            sock.sendall(data[cut:])
        else:
            sock.sendall(data)
        return Reader(sock).response()


def rest_get(port: int, path: str, extra: str = "") -> tuple[bytes, dict[bytes, bytes], bytes]:
    with connect(port) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n{extra}\r\n".encode())
        return Reader(sock).response()


WHOAMI = b'{"method": "bank:vault:whoami", "args": []}'


@pytest.mark.parametrize("in_pieces", [False, True], ids=["one-chunk", "in-pieces"])
def test_raw_refusals_carry_the_bearer_challenge(server, in_pieces):
    status, headers, body = invoke(server, WHOAMI, in_pieces=in_pieces)
    assert status == b"HTTP/1.1 401 Unauthorized"
    challenge = headers[b"www-authenticate"]
    assert challenge.startswith(b'Bearer error="invalid_token"') and b"missing" in challenge
    assert b"MissingTokenException" in body and headers[b"content-type"] == b"application/json"
    status, headers, _ = invoke(server, WHOAMI, f"authorization: Bearer {token(expires_in=-60)}\r\n", in_pieces=in_pieces)
    assert status == b"HTTP/1.1 401 Unauthorized" and b"expired" in headers[b"www-authenticate"]
    status, headers, _ = invoke(server, WHOAMI, "authorization: Bearer garbage\r\n", in_pieces=in_pieces)
    assert status == b"HTTP/1.1 401 Unauthorized"
    assert b"expired" not in headers[b"www-authenticate"] and b"missing" not in headers[b"www-authenticate"]
    status, headers, body = invoke(
        server, b'{"method": "bank:vault:secret", "args": []}', f"authorization: Bearer {token()}\r\n",
        in_pieces=in_pieces,
    )
    assert status == b"HTTP/1.1 403 Forbidden" and b"www-authenticate" not in headers
    assert b"AuthorizationException" in body
    status, _, body = invoke(server, WHOAMI, f"authorization: Bearer {token('eve')}\r\n", in_pieces=in_pieces)
    assert status == b"HTTP/1.1 200 OK" and b"eve|" in body


def test_raw_rest_refusals_carry_the_bearer_challenge(server):
    served = server.rest_fast_path.served
    status, headers, body = rest_get(server.port, "/api/vault/whoami")
    assert status == b"HTTP/1.1 401 Unauthorized" and b"missing" in headers[b"www-authenticate"]
    assert b'"type":"MissingTokenException"' in body
    status, headers, body = rest_get(server.port, "/api/vault/secret", f"authorization: Bearer {token()}\r\n")
    assert status == b"HTTP/1.1 403 Forbidden" and b'"type":"AuthorizationException"' in body
    status, _, body = rest_get(server.port, "/api/vault/whoami", f"Authorization: bearer {token('zoe')}\r\n")
    assert status == b"HTTP/1.1 200 OK" and body.startswith(b'"zoe|')
    # the REST fast path answered them, but with middleware (FastAPI answers every request)
    assert server.rest_fast_path.served == served + (0 if SERVER_KIND["kind"] == "middleware" else 3)


@pytest.mark.parametrize("in_pieces", [False, True], ids=["one-chunk", "in-pieces"])
def test_a_call_with_a_token_stays_on_the_inline_paths(server, in_pieces):
    """The token is read where the call is answered: a call with one takes the same path as one without."""
    assert server.protocol_class is not None
    stats = server.protocol_class.stats
    served, unparsed = stats.served, stats.unparsed
    status, _, body = invoke(server, WHOAMI, f"authorization: Bearer {token('una')}\r\n", in_pieces=in_pieces)
    assert status == b"HTTP/1.1 200 OK" and b"una|" in body
    inline = SERVER_KIND["kind"] == "inline"  # the others answer through ASGI (no inline protocol, or middleware)
    assert stats.served == served + inline
    assert stats.unparsed == unparsed + (inline and not in_pieces)


@pytest.mark.parametrize("path", ["/invoke", "/api/vault/whoami"])
def test_differing_authorization_headers_are_refused(server, path):
    first, second = token("ada"), token("mallory", ("admin",))
    twice = f"authorization: Bearer {first}\r\nauthorization: Bearer {second}\r\n"
    if path == "/invoke":
        status, _, body = invoke(server, WHOAMI, twice)
        assert b"MalformedRequestException" in body
    else:
        status, _, body = rest_get(server.port, path, twice)
    assert status == b"HTTP/1.1 400 Bad Request", body
    assert b"authorization" in body
    # the same value twice is one token
    same = f"authorization: Bearer {first}\r\nauthorization: Bearer {first}\r\n"
    if path == "/invoke":
        status, _, body = invoke(server, WHOAMI, same)
    else:
        status, _, body = rest_get(server.port, path, same)
    assert status == b"HTTP/1.1 200 OK" and b"ada|" in body


@pytest.mark.parametrize("channel", CHANNELS)
def test_request_context_gives_the_implementation_its_request(manager, server, channel):
    vault = manager.get_service(VaultService, channel)
    with TokenContext.use(token()):
        text = vault.probe()
    probe, path, client = text.split("|")
    assert path == ("/api/vault/probe" if channel == "rest" else "/invoke")
    assert client == "127.0.0.1"
    # a header the caller sent, on the one-chunk path too
    status, _, body = invoke(
        server, b'{"method": "bank:vault:probe", "args": []}',
        f"authorization: Bearer {token()}\r\nx-probe: hello\r\n",
    )
    assert status == b"HTTP/1.1 200 OK" and body.startswith(b'{"result":"hello|/invoke|127.0.0.1"'), body
    status, _, body = rest_get(server.port, "/api/vault/probe", f"authorization: Bearer {token()}\r\nx-probe: rest\r\n")
    assert status == b"HTTP/1.1 200 OK" and body == b'"rest|/api/vault/probe|127.0.0.1"'


def test_request_context_outside_a_call_says_so():
    with pytest.raises(LookupError, match="only available while a remote call runs"):
        RequestContext.get_request()


def test_unknown_methods_are_still_unknown_before_any_token_check(manager, server):
    status, _, body = invoke(server, b'{"method": "bank:vault:nothing", "args": []}')
    assert status == b"HTTP/1.1 404 Not Found" and b"UnknownMethodException" in body
    assert UnknownMethodException.__name__.encode() in body
