"""FastAPIServer: serves the components of an environment on the user's FastAPI app with uvicorn."""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any, Awaitable, Callable

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.routing import Route

from warpcall.di import Environment, on_destroy, on_init
from warpcall.exceptions import ServiceException
from warpcall.health import HealthCheckManager
from warpcall.manager import ServiceManager
from warpcall.registry.contract import ComponentRegistry
from warpcall.server.dispatch import DEFAULT_MAX_BODY, DispatchEndpoint, SyncCalls
from warpcall.server.limits import ServerLimits
from warpcall.server.protocol import inline_protocol as make_inline_protocol
from warpcall.server.rest import mount_routes
from warpcall.server.rest_fast import RestFastPath
from warpcall.service import Server, ServerSettings

logger = logging.getLogger("warpcall.server")

STARTUP_TIMEOUT = 15.0
GRACEFUL_SHUTDOWN_TIMEOUT = 10.0


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket; port 0 picks a free one. Connections queue from here on, before uvicorn serves."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class FastAPIServer(Server):
    """Mounts ``POST /invoke`` and the health routes on ``fastapi`` and runs the environment's components.

    Create it in a module (``@create()``) and start everything with
    :meth:`boot`; ``environment.destroy()`` deregisters the components, lets
    in-flight calls finish and stops uvicorn, leaving no thread or socket.

    Options: ``max_body`` (bytes accepted on ``/invoke``), ``include_traceback`` (remote
    tracebacks in error envelopes), ``sync_calls`` (where sync implementations behind
    ``/invoke`` run, see :class:`SyncCalls`), ``access_log`` (uvicorn's access lines) and
    ``inline_protocol``: when true (the default) and uvicorn runs httptools, the server's
    protocol answers ``/invoke`` and warpcall's REST routes without the ASGI round
    (:mod:`warpcall.server.protocol`); false serves every request through ASGI.

    ``limits`` (:class:`~warpcall.server.limits.ServerLimits`, safe defaults when omitted) bound
    request heads (size, header count, time to arrive), idle connections and connections at
    once; they hold on every path, inline or through ASGI, with or without user middleware, as
    long as uvicorn runs httptools (the server's protocol enforces them). Without httptools
    uvicorn runs h11, which gets ``idle_timeout``, ``max_connections`` and ``max_head_size``
    (as ``h11_max_incomplete_event_size``) only.
    """

    def __init__(
        self,
        fastapi: FastAPI,
        service_manager: ServiceManager,
        component_registry: ComponentRegistry,
        *,
        max_body: int = DEFAULT_MAX_BODY,
        include_traceback: bool = False,
        sync_calls: str = "adaptive",
        access_log: bool = False,
        inline_protocol: bool = True,
        limits: ServerLimits | None = None,
    ) -> None:
        self.fast_api = fastapi
        #: the bounds this server keeps on every connection
        self.limits = limits if limits is not None else ServerLimits()
        self.access_log = access_log
        self.service_manager = service_manager
        self.component_registry = component_registry
        self.endpoint = DispatchEndpoint(
            max_body=max_body, include_traceback=include_traceback, sync_calls=SyncCalls(sync_calls)
        )
        #: answers warpcall's REST routes without FastAPI's per-request machinery when that is safe
        self.rest_fast_path = RestFastPath(fastapi)
        #: uvicorn's httptools protocol enforcing ``limits`` and, with ``inline_protocol``, answering /invoke
        #: and the REST routes without ASGI (None: uvicorn's own, when it does not run httptools)
        self.protocol_class = make_inline_protocol(
            self.endpoint, self.rest_fast_path, lambda: not fastapi.user_middleware, self.limits, inline_protocol
        )
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None
        self.socket: socket.socket | None = None
        self.environment: Environment | None = None
        #: where this server listens: its environment's settings (boot() sets them while it builds the environment)
        self.settings = service_manager.settings
        self.port, self.host = self.settings.port, self.settings.host
        self._app: Callable[[dict[str, Any], Any, Any], Awaitable[None]] | None = None

    @classmethod
    def boot(cls, module: type, host: str = "127.0.0.1", port: int = 8000, start_thread: bool = True) -> Environment:
        """Build the environment of ``module``, start its components and (by default) serve them in a thread.

        With ``start_thread=False`` nothing is served here: run the FastAPI app
        with uvicorn yourself (``uvicorn main:app``) on ``port``.
        """
        sock = bind_socket(host, port) if start_thread else None
        settings = ServerSettings(host, sock.getsockname()[1] if sock is not None else port)
        try:
            with ServerSettings.booting(settings):
                environment = Environment(module)
        except BaseException:
            if sock is not None:
                sock.close()
            raise
        server = environment.get(FastAPIServer)
        server.environment = environment
        if sock is not None:
            try:
                server.start(sock)
            except BaseException:
                environment.destroy()
                raise
        return environment

    @on_init()
    def mount(self) -> None:
        """Start the components, expose their services on /invoke and as REST routes, add their health routes."""
        self.service_manager.startup(self.port)
        for hosted in self.service_manager.hosted_components():
            component = hosted.descriptor
            for service in component.services:
                implementation: Any = self.service_manager.get_service(service.type, "local")
                mount_routes(
                    self.fast_api, component, service, implementation, self.endpoint.sync_calls, self.rest_fast_path
                )
                self.endpoint.expose(component, service, implementation)
            if hosted.health:
                self._route_health(hosted.health, hosted.instance)
        # an ASGI app as the route's endpoint (what add_route does, typed for it)
        self.fast_api.router.routes.append(Route("/invoke", self.endpoint, methods=["POST"], include_in_schema=False))

    def _route_health(self, path: str, instance: Any) -> None:
        registry = self.component_registry

        async def health() -> JSONResponse:
            result = await instance.get_health()
            return JSONResponse(result.to_dict(), status_code=registry.map_health(result))

        self.fast_api.add_api_route(path, health, methods=["GET"], summary="component health", tags=["health"])

    def start(self, sock: socket.socket) -> None:
        """Serve the app on ``sock`` in a background thread; returns once uvicorn accepts requests."""
        if self.thread is not None:
            raise ServiceException("FastAPIServer is already running")
        config = uvicorn.Config(
            self._uvicorn_app(),
            interface="asgi3",
            http=self.protocol_class or "auto",
            log_level="warning",
            access_log=self.access_log,  # uvicorn formats each access line even when it is filtered out
            lifespan="on",
            timeout_graceful_shutdown=int(GRACEFUL_SHUTDOWN_TIMEOUT),
            # uvicorn types it int; it is only ever given to loop.call_later
            timeout_keep_alive=self.limits.idle_timeout,  # type: ignore[arg-type]
            limit_concurrency=self.limits.limit_concurrency,
            h11_max_incomplete_event_size=self.limits.max_head_size,  # what h11 bounds, when it serves instead
        )
        self.server = uvicorn.Server(config)
        self.socket = sock
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, name=f"warpcall-uvicorn-{self.port}", daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self.server.started:
            if not self.thread.is_alive():
                raise ServiceException(f"uvicorn stopped while starting on port {self.port}; see its log above")
            if time.monotonic() > deadline:
                raise ServiceException(f"uvicorn did not start on port {self.port} within {STARTUP_TIMEOUT} s")
            time.sleep(0.005)
        if self.server.servers:
            # registrations are renewed only while this loop answers (warpcall.health.LoopWatchdog)
            self.service_manager.environment_or_fail().get(HealthCheckManager).watch_loop(
                self.server.servers[0].get_loop(), self.component_registry
            )

    async def asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The app uvicorn serves: :meth:`_uvicorn_app` as a coroutine function."""
        await self._uvicorn_app()(scope, receive, send)  # built once, on the first request

    def _uvicorn_app(self) -> Callable[[dict[str, Any], Any, Any], Awaitable[None]]:
        """The app uvicorn serves: ``POST /invoke`` and warpcall's REST routes directly, the rest through FastAPI.

        The direct paths only apply while the app has no user middleware; with middleware (auth,
        tracing) every request goes through the FastAPI app, which has the same endpoint and routes
        mounted. The app returns the awaitable instead of being a coroutine itself: uvicorn awaits
        whatever it returns, which saves a coroutine on every call.
        """
        if self._app is not None:
            return self._app
        fast_api, endpoint, rest_fast_path = self.fast_api, self.endpoint, self.rest_fast_path

        def app(scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[None]:
            if scope["type"] == "http" and not fast_api.user_middleware:
                if scope["path"] == "/invoke":
                    return endpoint(scope, receive, send)
                found = rest_fast_path.handler(scope)
                if found is not None:
                    return rest_fast_path.answer(found[0], found[1], scope, receive, send)
            return fast_api(scope, receive, send)

        self._app = app
        return app

    @property
    def url(self) -> str:
        """Base URL of this server (loopback host as booted)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @on_destroy()
    def stop(self) -> None:
        """Deregister, finish in-flight calls, stop uvicorn and close the socket."""
        self.service_manager.shutdown()
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(GRACEFUL_SHUTDOWN_TIMEOUT + 5)
            if self.thread.is_alive():
                self.server.force_exit = True
                self.thread.join(5)
        if self.socket is not None:
            self.socket.close()
        self.endpoint.sync_calls.close()
        self.server, self.thread, self.socket = None, None, None
