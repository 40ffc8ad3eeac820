"""``proxycall`` with the client's observability on, as ``WARPCALL_BENCH_OBSERVE`` says (one mode per run):

- ``profile``: a process collector (``records.add_global_sink``): phase timestamps, ``x-rpc-timing``, one
  CallRecord per call (the reply carries no Server-Timing here: the join's parse is not counted);
- ``trace``: the caller's W3C trace context set (``warpcall.observe.tracing.current``), OpenTelemetry absent;
- ``otel``: an OpenTelemetry SDK tracer provider (no span processor: the span's own cost, not an exporter's);
- ``metrics``: the channel's Prometheus metrics (``metrics.enabled``);
- unset: nothing (the same figure as ``proxycall``).

Compare with ``proxycall``'s figure of the same interpreter: the difference is the cost of the mode.
A build without ``warpcall.observe`` runs the plain call whatever the mode.
"""

from benchmarks.instructions.proxycall import SETUP as _PLAIN

SETUP = _PLAIN + r"""
import os
_mode = os.environ.get("WARPCALL_BENCH_OBSERVE", "")
try:
    from warpcall.observe import records, tracing
    from warpcall.observe import client as observe_client
except ImportError:
    _mode = ""
_channel = environment.get(ServiceManager)._channels[("bench-component", "dispatch-json")]
if _mode == "profile":
    records.add_global_sink(lambda record: None)
elif _mode == "trace":
    tracing.current.set(tracing.TraceContext(tracing.new_trace_id(), tracing.new_span_id()))
elif _mode == "otel":
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    trace.set_tracer_provider(TracerProvider())
    observe_client.refresh()
elif _mode == "metrics":
    from warpcall.observe import client_metrics
    _channel._obs_metrics = client_metrics.for_channel(_channel)
    _channel._observed = True
assert data(DATA) == DATA
"""

CASES = {
    "proxy.data(DATA) over dispatch-json, observed (WARPCALL_BENCH_OBSERVE)": "data(DATA)",
}
