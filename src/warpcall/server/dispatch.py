"""The dispatch endpoint: a plain ASGI app answering ``POST /invoke`` in the body's own format.

Only methods that a started component's services declare can be reached; the
table of them is built once at startup. Bad input is answered with a 4xx and
an envelope naming the problem, and never reaches an implementation.
"""

from __future__ import annotations

import inspect
import logging
from time import perf_counter
from typing import Any, Awaitable, Callable

from warpcall import _core
from warpcall.channels.dispatch import JSON, METHOD_HEADER, MSGPACK, PROTOBUF, DispatchProtobufChannel
from warpcall.exceptions import (
    InvalidArgumentsException,
    MarshalException,
    ProtocolException,
    RequestTooLargeException,
    UnknownMethodException,
    UnsupportedMediaTypeException,
)
from warpcall.server.workers import WorkerPool

logger = logging.getLogger("warpcall.server")

DEFAULT_MAX_BODY = 10 * 2**20

#: the content-type header each reply format is sent with
REPLY_CONTENT_TYPES = {kind: kind.encode() for kind in (JSON, MSGPACK, PROTOBUF)}
#: how many distinct raw content-type values are remembered with their media type
MEDIA_TYPE_CACHE_SIZE = 64
METHOD_HEADER_BYTES = METHOD_HEADER.encode()


def media_type_of(content_type: bytes) -> str:
    """The media type of a raw ``content-type`` header value: before any parameter, lower case."""
    return content_type.split(b";")[0].strip().decode("latin-1").lower()

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class ServerMethod:
    """Per exposed method: the bound implementation and the unmarshalling it needs, built once."""

    __slots__ = (
        "descriptor", "target", "is_async", "offload", "strikes", "required", "loaders", "dump_result", "_codec"
    )

    def __init__(self, descriptor: Any, target: Callable[..., Any], offload: bool = False) -> None:
        self.descriptor = descriptor
        self.target = target
        self.is_async = inspect.iscoroutinefunction(target)
        #: run a sync implementation in the thread pool (set up front, or once it was seen to block)
        self.offload = offload
        self.strikes = 0
        parameters = list(descriptor.signature.parameters.values())[1:]
        self.required = sum(1 for p in parameters if p.default is inspect.Parameter.empty)
        self.loaders = tuple(_core.marshal.plan_for(tp).load for tp in descriptor.param_types)
        self.dump_result = _core.marshal.plan_for(descriptor.return_type).dump
        self._codec: Any = None

    @property
    def codec(self) -> Any:
        """The protobuf codec of this method, built on first use."""
        if self._codec is None:
            self._codec = DispatchProtobufChannel.codec(self.descriptor)
        return self._codec

    def load_args(self, args: list[Any]) -> list[Any]:
        """Unmarshal envelope arguments; InvalidArgumentsException when they do not fit the signature."""
        count = len(args)
        if count < self.required or count > len(self.loaders):
            expected = (
                str(self.required) if self.required == len(self.loaders) else f"{self.required} to {len(self.loaders)}"
            )
            raise InvalidArgumentsException(
                f"{self.descriptor.qualified} takes {expected} argument(s), got {count}"
            )
        try:
            if count == 1:  # the common case, without a comprehension's frame
                return [self.loaders[0](args[0])]
            return [load(arg) for load, arg in zip(self.loaders, args)]
        except MarshalException as exc:
            raise InvalidArgumentsException(f"{self.descriptor.qualified}: {exc}") from None

    async def call(self, args: list[Any], calls: SyncCalls) -> Any:
        """Run the implementation: async ones on the loop, sync ones as ``calls`` decides."""
        if self.is_async:
            return await self.target(*args)
        if self.offload:
            return await calls.pool.run(self.target, *args)
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
        if elapsed > 10 * calls.blocking_threshold or self.strikes >= 3:
            self.offload = True
            logger.warning(
                "%s blocked the event loop for %.1f ms; its calls run in the thread pool from now on",
                self.descriptor.qualified, elapsed * 1e3,
            )


class SyncCalls:
    """Where sync implementations run.

    ``"adaptive"`` (the default) calls them on the event loop -- a thread hop costs more than most
    service methods take -- until a method is seen blocking: one call over ten times
    ``blocking_threshold`` seconds, or three in a row over it; from then on that method runs in
    the thread pool. ``"threadpool"`` always hops (as
    FastAPI runs ``def`` endpoints); ``"inline"`` never does (as aspyx-service runs them).
    """

    MODES = ("adaptive", "threadpool", "inline")

    def __init__(self, mode: str = "adaptive", blocking_threshold: float = 0.002, max_workers: int = 32) -> None:
        if mode not in self.MODES:
            raise ValueError(f"sync_calls must be one of {self.MODES}, got {mode!r}")
        self.mode = mode
        self.blocking_threshold = float("inf") if mode == "inline" else blocking_threshold
        self.max_workers = max_workers
        #: the thread pool; its threads start when calls need them
        self.pool = WorkerPool(max_workers, prefix="warpcall-sync")

    def close(self) -> None:
        """Stop the thread pool after the calls under way."""
        self.pool.close()


def describe_exception(exc: BaseException, include_traceback: bool = False) -> dict[str, Any]:
    """The envelope's exception entry for ``exc``."""
    entry: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    if include_traceback:
        import traceback

        entry["traceback"] = "".join(traceback.format_exception(exc))
    return entry


class DispatchEndpoint:
    """ASGI app for ``POST /invoke``: decode, resolve, unmarshal, call, marshal, answer in kind."""

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
            _core.envelope.split_method(qualified)
            raise UnknownMethodException(
                f"no registered service declares {qualified!r}; this server exposes {len(self.methods)} method(s)"
            )
        return method

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"")
        # clients send the same few content types over and over; parse each once
        media_type = self._media_types.get(content_type)
        if media_type is None:
            media_type = media_type_of(content_type)
            if len(self._media_types) < MEDIA_TYPE_CACHE_SIZE:
                self._media_types[content_type] = media_type
        reply_type = media_type if media_type in REPLY_CONTENT_TYPES else JSON
        try:
            if scope.get("method") != "POST":
                await self._send(send, 405, JSON, _core.envelope.encode_response_json(
                    None, {"type": "MethodNotAllowed", "message": "POST the envelope to /invoke"}))
                return
            if reply_type != media_type:
                raise UnsupportedMediaTypeException(
                    f"content type {media_type or '(none)'!r} is not supported; send {JSON}, {MSGPACK} or {PROTOBUF}"
                )
            self._check_declared_length(headers)
            message = await receive()
            body = message.get("body", b"")
            if message["type"] != "http.request" or message.get("more_body", False) or len(body) > self.max_body:
                body = await self._read_rest(message, receive)
            if media_type == PROTOBUF:
                await self._invoke_protobuf(headers, body, send)
                return
            if media_type == MSGPACK:
                qualified, args = _core.envelope.decode_request_msgpack(body)
            else:
                qualified, args = _core.envelope.decode_request_json(body)
            method = self.methods.get(qualified) or self.resolve(qualified)
            if len(args) == 1 and len(method.loaders) == 1:  # load_args' common case, without its frame
                try:
                    values = [method.loaders[0](args[0])]
                except MarshalException:
                    values = method.load_args(args)  # raises, naming the method
            else:
                values = method.load_args(args)
        except ProtocolException as exc:
            await self._send_error(send, reply_type, exc.status, exc)
            return
        try:
            if method.is_async or method.offload:
                value = await method.call(values, self.sync_calls)
            else:  # no coroutine to create and await for a sync method run on the loop
                value = method.call_inline(values, self.sync_calls)
        except Exception as exc:
            # the implementation's exception is the outcome of the call: 200 with it in the envelope, as
            # aspyx-service answers, so its clients read the message too
            logger.debug("%s raised", qualified, exc_info=True)
            result, exception, status = None, describe_exception(exc, self.include_traceback), 200
        else:
            try:
                result, exception, status = method.dump_result(value), None, 200
            except MarshalException as exc:  # the result does not fit the declared type: the server's fault
                result, exception, status = None, describe_exception(exc), 500
        encode = _core.envelope.encode_response_msgpack if media_type == MSGPACK else _core.envelope.encode_response_json
        payload = encode(result, exception)
        # what _send does, without another coroutine on every call
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", REPLY_CONTENT_TYPES[reply_type]), (b"content-length", b"%d" % len(payload))],
        })
        await send({"type": "http.response.body", "body": payload})

    async def _invoke_protobuf(self, headers: dict[bytes, bytes], body: bytes, send: Send) -> None:
        qualified = headers.get(METHOD_HEADER_BYTES, b"").decode("latin-1")
        method = self.methods.get(qualified) or self.resolve(qualified)
        codec = method.codec
        values = codec.decode_request(body)
        if len(values) < method.required:
            raise InvalidArgumentsException(f"{method.descriptor.qualified} takes {method.required} argument(s)")
        try:
            if method.is_async or method.offload:
                value = await method.call(values, self.sync_calls)
            else:
                value = method.call_inline(values, self.sync_calls)
        except Exception as exc:
            logger.debug("%s raised", method.descriptor.qualified, exc_info=True)
            payload, status = codec.encode_response(None, describe_exception(exc, self.include_traceback)), 200
        else:
            try:
                payload, status = codec.encode_response(value), 200
            except MarshalException as exc:
                payload, status = codec.encode_response(None, describe_exception(exc)), 500
        await self._send(send, status, PROTOBUF, payload)

    def _check_declared_length(self, headers: dict[bytes, bytes]) -> None:
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            raise RequestTooLargeException(f"body of {int(declared)} bytes exceeds the limit of {self.max_body} bytes")

    async def _read_rest(self, message: dict[str, Any], receive: Receive) -> bytes:
        """The body from ``message`` (already received) on, through the last ``more_body`` message."""
        chunks: list[bytes] = []
        size = 0
        while True:
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise RequestTooLargeException(f"body exceeds the limit of {self.max_body} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
            message = await receive()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _send_error(self, send: Send, reply_type: str, status: int, exc: Exception) -> None:
        entry = describe_exception(exc)
        if reply_type == MSGPACK:
            await self._send(send, status, MSGPACK, _core.envelope.encode_response_msgpack(None, entry))
        else:
            await self._send(send, status, JSON, _core.envelope.encode_response_json(None, entry))

    @staticmethod
    async def _send(send: Send, status: int, content_type: str, payload: bytes) -> None:
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", REPLY_CONTENT_TYPES[content_type]), (b"content-length", b"%d" % len(payload))],
        })
        await send({"type": "http.response.body", "body": payload})
