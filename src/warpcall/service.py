"""Declaring services and components: base classes, decorators and their descriptors.

A service is an abstract subclass of :class:`Service` marked with ``@service``;
a component is a subclass of :class:`Component` marked with ``@component``
that lists the services it bundles. Implementations are marked with
``@implementation()`` and managed by the DI container. The descriptors built
here are the per-type metadata every later layer reads; they are built once,
when the decorators run.
"""

from __future__ import annotations

import socket
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from warpcall.core.proxy import service_methods
from warpcall.di import inject, injectable
from warpcall.exceptions import (
    AuthorizationException,
    InvalidTokenException,
    MissingTokenException,
    RemoteServiceException,
    ServiceCommunicationException,
    ServiceException,
    TokenException,
    TokenExpiredException,
)
from warpcall.health import HealthCheckManager, HealthStatus
from warpcall.registry.contract import ChannelAddress, ChannelInstances, ComponentRegistry

if TYPE_CHECKING:
    from warpcall.channels.base import Channel, channel
    from warpcall.di.aop import ClassAspectTarget
    from warpcall.manager import ServiceManager, inject_service
    from warpcall.registry.local import LocalComponentRegistry

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "AbstractComponent",
    "AuthorizationException",
    "BaseDescriptor",
    "Channel",
    "ChannelAddress",
    "ChannelInstances",
    "Component",
    "ComponentDescriptor",
    "ComponentRegistry",
    "ComponentStatus",
    "InvalidTokenException",
    "LocalComponentRegistry",
    "LocalServiceException",
    "MissingTokenException",
    "RemoteServiceException",
    "Server",
    "ServerSettings",
    "Service",
    "ServiceCommunicationException",
    "ServiceDescriptor",
    "ServiceException",
    "ServiceManager",
    "TokenException",
    "TokenExpiredException",
    "channel",
    "component",
    "component_descriptor",
    "component_services",
    "declaration_of",
    "health",
    "implementation",
    "inject_service",
    "service",
    "service_descriptor",
    "to_snake_case",
]

#: names of aspyx-service's ``aspyx_service.service`` that live in modules importing this one:
#: resolved on first use (PEP 562), so importing ``warpcall.service`` stays cheap and cycle-free
_LAZY = {
    **dict.fromkeys(("Channel", "channel"), "warpcall.channels.base"),
    **dict.fromkeys(("ServiceManager", "inject_service"), "warpcall.manager"),
    "LocalComponentRegistry": "warpcall.registry.local",
}

if not TYPE_CHECKING:
    from warpcall._lazy import export_lazily

    __getattr__, __dir__ = export_lazily(__name__, _LAZY)


class LocalServiceException(ServiceException):
    """aspyx-service's name for a service exception raised in the calling process, not by a remote call.

    Kept so that ``except LocalServiceException`` ports unchanged; like aspyx-service 0.11.6,
    warpcall raises the more precise subclasses of :class:`ServiceException` instead.
    """


class Service:
    """Base of every service interface; its own methods are not service methods."""

    __warpcall_root__ = True


class ComponentStatus(Enum):
    """Lifecycle state of a component implementation."""

    VIRGIN = 0
    RUNNING = 1
    STOPPED = 2


class Component(Service):
    """Base of every component interface: a deployment unit bundling services behind channels."""

    __warpcall_root__ = True

    @abstractmethod
    def startup(self) -> None:
        """Called once the server hosting the component is up."""

    @abstractmethod
    def shutdown(self) -> None:
        """Called before the hosting server stops."""

    @abstractmethod
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        """The channel addresses this component instance exposes on ``port``."""

    @abstractmethod
    def get_status(self) -> ComponentStatus:
        """The component's lifecycle state."""

    @abstractmethod
    async def get_health(self) -> HealthCheckManager.Health:
        """The component's health, computed from its health checks."""


class AbstractComponent(Component, ABC):
    """Default lifecycle and health for component implementations; subclasses add ``get_addresses``."""

    def __init__(self) -> None:
        self.status = ComponentStatus.VIRGIN
        self.health_check_manager: HealthCheckManager | None = None

    @inject()
    def set_health_check_manager(self, health_check_manager: HealthCheckManager) -> None:
        """The manager whose checks ``get_health`` combines."""
        self.health_check_manager = health_check_manager

    def startup(self) -> None:
        self.status = ComponentStatus.RUNNING

    def shutdown(self) -> None:
        self.status = ComponentStatus.STOPPED

    def get_status(self) -> ComponentStatus:
        return self.status

    async def get_health(self) -> HealthCheckManager.Health:
        if self.health_check_manager is None:
            return HealthCheckManager.Health(HealthStatus.OK)
        return await self.health_check_manager.check()


class ServerSettings:
    """Where the server of one environment listens: ``host`` and ``port`` (0: any free port).

    ``FastAPIServer.boot`` makes one per environment and builds the environment inside
    :meth:`booting`; the environment's ``ServiceManager`` keeps it (``service_manager.settings``),
    so two servers booted in one process, even at once in two threads, each see their own.
    """

    __slots__ = ("host", "port", "register")

    def __init__(self, host: str = "127.0.0.1", port: int = 0, register: bool = True) -> None:
        self.host = host
        self.port = port
        #: whether the environment registers its components (False: a worker of ``warpcall serve --workers``,
        #: whose supervisor registers the address once for all of them)
        self.register = register

    @staticmethod
    @contextmanager
    def booting(settings: ServerSettings) -> Iterator[ServerSettings]:
        """Make ``settings`` those of the environment built in this block (in this thread or task)."""
        token = _booting.set(settings)
        try:
            yield settings
        finally:
            _booting.reset(token)
        _ServerType.last_booted = settings  # booted: Server.port shows it from now on

    @staticmethod
    def of_booting_environment() -> ServerSettings | None:
        """The settings of the environment being booted here, None outside a boot."""
        return _booting.get()

    def __repr__(self) -> str:
        return f"ServerSettings(host={self.host!r}, port={self.port})"


_booting: ContextVar[ServerSettings | None] = ContextVar("warpcall_booting_server", default=None)


class _ServerType(type):
    """Gives ``Server.port`` its meaning: the port of the environment being booted, else of the last one booted."""

    #: the settings of the environment booted last in this process
    last_booted: ServerSettings | None = None

    @property
    def port(cls) -> int:
        """The booting environment's port (inside its modules' factories), else the last booted one's; 0 before any."""
        settings = _booting.get() or _ServerType.last_booted
        return settings.port if settings is not None else 0

    @port.setter
    def port(cls, value: int) -> None:
        settings = _booting.get()
        if settings is not None:
            settings.port = value
        else:
            previous = _ServerType.last_booted
            _ServerType.last_booted = ServerSettings(previous.host if previous else "127.0.0.1", value)


class Server(metaclass=_ServerType):
    """What a component needs to know of the process serving it: its port and local address.

    ``Server.port`` reads as in aspyx-service (e.g. ``ConsulComponentRegistry(Server.port, ...)``
    in a module's factory method): a view of the setting of the environment being booted; the
    setting itself belongs to that environment (:class:`ServerSettings`).
    """

    @staticmethod
    def get_local_ip() -> str:
        """The address other processes reach this server at: the host the booting (else the last booted)
        server binds when it binds one address (127.0.0.1 stays 127.0.0.1: another address would not
        answer); for a wildcard bind, what this host's name resolves to; 127.0.0.1 when unresolvable."""
        settings = _booting.get() or _ServerType.last_booted
        if settings is not None and settings.host not in ("", "0.0.0.0", "::"):
            return settings.host
        try:
            return socket.gethostbyname(socket.gethostname())
        except OSError:
            return "127.0.0.1"


def to_snake_case(name: str) -> str:
    """The default name of a service or component declared without one, as aspyx-service derives it: a
    hyphen before every ASCII capital but the first character, then lower case (``"OrderService"`` ->
    ``"order-service"``, ``"HTTPService"`` -> ``"h-t-t-p-service"``). Peers agree on
    ``component:service:method`` and on registry names only if both derive names the same way."""
    return "".join(f"-{c}" if "A" <= c <= "Z" and i else c for i, c in enumerate(name)).lower()


class BaseDescriptor:
    """What service and component descriptors have in common: the declared type, its name and description."""

    type: type
    name: str
    description: str

    def get_component_descriptor(self) -> ComponentDescriptor:
        """The component: the descriptor itself for a component, the bundling one for a service."""
        raise NotImplementedError

    def is_component(self) -> bool:
        """True for a component's descriptor."""
        return False


class ServiceDescriptor(BaseDescriptor):
    """Per service type: its name, its component and its method descriptors (built once).

    ``@service`` attaches it to the class (``service_descriptor(cls)`` reads it): a declaration
    describes a type, as the class does; there is no process-wide table of them.
    """

    def __init__(self, service_type: type, name: str, description: str) -> None:
        self.type = service_type
        self.name = name
        self.description = description
        self.component: ComponentDescriptor | None = None
        self._methods: dict[str, Any] | None = None
        self._lock = threading.Lock()

    @property
    def methods(self) -> dict[str, Any]:
        """``name -> MethodDescriptor`` of the service's public methods, qualified with component and service."""
        return self.qualify()

    def qualify(self) -> dict[str, Any]:
        """Build the method descriptors once, naming each ``component:service:method``; returns them."""
        methods = self._methods
        if methods is None:
            with self._lock:
                if self._methods is None:
                    component = self.require_component()
                    built = dict(service_methods(self.type))
                    for method in built.values():
                        method.qualified = f"{component.name}:{self.name}:{method.name}"
                    self._methods = built
                methods = self._methods
        return methods

    def get_component_descriptor(self) -> ComponentDescriptor:
        return self.require_component()

    def require_component(self) -> ComponentDescriptor:
        """The component bundling this service, or a ServiceException saying none does."""
        if self.component is None:
            raise ServiceException(
                f"service {self.type.__name__} ('{self.name}') is not part of any component; "
                f"list it in @component(services=[{self.type.__name__}, ...])"
            )
        return self.component

    def __repr__(self) -> str:
        return f"ServiceDescriptor({self.name!r}, {self.type.__qualname__})"


class ComponentDescriptor(BaseDescriptor):
    """Per component type: its name, description and services, as declared (``component_descriptor(cls)``).

    What an environment hosting the component adds (its addresses, the health endpoint of its
    implementation) is kept by that environment's ``ServiceManager`` (``HostedComponent``).
    """

    #: what registries read as the health endpoint; a declaration has none, a hosted component has its own
    health = ""

    def __init__(self, component_type: type, name: str, description: str, services: list[ServiceDescriptor]) -> None:
        self.type = component_type
        self.name = name
        self.description = description
        self.services = services

    def get_component_descriptor(self) -> ComponentDescriptor:
        return self

    def is_component(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"ComponentDescriptor({self.name!r}, services={[s.name for s in self.services]})"


#: the attribute ``@service`` and ``@component`` set on the class they declare: its descriptor
_DECLARATION = "__warpcall_declaration__"


def declaration_of(declared_type: Any) -> ServiceDescriptor | ComponentDescriptor | None:
    """The descriptor ``@service`` or ``@component`` gave ``declared_type`` itself (a subclass has none), else None."""
    if not isinstance(declared_type, type):
        return None
    descriptor: ServiceDescriptor | ComponentDescriptor | None = vars(declared_type).get(_DECLARATION)
    return descriptor


def service_descriptor(service_type: Any) -> ServiceDescriptor:
    """The descriptor of a declared service, or a ServiceException saying how to declare it."""
    descriptor = declaration_of(service_type)
    if not isinstance(descriptor, ServiceDescriptor):
        raise ServiceException(
            f"{getattr(service_type, '__name__', service_type)} is not a declared service; "
            "decorate it with @service() and list it in a @component(services=[...])"
        )
    return descriptor


def component_descriptor(component_type: Any) -> ComponentDescriptor:
    """The descriptor of a declared component, or a ServiceException saying how to declare it."""
    descriptor = declaration_of(component_type)
    if not isinstance(descriptor, ComponentDescriptor):
        raise ServiceException(
            f"{getattr(component_type, '__name__', component_type)} is not a declared component; "
            "decorate it with @component(services=[...])"
        )
    return descriptor


def service(name: str = "", description: str = "") -> Callable[[type[T]], type[T]]:
    """Declare an abstract :class:`Service` subclass as a service (name defaults to :func:`to_snake_case` of the class name)."""

    def decorate(cls: type[T]) -> type[T]:
        if not (isinstance(cls, type) and issubclass(cls, Service)):
            raise ServiceException(f"@service needs a subclass of warpcall.Service, got {cls!r}")
        setattr(cls, _DECLARATION, ServiceDescriptor(cls, name or to_snake_case(cls.__name__), description))
        return cls

    return decorate


def component(name: str = "", description: str = "", services: list[type] | None = None) -> Callable[[type[T]], type[T]]:
    """Declare a :class:`Component` subclass bundling ``services``, exposed through the same channels (name
    defaults to :func:`to_snake_case` of the class name)."""

    def decorate(cls: type[T]) -> type[T]:
        if not (isinstance(cls, type) and issubclass(cls, Component)):
            raise ServiceException(f"@component needs a subclass of warpcall.Component, got {cls!r}")
        members = [service_descriptor(service_type) for service_type in services or []]
        descriptor = ComponentDescriptor(cls, name or to_snake_case(cls.__name__), description, members)
        for member in members:
            if member.component is not None and member.component.type is not cls:
                raise ServiceException(
                    f"service {member.type.__name__} is already part of component '{member.component.name}'; "
                    f"a service belongs to one component"
                )
            member.component = descriptor
        setattr(cls, _DECLARATION, descriptor)
        return cls

    return decorate


def implementation() -> Callable[[type[T]], type[T]]:
    """Mark a class implementing a service or component; the DI container creates and manages it."""

    def decorate(cls: type[T]) -> type[T]:
        if not any(declaration_of(base) is not None for base in cls.__mro__[1:]):
            raise ServiceException(
                f"@implementation class {cls.__name__} implements no declared service or component; "
                "subclass a @service or @component class"
            )
        return injectable()(cls)

    return decorate


def blocking(func: F) -> F:
    """Declare a sync service method blocking: the server always runs it in its worker pool, never on the event loop.

    Put it on the method of the ``@service`` class or of the implementation. Without it, the server's
    ``adaptive`` mode runs a sync method on the loop until one call takes longer than
    ``ServerLimits.max_loop_time``; a method known to wait (I/O, locks, sleeps) should not get that one call.
    """
    func.__warpcall_blocking__ = True  # type: ignore[attr-defined]
    return func


def idempotent(func: F) -> F:
    """Declare a service method idempotent: calling it twice has the effect of calling it once.

    Put it on the method of the ``@service`` class (what a client's proxy reads). A client then sends
    a call that failed after it may have reached a server (reset, timed out waiting for the reply)
    again, to the next instance, with backoff, within the call's deadline and the channel's retry
    budget (``http.retry.*``, see :mod:`warpcall.resilience.retry`). Methods can also be declared
    idempotent by configuration: ``http.retry.idempotent``.
    """
    func.__warpcall_idempotent__ = True  # type: ignore[attr-defined]
    return func


def health(endpoint: str = "") -> Callable[[type[T]], type[T]]:
    """Serve the component's health at HTTP GET ``endpoint`` (200 when healthy, 503 when not); '' serves none."""

    def decorate(cls: type[T]) -> type[T]:
        cls.__warpcall_health__ = endpoint  # type: ignore[attr-defined]
        return cls

    return decorate


def health_endpoint(implementation_type: type) -> str:
    """The endpoint set by ``@health`` on a component implementation, '' when none."""
    return getattr(implementation_type, "__warpcall_health__", "")


def component_services(component_type: type) -> ClassAspectTarget:
    """An advice target matching the classes of every service the component declares (``@component(services=...)``):
    ``@around(component_services(MyComponent))`` advises all of them."""
    from warpcall.di.aop import classes

    target = classes()
    for member in component_descriptor(component_type).services:
        target.of_type(member.type)
    return target
