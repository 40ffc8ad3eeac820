"""etcd v3 as the registry, through its JSON gRPC gateway (plain HTTP, httpx).

Each hosted component instance is a key ``<prefix><component>/<instance-id>``
whose value is JSON (``{"component": ..., "addresses": [[channel, uri], ...]}``)
attached to a lease of this registry. A task keeps the lease alive; when the
process dies the keep-alives stop and etcd deletes the keys once the lease's
TTL runs out. Watching follows the whole prefix with one ``/v3/watch``
stream, starting right after the revision of a full read of the prefix, so
no change is missed between the read and the stream; the stream is reopened
(after a fresh read) when it breaks, when etcd cancels it, and after
``watch_idle`` seconds without traffic, so every HTTP call is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import httpx

from warpcall.di import on_destroy
from warpcall.exceptions import ServiceCommunicationException, ServiceException
from warpcall.registry._watch import BackgroundTasks, Backoff, WatchedChannels, group_by_channel, to_instances
from warpcall.registry.contract import (
    ChannelAddress,
    ChannelInstances,
    ComponentInfo,
    ComponentRegistry,
    WatchedChannel,
    watched_component,
)

log = logging.getLogger("warpcall.registry.etcd")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _range_end(prefix: bytes) -> bytes:
    """The smallest key after every key that starts with ``prefix`` (etcd's prefix range)."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"


def _lease_not_found(exc: httpx.HTTPStatusError) -> bool:
    """etcd refused a write because its lease is gone (gRPC NOT_FOUND: 404 through the JSON gateway)."""
    return exc.response.status_code == 404 and "lease not found" in exc.response.text


class EtcdComponentRegistry(ComponentRegistry):
    """Registers hosted components under a key prefix with a lease and watches the prefix.

    Detection window: an instance whose process died leaves every watcher's
    URL list within the lease TTL (``ttl``; etcd may raise it to its minimum,
    see ``granted_ttl``) plus etcd's lease expiry sweep (about 0.5 s): the
    keep-alive is renewed every TTL/3, so at death the lease has at most TTL
    left. A clean ``deregister``/``close`` deletes the keys at once. When etcd
    cannot be reached, watched channels keep their last list; the error is
    logged and retried with capped exponential backoff.

    Liveness: with :meth:`set_liveness` (a server installs its event loop's
    watchdog) the lease is renewed only while the loop answers, so a stalled
    server's keys go when the lease runs out, at most ``granted_ttl`` after the
    watchdog noticed (its ``max_lag`` plus one probe interval); within
    ``liveness_recheck`` seconds of the loop answering again a new lease puts them
    back (or the old one is renewed, if it had not run out).
    """

    def __init__(
        self,
        endpoint: str = "http://127.0.0.1:2379",
        prefix: str = "/warpcall/",
        ttl: int = 10,
        *,
        timeout: float = 5.0,
        watch_idle: float = 60.0,
        max_backoff: float = 10.0,
        liveness_recheck: float = 0.1,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self.ttl = ttl
        self.granted_ttl = ttl
        self.timeout = timeout
        self.watch_idle = watch_idle
        self.max_backoff = max_backoff
        self.liveness_recheck = liveness_recheck
        self._http = httpx.Client(base_url=self.endpoint, timeout=timeout)
        self._lock = threading.RLock()
        self._lease: int | None = None
        self._registered: dict[str, tuple[str, str]] = {}  # component -> (key, value)
        self._watched = WatchedChannels()
        # what the watch knows: key -> (create revision, component, addresses), as of ``_revision``
        self._entries: dict[str, tuple[int, str, list[ChannelAddress]]] = {}
        self._revision = 0
        self._background = BackgroundTasks(
            "warpcall-etcd-registry",
            lambda: httpx.AsyncClient(base_url=self.endpoint, timeout=self.timeout),
            lambda client: client.aclose(),
        )
        self._closed = False

    @property
    def detection_window(self) -> float:
        """Seconds within which a dead instance leaves the watchers' lists."""
        return self.granted_ttl + 1.0

    # ComponentRegistry

    def register(self, descriptor: ComponentInfo, addresses: list[ChannelAddress]) -> None:
        value = json.dumps(
            {
                "component": descriptor.name,
                "pid": os.getpid(),
                "addresses": [[a.channel, a.uri] for a in addresses],
            }
        )
        with self._lock:
            self._check_open()
            key = self._registered.get(
                descriptor.name, (f"{self.prefix}{descriptor.name}/{uuid.uuid4().hex}", "")
            )[0]
            try:
                if self._lease is None:
                    self._lease = self._grant_sync()
                try:
                    self._put_sync(key, value, self._lease)
                except httpx.HTTPStatusError as exc:
                    if not _lease_not_found(exc):
                        raise
                    # the lease was lost while etcd answers (revoked, or it ran out while the server stalled):
                    # renew it now rather than fail until the keep-alive does, up to TTL/3 later
                    self._renew_sync(self._lease)
                    self._put_sync(key, value, self._lease)
            except (httpx.HTTPError, ValueError) as exc:
                raise ServiceCommunicationException(
                    f"cannot register {descriptor.name} in etcd at {self.endpoint}: {exc}"
                ) from exc
            self._registered[descriptor.name] = (key, value)
            self._start_task("keepalive", self._keep_alive)

    def deregister(self, descriptor: ComponentInfo) -> None:
        with self._lock:
            entry = self._registered.pop(descriptor.name, None)
            if entry is None:
                return
            try:
                self._call("/v3/kv/deleterange", {"key": _b64(entry[0].encode())})
            except (httpx.HTTPError, ValueError) as exc:
                log.warning(
                    "could not delete %s from etcd at %s (its lease still expires): %s",
                    entry[0],
                    self.endpoint,
                    exc,
                )

    def watch(self, channel: WatchedChannel) -> None:
        component = watched_component(channel)
        with self._lock:
            self._check_open()
            if not self._watched.add(channel):
                return
            try:
                revision, kvs = self._range_sync(self.prefix)
            except (httpx.HTTPError, ValueError) as exc:
                log.warning(
                    "etcd at %s unreachable, %s is watched once it answers: %s", self.endpoint, component, exc
                )
            else:
                self._apply_snapshot(revision, kvs)
            self._start_task("watch", self._follow)

    def get_addresses(self, descriptor: ComponentInfo) -> list[ChannelInstances]:
        try:
            _, kvs = self._range_sync(f"{self.prefix}{descriptor.name}/")
        except (httpx.HTTPError, ValueError) as exc:
            known = self._watched.known(descriptor.name)
            if known is None:
                raise ServiceCommunicationException(
                    f"cannot read {descriptor.name}'s instances from etcd at {self.endpoint}: {exc}"
                ) from exc
            return to_instances(descriptor.name, known)
        entries = sorted(filter(None, (self._decode(kv) for kv in kvs)), key=lambda entry: entry[:2])
        # the range also holds the keys of a component named "<name>/...": only this one's count
        urls = group_by_channel(addresses for _, _, owner, addresses in entries if owner == descriptor.name)
        return to_instances(descriptor.name, urls)

    @on_destroy()  # an environment that created the registry closes it when destroyed
    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._background.stop()
        with self._lock:
            if self._lease is not None:
                try:
                    # revoking deletes every key of this registry at once
                    self._call("/v3/lease/revoke", {"ID": str(self._lease)})
                except (httpx.HTTPError, ValueError) as exc:
                    log.warning(
                        "could not revoke lease %s in etcd at %s (it expires on its own): %s",
                        self._lease,
                        self.endpoint,
                        exc,
                    )
                self._lease = None
            self._registered.clear()
            self._watched.clear()
            self._http.close()

    # state

    def _decode(self, kv: dict[str, Any]) -> tuple[int, str, str, list[ChannelAddress]] | None:
        key = base64.b64decode(kv["key"]).decode()
        try:
            value = json.loads(base64.b64decode(kv.get("value", "")))
            addresses = [ChannelAddress(channel, uri) for channel, uri in value["addresses"]]
            component = str(value["component"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring etcd key %s: its value is not a warpcall registration", key)
            return None
        return int(kv.get("create_revision", 0)), key, component, addresses

    def _apply_snapshot(self, revision: int, kvs: list[dict[str, Any]]) -> None:
        with self._lock:
            if revision < self._revision:
                return
            self._revision = revision
            self._entries = {}
            for kv in kvs:
                decoded = self._decode(kv)
                if decoded is not None:
                    create_revision, key, component, addresses = decoded
                    self._entries[key] = (create_revision, component, addresses)
            self._push()

    def _apply_events(self, events: list[dict[str, Any]]) -> None:
        with self._lock:
            for event in events:
                kv = event.get("kv", {})
                mod_revision = int(kv.get("mod_revision", 0))
                # older than what is known: already in the snapshot. Not equal: the events of one revision
                # (a lease's expiry deletes all its keys at once) each carry that revision
                if mod_revision < self._revision:
                    continue
                self._revision = mod_revision
                key = base64.b64decode(kv["key"]).decode()
                if event.get("type") == "DELETE":
                    self._entries.pop(key, None)
                    continue
                decoded = self._decode(kv)
                if decoded is None:  # no longer a registration: ignored, as a fresh read ignores it
                    self._entries.pop(key, None)
                else:
                    create_revision, key, component, addresses = decoded
                    self._entries[key] = (create_revision, component, addresses)
            self._push()

    def _push(self) -> None:
        ordered = sorted(self._entries.items(), key=lambda item: (item[1][0], item[0]))
        for component in self._watched.components():
            self._watched.update(
                component,
                group_by_channel(addresses for _, (_, owner, addresses) in ordered if owner == component),
            )

    # synchronous calls (caller's thread)

    def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._http.post(path, json=body)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()  # etcd's JSON gateway answers with an object
        return answer

    def _grant_sync(self) -> int:
        granted = self._call("/v3/lease/grant", {"TTL": str(self.ttl)})
        self.granted_ttl = int(granted.get("TTL", self.ttl))
        return int(granted["ID"])

    def _put_sync(self, key: str, value: str, lease: int | None) -> None:
        self._call(
            "/v3/kv/put", {"key": _b64(key.encode()), "value": _b64(value.encode()), "lease": str(lease)}
        )

    def _renew_sync(self, lost: int | None) -> None:
        """Take a new lease in place of ``lost`` and put every registered key on it.

        All under the lock, like ``register`` and ``deregister``: a key deregistered between reading
        the keys and writing them would be written again and kept alive until ``close``. The new lease
        is kept only once every key is on it, so a failed write is retried with the next renewal.
        """
        with self._lock:
            if self._closed or self._lease != lost:
                return  # closed, or renewed meanwhile (by ``register`` or the keep-alive)
            lease = self._grant_sync()
            registered = list(self._registered.values())
            if registered:
                log.warning("the etcd lease had expired; registering %d instance(s) again", len(registered))
            for key, value in registered:
                self._put_sync(key, value, lease)
            self._lease = lease

    def _range_sync(self, prefix: str) -> tuple[int, list[dict[str, Any]]]:
        key = prefix.encode()
        answer = self._call("/v3/kv/range", {"key": _b64(key), "range_end": _b64(_range_end(key))})
        return int(answer["header"]["revision"]), answer.get("kvs", [])

    # background tasks (one asyncio loop in one daemon thread)

    @property
    def _client(self) -> httpx.AsyncClient:
        return self._background.client

    def _start_task(self, name: str, factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._background.start(name, factory)

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self._client.post(path, json=body)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()  # etcd's JSON gateway answers with an object
        return answer

    async def _keep_alive(self) -> None:
        """Renew the lease every TTL/3 while the server answers; once it is lost (etcd unreachable too
        long, or the server stalled past the TTL), take a new one and put every key again.

        While :meth:`serving` is false (the server's event loop stalled, see
        :meth:`~warpcall.registry.contract.ComponentRegistry.set_liveness`) nothing is renewed, so
        etcd deletes the keys when the lease runs out; it is asked again every
        ``liveness_recheck`` seconds, and the first renewal after it answers again restores the keys.
        """
        backoff = Backoff(maximum=self.max_backoff)
        delay = self.granted_ttl / 3
        while True:
            await asyncio.sleep(delay)
            if not self.serving():
                delay = min(self.liveness_recheck, self.granted_ttl / 3)
                continue
            try:
                with self._lock:
                    lease = self._lease
                answer = (
                    await self._post("/v3/lease/keepalive", {"ID": str(lease)}) if lease is not None else {}
                )
                if int(answer.get("result", {}).get("TTL", 0)) <= 0:
                    # in a worker thread: it holds the lock over its HTTP calls, which this loop must not
                    await asyncio.to_thread(self._renew_sync, lease)
                backoff.succeeded(log, f"lease renewed in etcd at {self.endpoint} again")
                delay = self.granted_ttl / 3
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                # retries stay within a third of the TTL so a short outage does not cost the lease
                delay = min(
                    backoff.failed(log, f"cannot renew the lease in etcd at {self.endpoint}", exc),
                    self.granted_ttl / 3,
                )

    async def _follow(self) -> None:
        """Read the prefix, then stream its changes; start over after any break."""
        backoff = Backoff(maximum=self.max_backoff)
        prefix = self.prefix.encode()
        while True:
            try:
                answer = await self._post(
                    "/v3/kv/range", {"key": _b64(prefix), "range_end": _b64(_range_end(prefix))}
                )
                revision = int(answer["header"]["revision"])
                self._apply_snapshot(revision, answer.get("kvs", []))
                await self._stream(
                    revision + 1, lambda: backoff.succeeded(log, f"etcd at {self.endpoint} answers again")
                )
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                delay = backoff.failed(
                    log,
                    f"etcd at {self.endpoint} unreachable while watching {self.prefix}, "
                    "keeping the last known instances",
                    exc,
                )
                await asyncio.sleep(delay)

    async def _stream(self, start_revision: int, on_created: Callable[[], None]) -> None:
        """Apply the events of one watch stream; returns when etcd cancels it or after ``watch_idle``
        seconds without a message."""
        prefix = self.prefix.encode()
        request = {
            "create_request": {
                "key": _b64(prefix),
                "range_end": _b64(_range_end(prefix)),
                "start_revision": str(start_revision),
            }
        }
        timeout = httpx.Timeout(self.timeout, read=self.watch_idle)
        try:
            async with self._client.stream("POST", "/v3/watch", json=request, timeout=timeout) as response:
                response.raise_for_status()
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    message = json.loads(line)
                    if "error" in message:
                        raise ValueError(f"watch failed: {message['error']}")
                    result = message.get("result", {})
                    if result.get("canceled") or int(result.get("compact_revision", 0)):
                        return
                    if result.get("created"):
                        on_created()
                    if result.get("events"):
                        self._apply_events(result["events"])
        except httpx.ReadTimeout:
            return  # idle: reopen after a fresh read

    def _check_open(self) -> None:
        if self._closed:
            raise ServiceException("this EtcdComponentRegistry is closed; create a new one")
