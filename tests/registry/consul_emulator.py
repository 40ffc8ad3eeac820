"""An emulator of the part of Consul's HTTP API a service registry uses, as a real HTTP server.

It follows Consul's documented behaviour (https://developer.hashicorp.com/consul/api-docs):

- ``PUT /v1/agent/service/register`` with ``Check``/``Checks`` (HTTP, TCP or TTL; ``Interval``,
  ``Timeout``, ``DeregisterCriticalServiceAfter``, ``SuccessBeforePassing``, ``FailuresBeforeWarning``,
  ``FailuresBeforeCritical``); keys are matched case-insensitively and in snake_case, as the agent
  does. New checks start ``critical`` unless ``Status`` says otherwise.
- ``PUT /v1/agent/service/deregister/<id>`` (404 for an unknown id).
- ``GET /v1/agent/services``, ``GET /v1/agent/checks``, ``GET /v1/catalog/services`` (not blocking),
  ``GET /v1/catalog/service/<name>``,
  ``GET /v1/health/service/<name>`` with ``?passing`` (a Go boolean: absent, ``false`` or ``0``
  do not filter; empty, ``true`` or ``1`` do; anything else is a 400), ``GET /v1/status/leader``.
- TTL checks: ``PUT /v1/agent/check/pass|warn|fail/<id>?note=`` and ``PUT /v1/agent/check/update/<id>``
  with ``{"Status", "Output"}`` set the status and restart the TTL; a TTL check not updated within
  its TTL turns ``critical`` with the output ``TTL expired``. These endpoints answer 404 for an
  unknown check and 500 for a check that has no TTL, as the agent does.
- HTTP/TCP checks run by the emulator at their interval (the first run staggered randomly within
  the interval): 2xx passes, 429 warns, anything else fails; a status changes only after
  ``SuccessBeforePassing`` consecutive successes (a warning counts as one) or ``FailuresBeforeCritical``
  consecutive failures (``FailuresBeforeWarning`` of them give ``warning`` first), as the agent's
  status handler does.
- Services whose check stayed critical longer than ``DeregisterCriticalServiceAfter`` are reaped.
- Blocking queries: ``?index=&wait=`` hold the request until the result's index passes ``index``
  or ``wait`` (default 5 min, at most 10 min, plus up to wait/16 of jitter) runs out; an ``index``
  above the current one blocks too (so a client must reset an index that went backwards); every
  answer carries ``X-Consul-Index``, ``X-Consul-KnownLeader`` and ``X-Consul-LastContact``.
- The agent's own endpoints (``/v1/agent/...``) answer from the local state at once; the catalog
  (``/v1/health/service``, ``/v1/catalog/service``) sees a registration or deregistration only
  ``catalog_lag`` seconds later (the agent's anti-entropy sync; 0 by default), and its index moves then.

Emulator-only knobs that a real agent does not offer (tests using them skip against a real agent):
``catalog_lag``; ``restart()`` (an agent in dev mode restarted: services, checks and catalog lost,
the index starts low again and every open connection is cut); ``rollback_index()`` (the index moves
backwards with the services kept, as after a snapshot restore); ``reap_interval`` and
``deregister_minimum`` (the real agent reaps every 30 s with a 1 minute minimum; these default to
Consul's values and tests may lower them).

What the emulator still does not do:

- one node, one datacenter, no servers, no Raft, no gossip: ``serfHealth`` is always passing,
  ``?dc``, ``?stale``, ``?consistent``, ``?cached``, ``?near``, ``?filter``, ``?tag``, ``?ns``,
  ``?partition`` are ignored; no ACLs (tokens are ignored), no TLS;
- no KV store, sessions, events, prepared queries, Connect, config entries, ``/v1/agent/check/register``
  or ``/v1/agent/check/deregister``, maintenance mode, ``/v1/agent/service/<id>``, ``/v1/catalog/register``;
- checks: no script, gRPC, H2PING, Docker, alias or OS-service checks; HTTP checks send no body or
  custom headers, follow no TLS options and do not truncate output; ``Notes`` is always empty;
- status changes of checks reach the catalog at once (no ``check_update_interval`` throttling of
  output-only changes; output changes alone do not move the index); the catalog lag applies to
  registrations and deregistrations only;
- a deregistered service that is still in the catalog (lag) shows no checks;
- hash-based blocking (``?hash=``) and ``X-Consul-Effective-Consistency`` are not emulated; an index
  is per service name, not per table;
- the agent's own re-registration of services from its data directory (``-data-dir``) after a restart:
  ``restart()`` always loses everything, as a dev agent does.
"""

from __future__ import annotations

import json
import random
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

NODE = "emulator"
DATACENTER = "dc1"
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")


class BadRequest(Exception):
    """Answered with HTTP 400 and the message as body, like the agent does."""


class NotFound(Exception):
    """Answered with HTTP 404."""


class ServerError(Exception):
    """Answered with HTTP 500, as the agent answers errors it does not classify."""


def parse_duration(value: Any) -> float:
    """A Go duration ("10s", "1m30s", "500ms") or a number of nanoseconds, in seconds."""
    if value in (None, ""):
        return 0.0
    if isinstance(value, (int, float)):
        return float(value) / 1e9
    parts = _DURATION.findall(str(value))
    if not parts or "".join(n + u for n, u in parts) != str(value):
        raise BadRequest(f'time: invalid duration "{value}"')
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)


def _normalize(data: Any) -> Any:
    """Keys lower-cased without underscores: "DeregisterCriticalServiceAfter" matches
    "deregister_critical_service_after", as the agent's decoder does."""
    if isinstance(data, dict):
        return {str(key).replace("_", "").lower(): value for key, value in data.items()}
    return data


@dataclass
class Check:
    check_id: str
    name: str
    service_id: str
    service_name: str
    kind: str  # "http", "tcp" or "ttl"
    target: str
    interval: float
    timeout: float
    deregister_after: float
    status: str = "critical"
    output: str = ""
    critical_since: float | None = None
    create_index: int = 0
    modify_index: int = 0
    method: str = "GET"
    success_before_passing: int = 0
    failures_before_warning: int = 0
    failures_before_critical: int = 0
    successes: int = 0  # consecutive, as the agent's status handler counts them
    failures: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    ttl_timer: threading.Timer | None = None

    def as_json(self, tags: list[str]) -> dict[str, Any]:
        return {
            "Node": NODE,
            "CheckID": self.check_id,
            "Name": self.name,
            "Status": self.status,
            "Notes": "",
            "Output": self.output,
            "ServiceID": self.service_id,
            "ServiceName": self.service_name,
            "ServiceTags": tags,
            "Type": self.kind,
            "Interval": f"{self.interval:g}s" if self.kind != "ttl" else "",
            "Timeout": f"{self.timeout:g}s" if self.kind != "ttl" else "",
            "ExposedPort": 0,
            "Definition": {},
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
        }


@dataclass
class Service:
    service_id: str
    name: str
    address: str
    port: int
    tags: list[str]
    meta: dict[str, str]
    create_index: int
    modify_index: int
    checks: list[str] = field(default_factory=list)

    def as_agent_json(self) -> dict[str, Any]:
        return {
            "Kind": "",
            "ID": self.service_id,
            "Service": self.name,
            "Tags": self.tags,
            "Meta": self.meta,
            "Port": self.port,
            "Address": self.address,
            "Weights": {"Passing": 1, "Warning": 1},
            "EnableTagOverride": False,
            "Datacenter": DATACENTER,
        }

    def as_health_json(self) -> dict[str, Any]:
        return dict(self.as_agent_json(), CreateIndex=self.create_index, ModifyIndex=self.modify_index)


class ConsulEmulator:
    """A Consul agent stand-in on 127.0.0.1; ``stop()`` keeps the state, ``start()`` again reuses the port."""

    def __init__(
        self, *, reap_interval: float = 30.0, deregister_minimum: float = 60.0, catalog_lag: float = 0.0
    ) -> None:
        self.reap_interval = reap_interval
        self.deregister_minimum = deregister_minimum
        #: seconds before a registration or deregistration reaches the catalog (health/catalog endpoints)
        self.catalog_lag = catalog_lag
        self.port = 0
        self._state = threading.Condition()
        self._index = 10
        self._name_index: dict[str, int] = {}
        #: the agent's local state (what /v1/agent/* answers)
        self.services: dict[str, Service] = {}
        self.checks: dict[str, Check] = {}
        #: the catalog (what /v1/health and /v1/catalog answer): the agent's services, catalog_lag later
        self.catalog_services: dict[str, Service] = {}
        self._syncs: set[threading.Timer] = set()
        self._held: dict[str, int] = {}
        #: the service id of every accepted registration, in order
        self.registrations: list[str] = []
        self.restarts = 0
        self._server: ThreadingHTTPServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._reaper: threading.Thread | None = None
        self._running = threading.Event()
        self._halt = threading.Event()
        self._connections: set[socket.socket] = set()

    @property
    def address(self) -> str:
        """``host:port``, the form of ``CONSUL_HTTP_ADDR``."""
        return f"127.0.0.1:{self.port}"

    # lifecycle

    def start(self) -> ConsulEmulator:
        emulator = self

        class Handler(_Handler):
            pass

        Handler.emulator = emulator
        server = _Server(("127.0.0.1", self.port), Handler)
        self.port = server.server_address[1]
        self._server = server
        self._running.set()
        self._halt = threading.Event()
        self._serve_thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="consul-emulator-http",
            daemon=True,
        )
        self._serve_thread.start()
        with self._state:
            for check in self.checks.values():
                self._start_check(check)
        self._reaper = threading.Thread(target=self._reap_loop, name="consul-emulator-reaper", daemon=True)
        self._reaper.start()
        return self

    def stop(self) -> None:
        """Stop as a crashed agent would: listening socket and open connections closed, checks stopped."""
        if self._server is None:
            return
        self._running.clear()
        self._halt.set()
        self._server.shutdown()
        self._server.server_close()
        with self._state:
            self._state.notify_all()
            for check in self.checks.values():
                check.stop.set()
                if check.ttl_timer is not None:
                    check.ttl_timer.cancel()
            for timer in self._syncs:
                timer.cancel()
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in (self._serve_thread, self._reaper):
            if thread is not None:
                thread.join(timeout=10)
        self._server = None

    def restart(self, index: int = 5) -> None:
        """Restart as a dev agent (no data directory) does: every connection cut, services, checks and
        catalog lost, and the index starting again at ``index`` (lower than before: it goes backwards)."""
        self.stop()
        with self._state:
            for timer in self._syncs:
                timer.cancel()
            self._syncs.clear()
            self.services.clear()
            self.checks.clear()
            self.catalog_services.clear()
            self._name_index.clear()
            self._index = index
            self.restarts += 1
        self.start()

    def rollback_index(self, index: int) -> None:
        """Move every index back to ``index`` with the services kept (a snapshot restore): queries held
        with a higher index go on waiting (until a change passes their index or their wait runs out)."""
        with self._state:
            self._index = index
            self._name_index = {name: index for name in self._name_index}
            for service in self.catalog_services.values():
                service.create_index = min(service.create_index, index)
                service.modify_index = min(service.modify_index, index)
            self._state.notify_all()

    def index_of(self, name: str) -> int:
        """The ``X-Consul-Index`` a health or catalog query of ``name`` answers with now."""
        with self._state:
            return self._name_index.get(name, self._index)

    def __enter__(self) -> ConsulEmulator:  # noqa: PYI034 - the emulator is not meant to be subclassed
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # agent operations

    def register(self, body: dict[str, Any]) -> None:
        data = _normalize(body)
        name = data.get("name")
        if not name:
            raise BadRequest("Missing service name")
        service_id = data.get("id") or name
        check_bodies = []
        if data.get("check"):
            check_bodies.append(_normalize(data["check"]))
        check_bodies.extend(_normalize(check) for check in data.get("checks") or [])
        specs = [self._check_spec(check) for check in check_bodies]
        with self._state:
            previous = self.services.get(service_id)
            index = self._index  # the catalog sync gives the service its indexes
            service = Service(
                service_id=service_id,
                name=name,
                address=data.get("address") or "",  # empty: clients use the node's address
                port=int(data.get("port") or 0),
                tags=list(data.get("tags") or []),
                meta={str(k): str(v) for k, v in (data.get("meta") or {}).items()},
                create_index=previous.create_index if previous else index,
                modify_index=index,
            )
            if previous is not None:
                for check_id in previous.checks:
                    self._remove_check(check_id)
            self.services[service_id] = service
            for position, spec in enumerate(specs, start=1):
                check_id = spec.pop("checkid", None) or (
                    f"service:{service_id}" if len(specs) == 1 else f"service:{service_id}:{position}"
                )
                check = Check(
                    check_id=check_id,
                    name=spec.pop("name", None) or f"Service '{name}' check",
                    service_id=service_id,
                    service_name=name,
                    create_index=index,
                    modify_index=index,
                    **spec,
                )
                if check.status == "critical":
                    check.critical_since = time.monotonic()
                self.checks[check_id] = check
                service.checks.append(check_id)
                if self._running.is_set():
                    self._start_check(check)
            self.registrations.append(service_id)
            self._schedule_sync(service_id)
            self._state.notify_all()

    def deregister(self, service_id: str) -> None:
        with self._state:
            service = self.services.pop(service_id, None)
            if service is None:
                raise NotFound(
                    f'Unknown service ID "{service_id}". '
                    "Ensure that the service ID is passed, not the service name."
                )
            for check_id in service.checks:
                self._remove_check(check_id)
            self._schedule_sync(service_id)
            self._state.notify_all()

    def set_check_status(self, check_id: str, status: str, output: str = "") -> None:
        """What ``/v1/agent/check/pass|warn|fail|update`` do: only TTL checks take it, and their TTL restarts."""
        if status not in ("passing", "warning", "critical"):
            raise BadRequest(f'Invalid check status: "{status}"')
        with self._state:
            check = self.checks.get(check_id)
            if check is None:
                raise NotFound(
                    f'Unknown check ID "{check_id}". Ensure that the check ID is passed, not the check name.'
                )
            if check.kind != "ttl":
                raise ServerError(f'CheckID "{check_id}" does not have associated TTL')
            self._set_status(check, status, output)
            if self._running.is_set():
                self._start_ttl(check)

    # queries

    def health(self, name: str, passing: bool) -> tuple[int, list[dict[str, Any]]]:
        with self._state:
            entries = []
            for service in self.catalog_services.values():
                if service.name != name:
                    continue
                # a service the agent dropped but the catalog still holds (lag) has no checks left
                checks = [self.checks[check_id] for check_id in service.checks if check_id in self.checks]
                if passing and any(check.status != "passing" for check in checks):
                    continue
                node_check = {
                    "Node": NODE,
                    "CheckID": "serfHealth",
                    "Name": "Serf Health Status",
                    "Status": "passing",
                    "Notes": "",
                    "Output": "Agent alive and reachable",
                    "ServiceID": "",
                    "ServiceName": "",
                    "ServiceTags": [],
                    "Type": "",
                    "CreateIndex": 1,
                    "ModifyIndex": 1,
                }
                entries.append(
                    {
                        "Node": self._node_json(),
                        "Service": service.as_health_json(),
                        "Checks": [node_check] + [check.as_json(service.tags) for check in checks],
                    }
                )
            return self._name_index.get(name, self._index), entries

    def catalog(self, name: str) -> tuple[int, list[dict[str, Any]]]:
        with self._state:
            entries = [
                {
                    "ID": "00000000-0000-0000-0000-000000000001",
                    "Node": NODE,
                    "Address": "127.0.0.1",
                    "Datacenter": DATACENTER,
                    "TaggedAddresses": {},
                    "NodeMeta": {},
                    "ServiceID": service.service_id,
                    "ServiceName": service.name,
                    "ServiceAddress": service.address,
                    "ServicePort": service.port,
                    "ServiceTags": service.tags,
                    "ServiceMeta": service.meta,
                    "ServiceWeights": {"Passing": 1, "Warning": 1},
                    "ServiceEnableTagOverride": False,
                    "CreateIndex": service.create_index,
                    "ModifyIndex": service.modify_index,
                }
                for service in self.catalog_services.values()
                if service.name == name
            ]
            return self._name_index.get(name, self._index), entries

    def wait_for_change(self, name: str, index: int, wait: float) -> None:
        """A blocking query: wait while the index of ``name`` is still ``index``, at most ``wait`` s."""
        deadline = time.monotonic() + wait
        with self._state:
            self._held[name] = self._held.get(name, 0) + 1
            try:
                while self._running.is_set() and self._name_index.get(name, self._index) <= index:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return
                    self._state.wait(remaining)
            finally:
                self._held[name] -= 1

    def held(self, name: str) -> int:
        """How many blocking queries on ``name`` are being held right now."""
        with self._state:
            return self._held.get(name, 0)

    # internals

    def _node_json(self) -> dict[str, Any]:
        return {
            "ID": "00000000-0000-0000-0000-000000000001",
            "Node": NODE,
            "Address": "127.0.0.1",
            "Datacenter": DATACENTER,
            "TaggedAddresses": {"lan": "127.0.0.1", "wan": "127.0.0.1"},
            "Meta": {},
            "CreateIndex": 1,
            "ModifyIndex": 1,
        }

    def _schedule_sync(self, service_id: str) -> None:
        """The agent's anti-entropy: the catalog learns of ``service_id``'s state ``catalog_lag`` s later."""
        if self.catalog_lag <= 0:
            self._sync(service_id)
            return
        timer = threading.Timer(self.catalog_lag, self._sync_later, args=(service_id,))
        timer.daemon = True
        timer.name = "consul-emulator-sync"
        self._syncs.add(timer)
        timer.start()

    def _sync_later(self, service_id: str) -> None:
        with self._state:
            self._syncs.discard(threading.current_thread())  # type: ignore[arg-type]
            if not self._running.is_set():
                return
            self._sync(service_id)
            self._state.notify_all()

    def _sync(self, service_id: str) -> None:
        service = self.services.get(service_id)
        known = self.catalog_services.get(service_id)
        if service is None:
            if known is not None:
                del self.catalog_services[service_id]
                self._bump(known.name)
            return
        index = self._bump(service.name)
        service.create_index = known.create_index if known is not None else index
        service.modify_index = index
        self.catalog_services[service_id] = service

    def _bump(self, name: str) -> int:
        self._index += 1
        self._name_index[name] = self._index
        return self._index

    def _check_spec(self, check: dict[str, Any]) -> dict[str, Any]:
        spec: dict[str, Any] = {}
        if check.get("http"):
            spec.update(kind="http", target=check["http"], method=check.get("method") or "GET")
        elif check.get("tcp"):
            spec.update(kind="tcp", target=check["tcp"])
        elif check.get("ttl"):
            spec.update(kind="ttl", target="", interval=parse_duration(check["ttl"]))
        else:
            raise BadRequest("Invalid check: only HTTP, TCP and TTL checks are emulated")
        if spec["kind"] != "ttl":
            spec["interval"] = parse_duration(check.get("interval"))
            if spec["interval"] <= 0:
                raise BadRequest("Interval must be > 0 for Script, HTTP, H2PING, or TCP checks")
        spec["timeout"] = parse_duration(check.get("timeout")) or 10.0
        if spec["kind"] != "ttl":
            for key, attribute in (
                ("successbeforepassing", "success_before_passing"),
                ("failuresbeforecritical", "failures_before_critical"),
                ("failuresbeforewarning", "failures_before_warning"),
            ):
                value = check.get(key)
                if value is not None:
                    if not isinstance(value, int) or value < 0:
                        raise BadRequest(f"{key} must be a non-negative integer")
                    spec[attribute] = value
            # the agent: FailuresBeforeWarning defaults to FailuresBeforeCritical
            spec.setdefault("failures_before_warning", spec.get("failures_before_critical", 0))
        deregister = parse_duration(check.get("deregistercriticalserviceafter"))
        spec["deregister_after"] = max(deregister, self.deregister_minimum) if deregister else 0.0
        status = check.get("status") or "critical"
        if status not in ("passing", "warning", "critical"):
            raise BadRequest(f'Invalid check status: "{status}"')
        spec["status"] = status
        for key in ("checkid", "name"):
            if check.get(key):
                spec[key] = check[key]
        return spec

    def _remove_check(self, check_id: str) -> None:
        check = self.checks.pop(check_id, None)
        if check is not None:
            check.stop.set()
            if check.ttl_timer is not None:
                check.ttl_timer.cancel()

    def _set_status(self, check: Check, status: str, output: str) -> None:
        check.output = output
        if status == check.status:
            return
        check.status = status
        check.critical_since = time.monotonic() if status == "critical" else None
        check.modify_index = self._bump(check.service_name)
        self._state.notify_all()

    def _start_check(self, check: Check) -> None:
        check.stop = threading.Event()
        if check.kind == "ttl":
            self._start_ttl(check)
            return
        threading.Thread(
            target=self._run_check,
            args=(check, check.stop),
            name=f"consul-emulator-check-{check.check_id}",
            daemon=True,
        ).start()

    def _start_ttl(self, check: Check) -> None:
        """(Re)start the TTL: without an update within ``interval`` (the TTL) the check turns critical."""
        if check.ttl_timer is not None:
            check.ttl_timer.cancel()
        timer = threading.Timer(check.interval, self._expire, args=(check,))
        timer.daemon = True
        timer.name = f"consul-emulator-ttl-{check.check_id}"
        check.ttl_timer = timer
        timer.start()

    def _expire(self, check: Check) -> None:
        with self._state:
            if (
                check.ttl_timer is not threading.current_thread()
                or self.checks.get(check.check_id) is not check
                or not self._running.is_set()
            ):
                return  # updated, removed or stopped meanwhile
            output = "TTL expired" + (
                f" (last output before timeout follows): {check.output}" if check.output else ""
            )
            self._set_status(check, "critical", output)

    def _apply_result(self, check: Check, status: str, output: str) -> None:
        """The agent's status handler: thresholds of consecutive results before a status changes."""
        if status in ("passing", "warning"):
            check.successes += 1
            check.failures = 0
            if check.successes >= check.success_before_passing:
                self._set_status(check, status, output)
            return
        check.failures += 1
        check.successes = 0
        if check.failures >= check.failures_before_critical:
            self._set_status(check, status, output)
        elif check.failures >= check.failures_before_warning:
            self._set_status(check, "warning", output)

    def _run_check(self, check: Check, stop: threading.Event) -> None:
        # like the agent, the first run is staggered randomly within the interval
        delay = random.uniform(0, check.interval)
        while not stop.wait(delay):
            status, output = self._probe(check)
            with self._state:
                if stop.is_set() or self.checks.get(check.check_id) is not check:
                    return
                self._apply_result(check, status, output)
            delay = check.interval

    @staticmethod
    def _probe(check: Check) -> tuple[str, str]:
        if check.kind == "tcp":
            host, _, port = check.target.rpartition(":")
            try:
                with socket.create_connection((host, int(port)), timeout=check.timeout):
                    return "passing", f"TCP connect {check.target}: Success"
            except OSError as exc:
                return "critical", f"dial tcp {check.target}: {exc}"
        request = urllib.request.Request(
            check.target, method=check.method, headers={"User-Agent": "Consul Health Check"}
        )
        try:
            with urllib.request.urlopen(request, timeout=check.timeout) as response:
                code, body = response.status, response.read(4096)
        except urllib.error.HTTPError as exc:
            code, body = exc.code, exc.read(4096)
        except (OSError, ValueError) as exc:
            return "critical", f'Get "{check.target}": {exc}'
        output = f"HTTP {check.method} {check.target}: {code} Output: {body.decode(errors='replace')}"
        if 200 <= code < 300:
            return "passing", output
        if code == 429:
            return "warning", output
        return "critical", output

    def _reap_loop(self) -> None:
        halt = self._halt
        while not halt.wait(self.reap_interval):
            now = time.monotonic()
            with self._state:
                doomed = {
                    check.service_id
                    for check in self.checks.values()
                    if check.deregister_after
                    and check.critical_since is not None
                    and now - check.critical_since >= check.deregister_after
                }
            for service_id in doomed:
                try:
                    self.deregister(service_id)
                except NotFound:
                    pass


def _go_bool(query: dict[str, list[str]], key: str) -> bool:
    """A boolean query parameter as the agent reads it: absent is false, empty is true, else Go's ParseBool."""
    if key not in query:
        return False
    value = query[key][0]
    if value == "":
        return True
    if value in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if value in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise BadRequest(f"Invalid value for ?{key}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    emulator: ConsulEmulator

    def setup(self) -> None:
        super().setup()
        # as the agent (Go's net package sets TCP_NODELAY on every TCP connection): an answer's headers and
        # body, written separately here, are not held back ~40 ms by Nagle's algorithm and a delayed ACK
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.emulator._state:
            self.emulator._connections.add(self.connection)

    def finish(self) -> None:
        with self.emulator._state:
            self.emulator._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read state, not logs."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path)
        query = parse_qs(url.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        emulator = self.emulator
        try:
            if method == "PUT" and path == "/v1/agent/service/register":
                emulator.register(json.loads(body or b"{}"))
                return self._send(200, b"")
            if method == "PUT" and path.startswith("/v1/agent/service/deregister/"):
                emulator.deregister(path.rsplit("/", 1)[1])
                return self._send(200, b"")
            match = re.fullmatch(r"/v1/agent/check/(pass|warn|fail)/(.+)", path)
            if method == "PUT" and match:
                status = {"pass": "passing", "warn": "warning", "fail": "critical"}[match.group(1)]
                emulator.set_check_status(match.group(2), status, query.get("note", [""])[0])
                return self._send(200, b"")
            match = re.fullmatch(r"/v1/agent/check/update/(.+)", path)
            if method == "PUT" and match:
                update = _normalize(json.loads(body or b"{}"))
                if not isinstance(update, dict):
                    raise BadRequest("Request decode failed: not an object")
                emulator.set_check_status(
                    match.group(1), str(update.get("status") or ""), str(update.get("output") or "")
                )
                return self._send(200, b"")
            if method == "GET" and path == "/v1/agent/services":
                with emulator._state:
                    data = {sid: service.as_agent_json() for sid, service in emulator.services.items()}
                return self._send_json(data)
            if method == "GET" and path == "/v1/agent/checks":
                with emulator._state:
                    data = {
                        cid: check.as_json(emulator.services[check.service_id].tags)
                        for cid, check in emulator.checks.items()
                    }
                return self._send_json(data)
            if method == "GET" and path == "/v1/status/leader":
                return self._send_json("127.0.0.1:8300")
            if (
                method == "GET" and path == "/v1/catalog/services"
            ):  # name -> tags, Consul's own service included
                with emulator._state:
                    names: dict[str, list[str]] = {"consul": []}
                    for service in emulator.catalog_services.values():
                        names.setdefault(service.name, [])
                        names[service.name] += [tag for tag in service.tags if tag not in names[service.name]]
                return self._send_json(names, index=emulator._index)
            passing = _go_bool(query, "passing")  # a bad value is a 400 before any blocking
            for prefix, query_fn in (
                ("/v1/health/service/", lambda name: emulator.health(name, passing)),
                ("/v1/catalog/service/", emulator.catalog),
            ):
                if method == "GET" and path.startswith(prefix):
                    name = path[len(prefix) :]
                    self._block(name, query)
                    index, data = query_fn(name)
                    return self._send_json(data, index=index)
            raise NotFound(f"Invalid URL path: not a recognized HTTP API endpoint: {path}")
        except BadRequest as exc:
            self._send(400, str(exc).encode())
        except NotFound as exc:
            self._send(404, str(exc).encode())
        except ServerError as exc:
            self._send(500, str(exc).encode())
        except json.JSONDecodeError as exc:
            self._send(400, f"Request decode failed: {exc}".encode())

    def _block(self, name: str, query: dict[str, list[str]]) -> None:
        index = int(query.get("index", ["0"])[0] or 0)
        if index <= 0:
            return
        wait = parse_duration(query.get("wait", [""])[0]) or 300.0
        wait = min(wait, 600.0)
        self.emulator.wait_for_change(name, index, wait + random.uniform(0, wait / 16))

    def _send_json(self, data: Any, index: int | None = None) -> None:
        headers = {"Content-Type": "application/json"}
        if index is not None:
            headers.update(
                {"X-Consul-Index": str(index), "X-Consul-KnownLeader": "true", "X-Consul-LastContact": "0"}
            )
        self._send(200, json.dumps(data).encode(), headers)

    def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        if not self.emulator._running.is_set():
            # the agent "crashed" while this request was held: drop the connection without an answer
            self.close_connection = True
            return
        try:
            self.send_response(code)
            for key, value in (headers or {"Content-Type": "text/plain; charset=utf-8"}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True
