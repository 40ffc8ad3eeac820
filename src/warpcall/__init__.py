"""warpcall: declare a service once, call it in-process or over HTTP through a typed proxy.

The decorator API is the one of ``aspyx-service``: a program written for it
ports by changing ``aspyx_service`` to ``warpcall`` (and ``aspyx.di`` to
``warpcall.di``). ``NATIVE`` tells whether the compiled core is active;
``WARPCALL_PURE=1`` runs the same core from its Python source.

Every name below is imported on first use (PEP 562), so ``import warpcall``
loads nothing else, and a process that only calls services never loads the
server (FastAPI, uvicorn) or a registry backend it does not use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from warpcall import _compiled

if _compiled.PURE_REQUESTED:  # before any core module is imported
    _compiled.install_pure_finder()

__version__ = "0.1.0"

#: each public name and the module defining it
_EXPORTS = {
    **dict.fromkeys(("Channel", "channel"), "warpcall.channels.base"),
    **dict.fromkeys(
        ("DispatchJSONChannel", "DispatchMsgpackChannel", "DispatchProtobufChannel"), "warpcall.channels.dispatch"
    ),
    "HTTPXChannel": "warpcall.channels.http",
    "RestChannel": "warpcall.channels.rest",
    **dict.fromkeys(
        (
            "AuthorizationException",
            "CircuitOpenException",
            "DeadlineExceeded",
            "InvalidArgumentsException",
            "InvalidTokenException",
            "MalformedRequestException",
            "MarshalException",
            "MissingTokenException",
            "OverloadedException",
            "ProtocolException",
            "RemoteServiceException",
            "RequestTooLargeException",
            "ResponseTooLargeException",
            "ServiceCommunicationException",
            "ServiceException",
            "TokenException",
            "TokenExpiredException",
            "UnknownMethodException",
            "UnsupportedMediaTypeException",
            "WarpcallError",
        ),
        "warpcall.exceptions",
    ),
    **dict.fromkeys(("HealthCheckManager", "HealthStatus", "health_check", "health_checks"), "warpcall.health"),
    **dict.fromkeys(("ServiceManager", "ServiceModule", "inject_service"), "warpcall.manager"),
    **dict.fromkeys(("ChannelAddress", "ChannelInstances", "ComponentRegistry"), "warpcall.registry.contract"),
    "ConsulComponentRegistry": "warpcall.registry.consul",
    "EmbeddedComponentRegistry": "warpcall.registry.embedded",
    "EtcdComponentRegistry": "warpcall.registry.etcd",
    "LocalComponentRegistry": "warpcall.registry.local",
    **dict.fromkeys(
        ("Body", "PathParam", "QueryParam", "delete", "get", "patch", "post", "put", "rest"), "warpcall.routes"
    ),
    "FastAPIServer": "warpcall.server.fastapi_server",
    **dict.fromkeys(("RequestContext", "ResponseContext", "TokenContextMiddleware"), "warpcall.server.context"),
    "TokenContext": "warpcall.context",
    **dict.fromkeys(("AbstractAuthorizationFactory", "AuthorizationManager"), "warpcall.authorization"),
    **dict.fromkeys(("Session", "SessionContext", "SessionManager"), "warpcall.session"),
    "ProtobufManager": "warpcall.protobuf",
    "profile": "warpcall.observe.profile",
    "ServerLimits": "warpcall.server.limits",
    "ServerTLS": "warpcall.server.tls",
    "ClientTLS": "warpcall.channels._http_common",
    "FieldNumber": "warpcall.wire.numbers",
    **dict.fromkeys(("deadline", "remaining"), "warpcall.resilience.deadline"),
    **dict.fromkeys(
        (
            "AbstractComponent",
            "Component",
            "ComponentDescriptor",
            "ComponentStatus",
            "Server",
            "Service",
            "ServiceDescriptor",
            "blocking",
            "component",
            "component_services",
            "health",
            "idempotent",
            "implementation",
            "service",
        ),
        "warpcall.service",
    ),
}

if TYPE_CHECKING:
    from warpcall.authorization import AbstractAuthorizationFactory, AuthorizationManager
    from warpcall.channels._http_common import ClientTLS
    from warpcall.channels.base import Channel, channel
    from warpcall.channels.dispatch import (
        DispatchJSONChannel,
        DispatchMsgpackChannel,
        DispatchProtobufChannel,
    )
    from warpcall.channels.http import HTTPXChannel
    from warpcall.channels.rest import RestChannel
    from warpcall.context import TokenContext
    from warpcall.exceptions import (
        AuthorizationException,
        CircuitOpenException,
        DeadlineExceeded,
        InvalidArgumentsException,
        InvalidTokenException,
        MalformedRequestException,
        MarshalException,
        MissingTokenException,
        OverloadedException,
        ProtocolException,
        RemoteServiceException,
        RequestTooLargeException,
        ResponseTooLargeException,
        ServiceCommunicationException,
        ServiceException,
        TokenException,
        TokenExpiredException,
        UnknownMethodException,
        UnsupportedMediaTypeException,
        WarpcallError,
    )
    from warpcall.health import HealthCheckManager, HealthStatus, health_check, health_checks
    from warpcall.manager import ServiceManager, ServiceModule, inject_service
    from warpcall.observe.profile import profile
    from warpcall.protobuf import ProtobufManager
    from warpcall.registry.consul import ConsulComponentRegistry
    from warpcall.registry.contract import ChannelAddress, ChannelInstances, ComponentRegistry
    from warpcall.registry.embedded import EmbeddedComponentRegistry
    from warpcall.registry.etcd import EtcdComponentRegistry
    from warpcall.registry.local import LocalComponentRegistry
    from warpcall.resilience.deadline import deadline, remaining
    from warpcall.routes import Body, PathParam, QueryParam, delete, get, patch, post, put, rest
    from warpcall.server.context import RequestContext, ResponseContext, TokenContextMiddleware
    from warpcall.server.fastapi_server import FastAPIServer
    from warpcall.server.limits import ServerLimits
    from warpcall.server.tls import ServerTLS
    from warpcall.service import (
        AbstractComponent,
        Component,
        ComponentDescriptor,
        ComponentStatus,
        Server,
        Service,
        ServiceDescriptor,
        blocking,
        component,
        component_services,
        health,
        idempotent,
        implementation,
        service,
    )
    from warpcall.session import Session, SessionContext, SessionManager
    from warpcall.wire.numbers import FieldNumber

    #: True when every compiled module runs compiled in this process
    NATIVE: bool
else:
    from warpcall._lazy import export_lazily

    _resolve, _names = export_lazily(__name__, _EXPORTS)

    def __getattr__(name: str) -> Any:
        if name == "NATIVE":  # computed on each use: it imports every compiled module
            return _compiled.native()
        return _resolve(name)

    def __dir__() -> list[str]:
        return sorted({*_names(), "NATIVE"})


__all__ = [
    "NATIVE",
    "AbstractAuthorizationFactory",
    "AbstractComponent",
    "AuthorizationException",
    "AuthorizationManager",
    "Body",
    "Channel",
    "ChannelAddress",
    "ChannelInstances",
    "ClientTLS",
    "CircuitOpenException",
    "Component",
    "ComponentDescriptor",
    "ComponentRegistry",
    "ComponentStatus",
    "ConsulComponentRegistry",
    "DeadlineExceeded",
    "DispatchJSONChannel",
    "DispatchMsgpackChannel",
    "DispatchProtobufChannel",
    "EmbeddedComponentRegistry",
    "EtcdComponentRegistry",
    "FieldNumber",
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
    "OverloadedException",
    "PathParam",
    "ProtobufManager",
    "ProtocolException",
    "QueryParam",
    "RemoteServiceException",
    "RequestContext",
    "RequestTooLargeException",
    "ResponseContext",
    "ResponseTooLargeException",
    "RestChannel",
    "Server",
    "ServerLimits",
    "ServerTLS",
    "Service",
    "ServiceCommunicationException",
    "ServiceDescriptor",
    "ServiceException",
    "ServiceManager",
    "ServiceModule",
    "Session",
    "SessionContext",
    "SessionManager",
    "TokenContext",
    "TokenContextMiddleware",
    "TokenException",
    "TokenExpiredException",
    "UnknownMethodException",
    "UnsupportedMediaTypeException",
    "WarpcallError",
    "__version__",
    "blocking",
    "channel",
    "component",
    "component_services",
    "deadline",
    "delete",
    "get",
    "health",
    "health_check",
    "health_checks",
    "idempotent",
    "implementation",
    "inject_service",
    "patch",
    "post",
    "profile",
    "put",
    "remaining",
    "rest",
    "service",
]
