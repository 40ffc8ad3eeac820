"""Tokens across the two implementations, on real servers on 127.0.0.1.

- an aspyx-service 0.11.6 client (``aspyx_side/auth_client.py``) with ``TokenContext`` set calls a warpcall
  server guarded by warpcall's JWT factory: the token reaches the implementation; a missing, expired or
  invalid token and a missing role are refused with the exception types aspyx's client raises for them;
- a warpcall client with ``TokenContext`` set calls an aspyx-service server (``aspyx_side/auth_server.py``):
  the token reaches the aspyx implementation through aspyx's ``TokenContextMiddleware``.
"""

from __future__ import annotations

import asyncio
import json
import time
from abc import abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import jwt
import pytest
from fastapi import FastAPI

from conftest import AspyxServer, run_script
from warpcall import (
    AbstractComponent,
    AuthorizationManager,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    LocalComponentRegistry,
    Service,
    ServiceManager,
    ServiceModule,
    TokenContext,
    component,
    implementation,
    service,
)
from warpcall.auth import JWTAuthorizationFactory, roles
from warpcall.di import Environment, create, module
from warpcall.service import component_descriptor

CHANNELS = ["dispatch-json", "dispatch-msgpack"]
SECRET = "an-interop-secret-of-32-bytes-or-more!"


@service(name="vault")
class VaultService(Service):
    @abstractmethod
    def whoami(self) -> Optional[str]: ...

    @roles("admin")
    @abstractmethod
    def secret(self) -> str: ...

    @abstractmethod
    async def whoami_async(self) -> Optional[str]: ...


@component(name="authinterop", services=[VaultService])
class AuthInteropComponent(Component):
    pass


@implementation()
class VaultServiceImpl(VaultService):
    def whoami(self) -> Optional[str]:
        return TokenContext.get_access_token()

    def secret(self) -> str:
        return "warpcall secret"

    async def whoami_async(self) -> Optional[str]:
        return TokenContext.get_access_token()


@implementation()
class AuthInteropComponentImpl(AbstractComponent, AuthInteropComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress(channel, f"http://127.0.0.1:{port}") for channel in CHANNELS]


@module(imports=[ServiceModule])
class AuthServerModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_server(
        self, manager: ServiceManager, registry: ComponentRegistry, authorization: AuthorizationManager
    ) -> FastAPIServer:
        authorization.register_factory(JWTAuthorizationFactory(SECRET, audience="interop"))
        return FastAPIServer(FastAPI(), manager, registry)


@module(imports=[ServiceModule])
class AuthClientModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()


def token(sub: str, role_names: list[str], expires_in: float = 300, secret: str = SECRET) -> str:
    claims = {"sub": sub, "roles": role_names, "aud": "interop", "exp": int(time.time() + expires_in)}
    return jwt.encode(claims, secret, algorithm="HS256")


# aspyx-service client -> warpcall server


@pytest.fixture(scope="module")
def warpcall_url() -> Iterator[str]:
    environment = FastAPIServer.boot(AuthServerModule, host="127.0.0.1", port=0)
    try:
        yield environment.get(FastAPIServer).url
    finally:
        environment.destroy()


@pytest.fixture(scope="module")
def tokens() -> dict[str, str | None]:
    """The tokens the aspyx client sends, made when the client runs: made at import, their five minutes
    could run out before a long suite reaches these tests."""
    return {
        "admin": token("ada", ["admin"]),
        "user": token("bob", ["user"]),
        "missing": None,
        "expired": token("eve", ["admin"], expires_in=-120),
        "invalid": token("mallory", ["admin"], secret="not-the-secret-but-32-bytes-long!!"),
    }


@pytest.fixture(scope="module")
def aspyx_report(aspyx_python: Path, warpcall_url: str, tokens: dict[str, str | None]) -> dict[str, Any]:
    code, stdout, stderr = run_script(aspyx_python, "auth_client.py", warpcall_url, json.dumps(tokens))
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    if code != 0 or not lines:
        pytest.fail(f"the aspyx client failed (exit {code}):\n{stdout}\n{stderr[-4000:]}")
    report: dict[str, Any] = json.loads(lines[-1][len("RESULT "):])
    return report


@pytest.mark.parametrize("channel", CHANNELS)
def test_an_aspyx_client_token_reaches_the_warpcall_implementation(
    aspyx_report: dict[str, Any], tokens: dict[str, str | None], channel: str
) -> None:
    cases = aspyx_report[channel]
    assert cases["admin"]["whoami"] == {"ok": True, "value": tokens["admin"]}
    assert cases["admin"]["secret"] == {"ok": True, "value": "warpcall secret"}
    assert cases["user"]["whoami"] == {"ok": True, "value": tokens["user"]}
    assert cases["admin"]["whoami_async"] == {"ok": True, "value": tokens["admin"]}


@pytest.mark.parametrize("channel", CHANNELS)
def test_an_aspyx_client_is_refused_with_aspyx_exception_types(aspyx_report: dict[str, Any], channel: str) -> None:
    cases = aspyx_report[channel]
    for case, expected in (
        ("missing", "MissingTokenException"),
        ("expired", "TokenExpiredException"),
        ("invalid", "InvalidTokenException"),
    ):
        for method in ("whoami", "secret", "whoami_async"):
            assert cases[case][method]["ok"] is False, (case, method)
            assert raised(cases[case][method], channel) == expected, (case, method, cases[case][method])
    # a valid token without the role: 403, which aspyx's client raises as its AuthorizationException
    denied = cases["user"]["secret"]
    assert denied["ok"] is False and raised(denied, channel) == "AuthorizationException", denied
    assert "403" in (denied["message"] if channel == "dispatch-json" else denied["cause_message"])


def raised(outcome: dict[str, Any], channel: str) -> str:
    """The aspyx exception type a refusal became. aspyx's own msgpack channel wraps every exception of its
    HTTPXChannel.request (its token exceptions included) in ``ServiceException("msgpack exception: ...")``,
    with the token exception as the cause: that is aspyx-service 0.11.6's behaviour against any server."""
    if channel == "dispatch-msgpack":
        assert outcome["error_type"] == "ServiceException" and outcome["message"].startswith("msgpack exception"), outcome
        return str(outcome["cause_type"])
    return str(outcome["error_type"])


# warpcall client -> aspyx-service server


@pytest.fixture(scope="module")
def aspyx_auth_server(aspyx_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AspyxServer]:
    server = AspyxServer(aspyx_python, tmp_path_factory.mktemp("aspyx-auth-server"), script="auth_server.py")
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def warpcall_client(aspyx_auth_server: AspyxServer) -> Iterator[ServiceManager]:
    environment = Environment(AuthClientModule)
    try:
        environment.get(ComponentRegistry).register(
            component_descriptor(AuthInteropComponent),
            [ChannelAddress(channel, aspyx_auth_server.url) for channel in CHANNELS],
        )
        yield environment.get(ServiceManager)
    finally:
        environment.destroy()


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_warpcall_client_token_reaches_the_aspyx_implementation(warpcall_client: ServiceManager, channel: str) -> None:
    vault = warpcall_client.get_service(VaultService, channel)
    with TokenContext.use("opaque-token-1"):
        # aspyx's TokenContextMiddleware stores the Authorization header's whole value
        assert vault.whoami() == "Bearer opaque-token-1"
    with TokenContext.use("opaque-token-2"):
        assert vault.whoami() == "Bearer opaque-token-2"
        assert asyncio.run(vault.whoami_async()) == "Bearer opaque-token-2"
    # no token set: none is sent, and aspyx's context holds none
    assert vault.whoami() is None
