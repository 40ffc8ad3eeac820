"""Consul as the registry: agent service registration with a health check, blocking health queries.

Each hosted component instance is a Consul service (name = component name,
a unique service id, address/port of its first address, its addresses per
channel in ``Meta["channels"]``, the ``aspyx-service`` format, so both
frameworks find each other during a migration) with an HTTP check on the
component's health endpoint (a TCP check on its port when it declares none).

Watching a component runs blocking queries on
``/v1/health/service/<component>?passing``: Consul answers as soon as the
set of passing instances changes, so a failing or vanished instance leaves
every watcher's URL list about one check interval after it stopped
answering, without polling. Registration goes through the caller's
``consul.Consul`` client; the blocking queries (one task per watched
component) and the check that the agent still knows this process's services
run on an asyncio loop in one daemon thread of this registry, through
py-consul's API on an httpx transport, so ``close()`` can cancel a query
that is still waiting instead of waiting it out.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

import consul as py_consul
import consul.base
import httpx
import requests

from warpcall.di import on_destroy
from warpcall.di.configuration import inject_value
from warpcall.exceptions import ServiceCommunicationException, ServiceException
from warpcall.registry._watch import (
    BackgroundTasks,
    Backoff,
    URLsByChannel,
    WatchedChannels,
    group_by_channel,
    to_instances,
)
from warpcall.registry.contract import (
    ChannelAddress,
    ChannelInstances,
    ComponentInfo,
    ComponentRegistry,
    WatchedChannel,
    watched_component,
)

log = logging.getLogger("warpcall.registry.consul")

#: what a call to the agent raises when it fails: py-consul's errors, requests' (sync) and httpx's (async)
_ERRORS = (py_consul.ConsulException, requests.RequestException, httpx.HTTPError, ValueError)

META_CHANNELS = "channels"
_CHANNEL = re.compile(r"([\w.-]+)\((.*)\)")


def encode_channels(addresses: list[ChannelAddress]) -> str:
    """``Meta["channels"]``: ``name(uri),name(uri)``, as aspyx-service writes it."""
    return ",".join(f"{address.channel}({address.uri})" for address in addresses)


def decode_channels(value: str) -> list[ChannelAddress]:
    """The addresses of one instance from its ``Meta["channels"]``; malformed parts are skipped."""
    addresses = []
    for part in value.split(","):
        match = _CHANNEL.fullmatch(part.strip())
        if match:
            addresses.append(ChannelAddress(match.group(1), match.group(2)))
    return addresses


def urls_from_health(entries: list[dict[str, Any]] | None) -> URLsByChannel:
    """URL lists per channel from a ``/v1/health/service`` answer, ordered by service id."""
    services = sorted(
        (entry.get("Service") or {} for entry in entries or ()), key=lambda service: service.get("ID", "")
    )
    return group_by_channel(
        decode_channels((service.get("Meta") or {}).get(META_CHANNELS, "")) for service in services
    )


class _HttpxTransport(consul.base.HTTPClient):  # type: ignore[misc]  # py-consul ships no types
    """py-consul's HTTP client interface on ``httpx.AsyncClient``: each call returns a coroutine."""

    def __init__(self, host: str, port: int, scheme: str, verify: Any, cert: Any, timeout: float) -> None:
        super().__init__(host, port, scheme, verify, cert)
        self.timeout = timeout
        self.client = httpx.AsyncClient(verify=verify, cert=cert, timeout=timeout)

    def _timeout(self, params: Any) -> httpx.Timeout:
        # a blocking query answers after its wait plus up to wait/16 of jitter
        wait = dict(params or ()).get("wait")
        read = self.timeout + (_seconds(wait) * 17 / 16 if wait else 0.0)
        return httpx.Timeout(self.timeout, read=read)

    async def _request(
        self,
        callback: Callable[[Any], Any],
        method: str,
        path: str,
        params: Any,
        headers: Any,
        data: Any = None,
    ) -> Any:
        response = await self.client.request(
            method,
            self.uri(path, params),
            headers=headers,
            content=data or None,
            timeout=self._timeout(params),
        )
        return callback(consul.base.Response(response.status_code, response.headers, response.text))

    def get(
        self,
        callback: Callable[[Any], Any],
        path: str,
        params: Any = None,
        headers: dict[str, str] | None = None,
        raw: bool = False,
    ) -> Coroutine[Any, Any, Any]:
        return self._request(callback, "GET", path, params, headers)

    def put(
        self,
        callback: Callable[[Any], Any],
        path: str,
        params: Any = None,
        data: str | bytes = "",
        headers: dict[str, str] | None = None,
    ) -> Coroutine[Any, Any, Any]:
        return self._request(callback, "PUT", path, params, headers, data)

    def delete(
        self,
        callback: Callable[[Any], Any],
        path: str,
        params: Any = None,
        data: str | bytes = "",
        headers: dict[str, str] | None = None,
    ) -> Coroutine[Any, Any, Any]:
        return self._request(callback, "DELETE", path, params, headers, data)

    def post(
        self,
        callback: Callable[[Any], Any],
        path: str,
        params: Any = None,
        data: str | bytes = "",
        headers: dict[str, str] | None = None,
    ) -> Coroutine[Any, Any, Any]:
        return self._request(callback, "POST", path, params, headers, data)

    def close(self) -> Coroutine[Any, Any, None]:
        return self.client.aclose()


class _AsyncConsul(consul.base.Consul):  # type: ignore[misc]  # py-consul ships no types
    """A py-consul client whose calls are coroutines on ``_HttpxTransport``."""

    def __init__(self, like: py_consul.Consul, timeout: float) -> None:
        self._timeout = timeout
        http = like.http
        super().__init__(
            host=http.host,
            port=http.port,
            token=like.token,
            scheme=http.scheme,
            consistency=like.consistency,
            dc=like.dc,
            verify=http.verify,
            cert=http.cert,
        )

    def http_connect(
        self, host: str, port: int, scheme: str, verify: bool | str = True, cert: Any = None
    ) -> _HttpxTransport:
        return _HttpxTransport(host, port, scheme, verify, cert, self._timeout)


def _next_index(previous: str | None, answered: str | None) -> str | None:
    """The index of the next blocking query after an answer carrying ``answered``.

    Consul's advice: an index that went backwards (a restored snapshot, a restarted agent) or is not
    positive starts over with a non-blocking query (None); holding on to the higher one would block
    until the new index passes it, missing every change meanwhile.
    """
    if not answered or not answered.isdigit() or int(answered) < 1:
        return None
    if previous is not None and int(answered) < int(previous):
        return None
    return answered


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration))


class ConsulComponentRegistry(ComponentRegistry):
    """Registers hosted components in Consul and follows watched components with blocking queries.

    ``port`` is the port this process's server listens on (used when an
    address URL names none). ``check_interval``, ``check_timeout`` and
    ``deregister_critical_after`` configure the agent's health check (Go
    durations); ``deregister_critical_after`` is always sent, so the agent
    removes an instance whose check stayed critical that long (a crashed
    process does not deregister). ``failures_before_critical`` and
    ``success_before_passing`` (Consul's ``FailuresBeforeCritical`` /
    ``SuccessBeforePassing``, sent when above 0) make the check change only
    after that many consecutive failures or successes, so one slow answer does
    not take an instance out. ``wait`` is how long one blocking query may be
    held.

    Detection window: an instance that stops answering its health check
    leaves every watcher's URL list within ``max(1, failures_before_critical)
    * check_interval + check_timeout`` (a refused connection fails at once,
    saving the timeout), plus the few milliseconds the blocking query takes to
    return. When Consul cannot be reached, watched channels keep their last
    list; the error is logged and retried with capped exponential backoff,
    and the retry starts over with a fresh (non-blocking) query: an agent
    that restarted counts its index from a lower value, and a query with the
    old index would be held for the whole ``wait`` while changes go by. An
    answer whose index went backwards starts over the same way (Consul's
    advice for blocking queries). Every ``resync_interval`` seconds the
    registry checks that the agent still knows this process's services and
    registers again any it lost.

    Liveness: nothing is renewed from this process (the agent checks the
    instance), so :meth:`set_liveness` changes nothing here. A server whose
    event loop stalls does not answer its health endpoint (the check times out
    after ``check_timeout``) and, right after it recovers, answers 503 while its
    ``event-loop`` check still reports the stall (:mod:`warpcall.health`): it
    leaves the passing instances within ``check_interval + check_timeout``. A
    component without a health endpoint gets a TCP check, which the kernel
    answers for a stalled server: declare ``@health`` to have stalls noticed.
    """

    def __init__(
        self,
        port: int,
        consul: py_consul.Consul,
        *,
        check_interval: str = "10s",
        check_timeout: str = "3s",
        deregister_critical_after: str = "5m",
        wait: str = "60s",
        timeout: float = 10.0,
        max_backoff: float = 10.0,
        tags: list[str] | None = None,
        resync_interval: float = 30.0,
        failures_before_critical: int = 0,
        success_before_passing: int = 0,
    ) -> None:
        if failures_before_critical < 0 or success_before_passing < 0:
            raise ServiceException(
                "failures_before_critical and success_before_passing must be 0 or more, not "
                f"{failures_before_critical} and {success_before_passing}"
            )
        self.port = port
        self.consul = consul
        self.check_interval = check_interval
        self.check_timeout = check_timeout
        self.deregister_critical_after = deregister_critical_after
        self.wait = wait
        self.timeout = timeout
        self.max_backoff = max_backoff
        self.tags = list(tags) if tags is not None else ["component"]
        self.resync_interval = resync_interval
        self.failures_before_critical = failures_before_critical
        self.success_before_passing = success_before_passing
        self._lock = threading.RLock()
        # component -> the agent.service.register arguments of this process's instance (service_id among them)
        self._registrations: dict[str, dict[str, Any]] = {}
        self._watched = WatchedChannels()
        self._background = BackgroundTasks(
            "warpcall-consul-watch", lambda: _AsyncConsul(self.consul, self.timeout), lambda client: client.http.close()
        )
        self._closed = False

    @property
    def detection_window(self) -> float:
        """Seconds within which an instance that stopped answering leaves the watchers' lists."""
        failures = max(1, self.failures_before_critical)
        return failures * _seconds(self.check_interval) + _seconds(self.check_timeout)

    # aspyx-service's configuration keys: applied only when configured, so constructor arguments stand

    @inject_value("consul.healthcheck.interval", default=None)
    def set_healthcheck_interval(self, interval: str) -> None:
        """``consul.healthcheck.interval``: how often the agent runs the health check."""
        if interval:
            self.check_interval = interval

    @inject_value("consul.healthcheck.timeout", default=None)
    def set_healthcheck_timeout(self, timeout: str) -> None:
        """``consul.healthcheck.timeout``: how long one health check may take."""
        if timeout:
            self.check_timeout = timeout

    @inject_value("consul.healthcheck.deregister", default=None)
    def set_healthcheck_deregister(self, deregister: str) -> None:
        """``consul.healthcheck.deregister``: how long a critical instance stays before the agent removes it."""
        if deregister:
            self.deregister_critical_after = deregister

    # ComponentRegistry

    def register(self, descriptor: ComponentInfo, addresses: list[ChannelAddress]) -> None:
        if not addresses:
            raise ServiceException(f"component {descriptor.name} has no address to register in Consul")
        first = urlsplit(addresses[0].uri)
        host = first.hostname or "127.0.0.1"
        port = first.port or self.port
        base = f"{first.scheme or 'http'}://{first.netloc}"
        if descriptor.health:
            check = py_consul.Check.http(
                base + descriptor.health,
                self.check_interval,
                timeout=self.check_timeout,
                deregister=self.deregister_critical_after,
            )
        else:
            check = py_consul.Check.tcp(
                host,
                port,
                self.check_interval,
                timeout=self.check_timeout,
                deregister=self.deregister_critical_after,
            )
        if self.failures_before_critical:
            check["FailuresBeforeCritical"] = self.failures_before_critical
        if self.success_before_passing:
            check["SuccessBeforePassing"] = self.success_before_passing
        with self._lock:
            self._check_open()
            previous = self._registrations.get(descriptor.name)
            service_id = (
                previous["service_id"]
                if previous is not None
                else f"{descriptor.name}-{host}-{port}-{uuid.uuid4().hex[:12]}"
            )
            registration = {
                "name": descriptor.name,
                "service_id": service_id,
                "address": host,
                "port": port,
                "tags": self.tags,
                "meta": {META_CHANNELS: encode_channels(addresses)},
                "check": check,
            }
            try:
                self.consul.agent.service.register(**registration)
            except _ERRORS as exc:
                raise ServiceCommunicationException(
                    f"cannot register {descriptor.name} with the Consul agent at "
                    f"{self.consul.http.base_uri}: {exc}"
                ) from exc
            self._registrations[descriptor.name] = registration
            self._start_task("registrations", self._keep_registered)

    def deregister(self, descriptor: ComponentInfo) -> None:
        with self._lock:
            registration = self._registrations.pop(descriptor.name, None)
        if registration is not None:
            self._deregister(registration["service_id"])

    def watch(self, channel: WatchedChannel) -> None:
        component = watched_component(channel)
        with self._lock:
            self._check_open()
            if not self._watched.add(channel):
                return
            try:
                index, entries = self.consul.health.service(component, passing=True)
            except _ERRORS as exc:
                log.warning(
                    "Consul at %s unreachable, %s is watched once it answers: %s",
                    self.consul.http.base_uri,
                    component,
                    exc,
                )
                index = None
            else:
                self._watched.update(component, urls_from_health(entries))
            self._start_task(f"watch:{component}", lambda: self._follow(component, index))

    def get_addresses(self, descriptor: ComponentInfo) -> list[ChannelInstances]:
        try:
            _, entries = self.consul.health.service(descriptor.name, passing=True)
        except _ERRORS as exc:
            known = self._watched.known(descriptor.name)
            if known is None:
                raise ServiceCommunicationException(
                    f"cannot read {descriptor.name}'s instances from the Consul agent at "
                    f"{self.consul.http.base_uri}: {exc}"
                ) from exc
            return to_instances(descriptor.name, known)
        return to_instances(descriptor.name, urls_from_health(entries))

    @on_destroy()  # an environment that created the registry closes it when destroyed
    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            service_ids = [registration["service_id"] for registration in self._registrations.values()]
            self._registrations.clear()
        for service_id in service_ids:
            self._deregister(service_id)
        self._background.stop()
        self._watched.clear()

    # background work: one asyncio loop in one daemon thread, one task per watched component

    @property
    def _client(self) -> _AsyncConsul:
        return self._background.client

    def _start_task(self, key: str, factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._background.start(key, factory)

    async def _follow(self, component: str, index: str | None) -> None:
        """Blocking queries on the passing instances of ``component``, pushing every change."""
        backoff = Backoff(maximum=self.max_backoff)
        while True:
            started = time.monotonic()
            try:
                new_index, entries = await self._client.health.service(
                    component, passing=True, index=index, wait=self.wait
                )
            except asyncio.CancelledError:
                raise
            except _ERRORS as exc:
                delay = backoff.failed(
                    log,
                    f"Consul at {self.consul.http.base_uri} unreachable while watching {component}, "
                    "keeping the last known instances",
                    exc,
                )
                await asyncio.sleep(delay)
                # the agent may have restarted with a lower index: a query with ours would be held for
                # the whole wait, so the next one reads the current state at once
                index = None
                continue
            backoff.succeeded(log, f"Consul at {self.consul.http.base_uri} answers again for {component}")
            index = _next_index(index, new_index)
            self._watched.update(component, urls_from_health(entries))
            if time.monotonic() - started < 0.05:
                # answers that come back at once (index reset, flapping check) must not become a busy loop
                await asyncio.sleep(0.05)

    async def _keep_registered(self) -> None:
        """Register again what the agent forgot (an agent restarted without its data directory)."""
        backoff = Backoff(maximum=self.max_backoff)
        delay = self.resync_interval
        while True:
            await asyncio.sleep(delay)
            try:
                known = await self._client.agent.services()
                with self._lock:
                    missing = [r for r in self._registrations.values() if r["service_id"] not in known]
                for registration in missing:
                    log.warning(
                        "the Consul agent at %s forgot %s; registering it again",
                        self.consul.http.base_uri,
                        registration["service_id"],
                    )
                    await self._client.agent.service.register(**registration)
                    with self._lock:
                        withdrawn = registration not in self._registrations.values()
                    if withdrawn:  # deregistered meanwhile: take it back out
                        await self._client.agent.service.deregister(registration["service_id"])
                backoff.succeeded(log, f"Consul at {self.consul.http.base_uri} answers again")
                delay = self.resync_interval
            except _ERRORS as exc:
                delay = min(
                    backoff.failed(
                        log, f"cannot verify this process's services at {self.consul.http.base_uri}", exc
                    ),
                    self.resync_interval,
                )

    def stop(self) -> None:
        """aspyx-service's name for :meth:`close`."""
        self.close()

    def _deregister(self, service_id: str) -> None:
        try:
            self.consul.agent.service.deregister(service_id)
        except _ERRORS as exc:
            log.warning(
                "could not deregister %s from the Consul agent at %s (its health check fails instead): %s",
                service_id,
                self.consul.http.base_uri,
                exc,
            )

    def _check_open(self) -> None:
        if self._closed:
            raise ServiceException("this ConsulComponentRegistry is closed; create a new one")
