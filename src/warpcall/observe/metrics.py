"""Prometheus metrics of the server, its health and its registry (``prometheus-client``, an optional dependency).

Server side (on prometheus-client's default ``REGISTRY``; the client's are ``warpcall_client_*``):

- ``warpcall_server_calls_total{method, kind, status}``: calls answered (``kind``: ``invoke`` or ``rest``);
- ``warpcall_server_call_duration_seconds{method, kind}``: latency histogram, buckets from 50 µs to 10 s;
- ``warpcall_server_in_flight``: calls under way;
- ``warpcall_server_errors_total{method, kind, type}``: failed calls by exception type (``HTTP 4xx`` when the
  reply's status is all there is);
- ``warpcall_health_status{component, check}``: the last health run's status per check (1 OK, 2 WARNING,
  3 ERROR; ``check="(overall)"`` the component's), read when scraped;
- ``warpcall_registry_instances{component, channel}``: instances the registry knows of a served component;
- ``warpcall_registry_reachable{registry}``: 1 when the registry answered the last scrape's questions, else 0.

``method`` is ``component:service:method`` for a method the server exposes, ``(unknown)`` otherwise, so
label values stay bounded. Nothing here runs per call unless metrics are on (``metrics.enabled``, or
``FastAPIServer(metrics=True)``); then the server also serves ``GET /metrics`` (``server.metrics.path``).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Iterator

__all__ = ["BUCKETS", "ServerMetrics", "exposition", "server_metrics", "watch"]

#: latency buckets (seconds): sub-millisecond calls are the common case
BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)

_lock = threading.Lock()
_server: ServerMetrics | None = None


class ServerMetrics:
    """The server's per-method metrics (one set per process: prometheus names are unique per registry)."""

    def __init__(self, registry: Any = None) -> None:
        from prometheus_client import REGISTRY, Counter, Gauge, Histogram

        registry = registry if registry is not None else REGISTRY
        self.calls = Counter(
            "warpcall_server_calls", "Calls answered by the server", ["method", "kind", "status"], registry=registry
        )
        self.latency = Histogram(
            "warpcall_server_call_duration_seconds", "Time from the request's head to its reply, on the server",
            ["method", "kind"], buckets=BUCKETS, registry=registry,
        )
        self.in_flight = Gauge("warpcall_server_in_flight", "Calls under way on the server", registry=registry)
        self.errors = Counter(
            "warpcall_server_errors", "Failed calls by exception type", ["method", "kind", "type"], registry=registry
        )
        #: (method, kind, status) -> (calls child, latency child); label values are bounded (see the module doc)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, kind: str, status: int, total_ns: int, error: str | None) -> None:
        """Count one answered call."""
        key = (method, kind, status)
        children = self._children.get(key)
        if children is None:  # labels() locks and looks up each time: its children are kept per label set
            children = self._children[key] = (
                self.calls.labels(method, kind, str(status)), self.latency.labels(method, kind)
            )
        children[0].inc()
        children[1].observe(total_ns / 1e9)
        if error is not None:
            self.errors.labels(method, kind, error).inc()


def server_metrics() -> ServerMetrics:
    """The process's :class:`ServerMetrics`, made (and registered) on first use."""
    global _server
    with _lock:
        if _server is None:
            _server = ServerMetrics()
            _StateCollector.register()
        return _server


# --- health and registry state, read when scraped ------------------------------------------------------------

#: the servers whose health and registry state are exported
_servers: weakref.WeakSet[Any] = weakref.WeakSet()


def watch(server: Any) -> None:
    """Export ``server``'s health and registry state (a ``FastAPIServer``) while it lives."""
    _servers.add(server)


class _StateCollector:
    """A custom collector: gauges made from the servers' state at scrape time, nothing kept per call."""

    registered = False

    @classmethod
    def register(cls) -> None:
        from prometheus_client import REGISTRY

        if not cls.registered:
            REGISTRY.register(cls())
            cls.registered = True

    def describe(self) -> list[Any]:
        return []  # the metric names come from collect() at scrape time

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        health = GaugeMetricFamily(
            "warpcall_health_status", "Last health status per check (1 OK, 2 WARNING, 3 ERROR)",
            labels=["component", "check"],
        )
        instances = GaugeMetricFamily(
            "warpcall_registry_instances", "Instances the registry knows of a served component",
            labels=["component", "channel"],
        )
        reachable = GaugeMetricFamily(
            "warpcall_registry_reachable", "1 when the registry answered, else 0", labels=["registry"]
        )
        for server in list(_servers):
            _collect_server(server, health, instances, reachable)
        yield health
        yield instances
        yield reachable


def _collect_server(server: Any, health: Any, instances: Any, reachable: Any) -> None:
    manager = server.service_manager
    registry = server.component_registry
    answered = True
    try:
        hosted = list(manager.hosted_components())
    except Exception:  # noqa: BLE001 - a server not started yet has nothing to report
        hosted = []
    for component in hosted:
        descriptor = component.descriptor
        name = descriptor.name
        last = getattr(_health_manager(server), "last", None)
        if last is not None:
            health.add_metric([name, "(overall)"], float(last.status.value))
            for result in last.results:
                health.add_metric([name, result.name], float(result.status.value))
        try:
            found = registry.get_addresses(descriptor)
        except Exception:  # noqa: BLE001 - the registry did not answer: that is the gauge
            answered = False
            continue
        for channel in found:
            instances.add_metric([name, str(channel.channel)], float(len(channel.urls)))
    reachable.add_metric([type(registry).__name__], 1.0 if answered else 0.0)


def _health_manager(server: Any) -> Any:
    try:
        from warpcall.health import HealthCheckManager

        return server.service_manager.environment_or_fail().get(HealthCheckManager)
    except Exception:  # noqa: BLE001
        return None


def exposition() -> tuple[bytes, str]:
    """The default registry in Prometheus' text format, and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
