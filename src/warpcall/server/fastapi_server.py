"""FastAPIServer: serves the components of an environment on the user's FastAPI app with uvicorn."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import threading
import time
from contextvars import ContextVar
from types import FrameType
from typing import Any, Awaitable, Callable, Iterable

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from starlette.routing import Route

from warpcall.di import ConfigurationException, Environment, on_destroy, on_init
from warpcall.exceptions import ServiceException
from warpcall.health import HealthCheckManager
from warpcall.manager import ServiceManager
from warpcall.observe import server as _observe
from warpcall.registry.contract import ComponentRegistry
from warpcall.server.dispatch import DEFAULT_MAX_BODY, DispatchEndpoint, SyncCalls
from warpcall.server.limits import ServerLimits, checked_getter
from warpcall.server.protocol import inline_protocol as make_inline_protocol
from warpcall.server.rest import mount_routes
from warpcall.server.rest_fast import RestFastPath
from warpcall.server.security import exposed_methods, secure, warn_if_open
from warpcall.server.tls import ServerTLS
from warpcall.service import Server, ServerSettings

logger = logging.getLogger("warpcall.server")

STARTUP_TIMEOUT = 15.0
#: default seconds a stopping server lets the calls under way finish (``grace_period``)
GRACE_PERIOD = 10.0
GRACEFUL_SHUTDOWN_TIMEOUT = GRACE_PERIOD  # the name before grace_period was a setting
#: default seconds a stopping server keeps serving after it deregistered (``deregister_delay``)
DEREGISTER_DELAY = 0.0
#: seconds after the grace period for the refusals of queued calls to go out before connections are cut
REPLY_BOUND = 0.5
#: seconds the worker threads still running a call are waited for once the server stopped
WORKERS_BOUND = 0.5
#: the signals :meth:`FastAPIServer.serve_forever` drains the server on
SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def bind_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket; port 0 picks a free one. Connections queue from here on, before uvicorn serves.

    ``reuse_port``: set ``SO_REUSEPORT``, so that several processes listen on one port and the kernel
    spreads the connections among them (``warpcall serve --workers``); AttributeError where the
    platform has no such option.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class _Uvicorn(uvicorn.Server):
    """uvicorn's server, leaving no connection open behind it once its graceful shutdown gave up."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        closer = asyncio.ensure_future(self._end_tls_closes()) if self.config.is_ssl else None
        try:
            await super().shutdown(sockets)
        finally:
            if closer is not None:
                closer.cancel()
        # connections whose call outlived the grace period: uvicorn cancelled their tasks and left them
        # open (and a worker's reply has no task at all); closed here, or the socket lives until GC
        for connection in list(self.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None and not transport.is_closing():
                transport.abort()

    async def _end_tls_closes(self) -> None:
        """While the server drains: end the TLS connections it closed once all they had to send is out.

        A closed TLS connection waits for the client's close_notify (asyncio waits up to 30 s), which a
        client holding it idle in its pool never sends: the drain would wait for each. Ours is out once
        everything is flushed, so nothing is lost by ending the connection there.
        """
        while True:
            await asyncio.sleep(0.05)
            for connection in list(self.server_state.connections):
                transport = getattr(connection, "transport", None)
                if transport is not None and transport.is_closing() and _flushed(transport):
                    transport.abort()


def _flushed(transport: Any) -> bool:
    """Nothing left to write on a TLS transport: neither in its TLS layer nor in the socket's transport under it."""
    if transport.get_write_buffer_size():
        return False
    # asyncio's TLS transport keeps the socket's transport private; without it, the TLS layer's word stands
    inner = getattr(getattr(transport, "_ssl_protocol", None), "_transport", None)
    return inner is None or not inner.get_write_buffer_size()


class FastAPIServer(Server):
    """Mounts ``POST /invoke`` and the health routes on ``fastapi`` and runs the environment's components.

    Create it in a module (``@create()``) and start everything with :meth:`boot`, or
    :meth:`serve_forever` to serve until SIGTERM or SIGINT. Stopping it (``environment.destroy()``,
    or one of those signals) drains it:

    1. its components are deregistered, so clients stop choosing this instance;
    2. it keeps serving for ``deregister_delay`` seconds (default 0), the time the registry takes
       to tell clients (the embedded registry's ``poll_interval``, a Kubernetes preStop sleep);
    3. it stops accepting: the listening socket closes, idle keep-alive connections close, a
       connection with a call under way gets ``connection: close`` on that call's reply;
    4. the calls under way finish, for up to ``grace_period`` seconds (default 10);
    5. then sync calls still queued for a worker are refused without ever starting (``503``, an
       ``OverloadedException`` envelope saying the server is stopping) and, ``0.5`` s later, the
       connections of calls still running are closed;
    6. the components are shut down and uvicorn's thread ends.

    ``destroy()`` returns within ``deregister_delay + grace_period`` plus about a second, however
    deep the queue; a call still running then goes on in its (daemon) worker thread, unanswered.

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

    ``tls`` (:class:`~warpcall.server.tls.ServerTLS`; also a :meth:`boot` / :meth:`serve_forever`
    argument, or the ``server.tls.*`` configuration keys) serves HTTPS, client certificates
    verified for mTLS if asked; the inline protocol answers over TLS as over plain http, and the
    components' ``http://`` addresses on this server's port are registered as ``https://``.

    Every option above is also a configuration key, read once when the server is built: ``server.<option>``
    (``server.max_body``, ``server.grace_period``, ``server.deregister_delay``, ``server.sync_calls``, ...)
    and, when no ``limits`` is given, ``server.limits.<field>`` for each field of ``ServerLimits``. An
    argument given wins over the configuration, which wins over the built-in default; a value that does not
    fit (not a number, negative, an unknown mode) fails the build with
    :class:`~warpcall.di.ConfigurationException` naming the key.
    """

    def __init__(
        self,
        fastapi: FastAPI,
        service_manager: ServiceManager,
        component_registry: ComponentRegistry,
        *,
        max_body: int | None = None,
        include_traceback: bool | None = None,
        sync_calls: str | None = None,
        access_log: bool | None = None,
        inline_protocol: bool | None = None,
        limits: ServerLimits | None = None,
        grace_period: float | None = None,
        deregister_delay: float | None = None,
        expose: Iterable[str] | str | None = None,
        tls: ServerTLS | None = None,
        metrics: bool | None = None,
        metrics_path: str | None = None,
    ) -> None:
        # an option not given comes from the configuration (server.*, server.limits.*), read once, here
        get = checked_getter(_configuration_get(service_manager))
        if max_body is None:
            max_body = get("server.max_body", int, DEFAULT_MAX_BODY)
        if include_traceback is None:
            include_traceback = get("server.include_traceback", bool, False)
        if sync_calls is None:
            sync_calls = get("server.sync_calls", str, "adaptive")
            if sync_calls not in SyncCalls.MODES:
                raise ConfigurationException(
                    f"configuration value 'server.sync_calls' = {sync_calls!r} is not one of {SyncCalls.MODES}"
                )
        if access_log is None:
            access_log = get("server.access_log", bool, False)
        if inline_protocol is None:
            inline_protocol = get("server.inline_protocol", bool, True)
        if grace_period is None:
            grace_period = get("server.grace_period", float, GRACE_PERIOD, zero=True)
        if deregister_delay is None:
            deregister_delay = get("server.deregister_delay", float, DEREGISTER_DELAY, zero=True)
        if limits is None:
            limits = ServerLimits.configured(get)
        for name, value in (("grace_period", grace_period), ("deregister_delay", deregister_delay)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ServiceException(f"FastAPIServer {name} must be a number of seconds >= 0, got {value!r}")
        self.fast_api = fastapi
        #: seconds a stopping server lets the calls under way finish
        self.grace_period = float(grace_period)
        #: seconds a stopping server keeps serving after it deregistered, while clients learn of it
        self.deregister_delay = float(deregister_delay)
        #: true from the moment the server begins to stop: its health routes answer 503
        self.draining = False
        self._hurry = threading.Event()  # set by a second signal: stop without waiting any longer
        #: the bounds this server keeps on every connection
        self.limits = limits
        self.access_log = bool(access_log)
        self.service_manager = service_manager
        self.component_registry = component_registry
        self.endpoint = DispatchEndpoint(
            max_body=max_body, include_traceback=bool(include_traceback), sync_calls=SyncCalls(sync_calls, limits=limits)
        )
        #: answers warpcall's REST routes without FastAPI's per-request machinery when that is safe
        self.rest_fast_path = RestFastPath(fastapi)
        #: uvicorn's httptools protocol enforcing ``limits`` and, with ``inline_protocol``, answering /invoke
        #: and the REST routes without ASGI (None: uvicorn's own, when it does not run httptools)
        self.protocol_class = make_inline_protocol(
            self.endpoint, self.rest_fast_path, lambda: not fastapi.user_middleware, limits, bool(inline_protocol)
        )
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None
        self.socket: socket.socket | None = None
        self.environment: Environment | None = None
        #: where this server listens: its environment's settings (boot() sets them while it builds the environment)
        self.settings = service_manager.settings
        self.port, self.host = self.settings.port, self.settings.host
        self._app: Callable[[dict[str, Any], Any, Any], Awaitable[None]] | None = None
        #: what is served (``warpcall.server.security.Exposure``): component, service or method patterns
        self.expose = expose
        self.exposure: Any = None
        self.authorization: Any = None  # the AuthorizationManager whose checks every call passes
        #: HTTPS (None: plain http): boot()'s or serve_forever()'s ``tls``, else this one, else ``server.tls.*``
        self.tls: ServerTLS | None = _booting_tls.get() or tls
        #: Prometheus metrics and the ``GET /metrics`` route (None: configuration ``metrics.enabled``, default false)
        self.metrics = metrics
        #: where the metrics are served (None: configuration ``server.metrics.path``, default ``/metrics``)
        self.metrics_path = metrics_path

    @classmethod
    def boot(
        cls,
        module: type,
        host: str = "127.0.0.1",
        port: int = 8000,
        start_thread: bool = True,
        *,
        tls: ServerTLS | None = None,
        register: bool = True,
        reuse_port: bool = False,
    ) -> Environment:
        """Build the environment of ``module``, start its components and (by default) serve them in a thread.

        With ``start_thread=False`` nothing is served here: run the FastAPI app
        with uvicorn yourself (``uvicorn main:app``) on ``port``. ``tls``: serve HTTPS (it wins over
        the server's own ``tls`` and the ``server.tls.*`` keys). ``register=False``: the components are
        not registered (another process registers the address: ``warpcall serve --workers``);
        ``reuse_port``: listen with ``SO_REUSEPORT`` (see :func:`bind_socket`). Both together (a worker
        joining the port its supervisor holds) bind only once the environment is built: the kernel hands
        a listening worker its share of the connections, which must not wait for its boot.
        """
        late = start_thread and reuse_port and not register and port != 0
        sock = bind_socket(host, port, reuse_port=reuse_port) if start_thread and not late else None
        settings = ServerSettings(host, sock.getsockname()[1] if sock is not None else port, register)
        booting_tls = _booting_tls.set(tls)
        try:
            with ServerSettings.booting(settings):
                environment = Environment(module)
        except BaseException:
            if sock is not None:
                sock.close()
            raise
        finally:
            _booting_tls.reset(booting_tls)
        server = environment.get(FastAPIServer)
        server.environment = environment
        if start_thread:
            try:
                server.start(sock if sock is not None else bind_socket(host, port, reuse_port=reuse_port))
            except BaseException:
                environment.destroy()
                raise
        return environment

    @on_init()
    def mount(self) -> None:
        """Start the components, expose their services on /invoke and as REST routes, add their health routes."""
        if self.tls is None:
            self.tls = _configured_tls(self.service_manager)
        if self.tls is not None:
            self.tls.context()  # the files load now, or the boot fails naming them (not uvicorn's thread later)
        # served over TLS, the components' http:// addresses on this port are registered as https://
        self.service_manager.startup(self.port, scheme=self.scheme)
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
        secure(self, self.expose)  # the allow-list, and the authorization checks of every method served
        self._mount_metrics()
        # an ASGI app as the route's endpoint (what add_route does, typed for it)
        self.fast_api.router.routes.append(Route("/invoke", self.endpoint, methods=["POST"], include_in_schema=False))
        from warpcall.server.describe import mount_description

        mount_description(self)  # GET /warpcall/services: what is served, for warpcall services / call

    def _mount_metrics(self) -> None:
        """Settle ``metrics`` and ``metrics_path`` from the configuration; serve the metrics when on."""
        get = _configuration_get(self.service_manager)
        if self.metrics is None:
            self.metrics = bool(get("metrics.enabled", bool, False)) if get is not None else False
        if self.metrics_path is None:
            self.metrics_path = str(get("server.metrics.path", str, "/metrics")) if get is not None else "/metrics"
        if not self.metrics:
            return
        try:
            from warpcall.observe import metrics as _metrics
        except ImportError as exc:  # pragma: no cover - the module imports prometheus-client lazily
            raise ServiceException("metrics need prometheus-client: pip install warpcall[observe]") from exc
        try:
            _metrics.server_metrics()
        except ImportError as exc:
            raise ServiceException(
                "metrics are on (metrics.enabled or FastAPIServer(metrics=True)) but prometheus-client is not "
                "installed: pip install prometheus-client"
            ) from exc
        _metrics.watch(self)

        def scrape() -> Response:  # sync: FastAPI runs it in its thread pool (a registry may be asked)
            body, content_type = _metrics.exposition()
            return Response(body, media_type=content_type)

        self.fast_api.add_api_route(
            self.metrics_path, scrape, methods=["GET"], include_in_schema=False, summary="Prometheus metrics"
        )

    def _route_health(self, path: str, instance: Any) -> None:
        registry = self.component_registry

        async def health() -> JSONResponse:
            if self.draining:  # a load balancer or readiness probe takes it out of rotation too
                return JSONResponse({"status": "DRAINING", "checks": []}, status_code=503)
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
            # uvicorn types it int; it is only ever given to asyncio.timeout (stop() sets the drain's own)
            timeout_graceful_shutdown=self.grace_period + REPLY_BOUND,  # type: ignore[arg-type]
            # uvicorn types it int; it is only ever given to loop.call_later
            timeout_keep_alive=self.limits.idle_timeout,  # type: ignore[arg-type]
            limit_concurrency=self.limits.limit_concurrency,
            h11_max_incomplete_event_size=self.limits.max_head_size,  # what h11 bounds, when it serves instead
            **(self.tls.uvicorn_options() if self.tls is not None else {}),
        )
        # what every request is observed for (metrics, an OpenTelemetry provider): decided once, here
        _observe.configure(bool(self.metrics))
        self.server = _Uvicorn(config)
        self.socket = sock
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, name=f"warpcall-uvicorn-{self.port}", daemon=True
        )
        self.thread.start()
        warn_if_open(self.host, exposed_methods(self), self.authorization)  # listening beyond loopback, unguarded
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
    def scheme(self) -> str:
        """``https`` when the server serves TLS, else ``http``."""
        return "http" if self.tls is None else "https"

    @property
    def url(self) -> str:
        """Base URL of this server (loopback host as booted; ``https://`` under TLS)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @classmethod
    def serve_forever(
        cls,
        module: type,
        host: str = "127.0.0.1",
        port: int = 8000,
        *,
        signals: Iterable[int] = SHUTDOWN_SIGNALS,
        ready: Callable[[Environment], None] | None = None,
        tls: ServerTLS | None = None,
        register: bool = True,
        reuse_port: bool = False,
    ) -> int:
        """Boot ``module`` (as :meth:`boot`), serve until SIGTERM or SIGINT, then drain and stop; returns the signal.

        Call it from the main thread (only it receives signals). The handlers are installed before
        the boot, so a signal arriving while the server starts drains it once it is up, and the
        previous handlers are back when this returns. ``ready(environment)`` is called once the
        server accepts calls (to print its port, say). A second signal during the drain cuts it
        short: queued calls are refused and the connections of running ones closed at once.
        uvicorn installs no handlers of its own here: it runs in a thread. ``tls``, ``register``,
        ``reuse_port``: as :meth:`boot`.
        """
        if threading.current_thread() is not threading.main_thread():
            raise ServiceException("FastAPIServer.serve_forever must run in the main thread: only it receives signals")
        received: list[int] = []
        stopping = threading.Event()
        environment: Environment | None = None

        def on_signal(signum: int, frame: FrameType | None) -> None:
            received.append(signum)
            if stopping.is_set() and environment is not None:
                logger.warning("signal %d during the drain: stopping now", signum)
                environment.get(FastAPIServer).hurry()
            stopping.set()

        previous = {signum: signal.signal(signum, on_signal) for signum in signals}
        try:
            environment = cls.boot(module, host, port, tls=tls, register=register, reuse_port=reuse_port)
            try:
                if ready is not None:
                    ready(environment)
                while not stopping.wait(1.0):  # a timed wait: signal handlers run between the waits too
                    pass
                logger.info("signal %d: draining %s", received[0], environment.get(FastAPIServer).url)
            finally:
                environment.destroy()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return received[0] if received else 0

    def hurry(self) -> None:
        """Cut a drain under way short: no more waiting for the deregistration delay or the grace period."""
        self._hurry.set()

    @on_destroy()
    def stop(self) -> None:
        """Drain and stop (see the class): deregister, keep serving ``deregister_delay``, stop accepting,
        let the calls under way finish up to ``grace_period``, refuse the queued ones, stop uvicorn."""
        self.draining = True
        self.service_manager.deregister()
        server, thread = self.server, self.thread
        if server is not None and thread is not None:
            self._drain(server, thread)
        if self.socket is not None:
            self.socket.close()
        self.service_manager.shutdown()  # the components stop after their last call
        self.endpoint.sync_calls.close(WORKERS_BOUND)
        self.server, self.thread, self.socket = None, None, None

    def _drain(self, server: uvicorn.Server, thread: threading.Thread) -> None:
        hurry = self._hurry
        if self.deregister_delay and thread.is_alive():
            logger.info("deregistered; serving %.1f s more while clients learn of it", self.deregister_delay)
            hurry.wait(self.deregister_delay)
        deadline = time.monotonic() + self.grace_period
        server.should_exit = True
        loop = server.servers[0].get_loop() if server.servers else None
        if loop is not None:
            # stop accepting now, not at uvicorn's next tick (it closes them again, harmlessly)
            try:
                loop.call_soon_threadsafe(_close_listeners, server)
            except RuntimeError:  # the loop has ended already
                pass
        self._join(thread, deadline)
        if not thread.is_alive():
            return
        # the grace period is over: work that has not started never will, and its callers hear so now
        pool = self.endpoint.sync_calls.pool
        refused = pool.refuse_queued(
            f"the server at {self.url} is stopping: the call waited for a worker past the {self.grace_period:g} s "
            "grace period and was not started; call another instance"
        )
        if refused:
            logger.warning("stopping: %d queued call(s) refused, never started", refused)
        # uvicorn gives up on the rest REPLY_BOUND after the grace period (its timeout_graceful_shutdown):
        # it cancels their tasks and _Uvicorn closes their connections
        self._join(thread, deadline + REPLY_BOUND + 1.0)
        if thread.is_alive():  # a hurried drain, or the app's shutdown hangs: uvicorn's hard stop
            server.force_exit = True
            thread.join(2.0)
            if thread.is_alive():
                logger.error("uvicorn's thread on port %d did not stop", self.port)

    def _join(self, thread: threading.Thread, deadline: float) -> None:
        """Wait for ``thread`` until ``deadline`` (monotonic), or until the drain is hurried."""
        while thread.is_alive() and not self._hurry.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            thread.join(min(left, 0.05))


#: the ``tls`` given to the boot() under way: the FastAPIServer its environment makes serves it
_booting_tls: ContextVar[ServerTLS | None] = ContextVar("warpcall_booting_tls", default=None)


def _configuration_get(service_manager: ServiceManager) -> Any:
    """The environment's ``ConfigurationManager.get`` (``get(key, type, default)``), None without one."""
    from warpcall.di.configuration import ConfigurationManager

    environment = service_manager.environment
    if environment is None or not environment.has_provider(ConfigurationManager):
        return None
    return environment.get(ConfigurationManager).get


def _configured_tls(service_manager: ServiceManager) -> ServerTLS | None:
    """``server.tls.*`` of the environment's configuration, None when it sets no certificate."""
    from warpcall.di.configuration import ConfigurationManager

    environment = service_manager.environment
    if environment is None or not environment.has_provider(ConfigurationManager):
        return None
    return ServerTLS.configured(environment.get(ConfigurationManager).get)


def _close_listeners(server: uvicorn.Server) -> None:
    for listener in server.servers:
        listener.close()
