"""Pluggable authorization checks, run by the server before every remote call (aspyx-service's API).

Register an :class:`AuthorizationManager.AuthorizationFactory` (most simply a subclass of
:class:`AbstractAuthorizationFactory`, which registers itself when the environment creates it).
For every method a server exposes, each factory is asked once, in ``order``, for a check
(:meth:`~AuthorizationManager.AuthorizationFactory.compute_authorization`); the server runs the
checks it got before the implementation, on every path (``/invoke`` and the REST routes, inline
or through ASGI). A check refuses a call by raising:

- ``MissingTokenException``, ``InvalidTokenException``, ``TokenExpiredException``: answered
  ``401`` with ``WWW-Authenticate: Bearer error="invalid_token", error_description="..."``;
- ``AuthorizationException``: answered ``403``.

The caller raises the same type. The token of the call is ``TokenContext.get_access_token()``
(the server sets it from ``Authorization: Bearer <token>`` before the checks run).
"""

from __future__ import annotations

import inspect
import threading
from abc import ABC, abstractmethod
from typing import Any, Callable, Optional

from warpcall.di import inject, injectable, order
from warpcall.di.aop import Invocation
from warpcall.reflection import TypeDescriptor

__all__ = ["AbstractAuthorizationFactory", "AuthorizationManager", "get_method_class"]


def get_method_class(method: Any) -> Any:
    """The class defining ``method`` (a function or bound method), found by its qualified name; None otherwise."""
    if inspect.ismethod(method):
        return type(method.__self__)
    if not inspect.isfunction(method):
        return None
    parts = method.__qualname__.split(".")
    if len(parts) < 2 or parts[-2] == "<locals>":
        return None
    module = inspect.getmodule(method)
    if module is None:
        return None
    owner: Any = module
    for part in parts[:-1]:  # nested classes too: Outer.Inner.method
        owner = getattr(owner, part, None)
        if owner is None:
            return None
    return owner if inspect.isclass(owner) and hasattr(owner, method.__name__) else None


@injectable()
class AuthorizationManager:
    """Remembers the registered authorization factories and runs the checks they make for a method."""

    class Authorization:
        """One check of a method's calls: :meth:`authorize` raises to refuse a call."""

        def authorize(self, invocation: Invocation) -> None:
            """Check one call; raise ``AuthorizationException`` (403) or a ``TokenException`` (401) to refuse it."""

    class AuthorizationFactory(ABC):
        """Makes the check (if any) of a method, given its descriptor; factories are asked in ``order``."""

        def __init__(self, order: int = 0) -> None:  # noqa: A002 - aspyx-service's parameter name
            self.order = order

        @abstractmethod
        def compute_authorization(self, method_descriptor: Any) -> Optional[AuthorizationManager.Authorization]:
            """The check of the method ``method_descriptor`` (``TypeDescriptor.MethodDescriptor``) describes, or
            None when this factory has none."""

    def __init__(self) -> None:
        self.factories: list[AuthorizationManager.AuthorizationFactory] = []
        self.checks: dict[Callable[..., Any], list[AuthorizationManager.Authorization]] = {}
        self._lock = threading.Lock()
        # told when the factories change: a server recomputes the checks it caches per method
        self._listeners: list[Callable[[], None]] = []

    # public

    def register_factory(self, factory: AuthorizationManager.AuthorizationFactory) -> None:
        """Add a factory; every method's checks are computed again (the order of factories is kept sorted)."""
        with self._lock:
            self.factories.append(factory)
            self.factories.sort(key=lambda f: f.order)
            self.checks = {}
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def get_checks(self, func: Callable[..., Any]) -> list[AuthorizationManager.Authorization]:
        """The checks of ``func`` (a method's function), computed once and remembered."""
        return self.checks_of(func)

    def checks_of(self, func: Callable[..., Any], clazz: type | None = None) -> list[AuthorizationManager.Authorization]:
        """:meth:`get_checks`, with the class the method is served from when known (a class defined in a
        function cannot be found from its method's name)."""
        checks = self.checks.get(func)
        if checks is None:
            checks = self.compute_checks(func, clazz)
            self.checks[func] = checks
        return checks

    def authorize(self, invocation: Invocation) -> None:
        """Run every check of ``invocation.func`` on the invocation; the first refusal raises."""
        for check in self.get_checks(invocation.func):
            check.authorize(invocation)

    # internal

    def compute_checks(
        self, func: Callable[..., Any], clazz: type | None = None
    ) -> list[AuthorizationManager.Authorization]:
        """Ask every factory, in order, for its check of ``func`` (a method of ``clazz``, found by name if None)."""
        factories = list(self.factories)
        if not factories:
            return []
        descriptor = self.describe(func, clazz)
        checks = []
        for factory in factories:
            check = factory.compute_authorization(descriptor)
            if check is not None:
                checks.append(check)
        return checks

    @staticmethod
    def describe(func: Callable[..., Any], clazz: type | None = None) -> Any:
        """The method descriptor factories are given for ``func`` (a method of ``clazz``, found by name if None)."""
        func = getattr(func, "__func__", func)
        if clazz is None:
            clazz = get_method_class(func)
        if clazz is None:
            raise TypeError(f"{getattr(func, '__qualname__', func)!r} is not a method of a class")
        descriptor = TypeDescriptor.for_type(clazz).get_method(func.__name__)
        if descriptor is None:
            raise TypeError(f"{clazz.__qualname__} has no method {func.__name__!r}")
        return descriptor

    def has_factories(self) -> bool:
        """Whether any factory is registered."""
        return bool(self.factories)

    def watch(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` now and whenever a factory is registered."""
        with self._lock:
            self._listeners.append(listener)
        listener()


class AbstractAuthorizationFactory(AuthorizationManager.AuthorizationFactory):
    """A factory that registers itself with the environment's ``AuthorizationManager``; ``@order(n)`` sets its order."""

    def __init__(self) -> None:
        super().__init__(0)
        found = order_of(type(self))
        if found is not None:
            self.order = found

    @inject()
    def set_authorization_manager(self, authorization_manager: AuthorizationManager) -> None:
        """Register this factory (called by the environment when it creates it)."""
        authorization_manager.register_factory(self)


def order_of(cls: type) -> int | None:
    """The ``@order`` value of ``cls``, or None."""
    from warpcall.di._reflection import Decorators

    found = Decorators.get_decorator(cls, order)
    return found.args[0] if found is not None and found.args else None
