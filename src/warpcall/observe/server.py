"""The server's observed path: ``Server-Timing`` phases, trace context, OpenTelemetry SERVER spans, metrics.

A request is *observed* when it asks for it (``x-rpc-timing: 1``, or a ``traceparent`` / ``tracestate``
header) or when the server observes every call (metrics on, or an OpenTelemetry tracer provider configured
when the server started: :func:`configure` decides it once and sets :data:`ALWAYS`). The server recognises
the three headers where it already reads headers (``invokehead`` on the one-chunk path flags them and the
observed path reads their values from the head; the parser path's
and the ASGI paths' header scans); a request that has none of them, on a server that does not observe
every call, never reaches this module.

An observed ``POST /invoke`` is answered by :func:`answer_timed`, a copy of
:meth:`DispatchEndpoint.answer` with a ``time.perf_counter_ns()`` at each phase boundary, in the
request's own context, where :func:`begin` has set :data:`warpcall.observe.tracing.current` (so the calls
the implementation makes continue the trace) and attached the OpenTelemetry span. Phases (nanoseconds,
``warpcall.observe.records.SERVER_PHASES``):

- ``head``: parsing the head (on the one-chunk path the recogniser's parse, timed again here; on the other
  paths uvicorn's parser reads it and it is left out);
- ``body``: from the head's end to the whole body read (the one-chunk path: taking it from the chunk);
- ``decode`` (the envelope), ``args`` (arguments loaded to the declared types), ``impl`` (the implementation;
  a thread-pool call includes its wait for a worker), ``encode`` (the reply's envelope).

``write`` is not sent: the header goes out before the reply is written. REST routes send ``body`` where
known and ``impl``, which there covers the call and its JSON reply (FastAPI's route: validation too).
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Awaitable

from warpcall.observe import tracing
from warpcall.observe.records import SERVER_TIMING_HEADER, format_server_timing

if TYPE_CHECKING:
    from warpcall.observe.metrics import ServerMetrics
    from warpcall.server.dispatch import DispatchEndpoint, Reply, ServerMethod

__all__ = [
    "ALWAYS", "Observation", "TraceIdFilter", "answer_timed", "begin", "complete", "configure", "current_observation",
    "finish", "observed_headers",
]

log = logging.getLogger("warpcall.server")
_now = time.perf_counter_ns

TIMING_BYTES = b"x-rpc-timing"
TRACEPARENT_BYTES = b"traceparent"
TRACESTATE_BYTES = b"tracestate"
SERVER_TIMING_BYTES = SERVER_TIMING_HEADER.encode()
#: the metric label of a method this server does not expose (bounded label values)
UNKNOWN_METHOD = "(unknown)"

#: ``ALWAYS[0]``: every request is observed (metrics on, or OpenTelemetry configured); read on the plain
#: paths as one list item, like ``warpcall.server.context.RESPONSES``
ALWAYS: list[bool] = [False]


class _State:
    """What the process's servers observe, decided at server start (:func:`configure`)."""

    tracer: Any = None  #: OpenTelemetry tracer, or None
    metrics: ServerMetrics | None = None


STATE = _State()
#: ``(opentelemetry.context, opentelemetry.trace)`` once a server found a provider
_OTEL: tuple[Any, Any] = (None, None)


def otel_tracer() -> Any:
    """OpenTelemetry's tracer for warpcall's server, or None when ``opentelemetry-api`` is missing or no tracer
    provider is configured (its default proxy / no-op provider)."""
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return None
    return provider.get_tracer("warpcall.server")


def configure(metrics: bool) -> None:
    """At server start: detect OpenTelemetry, switch server metrics on when asked, install the log filter.

    Process-wide, like OpenTelemetry's provider and prometheus-client's registry: once a server of the
    process observes every call, the process's servers do.
    """
    global _OTEL
    tracer = otel_tracer()
    if tracer is not None:
        from opentelemetry import context as otel_context
        from opentelemetry import trace

        _OTEL = (otel_context, trace)
        STATE.tracer = tracer
    if metrics and STATE.metrics is None:
        from warpcall.observe.metrics import server_metrics

        STATE.metrics = server_metrics()
    ALWAYS[0] = STATE.tracer is not None or STATE.metrics is not None
    install_log_filter()


def reset() -> None:
    """Observe nothing by default again (tests)."""
    STATE.tracer = None
    STATE.metrics = None
    ALWAYS[0] = False


class Observation:
    """One observed request: its phases, trace, span and outcome."""

    __slots__ = ("timing", "trace", "started", "phases", "span", "method", "error", "kind")

    def __init__(self, timing: bool, kind: str) -> None:
        self.timing = timing  #: the caller asked for Server-Timing
        self.trace: tracing.TraceContext | None = None  #: what the implementation continues
        self.started = _now()
        self.phases: dict[str, int] = {}
        self.span: Any = None
        self.method = UNKNOWN_METHOD  #: ``component:service:method`` once known
        self.error: str | None = None  #: the exception type name of a failed call
        self.kind = kind  #: ``invoke`` or ``rest``


#: the observation of the request this context serves (REST replies read it)
current_observation: ContextVar[Observation | None] = ContextVar("warpcall.server_observation", default=None)


def observed_headers(headers: list[tuple[bytes, bytes]]) -> tuple[bool, bytes, bytes] | None:
    """``(timing asked, traceparent, tracestate)`` from ASGI headers, None when none of them is there."""
    timing: bool | None = None
    traceparent = tracestate = b""
    for name, value in headers:
        if name == TRACEPARENT_BYTES:
            traceparent = traceparent or value
        elif name == TRACESTATE_BYTES:
            tracestate = tracestate or value
        elif name == TIMING_BYTES:
            timing = timing or value.strip() == b"1"
    if timing is None and not traceparent and not tracestate:
        return None
    return bool(timing), traceparent, tracestate


def head_observed(data: bytes, head_length: int) -> tuple[bool, bytes, bytes] | None:
    """:func:`observed_headers` of a request head the recogniser accepted (well-formed lines of visible ASCII;
    the first of a repeated header counts, as on the ASGI paths)."""
    head = data[:head_length]
    low = head.lower()  # names are found in any case; values are taken from the head as sent
    found: list[bytes | None] = []
    for name in (b"\r\nx-rpc-timing:", b"\r\ntraceparent:", b"\r\ntracestate:"):
        at = low.find(name)
        if at < 0:
            found.append(None)
        else:
            start = at + len(name)
            found.append(head[start:head.index(b"\r\n", start)].strip(b" \t"))
    timing, traceparent, tracestate = found
    if timing is None and traceparent is None and tracestate is None:
        return None
    return timing == b"1", traceparent or b"", tracestate or b""


def begin(observed: tuple[bool, bytes, bytes] | None, kind: str = "invoke", name: str = "POST /invoke") -> Observation:
    """Start observing the request of this context: trace context for the implementation, span, in-flight gauge."""
    timing, traceparent, tracestate = observed if observed is not None else (False, b"", b"")
    obs = Observation(timing, kind)
    incoming = (
        tracing.parse_traceparent(traceparent.decode("latin-1"), tracestate.decode("latin-1")) if traceparent else None
    )
    trace = incoming
    tracer = STATE.tracer
    if tracer is not None:
        try:
            obs.span = span = _start_span(tracer, incoming, name)
            context = span.get_span_context()
            if context.is_valid:
                trace = tracing.TraceContext(
                    f"{context.trace_id:032x}", f"{context.span_id:016x}", int(context.trace_flags),
                    incoming.tracestate if incoming is not None else "",
                )
        except Exception:  # noqa: BLE001 - a tracing failure must never fail the call
            log.exception("starting the OpenTelemetry span failed")
    if trace is not None:
        tracing.current.set(trace)
    obs.trace = trace
    current_observation.set(obs)
    metrics = STATE.metrics
    if metrics is not None:
        metrics.in_flight.inc()
    return obs


def _start_span(tracer: Any, incoming: tracing.TraceContext | None, name: str) -> Any:
    otel_context, trace = _OTEL  # bound by configure() once a provider is there: no import per call

    parent = otel_context.Context()  # a request without a trace context starts one: nothing of the connection's
    if incoming is not None:
        state = trace.TraceState.from_header([incoming.tracestate]) if incoming.tracestate else None
        remote = trace.SpanContext(
            int(incoming.trace_id, 16), int(incoming.span_id, 16), is_remote=True,
            trace_flags=trace.TraceFlags(incoming.flags & 1), trace_state=state,
        )
        parent = trace.set_span_in_context(trace.NonRecordingSpan(remote), parent)
    span = tracer.start_span(name, context=parent, kind=trace.SpanKind.SERVER, attributes={"rpc.system": "warpcall"})
    # the implementation's context: OpenTelemetry instrumentation inside it (and warpcall's client) sees the span
    otel_context.attach(trace.set_span_in_context(span))
    return span


def finish(obs: Observation, status: int) -> str | None:
    """End the request's observation; the ``Server-Timing`` value when the caller asked for it."""
    total = _now() - obs.started
    error = obs.error
    if error is None and status >= 400:
        error = f"HTTP {status}"
    span = obs.span
    if span is not None:
        try:
            _end_span(span, obs, status, error)
        except Exception:  # noqa: BLE001
            log.exception("ending the OpenTelemetry span failed")
    metrics = STATE.metrics
    if metrics is not None:
        metrics.in_flight.dec()
        metrics.observe(obs.method, obs.kind, status, total, error)
    if obs.timing:
        return format_server_timing(obs.phases)
    return None


def _end_span(span: Any, obs: Observation, status: int, error: str | None) -> None:
    Status, StatusCode = _OTEL[1].Status, _OTEL[1].StatusCode  # noqa: N806

    component, _, rest = obs.method.partition(":")
    service, _, method = rest.partition(":")
    if method:
        span.update_name(obs.method)
        span.set_attributes({
            "rpc.service": f"{component}:{service}", "rpc.method": method, "warpcall.component": component,
        })
    span.set_attribute("http.response.status_code", status)
    if error is not None:
        span.set_attribute("error.type", error)
        span.set_status(Status(StatusCode.ERROR, error))
    span.end()


def complete(obs: Observation, reply: Reply) -> Reply:
    """:func:`finish` a dispatch reply; its ``Server-Timing`` line rides in the content type (see ``Reply``)."""
    status, content_type, payload = reply
    value = finish(obs, status)
    if value is None:
        return reply
    return status, content_type + b"\r\n" + SERVER_TIMING_BYTES + b": " + value.encode("latin-1"), payload


async def completed(obs: Observation, outcome: Awaitable[Reply]) -> Reply:
    """:func:`complete` the reply ``outcome`` gives (an exception finishes the observation as a 500)."""
    try:
        reply = await outcome
    except BaseException as exc:
        obs.error = type(exc).__name__
        finish(obs, 500)
        raise
    return complete(obs, reply)


# --- the timed copy of DispatchEndpoint.answer ---------------------------------------------------------------


class _Deps:
    """What the timed path uses of the server's modules, bound once (they import this module: no cycle)."""

    def __init__(self) -> None:
        from warpcall.core import envelope
        from warpcall.core.invokehead import parse
        from warpcall.core.transport import deadline_after_ms
        from warpcall.exceptions import (
            InvalidArgumentsException,
            MalformedRequestException,
            OverloadedException,
            ProtocolException,
        )
        from warpcall.resilience.deadline import _current, parse_header
        from warpcall.server import context, dispatch, security, workers
        from warpcall.wire import JSON, MSGPACK, PROTOBUF

        self.MAX_DEPTH = envelope.MAX_DEPTH
        self.decode_request_json = envelope.decode_request_json
        self.decode_request_json_exact = envelope.decode_request_json_exact
        self.decode_request_msgpack = envelope.decode_request_msgpack
        self.may_round_integers = envelope.may_round_integers
        self.InvalidArgumentsException = InvalidArgumentsException
        self.MalformedRequestException = MalformedRequestException
        self.OverloadedException = OverloadedException
        self.ProtocolException = ProtocolException
        self.deadline = _current
        self.parse_header = parse_header
        self.parse = parse
        self.deadline_after_ms = deadline_after_ms
        self.RESPONSES = context.RESPONSES
        self.prepare_response = context.prepare_response
        self.REPLY_CONTENT_TYPES = dispatch.REPLY_CONTENT_TYPES
        self.unsupported = dispatch._unsupported
        self.run_checks = security.run_checks
        self.NotStarted = workers.NotStarted
        self.Refused = workers.Refused
        self.JSON, self.MSGPACK, self.PROTOBUF = JSON, MSGPACK, PROTOBUF


_deps: _Deps | None = None


def _bind() -> _Deps:
    global _deps
    _deps = _Deps()
    return _deps


def answer_timed(
    endpoint: DispatchEndpoint, obs: Observation, content_type: bytes, method_header: bytes, body: bytes,
    at: float = 0.0,
) -> Reply | Awaitable[Reply]:
    """:meth:`DispatchEndpoint.answer` with the phases recorded in ``obs`` (the same replies)."""
    d = _deps or _bind()
    MalformedRequestException = d.MalformedRequestException  # noqa: N806 - the exception classes, by their names
    InvalidArgumentsException = d.InvalidArgumentsException  # noqa: N806
    ProtocolException = d.ProtocolException  # noqa: N806
    OverloadedException = d.OverloadedException  # noqa: N806
    JSON, MSGPACK, PROTOBUF = d.JSON, d.MSGPACK, d.PROTOBUF  # noqa: N806
    if at:
        d.deadline.set(at)
    phases = obs.phases
    mark = _now()
    media_type = endpoint.media_type(content_type)
    try:
        if media_type not in d.REPLY_CONTENT_TYPES:
            raise d.unsupported(media_type)
        if len(body) > endpoint.max_body:
            raise endpoint._too_large(len(body))
        if media_type == PROTOBUF:
            qualified = method_header.decode("latin-1")
            method = endpoint.methods.get(qualified) or endpoint.resolve(qualified)
            obs.method = qualified
            values = method.codec.decode_request(body)  # protobuf loads while it decodes: args is 0
            now = _now()
            phases["decode"], mark = now - mark, now
            if len(values) < method.required:
                raise InvalidArgumentsException(f"{method.descriptor.qualified} takes {method.required} argument(s)")
        else:
            if media_type == MSGPACK:
                qualified, args = d.decode_request_msgpack(body)
            else:
                qualified, args = d.decode_request_json(body)
            method = endpoint.methods.get(qualified) or endpoint.resolve(qualified)
            obs.method = qualified
            if media_type == JSON and method.exact_json and d.may_round_integers(body):
                args = d.decode_request_json_exact(body)[1]
            now = _now()
            phases["decode"], mark = now - mark, now
            try:
                values = method.load_args(args)
            except InvalidArgumentsException:
                values = endpoint._load_again(method, media_type, body, args)
        now = _now()
        phases["args"], mark = now - mark, now
    except ProtocolException as exc:
        obs.error = type(exc).__name__
        return endpoint.error_reply(media_type, exc)
    except RecursionError:
        obs.error = MalformedRequestException.__name__
        return endpoint.error_reply(media_type, MalformedRequestException(
            f"the arguments nest deeper than this server loads (at most {d.MAX_DEPTH} levels are read)"))
    if method.checks:
        refused = d.run_checks(method, values)
        if refused is not None:
            obs.error = type(refused).__name__
            return endpoint.refused(media_type, refused)
    if d.RESPONSES[0]:
        d.prepare_response()
    if method.is_async:
        return _awaited_timed(endpoint, obs, method, values, media_type)
    if method.offload:
        try:
            future = endpoint.sync_calls.pool.run(method.target, *values, lane=method)
        except OverloadedException as exc:
            exc.retry_after = endpoint.sync_calls.retry_after
            obs.error = type(exc).__name__
            return endpoint.error_reply(media_type, exc)
        return _pooled_timed(endpoint, obs, method, future, media_type)
    mark = _now()
    try:
        value = method.call_inline(values, endpoint.sync_calls)
    except Exception as exc:
        phases["impl"] = _now() - mark
        return _raised(endpoint, obs, method, media_type, exc)
    return _returned(endpoint, obs, method, media_type, value, mark)


def _raised(endpoint: DispatchEndpoint, obs: Observation, method: ServerMethod, media_type: str, exc: Exception) -> Reply:
    obs.error = type(exc).__name__
    mark = _now()
    reply = endpoint._raised(method, media_type, exc)
    obs.phases["encode"] = _now() - mark
    return reply


def _returned(
    endpoint: DispatchEndpoint, obs: Observation, method: ServerMethod, media_type: str, value: Any, mark: int
) -> Reply:
    now = _now()
    obs.phases["impl"] = now - mark
    reply = endpoint._returned(method, media_type, value)
    obs.phases["encode"] = _now() - now
    if reply[0] == 500:
        obs.error = "MarshalException"
    return reply


async def _awaited_timed(
    endpoint: DispatchEndpoint, obs: Observation, method: ServerMethod, values: list[Any], media_type: str
) -> Reply:
    mark = _now()
    try:
        value = await method.call(values, endpoint.sync_calls)
    except Exception as exc:
        obs.phases["impl"] = _now() - mark
        return _raised(endpoint, obs, method, media_type, exc)
    return _returned(endpoint, obs, method, media_type, value, mark)


async def _pooled_timed(
    endpoint: DispatchEndpoint, obs: Observation, method: ServerMethod, future: Awaitable[Any], media_type: str
) -> Reply:
    d = _deps or _bind()
    mark = _now()
    try:
        value = await future
    except d.NotStarted:
        obs.error = "DeadlineExceeded"
        return endpoint._expired(media_type, method)
    except d.Refused as exc:
        exc.retry_after = endpoint.sync_calls.retry_after
        obs.error = "OverloadedException"
        return endpoint.error_reply(media_type, exc)
    except Exception as exc:
        obs.phases["impl"] = _now() - mark
        return _raised(endpoint, obs, method, media_type, exc)
    return _returned(endpoint, obs, method, media_type, value, mark)


# --- the server's paths -----------------------------------------------------------------------------------------


def answer_chunk(
    endpoint: DispatchEndpoint, data: bytes, request: tuple[bytes, bytes, int, int, bytes, bool | None], limit: int
) -> Reply | Awaitable[Reply]:
    """The one-chunk ``POST /invoke`` path, observed (in the request's own context, token already set)."""
    d = _deps or _bind()
    content_type, method_header, head_length, timeout, _authorization, observed = request
    mark = _now()
    d.parse(data, limit)  # the recogniser's work, timed again: the plain path keeps no clock
    head = _now() - mark
    obs = begin(head_observed(data, head_length) if observed else None)
    obs.phases["head"] = head
    mark = _now()
    body = data[head_length:]
    obs.phases["body"] = _now() - mark
    if timeout > 0:
        outcome = answer_timed(endpoint, obs, content_type, method_header, body, d.deadline_after_ms(timeout))
    elif timeout:
        outcome = answer_timed(endpoint, obs, content_type, method_header, body)
    else:
        obs.error = "DeadlineExceeded"
        outcome = endpoint.expired(content_type)
    if isinstance(outcome, tuple):
        return complete(obs, outcome)
    return completed(obs, outcome)


def answer_parsed(
    endpoint: DispatchEndpoint, observed: tuple[bool, bytes, bytes] | None, content_type: bytes,
    method_header: bytes, body: bytes, timeout: bytes | None, arrived: float | None,
) -> Reply | Awaitable[Reply]:
    """``POST /invoke`` read by uvicorn's parser (through ASGI), observed, in the request's own context."""
    parse_header = (_deps or _bind()).parse_header
    obs = begin(observed)
    if arrived:
        obs.phases["body"] = max(0, int((time.monotonic() - arrived) * 1e9))
    if timeout is not None:
        at = parse_header(timeout or b"-", arrived or time.monotonic())
        if at is None or time.monotonic() >= at:  # malformed or past: the endpoint's own refusal
            obs.error = "MalformedRequestException" if at is None else "DeadlineExceeded"
            outcome = endpoint.answer_by(content_type, method_header, body, timeout or b"-", arrived or time.monotonic())
            return complete(obs, outcome) if isinstance(outcome, tuple) else completed(obs, outcome)
        outcome = answer_timed(endpoint, obs, content_type, method_header, body, at)
    else:
        outcome = answer_timed(endpoint, obs, content_type, method_header, body)
    if isinstance(outcome, tuple):
        return complete(obs, outcome)
    return completed(obs, outcome)


def rest_begin(observed: tuple[bool, bytes, bytes] | None, scope: Any) -> Observation:
    """Observe a REST request (its task's context); :func:`rest_finish` ends it."""
    obs = begin(observed, "rest", f"{scope.get('method', '')} {scope.get('path', '')}")
    arrived = scope.get("warpcall.arrived")
    if arrived:
        obs.phases["body"] = max(0, int((time.monotonic() - arrived) * 1e9))
    return obs


def rest_finish(obs: Observation, status: int) -> tuple[bytes, bytes] | None:
    """End a REST request's observation; the ``server-timing`` header to add, if asked for."""
    current_observation.set(None)  # once: a validation error's reply after this is not counted again
    obs.phases["impl"] = _now() - obs.started
    value = finish(obs, status)
    return None if value is None else (SERVER_TIMING_BYTES, value.encode("latin-1"))


def note_error(exc: BaseException) -> None:
    """Record the exception an implementation raised on the observed request of this context (error paths only)."""
    obs = current_observation.get()
    if obs is not None:
        obs.error = type(exc).__name__


# --- logs -------------------------------------------------------------------------------------------------------


class TraceIdFilter(logging.Filter):
    """Gives every record a ``trace_id`` attribute: the trace of the request being served (``""`` when none).

    Installed by the server (at start) on ``warpcall.server``, ``uvicorn.access`` and ``uvicorn.error``: the
    access lines stay uvicorn's (its logger, its format), each record gains the attribute; use
    ``%(trace_id)s`` in a handler's format to show it. A logger filter applies to records logged on that
    logger itself: child loggers (``warpcall.server.x``) need the filter on their handler instead.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "trace_id"):
            trace = tracing.current.get()
            record.trace_id = trace.trace_id if trace is not None else ""
        return True


_FILTER = TraceIdFilter()
LOGGERS = ("warpcall.server", "uvicorn.access", "uvicorn.error")


def install_log_filter() -> None:
    """Put :class:`TraceIdFilter` on the server's loggers (once)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
