"""The dispatch endpoint: a plain ASGI app answering ``POST /invoke`` in the body's own format.

Only methods that a started component's services declare can be reached; the
table of them is built once at startup. Bad input is answered with a 4xx and
an envelope naming the problem, and never reaches an implementation.
"""

from __future__ import annotations

import inspect
import logging
import math
from time import monotonic, perf_counter
from typing import Any, Awaitable, Callable

from starlette.requests import ClientDisconnect

from warpcall.core.envelope import (
    MAX_DEPTH,
    decode_request_json,
    decode_request_json_exact,
    decode_request_msgpack,
    encode_response_json,
    encode_response_msgpack,
    may_round_integers,
    split_method,
)
from warpcall.core.marshal import plan_for
from warpcall.core.marshal_plan import may_take_rounded_integers
from warpcall.exceptions import (
    AuthorizationException,
    DeadlineExceeded,
    InvalidArgumentsException,
    MalformedRequestException,
    MarshalException,
    OverloadedException,
    ProtocolException,
    RequestTooLargeException,
    UnknownMethodException,
    UnsupportedMediaTypeException,
)
from warpcall.observe import server as _observe
from warpcall.resilience.deadline import DEADLINE_HEADER_BYTES, parse_header
from warpcall.resilience.deadline import _current as _deadline
from warpcall.server.context import RESPONSES, cookie_lines, prepare_response, set_source
from warpcall.server.limits import ServerLimits
from warpcall.server.security import refusal, run_checks, set_token
from warpcall.server.workers import NotStarted, Refused, WorkerPool
from warpcall.wire import JSON, METHOD_HEADER_BYTES, MSGPACK, PROTOBUF, codec_of

logger = logging.getLogger("warpcall.server")
_set_deadline = _deadline.set  # bound once: _deadline.set read per call makes a method object each time

DEFAULT_MAX_BODY = 10 * 2**20

#: the content-type header each reply format is sent with
REPLY_CONTENT_TYPES = {kind: kind.encode() for kind in (JSON, MSGPACK, PROTOBUF)}
#: how many distinct raw content-type values are remembered with their media type
MEDIA_TYPE_CACHE_SIZE = 64
#: where the server's protocol notes, in an ASGI scope, when the request's head was complete (monotonic)
ARRIVED = "warpcall.arrived"


def is_blocking(target: Callable[..., Any] | None) -> bool:
    """Whether a method is declared ``@blocking`` (on the implementation or on the service's declaration)."""
    return bool(getattr(target, "__warpcall_blocking__", False))


def media_type_of(content_type: bytes) -> str:
    """The media type of a raw ``content-type`` header value: before any parameter, lower case."""
    return content_type.split(b";")[0].strip().decode("latin-1").lower()

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class ServerMethod:
    """Per exposed method: the bound implementation and the unmarshalling it needs, built once."""

    __slots__ = (
        "descriptor", "target", "is_async", "offload", "strikes", "required", "loaders", "dump_result", "_codec",
        "exact_json", "checks",
    )

    def __init__(self, descriptor: Any, target: Callable[..., Any], offload: bool = False) -> None:
        self.descriptor = descriptor
        self.target = target
        self.is_async = inspect.iscoroutinefunction(target)
        #: run a sync implementation in the thread pool (set up front, declared ``@blocking``, or once it was
        #: seen to block)
        self.offload = offload or (
            not self.is_async and (is_blocking(target) or is_blocking(getattr(descriptor, "func", None)))
        )
        self.strikes = 0
        parameters = list(descriptor.signature.parameters.values())[1:]
        self.required = sum(1 for p in parameters if p.default is inspect.Parameter.empty)
        self.loaders = tuple(plan_for(tp).load for tp in descriptor.param_types)
        self.dump_result = plan_for(descriptor.return_type).dump
        self._codec: Any = None
        #: a parameter type would take, as it is, a float that orjson made of an integer beyond 64 bits
        self.exact_json = any(may_take_rounded_integers(tp) for tp in descriptor.param_types)
        #: the authorization checks run before each call (``warpcall.server.security.install`` sets them)
        self.checks: tuple[Any, ...] = ()

    @property
    def codec(self) -> Any:
        """The protobuf codec of this method, built on first use."""
        if self._codec is None:
            self._codec = codec_of(self.descriptor)
        return self._codec

    def load_args(self, args: list[Any]) -> list[Any]:
        """Unmarshal envelope arguments; InvalidArgumentsException when they do not fit the signature."""
        count = len(args)
        if count < self.required or count > len(self.loaders):
            expected = (
                str(self.required) if self.required == len(self.loaders) else f"{self.required} to {len(self.loaders)}"
            )
            more = (
                " (more than this server's version declares: a parameter of a newer version reaches it only left "
                "at its default, which a warpcall client does not send)" if count > len(self.loaders) else ""
            )
            raise InvalidArgumentsException(
                f"{self.descriptor.qualified} takes {expected} argument(s), got {count}{more}"
            )
        try:
            if count == 1:  # the common case, without a comprehension's frame
                return [self.loaders[0](args[0])]
            return [load(arg) for load, arg in zip(self.loaders, args)]
        except MarshalException as exc:
            raise InvalidArgumentsException(f"{self.descriptor.qualified}: {self._culprit(args)}{exc}") from None

    def _culprit(self, args: list[Any]) -> str:
        """``parameter 'name': `` for the first argument that does not load (the error path only): a value of a
        type's newer version (an enum value this server's enum lacks) is refused naming the parameter."""
        for name, load, arg in zip(self.descriptor.param_names, self.loaders, args):
            try:
                load(arg)
            except MarshalException:
                return f"parameter {name!r}: "
        return ""

    async def call(self, args: list[Any], calls: SyncCalls) -> Any:
        """Run the implementation: async ones on the loop, sync ones as ``calls`` decides."""
        if self.is_async:
            return await self.target(*args)
        if self.offload:
            return await calls.pool.run(self.target, *args, lane=self)
        return self.call_inline(args, calls)

    def call_inline(self, args: list[Any], calls: SyncCalls) -> Any:
        """Run a sync implementation on the loop, watching whether it blocks."""
        started = perf_counter()
        try:
            return self.target(*args)
        finally:
            elapsed = perf_counter() - started
            if elapsed > calls.blocking_threshold or self.strikes:
                self._observe(elapsed, calls)

    def _observe(self, elapsed: float, calls: SyncCalls) -> None:
        # one very slow call, or several slow ones in a row, mean the method blocks; a single call that
        # the OS merely preempted on a busy machine does not move it
        if elapsed <= calls.blocking_threshold:
            self.strikes = 0
            return
        self.strikes += 1
        if elapsed > calls.max_loop_time or self.strikes >= 3:
            self.offload = True
            logger.warning(
                "%s blocked the event loop for %.1f ms; its calls run in the thread pool from now on",
                self.descriptor.qualified, elapsed * 1e3,
            )


class SyncCalls:
    """Where sync implementations run.

    ``"adaptive"`` (the default) calls them on the event loop -- a thread hop costs more than most
    service methods take -- until a method is seen blocking: one call over ``limits.max_loop_time``
    seconds (so no method holds the loop longer than that twice), or three in a row over
    ``blocking_threshold``; from then on that method runs in the thread pool. ``"threadpool"``
    always hops (as FastAPI runs ``def`` endpoints); ``"inline"`` never does (as aspyx-service
    runs them). A method declared ``@blocking`` always runs in the pool, whatever the mode.

    The pool is the bulkhead ``limits`` (:class:`~warpcall.server.limits.ServerLimits`) describe:
    ``max_workers`` threads (``max_workers`` here overrides it), ``method_share`` of them per method,
    ``max_queued`` calls waiting at most.
    """

    MODES = ("adaptive", "threadpool", "inline")

    def __init__(
        self, mode: str = "adaptive", blocking_threshold: float = 0.002, max_workers: int | None = None,
        limits: ServerLimits | None = None,
    ) -> None:
        if mode not in self.MODES:
            raise ValueError(f"sync_calls must be one of {self.MODES}, got {mode!r}")
        limits = limits if limits is not None else ServerLimits()
        self.mode = mode
        self.blocking_threshold = float("inf") if mode == "inline" else blocking_threshold
        #: one call on the loop longer than this moves its method to the pool
        self.max_loop_time = float("inf") if mode == "inline" else max(limits.max_loop_time, blocking_threshold)
        self.max_workers = max_workers if max_workers is not None else limits.max_workers
        #: the seconds a 503 for a full queue asks the caller to wait
        self.retry_after = limits.retry_after
        share = max(1, int(self.max_workers * limits.method_share))
        #: the thread pool; its threads start when calls need them
        self.pool = WorkerPool(self.max_workers, prefix="warpcall-sync", lane_workers=share, max_queued=limits.max_queued)

    def close(self, timeout: float | None = None) -> None:
        """Stop the thread pool after the calls under way (waiting ``timeout`` seconds at most for them)."""
        if timeout is None:
            self.pool.close()
        else:
            self.pool.close(timeout)


def describe_exception(exc: BaseException, include_traceback: bool = False) -> dict[str, Any]:
    """The envelope's exception entry for ``exc``."""
    entry: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    if include_traceback:
        import traceback

        entry["traceback"] = "".join(traceback.format_exception(exc))
    return entry


#: a reply: status, content-type header value, body. A 503 (full queue, see :meth:`DispatchEndpoint.error_reply`)
#: has its ``Retry-After`` line in the content-type value, after a CRLF: the writers of the server's protocol
#: put the value in a header line as it is, so the common reply needs no check for it
Reply = tuple[int, bytes, bytes]


def _with_cookies(reply: Reply) -> Reply:
    """``reply`` with the ``set-cookie`` lines of the call's ``ResponseContext`` (riding in its content type)."""
    lines = cookie_lines()
    if not lines:
        return reply
    status, content_type, payload = reply
    return status, content_type + b"\r\n" + lines[:-2], payload


def _printable(entry: dict[str, Any]) -> dict[str, str]:
    """An exception entry every format carries: its texts with lone surrogates escaped."""
    return {str(key): str(value).encode("utf-8", "backslashreplace").decode() for key, value in entry.items()}


def _unsupported(media_type: str) -> UnsupportedMediaTypeException:
    return UnsupportedMediaTypeException(
        f"content type {media_type or '(none)'!r} is not supported; send {JSON}, {MSGPACK} or {PROTOBUF}"
    )


def read_headers(
    headers: list[tuple[bytes, bytes]],
) -> tuple[bytes, bytes, bytes | None, bytes | None, bytes | None, bytes, tuple[bool, bytes, bytes] | None]:
    """``(content type, x-rpc-method, content-length, conflicting, x-rpc-timeout, authorization, observed)`` from
    an ASGI scope's headers (``authorization`` is ``b""`` when absent; ``observed`` None unless the request
    carries ``x-rpc-timing``, ``traceparent`` or ``tracestate``: then ``warpcall.observe.server.observed_headers``).

    Values are the first of each, as Starlette reads them (a user middleware sees those).
    ``conflicting`` names ``content-type``, ``x-rpc-method`` or ``authorization`` when one comes again
    with a different value, which :meth:`DispatchEndpoint.refuse` answers with 400: a middleware
    that judged the first value must never be passed by a call that acts on another.
    """
    content_type: bytes | None = None
    method_header: bytes | None = None
    declared: bytes | None = None
    conflicting: bytes | None = None
    timeout: bytes | None = None
    authorization: bytes | None = None
    observed = False
    for name, value in headers:
        if name == b"content-type":
            if content_type is None:
                content_type = value
            elif value != content_type:
                conflicting = name
        elif name == b"content-length":
            if declared is None:
                declared = value
        elif name == METHOD_HEADER_BYTES:
            if method_header is None:
                method_header = value
            elif value != method_header and conflicting is None:
                conflicting = name
        elif name == DEADLINE_HEADER_BYTES:
            if timeout is None:
                timeout = value
        elif name == b"authorization":
            if authorization is None:
                authorization = value
            elif value != authorization and conflicting is None:
                conflicting = name
        elif name == b"traceparent" or name == b"tracestate" or name == b"x-rpc-timing":
            observed = True
    return (
        content_type or b"", method_header or b"", declared, conflicting, timeout, authorization or b"",
        _observe.observed_headers(headers) if observed else None,
    )


class DispatchEndpoint:
    """ASGI app for ``POST /invoke``: decode, resolve, unmarshal, call, marshal, answer in kind.

    :meth:`answer` is the whole exchange once the body is read; the ASGI app and the server's
    inline protocol (:mod:`warpcall.server.protocol`) both go through it.
    """

    def __init__(
        self, max_body: int = DEFAULT_MAX_BODY, include_traceback: bool = False, sync_calls: SyncCalls | None = None
    ) -> None:
        self.max_body = max_body
        self.include_traceback = include_traceback
        self.sync_calls = sync_calls or SyncCalls()
        self.methods: dict[str, ServerMethod] = {}
        self._media_types: dict[bytes, str] = {}

    def expose(self, component: Any, service: Any, implementation: object) -> None:
        """Make every method the service declares callable, bound to ``implementation``."""
        for name, descriptor in service.methods.items():
            offload = self.sync_calls.mode == "threadpool"
            self.methods[descriptor.qualified] = ServerMethod(descriptor, getattr(implementation, name), offload)

    def resolve(self, qualified: str) -> ServerMethod:
        """The exposed method named ``component:service:method``; UnknownMethodException otherwise."""
        method = self.methods.get(qualified)
        if method is None:
            split_method(qualified)
            raise UnknownMethodException(
                f"no registered service declares {qualified!r}; this server exposes {len(self.methods)} method(s)"
            )
        return method

    def media_type(self, content_type: bytes) -> str:
        """The media type of a raw content-type value; clients send the same few over and over, each is parsed once."""
        media_type = self._media_types.get(content_type)
        if media_type is None:
            media_type = media_type_of(content_type)
            if len(self._media_types) < MEDIA_TYPE_CACHE_SIZE:
                self._media_types[content_type] = media_type
        return media_type

    def refuse(
        self, http_method: str, content_type: bytes, declared_length: bytes | None, conflicting: bytes | None = None
    ) -> Reply | None:
        """The reply to a request that must be refused before its body is read (405, 400, 415, 413), else None.

        ``conflicting`` names a header the request carries twice with differing values (see :func:`read_headers`).
        """
        if http_method != "POST":
            return 405, REPLY_CONTENT_TYPES[JSON], encode_response_json(
                None, {"type": "MethodNotAllowed", "message": "POST the envelope to /invoke"})
        if conflicting is not None:
            # two content types name no channel: JSON, as for an unsupported one
            kind = JSON if conflicting == b"content-type" else self.media_type(content_type)
            return self.error_reply(kind, MalformedRequestException(
                f"the {conflicting.decode('latin-1')} header is sent more than once, with differing values"))
        media_type = self.media_type(content_type)
        if media_type not in REPLY_CONTENT_TYPES:
            return self.error_reply(JSON, _unsupported(media_type))
        if declared_length is not None and declared_length.isdigit() and int(declared_length) > self.max_body:
            return self.error_reply(media_type, self._too_large(int(declared_length)))
        return None

    def _too_large(self, size: int) -> RequestTooLargeException:
        return RequestTooLargeException(f"body of {size} bytes exceeds the limit of {self.max_body} bytes")

    def answer_by(
        self, content_type: bytes, method_header: bytes, body: bytes, timeout: bytes, arrived: float
    ) -> Reply | Awaitable[Reply]:
        """:meth:`answer` for a request carrying its caller's deadline.

        ``timeout`` is the request's ``x-rpc-timeout`` value, counted from ``arrived`` (``time.monotonic()``
        when its head was complete). A call whose deadline has passed is answered 504 (``DeadlineExceeded``)
        without running; a malformed value 400 (``MalformedRequestException``); otherwise the method runs
        with the deadline set in the context this is called in (each request's own), so
        ``warpcall.resilience.deadline.remaining()`` tells it the time left and its calls carry it on. A
        call that waits for a worker past it is dropped there, never started (504 too).
        """
        at = parse_header(timeout, arrived)
        if at is None:
            return self.error_reply(self.media_type(content_type), MalformedRequestException(
                f"x-rpc-timeout must be the whole milliseconds left, got {timeout[:40]!r}"))
        if monotonic() >= at:
            return self.expired(content_type)
        _deadline.set(at)  # in the request's own context: the call and every task or job it starts see it
        return self.answer(content_type, method_header, body)

    def expired(self, content_type: bytes) -> Reply:
        """504 (``DeadlineExceeded``, in the request's format) for a call whose deadline passed before it started:
        the implementation is not run."""
        return self._expired(self.media_type(content_type))

    def answer(
        self, content_type: bytes, method_header: bytes, body: bytes, at: float = 0.0
    ) -> Reply | Awaitable[Reply]:
        """The reply to one envelope, or an awaitable of it when the method must be awaited.

        A sync method that runs on the loop is answered here and now, so the common call needs no
        coroutine at all. ``method_header`` names the method for protobuf bodies. ``at`` (> 0): the
        caller's deadline (``time.monotonic()``), set in the context this is called in, the request's own.
        """
        if at:
            _set_deadline(at)  # here rather than by a context.run of its own: one context entry per call
        media_type = self.media_type(content_type)
        try:
            if media_type not in REPLY_CONTENT_TYPES:
                raise _unsupported(media_type)
            if len(body) > self.max_body:
                raise self._too_large(len(body))
            if media_type == PROTOBUF:
                qualified = method_header.decode("latin-1")
                method = self.methods.get(qualified) or self.resolve(qualified)
                values = method.codec.decode_request(body)
                if len(values) < method.required:
                    raise InvalidArgumentsException(
                        f"{method.descriptor.qualified} takes {method.required} argument(s)"
                    )
            else:
                if media_type == MSGPACK:
                    qualified, args = decode_request_msgpack(body)
                    method = self.methods.get(qualified) or self.resolve(qualified)
                else:
                    qualified, args = decode_request_json(body)
                    method = self.methods.get(qualified) or self.resolve(qualified)
                    if method.exact_json and may_round_integers(body):
                        args = decode_request_json_exact(body)[1]
                if len(args) == 1 and len(method.loaders) == 1:  # load_args' common case, without its frame
                    try:
                        values = [method.loaders[0](args[0])]
                    except MarshalException:
                        values = self._load_again(method, media_type, body, args)
                else:
                    try:
                        values = method.load_args(args)
                    except InvalidArgumentsException:
                        values = self._load_again(method, media_type, body, args)
        except ProtocolException as exc:
            return self.error_reply(media_type, exc)
        except RecursionError:  # arguments nesting deeper than the loaders recurse (the plain-Python build)
            return self.error_reply(media_type, MalformedRequestException(
                f"the arguments nest deeper than this server loads (at most {MAX_DEPTH} levels are read)"))
        if method.checks:  # authorization: before the implementation, in the call's context (TokenContext set)
            refused = run_checks(method, values)
            if refused is not None:
                return self.refused(media_type, refused)
        if RESPONSES[0]:  # cookies (ResponseContext): a holder the call's copies of this context share
            prepare_response()
        if method.is_async:
            return self._answer_awaited(method, values, media_type)
        if method.offload:
            try:
                future = self.sync_calls.pool.run(method.target, *values, lane=method)
            except OverloadedException as exc:
                exc.retry_after = self.sync_calls.retry_after
                return self.error_reply(media_type, exc)
            return self._answer_pooled(method, future, media_type)
        try:
            value = method.call_inline(values, self.sync_calls)
        except Exception as exc:
            return self._raised(method, media_type, exc)
        return self._returned(method, media_type, value)

    @staticmethod
    def _load_again(method: ServerMethod, media_type: str, body: bytes, args: list[Any]) -> list[Any]:
        """Loading failed: a JSON integer beyond 64 bits that orjson read as a float is read again exactly.

        Raises InvalidArgumentsException, naming the method, when the arguments still do not fit.
        """
        if media_type == JSON and may_round_integers(body):
            args = decode_request_json_exact(body)[1]
        return method.load_args(args)

    def _expired(self, media_type: str, method: ServerMethod | None = None) -> Reply:
        """504: the caller's deadline passed before the call could start; the implementation did not run."""
        what = "the call" if method is None else method.descriptor.qualified
        return self.error_reply(media_type, DeadlineExceeded(f"{what} was not started: the caller's deadline had passed"))

    async def _answer_pooled(self, method: ServerMethod, future: Awaitable[Any], media_type: str) -> Reply:
        try:
            value = await future
        except NotStarted:  # it waited for a worker past the caller's deadline
            return self._expired(media_type, method)
        except Refused as exc:  # queued when the server stopped, never started: another instance may take it
            exc.retry_after = self.sync_calls.retry_after
            return self.error_reply(media_type, exc)
        except Exception as exc:
            return self._raised(method, media_type, exc)
        return self._returned(method, media_type, value)

    async def _answer_awaited(self, method: ServerMethod, values: list[Any], media_type: str) -> Reply:
        try:
            value = await method.call(values, self.sync_calls)
        except Exception as exc:
            return self._raised(method, media_type, exc)
        return self._returned(method, media_type, value)

    def _raised(self, method: ServerMethod, media_type: str, exc: Exception) -> Reply:
        # the implementation's exception is the outcome of the call: 200 with it in the envelope, as
        # aspyx-service answers, so its clients read the message too; an authorization error raised by the
        # implementation (or its advice) is a refusal, answered as a check's is
        if isinstance(exc, AuthorizationException):
            return self.refused(media_type, exc)
        logger.debug("%s raised", method.descriptor.qualified, exc_info=True)
        reply = self._envelope(method, media_type, 200, None, describe_exception(exc, self.include_traceback))
        return _with_cookies(reply) if RESPONSES[0] else reply

    def _returned(self, method: ServerMethod, media_type: str, value: Any) -> Reply:
        try:
            if media_type == PROTOBUF:
                reply = 200, REPLY_CONTENT_TYPES[PROTOBUF], method.codec.encode_response(value)
            else:
                reply = self._envelope(method, media_type, 200, method.dump_result(value), None)
            if RESPONSES[0]:
                return _with_cookies(reply)
            return reply
        except MarshalException as exc:
            # the result does not fit the declared type, or the reply's format cannot carry it (inf or nan in
            # JSON, a lone surrogate, an int beyond protobuf's sint64, nesting): the server's fault
            return self._unsendable(method, media_type, str(exc))
        except RecursionError:  # a result nesting deeper than the plans recurse (the plain-Python build)
            return self._unsendable(method, media_type, "the result nests too deeply")

    def _unsendable(self, method: ServerMethod, media_type: str, reason: str) -> Reply:
        """500, in the reply's own format, naming the method and why its result cannot be sent."""
        qualified = method.descriptor.qualified
        message = reason if reason.startswith(qualified) else f"{qualified}: result: {reason}"
        logger.warning("%s", message)
        return self._envelope(method, media_type, 500, None, {"type": "MarshalException", "message": message})

    @staticmethod
    def _envelope(
        method: ServerMethod, media_type: str, status: int, result: Any, exception: dict[str, Any] | None
    ) -> Reply:
        try:
            if media_type == PROTOBUF:
                return status, REPLY_CONTENT_TYPES[PROTOBUF], method.codec.encode_response(result, exception)
            if media_type == MSGPACK:
                return status, REPLY_CONTENT_TYPES[MSGPACK], encode_response_msgpack(result, exception)
            return status, REPLY_CONTENT_TYPES[JSON], encode_response_json(result, exception)
        except (MarshalException, ValueError):
            if exception is None:
                raise  # the result: _returned answers 500
            # an exception message no format can carry (a lone surrogate): sent with it escaped
            return DispatchEndpoint._envelope(method, media_type, status, None, _printable(exception))

    @staticmethod
    def refused(media_type: str, exc: BaseException) -> Reply:
        """401 (a token error, with its ``WWW-Authenticate`` line riding in the content type, see :data:`Reply`) or
        403 for a call an authorization check refused: msgpack for msgpack bodies, JSON otherwise."""
        status, reported, www_authenticate = refusal(exc)
        encode = encode_response_msgpack if media_type == MSGPACK else encode_response_json
        content_type = REPLY_CONTENT_TYPES[MSGPACK if media_type == MSGPACK else JSON]
        if www_authenticate is not None:
            content_type += b"\r\nwww-authenticate: " + www_authenticate
        entry = _printable(describe_exception(reported))
        return status, content_type, encode(None, entry)

    @staticmethod
    def error_reply(media_type: str, exc: ProtocolException | DeadlineExceeded | OverloadedException) -> Reply:
        """The reply to a bad request, or one refused unstarted (504 past its deadline, 503 for a full queue):
        msgpack for msgpack bodies, JSON otherwise (protobuf has no error message)."""
        entry = describe_exception(exc)
        encode = encode_response_msgpack if media_type == MSGPACK else encode_response_json
        kind = MSGPACK if media_type == MSGPACK else JSON
        content_type = REPLY_CONTENT_TYPES[kind]
        # the refusals go out under their documented names (the pool's own subclasses are no client's concern)
        if isinstance(exc, ProtocolException):
            status = exc.status
        elif isinstance(exc, DeadlineExceeded):
            status, entry["type"] = 504, DeadlineExceeded.__name__
        else:
            status, entry["type"] = 503, OverloadedException.__name__
            content_type += b"\r\nretry-after: %d" % math.ceil(exc.retry_after or 1)
        try:
            return status, content_type, encode(None, entry)
        except MarshalException:  # a message quoting text that is not Unicode: escaped
            return status, content_type, encode(None, _printable(entry))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        content_type, method_header, declared, conflicting, timeout, authorization, observed = read_headers(
            scope["headers"]
        )
        reply = self.refuse(scope.get("method", ""), content_type, declared, conflicting)
        if reply is None:
            set_source(scope)  # RequestContext.get_request(): this request (the task's own context)
            if authorization:
                set_token(authorization)
            try:
                message = await receive()
                body = message.get("body", b"")
                if message["type"] != "http.request" or message.get("more_body", False) or len(body) > self.max_body:
                    body = await self._read_rest(message, receive)
            except RequestTooLargeException as exc:
                reply = self.error_reply(self.media_type(content_type), exc)
            else:
                if observed is not None or _observe.ALWAYS[0]:
                    outcome = _observe.answer_parsed(
                        self, observed, content_type, method_header, body, timeout, scope.get(ARRIVED)
                    )
                elif timeout is None:
                    outcome = self.answer(content_type, method_header, body)
                else:  # counted from the head's arrival, as the server's protocol noted it; sent empty: malformed
                    outcome = self.answer_by(
                        content_type, method_header, body, timeout or b"-", scope.get(ARRIVED) or monotonic()
                    )
                reply = outcome if isinstance(outcome, tuple) else await outcome
        status, reply_type, payload = reply
        extra: list[bytes] = []
        if b"\r\n" in reply_type:  # Retry-After, WWW-Authenticate, Set-Cookie ride in the content type (see Reply)
            reply_type, *extra = reply_type.split(b"\r\n")
        headers = [(b"content-type", reply_type), (b"content-length", b"%d" % len(payload))]
        for line in extra:
            name, _, value = line.partition(b": ")
            headers.append((name, value))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _read_rest(self, message: dict[str, Any], receive: Receive) -> bytes:
        """The body from ``message`` (already received) on, through the last ``more_body`` message.

        Raises starlette's ``ClientDisconnect`` (as ``Request.body()`` does) when the client went away first:
        a body that did not all arrive must never reach an implementation.
        """
        chunks: list[bytes] = []
        size = 0
        while True:
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise RequestTooLargeException(f"body exceeds the limit of {self.max_body} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
            message = await receive()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
