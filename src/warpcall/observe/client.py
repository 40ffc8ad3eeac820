"""The client's instrumented call path: phase timings, trace propagation, OpenTelemetry spans and metrics.

A channel's ``invoke`` / ``invoke_async`` makes one check per call (:func:`warpcall.channels.http.observed`
reads it: the channel's own switch, set at setup from configuration, OpenTelemetry and metrics, then the
process's and the context's profile collectors and the caller's trace context). When nothing asks, the
plain path runs untouched; otherwise the call comes here, to a copy of the channel's steps with a
``time.perf_counter_ns()`` at each phase boundary:

``proxy`` (channel entry: the compiled proxy has no hook, its own work before is a constant few dozen
nanoseconds), ``marshal``, ``encode``, ``acquire`` (a pooled connection, or connect), ``send``,
``first_byte`` (the socket becomes readable), ``receive``, ``decode``, ``unmarshal``. A call that goes through
an httpx client (advice, a subclass), a bulkhead, or that is sent again (failover, retry) has its whole
exchange counted under ``first_byte`` (``acquire``, ``send``, ``receive`` are 0 then). The protobuf codec
loads the result while it decodes (``unmarshal`` 0); the rest channel marshals and writes its JSON in one
step (``encode`` 0).

Every phase is a difference of consecutive timestamps: each is >= 0 and they sum to at most ``total_ns``.
"""

from __future__ import annotations

import logging
import random
import select
import sys
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Callable

from warpcall.channels import dispatch as _dispatch
from warpcall.channels import http as _http
from warpcall.channels._http_common import (
    _TARGETS,
    _bad_request,
    _peer_gone,
    _protocol_error,
    _read_error,
    _read_timeout,
    _target,
    _unsent_error,
    _write_error,
    _write_timeout,
)
from warpcall.channels._http_sync import _open
from warpcall.core.transport import ResponseParser, build_request
from warpcall.exceptions import MarshalException, ProtocolException
from warpcall.observe import records, tracing
from warpcall.resilience import breaker as _breaker
from warpcall.resilience.retry import Recovery, is_refusal
from warpcall.wire import METHOD_HEADER

if TYPE_CHECKING:
    from warpcall.channels._http_async import AsyncHTTPClient
    from warpcall.channels._http_sync import HTTPClient
    from warpcall.channels.http import HTTPXChannel

__all__ = ["ClientTraceIdFilter", "configure", "current_trace_id", "invoke", "invoke_async", "otel_tracer", "refresh"]

log = logging.getLogger("warpcall.client")

_now = time.perf_counter_ns
_getrandbits = random.getrandbits
_FLAGS = [f"{flags:02x}" for flags in range(256)]  # traceparent's flags field, by value
_TIMING_ON = (records.TIMING_REQUEST_HEADER, "1")

#: channels set up so far, for :func:`refresh` (an OpenTelemetry provider configured after they were)
_channels: weakref.WeakSet[HTTPXChannel] = weakref.WeakSet()
_channels_lock = threading.Lock()


# --- logs ------------------------------------------------------------------------------------------------------


class ClientTraceIdFilter(logging.Filter):
    """Gives every record of ``warpcall.client`` a ``trace_id`` attribute (``%(trace_id)s`` in a format): the
    caller's trace (``warpcall.observe.tracing.current``, else OpenTelemetry's current span), ``""`` when none."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "trace_id"):
            record.trace_id = current_trace_id() or ""
        return True


def current_trace_id() -> str | None:
    """The trace id of the calling code, or None."""
    context = tracing.current.get()
    if context is not None:
        return context.trace_id
    otel = sys.modules.get("opentelemetry.trace")
    if otel is not None:
        span_context = otel.get_current_span().get_span_context()
        if span_context.is_valid:
            return f"{span_context.trace_id:032x}"
    return None


_FILTER = ClientTraceIdFilter()
if _FILTER not in log.filters:
    log.addFilter(_FILTER)


# --- setup: what a channel observes, decided once ------------------------------------------------------------


def otel_tracer() -> Any:
    """OpenTelemetry's tracer for warpcall, or None when ``opentelemetry-api`` is missing or no tracer provider
    is configured (its default proxy / no-op provider): then nothing of OpenTelemetry runs per call."""
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return None
    return provider.get_tracer("warpcall")


def configure(channel: HTTPXChannel, get: Callable[[str, type, Any], Any] | None) -> None:
    """Read the channel's observability settings (``profile.enabled``, ``http.<channel>.profile``,
    ``tracing.enabled``, ``metrics.enabled``) and detect OpenTelemetry; sets the channel's per-call switch."""
    name = channel.name
    if get is not None:
        everywhere = bool(get("profile.enabled", bool, False))
        profile = bool(get(f"http.{name}.profile", bool, everywhere))
        if everywhere:
            from warpcall.observe.profile import process_profile

            process_profile()  # the process's collector of every call's record
        trace_on = bool(get("tracing.enabled", bool, True))
        metrics_on = bool(get("metrics.enabled", bool, False))
    else:
        profile, trace_on, metrics_on = False, True, False
    channel._obs_profile = profile
    channel._obs_tracing = trace_on
    channel._obs_metrics = None
    if metrics_on:
        from warpcall.observe import client_metrics

        channel._obs_metrics = client_metrics.for_channel(channel)
    with _channels_lock:
        _channels.add(channel)
    _detect(channel)


def _detect(channel: HTTPXChannel) -> None:
    channel._obs_otel = otel_tracer() if channel._obs_tracing else None
    channel._observed = bool(channel._obs_profile or channel._obs_metrics is not None or channel._obs_otel is not None)


def refresh() -> None:
    """Detect OpenTelemetry again for every channel set up so far: call it after configuring a tracer provider
    later than the service manager's channels were set up (they detect it once, at setup)."""
    with _channels_lock:
        channels = list(_channels)
    for channel in channels:
        _detect(channel)


# --- one call ------------------------------------------------------------------------------------------------


class _Call:
    """The state of one observed call: timestamps, the trace headers sent, the span, the metrics."""

    __slots__ = ("channel", "marks", "record", "extra", "span", "trace_id", "metrics", "qualified", "mark")

    def __init__(self, channel: HTTPXChannel, qualified: str, start: int) -> None:
        self.channel = channel
        self.qualified = qualified
        self.marks = [start]
        self.record = channel._obs_profile or records.wanted()
        if not self.record:
            self.mark = _no_mark  # traced or counted only: no phase timestamps
        self.extra: list[tuple[str, str]] = [_TIMING_ON] if self.record else []
        self.span: Any = None
        self.trace_id: str | None = None
        self.metrics = channel._obs_metrics
        if channel._obs_tracing:
            self._trace()
        if self.record:
            self.marks.append(_now())  # end of "proxy": channel entry and the decision what to observe
            self.mark = self._mark

    def _trace(self) -> None:
        tracer = self.channel._obs_otel
        parent = tracing.current.get()
        if tracer is not None:
            self.span = span = _start_span(tracer, self.channel, self.qualified, parent)
            context = span.get_span_context()
            if context.is_valid:
                self.trace_id = f"{context.trace_id:032x}"
                self.extra.append(
                    (tracing.TRACEPARENT, f"00-{self.trace_id}-{context.span_id:016x}-{int(context.trace_flags):02x}")
                )
                state = context.trace_state.to_header() if context.trace_state else ""
                if state:
                    self.extra.append((tracing.TRACESTATE, state))
                return
        if parent is not None:
            # the call's own span id (TraceContext.child() without its tuple copy and system random: a
            # span id needs to be unique, not secret, as OpenTelemetry's own id generator has it)
            self.trace_id = parent.trace_id
            self.extra.append(
                (
                    tracing.TRACEPARENT,
                    f"00-{parent.trace_id}-{(_getrandbits(64) or 1).to_bytes(8, 'big').hex()}-{_FLAGS[parent.flags & 255]}",
                )
            )
            if parent.tracestate:
                self.extra.append((tracing.TRACESTATE, parent.tracestate))

    def headers(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [*headers, *self.extra] if self.extra else headers

    def _mark(self) -> None:
        self.marks.append(_now())

    def mark_to(self, count: int) -> None:
        """Close the phases up to the ``count``-th boundary now (those a fallback step did in one)."""
        if not self.record:
            return
        marks = self.marks
        now = _now()
        while len(marks) < count:
            marks.append(now)

    def finish(self, url: str, reply: tuple[int, Any, bytes] | None, error: BaseException | None) -> None:
        """The call ended (``error`` None: it returned): the record, the span and the metrics."""
        end = _now()
        marks = self.marks
        start = marks[0]
        status = reply[0] if reply is not None else 0
        reply_headers = reply[1] if reply is not None else ()
        if reply is not None and type(reply_headers) is _http.AnsweredBy:
            url = reply_headers.url
        if self.metrics is not None:
            self.metrics.done(url, (end - start) / 1e9, error)
        if self.span is not None:
            _end_span(self.span, url, status, error)
        if self.record:
            records.emit(
                records.CallRecord(  # positional (the fields' order): keywords cost the dataclass's init more
                    self.qualified,
                    self.channel.name,
                    url,
                    end - start,
                    _phases(marks, end),
                    _server_phases(reply_headers),
                    status,
                    type(error).__name__ if error is not None else None,
                    self.trace_id,
                )
            )


def _no_mark() -> None:
    pass


def _phases(marks: list[int], end: int) -> dict[str, int]:
    """Durations from the boundaries reached; phases a call did not reach (it failed) are 0."""
    if len(marks) < 10:
        marks = marks + [marks[-1]] * (10 - len(marks))
    m = marks  # written out: a comprehension over CLIENT_PHASES costs several times this on every profiled call
    return {
        "proxy": m[1] - m[0],
        "marshal": m[2] - m[1],
        "encode": m[3] - m[2],
        "acquire": m[4] - m[3],
        "send": m[5] - m[4],
        "first_byte": m[6] - m[5],
        "receive": m[7] - m[6],
        "decode": m[8] - m[7],
        "unmarshal": m[9] - m[8],
    }


assert records.CLIENT_PHASES == ("proxy", "marshal", "encode", "acquire", "send", "first_byte", "receive", "decode", "unmarshal")


def _server_phases(headers: Any) -> dict[str, int]:
    for name, value in headers:
        if name == records.SERVER_TIMING_HEADER or name.lower() == records.SERVER_TIMING_HEADER:
            return records.parse_server_timing(value)
    return {}


def _net_fallback(call: _Call) -> None:
    """The exchange went a way without phase marks (httpx client, bulkhead, sent again): it all counts as
    waiting for the reply; ``acquire``, ``send`` and ``receive`` are 0."""
    marks = call.marks
    del marks[4:]
    begun = marks[3]
    marks.extend((begun, begun, _now()))
    marks.append(marks[-1])


# --- OpenTelemetry ----------------------------------------------------------------------------------------------


def _start_span(tracer: Any, channel: HTTPXChannel, qualified: str, parent: tracing.TraceContext | None) -> Any:
    from opentelemetry import trace

    context = None
    if parent is not None and not trace.get_current_span().get_span_context().is_valid:
        # a trace context warpcall carries (a served call, or the caller's own) and no OpenTelemetry span: continue it
        remote = trace.SpanContext(
            int(parent.trace_id, 16),
            int(parent.span_id, 16),
            is_remote=True,
            trace_flags=trace.TraceFlags(parent.flags & 1),
            trace_state=trace.TraceState.from_header([parent.tracestate]) if parent.tracestate else None,
        )
        context = trace.set_span_in_context(trace.NonRecordingSpan(remote))
    component, _, rest = qualified.partition(":")
    service, _, method = rest.partition(":")
    return tracer.start_span(
        qualified,
        context=context,
        kind=trace.SpanKind.CLIENT,
        attributes={
            "rpc.system": "warpcall",
            "rpc.service": f"{component}:{service}",
            "rpc.method": method,
            "warpcall.channel": channel.name,
        },
    )


def _end_span(span: Any, url: str, status: int, error: BaseException | None) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("url.full", url)
    span.set_attribute("server.address", _host(url))
    if status:
        span.set_attribute("http.response.status_code", status)
    if error is not None:
        span.set_attribute("error.type", type(error).__name__)
        span.set_status(Status(StatusCode.ERROR, str(error)[:200]))
    span.end()


def _host(url: str) -> str:
    rest = url.partition("://")[2]
    return rest.split("/", 1)[0].rsplit(":", 1)[0]


# --- the sync exchange with phase marks ------------------------------------------------------------------------


def _wait_readable(sock: Any, tls: bool, timeout: float, deadline: float) -> None:
    """Return when ``sock`` has bytes (or EOF) to read, or the wait is over (the receive then reports it)."""
    if tls and sock.pending():
        return  # TLS: decrypted bytes wait in OpenSSL already
    wait = timeout if deadline <= 0.0 else min(timeout, deadline - time.monotonic())
    if wait > 0.0:
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
        poller.poll(wait * 1000.0)


def _exchange(
    client: HTTPClient, call: _Call, method: str, url: str, headers: Any, body: bytes, timeout: float, deadline: float
) -> tuple[int, list[tuple[str, str]], bytes]:
    """``HTTPClient._exchange`` with marks after acquire, send, first byte and receive (same errors). A request
    the server answered before reading it whole goes through the client's own exchange (no marks)."""
    target = _TARGETS.get(url) or _target(url)
    try:
        data = build_request(method, target.path, target.host_header, headers, body, deadline)
    except ValueError as exc:
        raise _bad_request(method, url, exc) from None
    try:
        idle = client._local.pool[target.key]
    except (AttributeError, KeyError):
        idle = client._pool().setdefault(target.key, [])
    conn = None
    while idle:
        candidate = idle.pop()
        if candidate.io.reusable():
            conn = candidate
            break
        candidate.close()
    while True:
        fresh = conn is None
        if conn is None:
            conn = _open(target, url, timeout, client._generation, client.keepalive_expiry, deadline, client.tls)
        call.mark()  # acquire
        io = conn.io
        try:
            if io.timeout != timeout:
                io.set_timeout(timeout)
            io.send(data, deadline)
            break
        except (BlockingIOError, TimeoutError):
            early = None if io.idle() else client._early_reply(conn, url, method, timeout, deadline)
            conn.close()
            if early is None:
                raise _write_timeout(url, timeout, deadline) from None
            return early.status, early.headers, early.body
        except OSError as exc:
            if fresh or io.sent != 0 or not _peer_gone(exc):
                gone = _peer_gone(exc)
                early = client._early_reply(conn, url, method, timeout, deadline) if gone else None
                conn.close()
                if early is None:
                    raise (_unsent_error if io.sent == 0 else _write_error)(url, exc) from None
                return early.status, early.headers, early.body
            conn.close()
            conn = None
            del call.marks[4:]  # acquire again
    call.mark()  # send
    parser = ResponseParser(client.max_body, method == "HEAD")
    try:
        _wait_readable(conn.io.sock, conn.io.tls, timeout, deadline)
        call.mark()  # first byte
        conn.io.receive(parser, deadline)
    except (BlockingIOError, TimeoutError):
        conn.close()
        raise _read_timeout(url, timeout, deadline) from None
    except ValueError as exc:
        conn.close()
        raise _protocol_error(url, exc, fresh and conn.io.tls) from None
    except OSError as exc:
        conn.close()
        raise _read_error(url, exc) from None
    call.mark()  # receive
    if parser.keep_alive and conn.generation == client._generation and len(idle) < client.max_idle:
        idle.append(conn)
    else:
        conn.close()
    return parser.status, parser.headers, parser.body


def _window(channel: HTTPXChannel, desc: Any, method: str, url: str) -> tuple[float, float]:
    """The call's deadline and start (0.0: ``deadline - timeout``), as ``HTTPXChannel._request`` works them out
    inline on the plain path; a sooner deadline in force that has already passed ends the call here."""
    at = _http._deadline_after(channel.timeout)
    outer = _http._deadline_in_force()
    start = 0.0
    if outer is not None and outer < at:
        start = at - channel.timeout
        at = outer
        if at <= start:
            raise Recovery.expired(_http._call_name(desc, method, url), channel.selector.owner)
    return at, start


def _request(
    channel: HTTPXChannel, call: _Call, method: str, url: str, headers: list[tuple[str, str]], body: bytes, desc: Any
) -> _http.Reply:
    """``HTTPXChannel._request`` through :func:`_exchange` (same deadline, token, breaker, failover, retries)."""
    direct = channel._direct
    if not call.record:
        return channel._request(method, url, headers, body, desc)  # no phases: the channel's own exchange
    if direct is None or channel.bulkhead is not None:
        reply = channel._request(method, url, headers, body, desc)
        _net_fallback(call)
        return reply
    at, start = _window(channel, desc, method, url)
    try:
        token = _http._access_token()
        if token is not None:
            headers = _http._with_bearer(headers, token)
        reply = _exchange(direct, call, method, url, headers, body, channel.timeout, at)
        if reply[0] >= _breaker.outcome_from:
            channel._outcome(url, reply[0])
        if reply[0] != 503:
            if len(call.marks) < 8:
                _net_fallback(call)  # an early answer
            return reply
    except Exception as exc:
        channel._failure(url, exc)
        failure = _http._failed(url, exc)
        if failure is None:
            raise
        reply = channel._recover(method, url, headers, body, desc, start, at, exc, failure, None)
        _net_fallback(call)
        return reply
    if is_refusal(reply[0], reply[2]):
        reply = channel._recover(method, url, headers, body, desc, start, at, None, None, reply)
        _net_fallback(call)
    elif len(call.marks) < 8:
        _net_fallback(call)
    return reply


# --- the async exchange with phase marks -----------------------------------------------------------------------


class _FirstByte:
    """A response parser that notes when its first bytes came (the async client feeds it from the loop)."""

    __slots__ = ("inner", "at")

    def __init__(self, inner: ResponseParser) -> None:
        self.inner = inner
        self.at = 0

    def feed(self, data: bytes) -> bool:
        if not self.at:
            self.at = _now()
        return bool(self.inner.feed(data))

    @property
    def keep_alive(self) -> bool:
        return bool(self.inner.keep_alive)

    @keep_alive.setter
    def keep_alive(self, value: bool) -> None:
        self.inner.keep_alive = value


async def _exchange_async(
    client: AsyncHTTPClient, call: _Call, method: str, url: str, headers: Any, body: bytes, timeout: float, deadline: float
) -> tuple[int, list[tuple[str, str]], bytes]:
    """``AsyncHTTPClient._exchange`` with marks after acquire, send, first byte and receive (same errors)."""
    import asyncio

    from warpcall.channels._http_async import _KeyPool

    target = _TARGETS.get(url) or _target(url)
    try:
        data = build_request(method, target.path, target.host_header, headers, body, deadline)
    except ValueError as exc:
        raise _bad_request(method, url, exc) from None
    loop = asyncio.get_running_loop()
    pools = client._pools.get(loop)
    if pools is None:
        pools = client._loop_pool(loop)
    if not pools.can_watch_sockets:
        status, _reason, reply_headers, content = await client._delegate(
            method, url, headers, body, timeout, timeout, timeout, timeout, deadline
        )
        return status, reply_headers, content
    key_pool = pools.get(target.key)
    if key_pool is None:
        key_pool = pools[target.key] = _KeyPool()
    conn = key_pool.take()
    if conn is None:
        conn, reused = await client._acquire(key_pool, loop, target, url, timeout, timeout, deadline)
    else:
        reused = True
    call.mark()  # acquire
    try:
        sent = client._send_now(conn, data, url, reused)
    except BaseException:
        key_pool.give_back(conn, False, client.max_idle)
        raise
    if sent < 0:
        key_pool.give_back(conn, False, client.max_idle)
        conn, _ = await client._acquire(key_pool, loop, target, url, timeout, timeout, deadline)
        del call.marks[4:]
        call.mark()  # acquire again
        try:
            sent = client._send_now(conn, data, url, False)
        except BaseException:
            key_pool.give_back(conn, False, client.max_idle)
            raise
    written = _now() if sent >= len(data) else 0  # else the loop writes the rest: done by the first byte back
    parser = ResponseParser(client.max_body, method == "HEAD")
    probe = _FirstByte(parser)
    waiter = conn.start(probe, url, timeout, deadline)  # type: ignore[arg-type]  # it feeds the parser only
    if sent < len(data):
        conn.send_rest(memoryview(data)[sent:], timeout)
    pools.track(conn)
    try:
        await waiter
    except BaseException:
        pools.untrack(conn)
        key_pool.give_back(conn, False, client.max_idle)
        raise
    done = _now()
    pools.untrack(conn)
    first = probe.at or done
    call.marks.extend((min(written or first, first), first, done))
    keep = parser.keep_alive and not conn.closed and conn.generation == client._generation
    if keep:
        conn.io.rest(parser)
    key_pool.give_back(conn, keep, client.max_idle)
    return parser.status, parser.headers, parser.body


async def _request_async(
    channel: HTTPXChannel, call: _Call, method: str, url: str, headers: list[tuple[str, str]], body: bytes, desc: Any
) -> _http.Reply:
    """``HTTPXChannel._request_async`` through :func:`_exchange_async`."""
    if not call.record:
        return await channel._request_async(method, url, headers, body, desc)
    direct = channel._direct_async
    if direct is None and channel._async_direct:
        direct = channel._make_direct_async()
    if direct is None or channel.bulkhead is not None:
        reply = await channel._request_async(method, url, headers, body, desc)
        _net_fallback(call)
        return reply
    at, start = _window(channel, desc, method, url)
    try:
        token = _http._access_token()
        if token is not None:
            headers = _http._with_bearer(headers, token)
        reply = await _exchange_async(direct, call, method, url, headers, body, channel.timeout, at)
        if reply[0] >= _breaker.outcome_from:
            channel._outcome(url, reply[0])
        if reply[0] != 503:
            if len(call.marks) < 8:
                _net_fallback(call)  # delegated to httpx (a loop that cannot watch sockets)
            return reply
    except Exception as exc:
        channel._failure(url, exc)
        failure = _http._failed(url, exc)
        if failure is None:
            raise
        reply = await channel._recover_async(method, url, headers, body, desc, start, at, exc, failure, None)
        _net_fallback(call)
        return reply
    if is_refusal(reply[0], reply[2]):
        reply = await channel._recover_async(method, url, headers, body, desc, start, at, None, None, reply)
        _net_fallback(call)
    elif len(call.marks) < 8:
        _net_fallback(call)
    return reply


# --- the channels' steps: marshal and encode before, decode and unmarshal after --------------------------------


def _prepare(channel: Any, invocation: Any, call: _Call) -> tuple[Any, str, str, list[tuple[str, str]], bytes]:
    """(plan or codec, HTTP method, path, headers, body), marking marshal and encode."""
    if isinstance(channel, _dispatch.DispatchProtobufChannel):
        method = invocation.descriptor
        codec = method.plans.get("dispatch-protobuf") or channel.codec(method)
        headers = channel._method_headers.get(method.qualified)
        if headers is None:
            headers = channel._method_headers[method.qualified] = [
                *channel.headers,
                (METHOD_HEADER, method.qualified),
            ]
        args = _dispatch.positional_args(invocation)
        call.mark()  # marshal: the protobuf codec writes the values as it encodes them
        body = codec.encode_request(args)
        call.mark()
        return codec, "POST", "/invoke", headers, body
    if isinstance(channel, _dispatch.EnvelopeChannel):
        method = invocation.descriptor
        plan = method.plans.get("dispatch") or _dispatch.DispatchPlan.of(method)
        trees = plan.dump_args(_dispatch.positional_args(invocation))
        call.mark()
        try:
            body = type(channel).encode_request(plan.qualified, trees)
        except MarshalException as exc:
            raise plan.unsendable(trees, type(channel).encode_request, exc) from None
        call.mark()
        return plan, "POST", "/invoke", channel.headers, body
    from warpcall.channels.rest import RestCallPlan

    plan = RestCallPlan.of(invocation.descriptor)
    path, body = plan.target(_dispatch.positional_args(invocation))
    call.mark()
    call.mark()  # encode: written with the arguments
    return plan, plan.http_method, path, plan.headers, body


def _result(channel: Any, plan: Any, url: str, reply: _http.Reply, call: _Call) -> Any:
    """The call's result from the reply (or the exception it means), marking decode and unmarshal."""
    status, headers, content = reply
    if isinstance(channel, _dispatch.DispatchProtobufChannel):
        try:
            return channel._protobuf_result(call.qualified, plan, url, status, headers, content)
        finally:
            call.mark_to(10)  # unmarshal 0: the codec loads the result while it decodes
    if isinstance(channel, _dispatch.EnvelopeChannel):
        if status == 200 and not plan.exact_json:
            try:
                result, exception = type(channel).decode_response(content)
            except ProtocolException:
                pass
            else:
                if exception is None:
                    call.mark()
                    try:
                        value = plan.load_result(result)
                    except MarshalException:
                        pass
                    else:
                        call.mark()
                        return value
        try:
            return channel._result(plan, url, status, headers, content)
        finally:
            call.mark_to(10)  # decoded (again) and loaded in one step: counted as decode
    if type(headers) is _http.AnsweredBy:
        url = headers.url
    if 200 <= status < 300 and content:
        try:
            data = plan.from_json(content)
        except ValueError:
            return plan.result(url, status, content, headers)  # raises naming the body
        call.mark()
        value = plan.load_result(data)
        call.mark()
        return value
    try:
        return plan.result(url, status, content, headers)
    finally:
        call.mark_to(10)


def invoke(channel: Any, invocation: Any) -> Any:
    """A sync call of ``channel`` observed: timed, traced, counted as the channel's settings and the caller ask."""
    call = _Call(channel, invocation.descriptor.qualified, _now())
    url = ""
    reply = None
    metrics = call.metrics
    if metrics is not None:
        metrics.started()
    try:
        plan, method, path, headers, body = _prepare(channel, invocation, call)
        url = channel.get_url()
        reply = _request(channel, call, method, url + path, call.headers(headers), body, invocation.descriptor)
        result = _result(channel, plan, url, reply, call)
    except BaseException as exc:
        call.finish(url, reply, exc)
        raise
    call.finish(url, reply, None)
    return result


async def invoke_async(channel: Any, invocation: Any) -> Any:
    """Async :func:`invoke`."""
    call = _Call(channel, invocation.descriptor.qualified, _now())
    url = ""
    reply = None
    metrics = call.metrics
    if metrics is not None:
        metrics.started()
    try:
        plan, method, path, headers, body = _prepare(channel, invocation, call)
        url = channel.get_url()
        reply = await _request_async(channel, call, method, url + path, call.headers(headers), body, invocation.descriptor)
        result = _result(channel, plan, url, reply, call)
    except BaseException as exc:
        call.finish(url, reply, exc)
        raise
    call.finish(url, reply, None)
    return result
