"""warpcall: declare a service once, call it in-process or over HTTP through a typed proxy.

The decorator API is the one of ``aspyx-service``: a program written for it
ports by changing ``aspyx_service`` to ``warpcall`` (and ``aspyx.di`` to
``warpcall.di``). ``NATIVE`` tells whether the compiled core is active;
``WARPCALL_PURE=1`` runs the same core from its Python source.
"""

from typing import Any

from warpcall import _compiled

if _compiled.PURE_REQUESTED:  # before any core module is imported
    _compiled.install_pure_finder()

from warpcall.channels import (  # noqa: E402
    Channel,
    DispatchJSONChannel,
    DispatchMsgpackChannel,
    DispatchProtobufChannel,
    HTTPXChannel,
    channel,
)
from warpcall.channels.rest import RestChannel
from warpcall.di import module
from warpcall.exceptions import (
    AuthorizationException,
    InvalidArgumentsException,
    InvalidTokenException,
    MalformedRequestException,
    MarshalException,
    MissingTokenException,
    ProtocolException,
    RemoteServiceException,
    RequestTooLargeException,
    ServiceCommunicationException,
    ServiceException,
    TokenException,
    TokenExpiredException,
    UnknownMethodException,
    UnsupportedMediaTypeException,
    WarpcallError,
)
from warpcall.health import HealthCheckManager, HealthStatus, health_check, health_checks
from warpcall.manager import ServiceManager, inject_service
from warpcall.registry import (
    ChannelAddress,
    ChannelInstances,
    ComponentRegistry,
    ConsulComponentRegistry,
    EmbeddedComponentRegistry,
    EtcdComponentRegistry,
    LocalComponentRegistry,
)
from warpcall.routes import Body, PathParam, QueryParam, delete, get, patch, post, put, rest
from warpcall.server import FastAPIServer
from warpcall.service import (
    AbstractComponent,
    Component,
    ComponentDescriptor,
    ComponentStatus,
    Server,
    Service,
    ServiceDescriptor,
    component,
    health,
    implementation,
    service,
)

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "NATIVE":  # computed on first use: it imports every compiled module
        return _compiled.native()
    raise AttributeError(f"module 'warpcall' has no attribute {name!r}")


@module()
class ServiceModule:
    """The module of warpcall's own injectables; import it from your module: ``@module(imports=[ServiceModule])``."""


__all__ = [
    "NATIVE",
    "AbstractComponent",
    "AuthorizationException",
    "Body",
    "Channel",
    "ChannelAddress",
    "ChannelInstances",
    "Component",
    "ComponentDescriptor",
    "ComponentRegistry",
    "ComponentStatus",
    "ConsulComponentRegistry",
    "DispatchJSONChannel",
    "DispatchMsgpackChannel",
    "DispatchProtobufChannel",
    "EmbeddedComponentRegistry",
    "EtcdComponentRegistry",
    "FastAPIServer",
    "HTTPXChannel",
    "HealthCheckManager",
    "HealthStatus",
    "InvalidArgumentsException",
    "InvalidTokenException",
    "LocalComponentRegistry",
    "MalformedRequestException",
    "MarshalException",
    "MissingTokenException",
    "PathParam",
    "ProtocolException",
    "QueryParam",
    "RemoteServiceException",
    "RequestTooLargeException",
    "RestChannel",
    "Server",
    "Service",
    "ServiceCommunicationException",
    "ServiceDescriptor",
    "ServiceException",
    "ServiceManager",
    "ServiceModule",
    "TokenException",
    "TokenExpiredException",
    "UnknownMethodException",
    "UnsupportedMediaTypeException",
    "WarpcallError",
    "__version__",
    "channel",
    "component",
    "delete",
    "get",
    "health",
    "health_check",
    "health_checks",
    "implementation",
    "inject_service",
    "patch",
    "post",
    "put",
    "rest",
    "service",
]
