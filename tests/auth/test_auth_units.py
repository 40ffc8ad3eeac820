"""AuthorizationManager, the JWT factory (HS256 and RS256), sessions, exposure and the open-server warning."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from rawhttp import wait_until
from warpcall import (
    AbstractAuthorizationFactory,
    AuthorizationException,
    AuthorizationManager,
    InvalidTokenException,
    MissingTokenException,
    ServiceModule,
    Session,
    SessionContext,
    SessionManager,
    TokenContext,
    TokenExpiredException,
)
from warpcall.auth import JWTAuthorizationFactory, current_claims, public, required_roles, roles
from warpcall.authorization import get_method_class
from warpcall.di import Environment, injectable, module, order
from warpcall.di.aop import Invocation
from warpcall.reflection import TypeDescriptor
from warpcall.server.security import Exposure, challenge, is_loopback, warn_if_open

# --- AuthorizationManager -----------------------------------------------------------------------------


class Account:
    def balance(self, who: str) -> int:
        return 7

    class Inner:
        def deep(self) -> None: ...


class Recording(AuthorizationManager.AuthorizationFactory):
    def __init__(self, name: str, log: list[str], order: int = 0) -> None:
        super().__init__(order)
        self.name, self.log = name, log
        self.computed: list[str] = []

    def compute_authorization(self, method_descriptor: Any) -> AuthorizationManager.Authorization | None:
        self.computed.append(method_descriptor.get_name())
        factory = self

        class Check(AuthorizationManager.Authorization):
            def authorize(self, invocation: Invocation) -> None:
                factory.log.append(f"{factory.name}:{invocation.func.__name__}:{invocation.args[1:]}")

        return Check()


def test_get_method_class_finds_the_defining_class():
    assert get_method_class(Account.balance) is Account
    assert get_method_class(Account().balance) is Account
    assert get_method_class(Account.Inner.deep) is Account.Inner
    assert get_method_class(len) is None
    assert get_method_class(lambda: None) is None


def test_factories_run_in_order_and_checks_are_computed_once_per_method():
    manager = AuthorizationManager()
    log: list[str] = []
    late, early = Recording("late", log, order=10), Recording("early", log, order=-1)
    manager.register_factory(late)
    manager.register_factory(early)
    assert [f.name for f in manager.factories] == ["early", "late"]  # type: ignore[attr-defined]
    for amount in range(3):
        manager.authorize(Invocation(Account.balance, (Account(), f"u{amount}")))
    assert log == [f"{name}:balance:('u{n}',)" for n in range(3) for name in ("early", "late")]
    assert early.computed == ["balance"] and late.computed == ["balance"]  # once, then cached
    # the descriptor handed to factories is aspyx's TypeDescriptor.MethodDescriptor
    assert isinstance(TypeDescriptor.for_type(Account).get_method("balance"), TypeDescriptor.MethodDescriptor)
    # a new factory: the checks are computed again, and the server is told
    told: list[int] = []
    manager.watch(lambda: told.append(len(manager.factories)))
    manager.register_factory(Recording("third", log))
    assert told == [2, 3] and early.computed == ["balance"]
    manager.authorize(Invocation(Account.balance, (Account(), "x")))
    assert early.computed == ["balance", "balance"]


def test_a_refusing_check_stops_the_invocation():
    class Deny(AuthorizationManager.AuthorizationFactory):
        def compute_authorization(self, method_descriptor: Any) -> AuthorizationManager.Authorization:
            class Check(AuthorizationManager.Authorization):
                def authorize(self, invocation: Invocation) -> None:
                    raise AuthorizationException("no")

            return Check()

    manager = AuthorizationManager()
    manager.register_factory(Deny())
    with pytest.raises(AuthorizationException, match="no"):
        manager.authorize(Invocation(Account.balance, (Account(), "x")))


REGISTERED: list[Any] = []


@injectable()
@order(3)
class OrderedFactory(AbstractAuthorizationFactory):
    def compute_authorization(self, method_descriptor: Any) -> AuthorizationManager.Authorization | None:
        REGISTERED.append(method_descriptor.get_name())
        return None


@module(imports=[ServiceModule])  # warpcall's injectables: AuthorizationManager among them
class FactoryModule:
    pass


def test_an_abstract_factory_registers_itself_with_its_order():
    environment = Environment(FactoryModule)
    try:
        factory = environment.get(OrderedFactory)
        manager = environment.get(AuthorizationManager)
        assert factory.order == 3
        assert factory in manager.factories
        assert manager.get_checks(Account.balance) == [] and REGISTERED == ["balance"]
    finally:
        environment.destroy()


# --- JWT ---------------------------------------------------------------------------------------------

SECRET = "a-secret-of-32-bytes-or-more-for-hs256!"


@roles("admin")
class Guarded:
    def admin_only(self) -> None: ...

    @roles("auditor", "admin")
    def audit(self) -> None: ...

    @public()
    def open(self) -> None: ...


class GuardedImpl(Guarded):
    def admin_only(self) -> None: ...

    def plain(self) -> None: ...


class Loose:
    def anyone(self) -> None: ...


def check_of(factory: JWTAuthorizationFactory, cls: type, name: str) -> Any:
    return factory.compute_authorization(TypeDescriptor.for_type(cls).get_method(name))


def run(check: Any, token: str | None) -> Any:
    with TokenContext.use(token) if token is not None else TokenContext.use(""):  # type: ignore[arg-type]
        check.authorize(Invocation(Loose.anyone, (Loose(),)))
        return current_claims()


def test_roles_are_read_from_the_method_then_the_class_up_the_hierarchy():
    describe = TypeDescriptor.for_type
    assert required_roles(describe(GuardedImpl).get_method("admin_only")) == frozenset({"admin"})
    assert required_roles(describe(GuardedImpl).get_method("audit")) == frozenset({"auditor", "admin"})
    assert required_roles(describe(GuardedImpl).get_method("plain")) == frozenset({"admin"})
    assert required_roles(describe(GuardedImpl).get_method("open")) is False
    assert required_roles(describe(Loose).get_method("anyone")) is None
    with pytest.raises(ValueError):
        roles()


def hs256(**claims: Any) -> str:
    body = {"sub": "ada", "exp": int(time.time()) + 60, **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, SECRET, algorithm="HS256")


def test_hs256_tokens_with_audience_issuer_roles_and_leeway():
    factory = JWTAuthorizationFactory(SECRET, audience="api", issuer="https://iss", leeway=30)
    anyone = check_of(factory, Loose, "anyone")
    assert check_of(factory, Guarded, "open") is None  # public: no check at all
    good = hs256(aud="api", iss="https://iss", roles=["user"])
    assert run(anyone, good)["sub"] == "ada"
    # expired 10 s ago: within the 30 s leeway it still passes; 60 s ago it does not
    assert run(anyone, hs256(aud="api", iss="https://iss", exp=int(time.time()) - 10))["sub"] == "ada"
    with pytest.raises(TokenExpiredException):
        run(anyone, hs256(aud="api", iss="https://iss", exp=int(time.time()) - 60))
    for bad in (
        hs256(aud="other", iss="https://iss"),  # audience
        hs256(aud="api", iss="https://elsewhere"),  # issuer
        hs256(aud="api", iss="https://iss", exp=None),  # no expiry: refused (require exp)
        jwt.encode({"sub": "x", "aud": "api", "iss": "https://iss", "exp": int(time.time()) + 60}, "x" * 40),  # key
        jwt.encode({"sub": "x", "aud": "api", "exp": int(time.time()) + 60}, None, algorithm="none"),  # unsigned
        "garbage",
    ):
        with pytest.raises(InvalidTokenException):
            run(anyone, bad)
    with pytest.raises(MissingTokenException):
        run(anyone, None)
    audit = check_of(factory, GuardedImpl, "audit")
    assert run(audit, hs256(aud="api", iss="https://iss", roles="user auditor"))["sub"] == "ada"  # scope-style string
    with pytest.raises(AuthorizationException) as denied:
        run(audit, hs256(aud="api", iss="https://iss", roles=["user"]))
    assert type(denied.value) is AuthorizationException and "auditor" in str(denied.value)
    with pytest.raises(ValueError):
        JWTAuthorizationFactory(SECRET, algorithms=["none"])


def test_rs256_tokens():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    factory = JWTAuthorizationFactory(public_pem, algorithms=["RS256"], audience="api")
    check = check_of(factory, Loose, "anyone")
    token = jwt.encode({"sub": "rsa", "aud": "api", "exp": int(time.time()) + 60}, key, algorithm="RS256")
    assert run(check, token)["sub"] == "rsa"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode({"sub": "rsa", "aud": "api", "exp": int(time.time()) + 60}, other, algorithm="RS256")
    with pytest.raises(InvalidTokenException):
        run(check, forged)
    # an HS256 token signed with the public key as secret (algorithm confusion) is refused
    with pytest.raises(InvalidTokenException):
        run(check, jwt.encode({"sub": "x", "aud": "api", "exp": int(time.time()) + 60}, "k" * 40, algorithm="HS256"))
    expired = jwt.encode({"sub": "rsa", "aud": "api", "exp": int(time.time()) - 5}, key, algorithm="RS256")
    with pytest.raises(TokenExpiredException):
        run(check, expired)


def test_challenges_carry_the_words_aspyx_clients_read():
    assert challenge(MissingTokenException("x")) == b'Bearer error="invalid_token", error_description="the access token is missing"'
    assert b"expired" in challenge(TokenExpiredException("missing")) and b"missing" not in challenge(TokenExpiredException("missing"))
    plain = challenge(InvalidTokenException("expired? missing?"))
    assert b"invalid_token" in plain and b"expired" not in plain and b"missing" not in plain


# --- exposure and the warning --------------------------------------------------------------------------


def test_exposure_patterns():
    everything = Exposure(None)
    assert everything.allows("a:b:c")
    exposure = Exposure(["shop", "bank:vault", "bank:admin:ping", "ops:*:health*"])
    assert exposure.allows("shop:orders:pay") and exposure.allows("bank:vault:whoami")
    assert exposure.allows("bank:admin:ping") and not exposure.allows("bank:admin:wipe")
    assert exposure.allows("ops:x:healthz") and not exposure.allows("ops:x:restart")
    assert not exposure.allows("other:s:m")
    assert Exposure("shop, bank:vault").patterns == ("shop", "bank:vault")
    assert Exposure([]).allows("a:b:c") is False
    with pytest.raises(ValueError):
        Exposure(["a:b:c:d"])


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.1.2.3", True), ("localhost", True), ("::1", True), ("[::1]", True),
    ("0.0.0.0", False), ("10.0.0.5", False), ("::", False), ("example.internal", False),
])
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback


def test_the_open_server_warning_names_the_methods(caplog):
    methods = ["bank:vault:whoami", "bank:vault:secret"]
    with caplog.at_level(logging.WARNING, logger="warpcall.server"):
        assert warn_if_open("0.0.0.0", methods, AuthorizationManager()) is True
    [record] = caplog.records
    assert "0.0.0.0" in record.getMessage() and "no authorization factory" in record.getMessage()
    assert "bank:vault:secret, bank:vault:whoami" in record.getMessage()
    caplog.clear()
    guarded = AuthorizationManager()
    guarded.register_factory(JWTAuthorizationFactory(SECRET))
    with caplog.at_level(logging.WARNING, logger="warpcall.server"):
        assert warn_if_open("10.0.0.5", methods, guarded) is False
        assert warn_if_open("127.0.0.1", methods, AuthorizationManager()) is False
        assert warn_if_open("10.0.0.5", [], AuthorizationManager()) is False
    assert caplog.records == []


# --- sessions ------------------------------------------------------------------------------------------


class UserSession(Session):
    def __init__(self, user: str) -> None:
        super().__init__()
        self.user = user


def test_sessions_expire_against_the_clock():
    manager = SessionManager(SessionManager.InMemoryStorage(max_size=10, ttl=3600))
    manager.set_factory(UserSession)
    session = manager.create_session("ada")
    assert isinstance(session, UserSession) and session.user == "ada"
    # store_session counts whole seconds to the expiry, as aspyx-service does: one second from now
    stored = time.monotonic()
    manager.store_session("t1", session, datetime.now(timezone.utc) + timedelta(seconds=1.2))
    manager.store_session("t2", UserSession("bob"), datetime.now(timezone.utc) + timedelta(hours=1))
    assert manager.read_session("t1") is session
    wait_until(lambda: manager.read_session("t1") is None, timeout=3.0, what="the session's expiry")
    assert time.monotonic() - stored >= 0.99  # not before its time
    assert manager.read_session("t2").user == "bob"
    # an expiry already past stores nothing readable
    manager.store_session("t3", UserSession("eve"), datetime.now(timezone.utc) - timedelta(seconds=5))
    assert manager.read_session("t3") is None
    assert manager.read_session("never") is None


def test_the_storage_ttl_caps_every_session_and_its_size_is_bounded():
    storage = SessionManager.InMemoryStorage(max_size=3, ttl=1)
    stored = time.monotonic()
    storage.store("long", UserSession("ada"), 3600)  # capped at the storage's 1 s
    wait_until(lambda: storage.read("long") is None, timeout=3.0, what="the storage ttl")
    assert time.monotonic() - stored >= 0.99
    big = SessionManager.InMemoryStorage(max_size=3, ttl=60)
    for n in range(5):
        big.store(f"t{n}", UserSession(str(n)), 60)
    assert len(big) == 3 and big.read("t0") is None and big.read("t1") is None and big.read("t4").user == "4"
    with pytest.raises(ValueError):
        SessionManager.InMemoryStorage(max_size=0)


def test_session_context_and_a_missing_factory():
    assert SessionContext.get(UserSession) is None
    SessionContext.set(UserSession("ctx"))
    assert SessionContext.get(UserSession).user == "ctx"
    SessionContext.clear()
    assert SessionContext.get(UserSession) is None
    with pytest.raises(RuntimeError, match="set_factory"):
        SessionManager(SessionManager.InMemoryStorage()).create_session("x")


def test_a_custom_storage_plugs_in():
    class DictStorage(SessionManager.Storage):
        def __init__(self) -> None:
            self.data: dict[str, tuple[Session, int]] = {}

        def store(self, token: str, session: Session, ttl_seconds: int) -> None:
            self.data[token] = (session, ttl_seconds)

        def read(self, token: str) -> Session | None:
            entry = self.data.get(token)
            return entry[0] if entry else None

    storage = DictStorage()
    manager = SessionManager(storage)
    session = UserSession("x")
    manager.store_session("tok", session, datetime.now(timezone.utc) + timedelta(seconds=100.5))
    assert manager.read_session("tok") is session and 99 <= storage.data["tok"][1] <= 100


