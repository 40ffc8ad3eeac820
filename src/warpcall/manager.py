"""ServiceManager: hands out service proxies and runs the components hosted by its environment.

``ServiceModule`` is the module to import (``@module(imports=[ServiceModule])``)
for an environment that calls or hosts services.
"""

from __future__ import annotations

import logging
import threading
import typing
from typing import Any, Callable, TypeVar

from warpcall.channels.base import Channel, channel_name
from warpcall.core.proxy import make_proxy
from warpcall.di import (
    Condition,
    Environment,
    Factory,
    PostProcessor,
    conditional,
    factory,
    inject_environment,
    injectable,
    module,
    on_destroy,
)
from warpcall.exceptions import ServiceException
from warpcall.registry.contract import ChannelAddress, ChannelInstances, ComponentRegistry
from warpcall.service import (
    BaseDescriptor,
    ComponentDescriptor,
    ServerSettings,
    declaration_of,
    health_endpoint,
    service_descriptor,
)
from warpcall.settings import install as _install_settings_check

S = TypeVar("S")

logger = logging.getLogger("warpcall.service")

LOCAL = "local"

# configuration keys under warpcall's sections that no setting has are reported when an environment boots
_install_settings_check()


def _on_scheme(address: ChannelAddress, scheme: str, port: int) -> ChannelAddress:
    """``address`` with ``scheme`` when it is an ``http://`` URL on ``port`` (this server's), else as it is."""
    from urllib.parse import urlsplit

    parts = urlsplit(address.uri)
    if parts.scheme != "http" or (parts.port or 80) != port:
        return address
    return ChannelAddress(address.channel, f"{scheme}{address.uri[len('http'):]}")


def default_registry(environment: Environment | None = None) -> ComponentRegistry:
    """The registry used when the environment provides none: the embedded, cross-process one, in the
    namespace ``environment`` configures or derives (when the environment creates it, it does that itself)."""
    from warpcall.registry.embedded import EmbeddedComponentRegistry

    registry = EmbeddedComponentRegistry()
    if environment is not None:
        registry.use_environment(environment)
    return registry


class _NoRegistryProvided(Condition):
    """Holds when nothing else in the environment provides a ``ComponentRegistry``.

    Decided with the class conditions, once the unconditional providers are bound: a module's own
    registry (``@create() def create_registry(self) -> ConsulComponentRegistry``) always wins. A
    registry that is itself conditional on a class made available in the same round is not seen.
    """

    phase = "classes"

    def apply(self, environment: Environment) -> bool:
        return not environment.has_provider(ComponentRegistry)

    def explain(self) -> str:
        return "the environment provides a ComponentRegistry of its own; the embedded default is not used"

    def __repr__(self) -> str:
        return "no ComponentRegistry provided"


@conditional(_NoRegistryProvided())
@factory()
class DefaultRegistryFactory(Factory[ComponentRegistry]):
    """Provides the embedded registry to an environment whose modules declare none.

    So ``create_server(self, service_manager, component_registry: ComponentRegistry)`` in a module
    that creates no registry gets the one the service manager uses; the environment closes it when
    destroyed. Its namespace: ``$WARPCALL_REGISTRY_NAMESPACE``, else ``registry.namespace``, else the
    booted module's top-level package (the registry takes it from the environment that creates it).
    """

    def create(self) -> ComponentRegistry:
        return default_registry()


class HostedComponent:
    """A component as one environment hosts it: its implementation, addresses and health endpoint.

    Registries read it as they read a descriptor (``name``, ``health``); kept per environment, so
    two environments hosting the same component each register their own addresses.
    """

    __slots__ = ("descriptor", "instance", "addresses", "health")

    def __init__(self, descriptor: ComponentDescriptor, instance: Any, addresses: list[ChannelAddress]) -> None:
        self.descriptor = descriptor
        self.instance = instance
        self.addresses = addresses
        #: the endpoint set by ``@health`` on the implementation, '' when none
        self.health = health_endpoint(type(instance))

    @property
    def name(self) -> str:
        """The component's declared name."""
        return self.descriptor.name

    def __repr__(self) -> str:
        return f"HostedComponent({self.name!r}, {[str(a) for a in self.addresses]})"


@injectable()
class ServiceManager:
    """Returns typed proxies for services and starts, registers and stops its environment's components."""

    def __init__(self) -> None:
        #: where this environment's server listens (set by FastAPIServer.boot; defaults elsewhere)
        self.settings = ServerSettings.of_booting_environment() or ServerSettings()
        self.environment: Environment | None = None
        self.component_registry: ComponentRegistry | None = None
        self.preferred_channel = ""
        self._owns_registry = False
        self._lock = threading.RLock()
        self._channels: dict[tuple[str, str], Channel] = {}
        self._proxies: dict[tuple[type, str], Any] = {}
        self._hosted: list[HostedComponent] = []
        self._deregistered: list[HostedComponent] = []  # of _hosted, those withdrawn from the registry

    @inject_environment()
    def set_environment(self, environment: Environment) -> None:
        self.environment = environment
        if environment.has_provider(ComponentRegistry):
            self.component_registry = environment.get(ComponentRegistry)  # type: ignore[type-abstract]  # an abstract class is the lookup key (python/mypy#4717)
        else:
            self.component_registry = default_registry(environment)
            self._owns_registry = True

    @classmethod
    def get_descriptor(cls, type: type) -> BaseDescriptor | None:
        """The descriptor ``@service`` or ``@component`` gave ``type`` (None for any other class), as in aspyx-service."""
        return declaration_of(type)

    # calling

    def set_preferred_channel(self, preferred_channel: str) -> None:
        """The channel ``get_service`` uses when the caller names none (and the component exposes it)."""
        self.preferred_channel = preferred_channel

    def get_service(self, service_type: type[S], preferred_channel: str = "") -> S:
        """A proxy typed as ``service_type``; on the 'local' channel, the implementation itself."""
        proxy = self._proxies.get((service_type, preferred_channel))
        if proxy is not None:
            return typing.cast(S, proxy)
        with self._lock:
            service, is_proxy = self._make_service(service_type, preferred_channel)
            if is_proxy:
                self._proxies[(service_type, preferred_channel)] = service
            return typing.cast(S, service)

    def _make_service(self, service_type: type[S], preferred_channel: str) -> tuple[Any, bool]:
        descriptor = service_descriptor(service_type)
        component = descriptor.require_component()
        local = self.is_local(component)
        addresses = {} if self.component_registry is None else {
            instances.channel: instances for instances in self.component_registry.get_addresses(component)
        }
        available = ([LOCAL] if local else []) + [name for name in addresses if name != LOCAL]
        name = self._choose_channel(descriptor.type.__name__, component, preferred_channel, available)
        if name == LOCAL:
            # the implementation itself: a local call costs a plain call (advice, if any, is woven into it)
            return self.environment_or_fail().get(service_type), False
        descriptor.qualify()  # the envelope names "component:service:method" from the first call on
        return make_proxy(service_type, self._channel(component, name, addresses.get(name))), True

    def _choose_channel(self, service: str, component: ComponentDescriptor, preferred: str, available: list[str]) -> str:
        if preferred:
            if preferred != LOCAL:
                self.channel_type(preferred)  # unknown channel names fail here, with the known ones listed
            if preferred in available or (preferred != LOCAL and not available):
                # nothing registered yet: the registry's watch fills the URL list when an instance appears
                return preferred
            raise ServiceException(
                f"service {service} cannot be called over channel '{preferred}': component "
                f"'{component.name}' exposes {available}"
            )
        if self.preferred_channel and self.preferred_channel in available:
            return self.preferred_channel
        if available:
            return available[0]
        raise ServiceException(
            f"service {service} has no implementation in this process and no instance of component "
            f"'{component.name}' is registered; start a server hosting it, or name a channel to wait for one"
        )

    def _channel(self, component: ComponentDescriptor, name: str, address: ChannelInstances | None) -> Channel:
        key = (component.name, name)
        channel = self._channels.get(key)
        if channel is None:
            channel = self.environment_or_fail().get(self.channel_type(name))
            channel.setup(component, address)
            channel.customize()
            if self.component_registry is not None:
                self.component_registry.watch(channel)
            self._channels[key] = channel
        return channel

    def channel_types(self) -> dict[str, type[Channel]]:
        """The channels this environment can create, by name: the ``@channel`` classes it provides."""
        environment = self.environment_or_fail()
        return {
            channel_name(provided): provided
            for provided in environment.providers
            if channel_name(provided) and environment.has_provider(provided)
        }

    def channel_type(self, name: str) -> type[Channel]:
        """The channel class named ``name`` in this environment, or a ServiceException listing the known names."""
        found = self.channel_types().get(name)
        if found is None:
            known = sorted([LOCAL, *self.channel_types()])
            raise ServiceException(
                f"no channel named '{name}' is registered; known channels: {known}. A channel is known to an "
                "environment whose module manages the package declaring it (@channel)"
            )
        return found

    def environment_or_fail(self) -> Environment:
        """The environment this manager lives in."""
        if self.environment is None:
            raise ServiceException("ServiceManager is used outside of an Environment; get it with environment.get()")
        return self.environment

    def is_local(self, component: ComponentDescriptor) -> bool:
        """True when this process's environment implements the component."""
        return self.environment is not None and self.environment.has_provider(component.type)

    # hosting

    def startup(self, port: int | None = None, scheme: str = "http") -> None:
        """Start every component implemented in this environment and register its addresses on ``port``
        (default: the environment's ``settings.port``); idempotent. ``scheme="https"``: the server serves
        TLS, so a component's ``http://`` addresses on ``port`` are registered as ``https://``."""
        with self._lock:
            if self._hosted:
                return
            environment = self.environment_or_fail()
            port = self.settings.port if port is None else port
            names: dict[str, ComponentDescriptor] = {}
            for component in self.implemented_components():
                other = names.setdefault(component.name, component)
                if other is not component:
                    raise ServiceException(
                        f"components {other.type.__qualname__} and {component.type.__qualname__} are both named "
                        f"'{component.name}' in {environment}; registries know a component by its name: rename one"
                    )
                instance: Any = environment.get(component.type)
                addresses = list(instance.get_addresses(port))
                if scheme != "http":
                    addresses = [_on_scheme(address, scheme, port) for address in addresses]
                hosted = HostedComponent(component, instance, addresses)
                instance.startup()
                if self.component_registry is not None and self.settings.register:
                    self.component_registry.register(hosted, hosted.addresses)
                self._hosted.append(hosted)
                logger.info("component %s started with %s", component.name, [str(a) for a in hosted.addresses])

    def implemented_components(self) -> list[ComponentDescriptor]:
        """The declared components this environment provides an implementation of: those it hosts."""
        environment = self.environment_or_fail()
        found: list[ComponentDescriptor] = []
        for provided in environment.providers:
            descriptor = declaration_of(provided)
            if isinstance(descriptor, ComponentDescriptor) and environment.has_provider(provided):
                found.append(descriptor)
        return found

    def hosted_components(self) -> list[HostedComponent]:
        """The components this environment started, with their implementations and addresses."""
        return list(self._hosted)

    def local_components(self) -> list[tuple[ComponentDescriptor, Any]]:
        """The started components of this environment with their implementation instances."""
        return [(hosted.descriptor, hosted.instance) for hosted in self._hosted]

    def deregister(self) -> None:
        """Withdraw this environment's components from the registry, leaving them running (idempotent).

        The first step of a drain: clients stop choosing this instance while it still answers the
        calls already on their way; :meth:`shutdown` stops the components once the server is done.
        """
        with self._lock:
            pending = [component for component in self._hosted if component not in self._deregistered]
            for component in reversed(pending):
                self._deregistered.append(component)
                if self.component_registry is not None and self.settings.register:
                    try:
                        self.component_registry.deregister(component)
                    except Exception:  # the registry may be gone already; stopping must go on
                        logger.exception("deregistering %s failed", component.name)

    def shutdown(self) -> None:
        """Deregister (unless :meth:`deregister` did already) and stop this environment's components (idempotent)."""
        with self._lock:
            self.deregister()
            hosted, self._hosted, self._deregistered = self._hosted, [], []
            for component in reversed(hosted):
                component.instance.shutdown()

    @on_destroy()
    def destroy(self) -> None:
        self.shutdown()
        with self._lock:
            for channel in self._channels.values():
                channel.close()
            self._channels.clear()
            self._proxies.clear()
        if self._owns_registry and self.component_registry is not None:
            self.component_registry.close()


def inject_service(preferred_channel: str = "") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a setter whose one parameter, typed as a service, receives that service's proxy."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        func.__warpcall_inject_service__ = preferred_channel  # type: ignore[attr-defined]
        return func

    return decorate


@injectable()
class InjectServiceProcessor(PostProcessor):
    """Calls the ``@inject_service`` setters of every instance the environment creates."""

    def __init__(self, service_manager: ServiceManager) -> None:
        super().__init__()
        self.service_manager = service_manager
        self._setters: dict[type, list[tuple[str, type, str]]] = {}

    def _setters_of(self, cls: type) -> list[tuple[str, type, str]]:
        setters = self._setters.get(cls)
        if setters is None:
            setters = []
            for name in dir(cls):
                func = getattr(cls, name, None)
                channel = getattr(func, "__warpcall_inject_service__", None)
                if channel is None:
                    continue
                hints = typing.get_type_hints(func)
                hints.pop("return", None)
                if len(hints) != 1:
                    raise ServiceException(
                        f"@inject_service setter {cls.__name__}.{name} must take exactly one parameter "
                        f"typed as a service, got {list(hints)}"
                    )
                setters.append((name, next(iter(hints.values())), channel))
            self._setters[cls] = setters
        return setters

    def process(self, instance: object, environment: Environment) -> None:
        for name, service_type, channel in self._setters_of(type(instance)):
            getattr(instance, name)(self.service_manager.get_service(service_type, channel))


@module(
    packages=[
        "warpcall.manager",
        "warpcall.health",
        "warpcall.authorization",
        "warpcall.channels.dispatch",
        "warpcall.channels.rest",
        "warpcall.protobuf",  # ProtobufManager; google.protobuf itself loads on first use
    ]
)
class ServiceModule:
    """The module of warpcall's own injectables; import it from your module: ``@module(imports=[ServiceModule])``.

    It provides ``ServiceManager``, the health checks and the built-in channels, and names their
    modules instead of scanning the whole ``warpcall`` package: building an environment imports
    neither the server (FastAPI, uvicorn) nor any registry backend.
    """
