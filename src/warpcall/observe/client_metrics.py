"""The client's Prometheus metrics, per (component, channel, instance), on prometheus_client's default REGISTRY.

Made only when ``metrics.enabled`` is true for a channel being set up (``prometheus-client`` is then
needed; without it the setup raises ``ServiceException`` naming the extra to install). Names:

- ``warpcall_client_calls_total`` (counter): calls made, whatever their outcome;
- ``warpcall_client_call_duration_seconds`` (histogram): proxy entry to result or error;
- ``warpcall_client_in_flight`` (gauge): calls under way;
- ``warpcall_client_errors_total`` (counter, label ``type`` too): failed calls by exception type.

Labels: ``component``, ``channel``, ``instance`` (the base URL called; the one that answered after failover).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from warpcall.exceptions import ServiceException

if TYPE_CHECKING:
    from warpcall.channels.http import HTTPXChannel

LABELS = ("component", "channel", "instance")
#: latency buckets in seconds: sub-millisecond calls are the point, so they start at 50 µs
BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0
)

_lock = threading.Lock()
_metrics: tuple[Any, Any, Any, Any] | None = None


def _families() -> tuple[Any, Any, Any, Any]:
    """The four metric families, registered once per process on the default registry."""
    global _metrics
    with _lock:
        if _metrics is None:
            try:
                from prometheus_client import Counter, Gauge, Histogram
            except ImportError:
                raise ServiceException(
                    "metrics.enabled needs prometheus-client: pip install 'warpcall[observe]'"
                ) from None
            _metrics = (
                Counter("warpcall_client_calls", "Remote calls made by warpcall clients", LABELS),
                Histogram(
                    "warpcall_client_call_duration_seconds",
                    "Duration of warpcall client calls, proxy entry to result or error",
                    LABELS,
                    buckets=BUCKETS,
                ),
                Gauge("warpcall_client_in_flight", "warpcall client calls under way", ("component", "channel")),
                Counter("warpcall_client_errors", "Failed warpcall client calls by exception type", (*LABELS, "type")),
            )
        return _metrics


class ChannelMetrics:
    """One channel's metrics: children resolved once per instance URL, so a call pays a dict lookup."""

    __slots__ = ("component", "channel", "calls", "duration", "in_flight", "errors", "_children")

    def __init__(self, component: str, channel: str) -> None:
        self.component = component
        self.channel = channel
        self.calls, self.duration, gauge, self.errors = _families()
        # in flight per (component, channel): a call does not know its instance before it picks it
        self.in_flight = gauge.labels(component, channel)
        self._children: dict[str, tuple[Any, Any]] = {}

    def started(self) -> None:
        """A call began."""
        self.in_flight.inc()

    def done(self, url: str, seconds: float, error: BaseException | None) -> None:
        """A call to ``url`` ended after ``seconds`` (``error``: how it failed)."""
        self.in_flight.dec()
        children = self._children.get(url)
        if children is None:
            children = self._children[url] = (
                self.calls.labels(self.component, self.channel, url),
                self.duration.labels(self.component, self.channel, url),
            )
        children[0].inc()
        children[1].observe(seconds)
        if error is not None:
            self.errors.labels(self.component, self.channel, url, type(error).__name__).inc()


def for_channel(channel: HTTPXChannel) -> ChannelMetrics:
    """The metrics of ``channel`` (its component's name and its channel name as labels)."""
    descriptor = channel.component_descriptor
    return ChannelMetrics(descriptor.name if descriptor is not None else "", channel.name)
