"""The server side of authorization: the checks run before each call, refusals, exposure, the open-server warning.

- :func:`install` gives every method a server exposes (``/invoke`` and REST) its authorization
  checks, from the environment's ``AuthorizationManager``; they are computed again whenever a
  factory is registered, and cached per method in between (``ServerMethod.checks``). A method
  without checks costs the call path one truth test.
- :func:`run_checks` runs them; :func:`refusal` describes the exception one raised: its status
  (401 for a token error, 403 otherwise) and, for 401, the ``WWW-Authenticate`` challenge.
- :class:`Exposure`: the allow-list of what a server serves.
- :func:`warn_if_open`: the warning for a server listening beyond loopback with no authorization.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import logging
from collections.abc import Iterable
from typing import Any

from warpcall.context import TokenContext
from warpcall.di.aop import Invocation
from warpcall.exceptions import (
    AuthorizationException,
    MissingTokenException,
    TokenException,
    TokenExpiredException,
)

logger = logging.getLogger("warpcall.server")

__all__ = ["Exposure", "install", "refusal", "run_checks", "set_token", "warn_if_open"]

_set_access = TokenContext.access_token.set  # bound once


def set_token(authorization: bytes) -> None:
    """Set ``TokenContext`` from an ``Authorization`` header value (its Bearer token; another scheme sets none)."""
    if authorization[:7] == b"Bearer ":  # as every client writes it: no split, no case folding
        token = authorization[7:]
    else:
        scheme, _, token = authorization.strip().partition(b" ")
        if scheme.lower() != b"bearer":
            return
    token = token.strip()
    if token:
        _set_access(token.decode("latin-1"))


#: ``error_description`` of each token error: fixed texts, since aspyx-service's client reads the words
#: ``expired`` and ``missing`` in the challenge (the exception's own message goes in the body)
_DESCRIPTIONS = {
    "MissingTokenException": "the access token is missing",
    "TokenExpiredException": "the access token has expired",
}


def challenge(exc: TokenException) -> bytes:
    """The ``WWW-Authenticate`` value for a token error (RFC 6750's form, as aspyx-service's client reads it)."""
    description = _DESCRIPTIONS.get(type(exc).__name__)
    if description is None:
        if isinstance(exc, MissingTokenException):
            description = _DESCRIPTIONS["MissingTokenException"]
        elif isinstance(exc, TokenExpiredException):
            description = _DESCRIPTIONS["TokenExpiredException"]
        else:
            description = "the access token is not valid"
    return b'Bearer error="invalid_token", error_description="%s"' % description.encode()


def refusal(exc: BaseException) -> tuple[int, AuthorizationException, bytes | None]:
    """``(status, exception to report, WWW-Authenticate value or None)`` for what a check raised.

    A token error is 401 with its challenge, an ``AuthorizationException`` 403; any other exception
    out of a check refuses the call too (403: the server fails closed), and is logged.
    """
    if isinstance(exc, TokenException):
        return 401, exc, challenge(exc)
    if isinstance(exc, AuthorizationException):
        return 403, exc, None
    logger.error("an authorization check failed; the call is refused", exc_info=exc)
    return 403, AuthorizationException(f"authorization check failed: {type(exc).__name__}"), None


def run_checks(method: Any, args: Any) -> BaseException | None:
    """Run ``method.checks`` (a ``ServerMethod``'s) on a call with ``args``; the first refusal, or None."""
    target = method.target
    invocation = Invocation(getattr(target, "__func__", target), (getattr(target, "__self__", None), *args))
    try:
        for check in method.checks:
            check.authorize(invocation)
    except Exception as exc:  # noqa: BLE001 - every refusal, of whatever type, refuses the call
        return exc
    return None


def server_methods(server: Any) -> list[Any]:
    """Every ``ServerMethod`` a ``FastAPIServer`` serves: ``/invoke``'s and its REST routes'."""
    methods = list(server.endpoint.methods.values())
    methods += [fast.respond.method for fast in server.rest_fast_path.routes.values()]
    return methods


def install(server: Any, manager: Any) -> None:
    """Give the server's methods the checks of ``manager`` (an ``AuthorizationManager``), now and on each change."""

    def compute() -> None:
        for method in server_methods(server):
            target = method.target
            func = getattr(target, "__func__", target)
            owner = getattr(target, "__self__", None)
            try:
                checks = tuple(manager.checks_of(func, type(owner) if owner is not None else None))
            except Exception:  # noqa: BLE001 - a factory that fails must not leave the method open
                logger.exception("computing the authorization checks of %s failed", method.descriptor.qualified)
                checks = (_Refuse(),)
            method.checks = checks

    manager.watch(compute)


class _Refuse:
    """The check of a method whose checks could not be computed: every call is refused."""

    def authorize(self, invocation: Any) -> None:
        raise AuthorizationException("the server could not compute this method's authorization checks")


class Exposure:
    """Which services a server serves: patterns over ``component``, ``component:service`` or
    ``component:service:method`` (shell wildcards allowed; the names are the ones ``/invoke`` uses).

    None (the default) serves every service of the hosted components, as before.
    """

    def __init__(self, patterns: Iterable[str] | str | None = None) -> None:
        if isinstance(patterns, str):
            patterns = [p for p in patterns.replace(",", " ").split() if p]
        self.patterns: tuple[str, ...] | None = None if patterns is None else tuple(patterns)
        for pattern in self.patterns or ():
            if not isinstance(pattern, str) or not pattern or pattern.count(":") > 2:
                raise ValueError(
                    f"expose: {pattern!r} is not 'component', 'component:service' or 'component:service:method'"
                )

    def allows(self, qualified: str) -> bool:
        """Whether the method ``component:service:method`` is served."""
        if self.patterns is None:
            return True
        component, service, _ = qualified.split(":", 2)
        for pattern in self.patterns:
            depth = pattern.count(":")
            name = (component, f"{component}:{service}", qualified)[depth]
            if fnmatch.fnmatchcase(name, pattern):
                return True
        return False

    def __repr__(self) -> str:
        return f"Exposure({list(self.patterns) if self.patterns is not None else None})"


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    name = host.strip("[]")
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any address


def warn_if_open(host: str, methods: Iterable[str], manager: Any) -> bool:
    """Log a warning when serving on ``host`` beyond loopback with no authorization factory; True when it did."""
    if is_loopback(host) or (manager is not None and manager.has_factories()):
        return False
    names = sorted(methods)
    if not names:
        return False
    shown = ", ".join(names[:50]) + (f" and {len(names) - 50} more" if len(names) > 50 else "")
    logger.warning(
        "serving on %s, reachable from other machines, with no authorization factory registered: anyone who "
        "reaches this port can call the %d exposed method(s) %s. Register an authorization factory (e.g. "
        "warpcall.auth.JWTAuthorizationFactory), limit what is served with FastAPIServer(expose=[...]) / the "
        "'server.expose' setting, or bind to 127.0.0.1",
        host, len(names), shown,
    )
    return True


#: the setting naming what a server serves, when FastAPIServer(expose=...) is not given
EXPOSE_SETTING = "server.expose"


def _from_environment(environment: Any, cls: type) -> Any:
    try:
        return environment.get(cls)
    except Exception:  # noqa: BLE001 - not provided in this environment
        return None


def secure(server: Any, expose: Iterable[str] | str | None) -> Any:
    """Apply the exposure allow-list to a mounted ``FastAPIServer`` and install its authorization checks.

    ``expose`` (else the ``server.expose`` setting, else everything) names what is served; an unexposed
    method is taken off ``/invoke`` (answered 404 as an unknown method) and off the REST routes.
    Returns the ``AuthorizationManager`` used.
    """
    from warpcall.authorization import AuthorizationManager

    environment = server.service_manager.environment_or_fail()
    if expose is None:
        from warpcall.di.configuration import ConfigurationManager

        configuration = _from_environment(environment, ConfigurationManager)
        if configuration is not None:
            setting = configuration.get(EXPOSE_SETTING, str)
            if setting:
                expose = setting
    exposure = Exposure(expose)
    server.exposure = exposure
    if exposure.patterns is not None:
        endpoint, fast_path = server.endpoint, server.rest_fast_path
        denied = {name for name in endpoint.methods if not exposure.allows(name)}
        for name in denied:
            del endpoint.methods[name]
        hidden = {
            key for key, fast in fast_path.routes.items()
            if not exposure.allows(fast.respond.method.descriptor.qualified)
        }
        if hidden:
            router = server.fast_api.router
            router.routes = [route for route in router.routes if id(route) not in hidden]
            for key in hidden:
                del fast_path.routes[key]
            fast_path._shape = (-1, -1)  # its tables are built again from the app's routes
    manager = _from_environment(environment, AuthorizationManager)
    if manager is None:  # an environment without warpcall's ServiceModule: checks can still be registered here
        manager = AuthorizationManager()
    server.authorization = manager
    install(server, manager)
    from warpcall.server.context import RESPONSES, uses_responses

    if not RESPONSES[0] and any(uses_responses(method.target) for method in server_methods(server)):
        # an implementation names ResponseContext: holders are prepared from the first call on (a call in the
        # thread pool sets its cookies on a copy of the request's context, so the holder must be there first)
        RESPONSES[0] = True
    return manager


def exposed_methods(server: Any) -> list[str]:
    """The qualified names of the methods a ``FastAPIServer`` serves (``/invoke`` and REST)."""
    return sorted({method.descriptor.qualified for method in server_methods(server)})
