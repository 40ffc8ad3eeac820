"""Ready-made authorization: JSON Web Tokens (PyJWT) and role checks.

Register a :class:`JWTAuthorizationFactory` and every method a server serves requires a valid
``Authorization: Bearer <JWT>`` (except those declared :func:`public`); :func:`roles` on a service
(declaration or implementation class) or on a method adds the roles the token must hold::

    @roles("admin")                      # every method of the service needs the role admin
    @service(name="accounts")
    class AccountService(Service):
        def balance(self, account: str) -> int: ...

        @roles("auditor", "admin")      # this method: either role (a method's roles replace the class's)
        def history(self, account: str) -> list[str]: ...

        @public()                        # no token needed
        def ping(self) -> str: ...

    factory = JWTAuthorizationFactory("secret", audience="accounts")    # HS256
    environment.get(AuthorizationManager).register_factory(factory)

A missing token is refused with ``MissingTokenException``, an expired one with
``TokenExpiredException``, a bad signature, audience, issuer or malformed token with
``InvalidTokenException`` (all 401), a token without a required role with
``AuthorizationException`` (403). The implementation reads the verified claims with
:func:`current_claims` and the raw token with ``TokenContext.get_access_token()``.

Needs PyJWT (``pip install warpcall[auth]``; RS256 needs ``cryptography``, which the extra brings).
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Iterable, Mapping
from typing import Any, Callable, TypeVar

from warpcall.authorization import AuthorizationManager, get_method_class
from warpcall.context import TokenContext
from warpcall.di._reflection import Decorators
from warpcall.exceptions import (
    AuthorizationException,
    InvalidTokenException,
    MissingTokenException,
    TokenExpiredException,
)

__all__ = ["JWTAuthorization", "JWTAuthorizationFactory", "current_claims", "public", "required_roles", "roles"]

T = TypeVar("T")

_claims: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar("warpcall.claims", default=None)


def current_claims() -> Mapping[str, Any] | None:
    """The verified claims of the current call's token (set by the JWT check), or None."""
    return _claims.get()


def roles(*names: str) -> Callable[[T], T]:
    """Declare the roles (any one of them) a caller's token must hold, on a service class or a method."""
    if not names or not all(isinstance(name, str) and name for name in names):
        raise ValueError("@roles needs one or more role names")

    def decorator(target: T) -> T:
        Decorators.add(target, roles, *names)
        return target

    return decorator


def public() -> Callable[[T], T]:
    """Declare a method (or every method of a service class) callable without a token."""

    def decorator(target: T) -> T:
        Decorators.add(target, public)
        return target

    return decorator


def _owners(method_descriptor: Any) -> tuple[Any, str]:
    """The class whose MRO declares the method, and the method's name."""
    func: Any = getattr(method_descriptor, "method", None) or getattr(method_descriptor, "func", None)
    name = method_descriptor.get_name() if hasattr(method_descriptor, "get_name") else func.__name__
    owner = (
        getattr(method_descriptor, "clazz", None) or getattr(method_descriptor, "owner", None) or get_method_class(func)
    )
    return owner, name


def _declared(method_descriptor: Any, decorator: Callable[..., Any], on_class: bool) -> tuple[Any, ...] | None:
    """The arguments of ``decorator`` on the method (``on_class``: on its class) or where it overrides a
    declaration, from the implementation up to the service declaration; None when nowhere."""
    owner, name = _owners(method_descriptor)
    for cls in inspect.getmro(owner) if inspect.isclass(owner) else ():
        target = cls if on_class else vars(cls).get(name)
        if target is not None:
            found = Decorators.get_decorator(target, decorator)
            if found is not None:
                return tuple(found.args)
    return None


def required_roles(method_descriptor: Any) -> frozenset[str] | None | bool:
    """What the method requires: the roles of ``@roles`` (any one of them), None for a valid token only, False
    for nothing (``@public``). A method's own declaration wins over its class's."""
    for on_class in (False, True):
        found = _declared(method_descriptor, roles, on_class)
        if found:
            return frozenset(found)
        if _declared(method_descriptor, public, on_class) is not None:
            return False
    return None


def _roles_of(claims: Mapping[str, Any], claim: str) -> set[str]:
    value = claims.get(claim)
    if isinstance(value, str):  # a space-separated list, as OAuth's "scope" is written
        return set(value.split())
    if isinstance(value, (list, tuple)):
        return {str(item) for item in value}
    return set()


class JWTAuthorization(AuthorizationManager.Authorization):
    """The check of one method: a valid token, and one of ``roles`` when any are required."""

    def __init__(self, factory: JWTAuthorizationFactory, roles: frozenset[str] | None, name: str) -> None:
        self.factory = factory
        self.roles = roles
        self.name = name

    def authorize(self, invocation: Any) -> None:
        token = TokenContext.get_access_token()
        if not token:
            raise MissingTokenException(f"{self.name} needs an access token (Authorization: Bearer ...)")
        claims = self.factory.verify(token)
        _claims.set(claims)
        if self.roles is not None:
            held = _roles_of(claims, self.factory.roles_claim)
            if not held & self.roles:
                raise AuthorizationException(
                    f"{self.name} needs one of the roles {sorted(self.roles)}; the token holds {sorted(held)}"
                )


class JWTAuthorizationFactory(AuthorizationManager.AuthorizationFactory):
    """Verifies JWTs with PyJWT and checks ``@roles``; register it with the ``AuthorizationManager``.

    ``key``: the HS256 secret, or the RS256 public key (PEM text or a ``cryptography`` key object).
    ``algorithms``: accepted algorithms (default ``("HS256",)``; use ``("RS256",)`` for RSA).
    ``audience`` / ``issuer``: required values of ``aud`` / ``iss`` when given. ``leeway``: seconds of
    clock skew tolerated on ``exp``, ``nbf`` and ``iat``. ``require``: claims every token must carry
    (default ``("exp",)``: tokens that never expire are refused). ``roles_claim``: where the roles are
    (a list, or a space-separated string). ``order``: among other factories (smaller first).
    """

    def __init__(
        self,
        key: Any,
        *,
        algorithms: Iterable[str] = ("HS256",),
        audience: str | Iterable[str] | None = None,
        issuer: str | None = None,
        leeway: float = 0.0,
        require: Iterable[str] = ("exp",),
        roles_claim: str = "roles",
        order: int = 0,
    ) -> None:
        super().__init__(order)
        try:
            import jwt
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise ImportError("JWTAuthorizationFactory needs PyJWT: pip install 'warpcall[auth]'") from exc
        self._jwt = jwt
        self.key = key
        self.algorithms = list(algorithms)
        if not self.algorithms or "none" in (a.lower() for a in self.algorithms):
            raise ValueError("JWTAuthorizationFactory: name the signing algorithms to accept (never 'none')")
        self.audience = audience if audience is None or isinstance(audience, str) else list(audience)
        self.issuer = issuer
        self.leeway = float(leeway)
        self.require = list(require)
        self.roles_claim = roles_claim

    def verify(self, token: str) -> Mapping[str, Any]:
        """The claims of ``token`` once its signature, expiry, audience and issuer check out; else the token error."""
        jwt = self._jwt
        try:
            claims: Mapping[str, Any] = jwt.decode(
                token,
                self.key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": self.require, "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise TokenExpiredException("the access token has expired") from None
        except jwt.InvalidTokenError as exc:
            raise InvalidTokenException(f"the access token is not valid: {exc}") from None
        return claims

    def compute_authorization(self, method_descriptor: Any) -> AuthorizationManager.Authorization | None:
        required = required_roles(method_descriptor)
        if required is False:
            return None
        owner, name = _owners(method_descriptor)
        label = f"{getattr(owner, '__name__', owner)}.{name}"
        return JWTAuthorization(self, required if isinstance(required, frozenset) else None, label)
