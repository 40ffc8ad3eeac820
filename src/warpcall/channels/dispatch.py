"""The dispatch channels: one ``POST {url}/invoke`` endpoint, the method named in the envelope.

``dispatch-json`` and ``dispatch-msgpack`` send the aspyx-compatible envelope
``{"method": "component:service:method", "args": [...]}``; ``dispatch-protobuf``
sends a protobuf message derived from the method signature, the method named
in the ``X-Rpc-Method`` header.
"""

from __future__ import annotations

from inspect import Parameter
from typing import Any, Callable

from warpcall.channels.base import channel
from warpcall.channels.http import (
    AnsweredBy,
    HTTPXChannel,
    _profile_everywhere,
    _profile_here,
    _trace_context,
    auth_exception,
)
from warpcall.core.envelope import (
    decode_response_json,
    decode_response_json_exact,
    decode_response_msgpack,
    encode_request_json,
    encode_request_msgpack,
    may_round_integers,
)
from warpcall.core.marshal import plan_for
from warpcall.core.marshal_plan import may_take_rounded_integers
from warpcall.exceptions import (
    MarshalException,
    OverloadedException,
    ProtocolException,
    RemoteServiceException,
    ServiceCommunicationException,
    ServiceException,
)
from warpcall.wire import CALLER_ERRORS, JSON, METHOD_HEADER, MSGPACK, PROTOBUF, REFUSALS, codec_of

_EMPTY = Parameter.empty


class DispatchPlan:
    """Per service method: the marshalling a dispatch call needs, built on the method's first call."""

    __slots__ = ("qualified", "names", "dumpers", "load_result", "exact_json", "required", "defaults")

    def __init__(self, method: Any) -> None:
        self.qualified: str = method.qualified
        self.names: tuple[str, ...] = method.param_names
        self.dumpers = tuple(plan_for(tp).dump for tp in method.param_types)
        self.load_result: Callable[[Any], Any] = plan_for(method.return_type).load
        #: the return type would take, as it is, a float that orjson made of an integer beyond 64 bits
        self.exact_json: bool = may_take_rounded_integers(method.return_type)
        #: how many leading parameters have no default, and every parameter's default (empty: none has one)
        self.required, self.defaults = _trailing_defaults(method)

    @classmethod
    def of(cls, method: Any) -> DispatchPlan:
        """The cached plan of a method descriptor."""
        plan: DispatchPlan | None = method.plans.get("dispatch")
        if plan is None:
            kind = cls
            if cls is DispatchPlan and _trailing_defaults(method)[1]:
                kind = TrailingDefaultsPlan  # only methods with defaults pay for leaving them out
            plan = method.plans["dispatch"] = kind(method)
        return plan

    def dump_args(self, args: tuple[Any, ...]) -> list[Any]:
        """Arguments as primitive trees, in declared order; MarshalException naming the argument that does not fit."""
        try:
            if len(args) == 1 and len(self.dumpers) == 1:  # the common case, without a comprehension's frame
                return [self.dumpers[0](args[0])]
            return [dump(arg) for dump, arg in zip(self.dumpers, args)]
        except MarshalException as exc:
            raise MarshalException(f"{self.qualified}: argument '{self._culprit(args)}': {exc}") from None

    def unsendable(self, trees: list[Any], encode: Callable[[str, list[Any]], bytes], error: Exception) -> Exception:
        """The envelope writer refused the arguments: the error naming the argument it could not write."""
        for name, tree in zip(self.names, trees):
            try:
                encode(self.qualified, [tree])
            except MarshalException as exc:
                where = str(exc).replace("['args'][0]", f"argument {name!r}", 1)  # the envelope's path, by name
                return MarshalException(f"{self.qualified}: {where}")
        return MarshalException(f"{self.qualified}: {error}")

    def _culprit(self, args: tuple[Any, ...]) -> str:
        for name, dump, arg in zip(self.names, self.dumpers, args):
            try:
                dump(arg)
            except MarshalException:
                return name
        return "?"


def _trailing_defaults(method: Any) -> tuple[int, tuple[Any, ...]]:
    """How many leading parameters of ``method`` have no default, and each parameter's default (empty: none has one)."""
    defaults = [p.default for p in list(method.signature.parameters.values())[1:]]
    required = len(defaults)
    while required and defaults[required - 1] is not _EMPTY:
        required -= 1
    return required, tuple(defaults) if required < len(defaults) else ()


class TrailingDefaultsPlan(DispatchPlan):
    """The plan of a method whose last parameters have defaults: the last arguments that are their parameter's
    default object are not sent, and the server applies its own default. So a server one version older, which
    lacks a parameter added with a default, takes the call while the caller leaves that parameter alone
    (rolling upgrades); a value other than the default reaches it and is refused there (422), never dropped."""

    __slots__ = ()

    def dump_args(self, args: tuple[Any, ...]) -> list[Any]:
        count = len(args)
        defaults = self.defaults
        while count > self.required and args[count - 1] is defaults[count - 1]:
            count -= 1
        return DispatchPlan.dump_args(self, args[:count] if count < len(args) else args)


def positional_args(invocation: Any) -> tuple[Any, ...]:
    """The invocation's arguments in declared order (keywords and defaults resolved)."""
    args: tuple[Any, ...] = invocation.args
    if invocation.keywords is None and len(args) == len(invocation.descriptor.param_names):
        return args
    positional: tuple[Any, ...] = invocation.positional()
    return positional


def header(headers: list[tuple[str, str]], name: str) -> str:
    """First value of a header (names compared case-insensitively), '' when absent."""
    for key, value in headers:
        if key == name or key.lower() == name:  # servers mostly send lowercase names: skip lower() then
            return value
    return ""


def media_type(headers: list[tuple[str, str]]) -> str:
    """A reply's content type without parameters ('' when absent)."""
    value = header(headers, "content-type")
    return value if value in (JSON, MSGPACK, PROTOBUF) else value.split(";")[0].strip()


def _is_protobuf(headers: list[tuple[str, str]]) -> bool:
    return media_type(headers).lower() == PROTOBUF


def _auth_failure(
    qualified: str, url: str, status: int, headers: list[tuple[str, str]], exception: Any, content: bytes
) -> ServiceException:
    """The exception a 401 or 403 reply means (see :func:`warpcall.channels.http.auth_exception`)."""
    if isinstance(exception, dict):
        named, text = str(exception.get("type") or ""), str(exception.get("message") or "")
    else:
        named, text = "", content[:200].decode("utf-8", "replace")
    return auth_exception(status, headers, f"{url} rejected {qualified} (HTTP {status}): {text}", named)


def raise_remote(qualified: str, url: str, status: int, exception: dict[str, Any]) -> None:
    """Raise what a reply's exception entry means for the caller."""
    kind = str(exception.get("type") or "")
    message = str(exception.get("message") or "")
    if 400 <= status < 500:
        error = CALLER_ERRORS.get(kind, ServiceException)
        raise error(f"{url} rejected {qualified} (HTTP {status}): {message}")
    raise RemoteServiceException(
        f"{qualified} raised {kind or 'an exception'} at {url}: {message}", remote_type=kind, remote_message=message
    )


class EnvelopeChannel(HTTPXChannel):
    """A dispatch channel sending the envelope in one body format."""

    content_type = JSON
    encode_request: Callable[[str, list[Any]], bytes]
    decode_response: Callable[[bytes], tuple[Any, Any]]
    #: the exact reader, for a format whose fast reader may round integers beyond 64 bits (JSON)
    decode_exact: Callable[[bytes], tuple[Any, Any]] | None = None

    def __init__(self) -> None:
        super().__init__()
        # no accept header: the server answers in the request's format, and every header costs it parsing
        self.headers = [("content-type", self.content_type)]

    def invoke(self, invocation: Any) -> Any:
        # the common case written out, with few helper frames: every frame costs several times its hot
        # price right after the wait for the reply, so the hot path is kept flat
        if self._observed or _profile_everywhere or _profile_here() or _trace_context() is not None:
            from warpcall.observe.client import invoke

            return invoke(self, invocation)  # timed, traced, counted: warpcall.observe.client
        plan, body = self._plan_and_body(invocation)
        url = self.get_url()
        status, headers, content = self._request("POST", url + "/invoke", self.headers, body, invocation.descriptor)
        if status == 200:
            try:
                result, exception = type(self).decode_response(content)
            except ProtocolException:
                pass  # _result names the problem
            else:
                if exception is None and not plan.exact_json:
                    try:
                        return plan.load_result(result)
                    except MarshalException:
                        pass  # _result reads a JSON body again exactly, or raises naming the problem
        return self._result(plan, url, status, headers, content)

    async def invoke_async(self, invocation: Any) -> Any:
        if self._observed or _profile_everywhere or _profile_here() or _trace_context() is not None:
            from warpcall.observe.client import invoke_async

            return await invoke_async(self, invocation)
        plan, body = self._plan_and_body(invocation)
        url = self.get_url()
        status, headers, content = await self._request_async(
            "POST", url + "/invoke", self.headers, body, invocation.descriptor
        )
        return self._result(plan, url, status, headers, content)

    def _plan_and_body(self, invocation: Any) -> tuple[DispatchPlan, bytes]:
        """The method's plan and the encoded request; the one-argument case without dump_args' frame."""
        method = invocation.descriptor
        plan = method.plans.get("dispatch") or DispatchPlan.of(method)
        args = invocation.args
        if invocation.keywords is None and len(args) == 1 and len(plan.dumpers) == 1:
            try:
                trees = [plan.dumpers[0](args[0])]
            except MarshalException:
                trees = plan.dump_args(args)  # raises naming the argument
        else:
            trees = plan.dump_args(positional_args(invocation))
        try:
            return plan, type(self).encode_request(plan.qualified, trees)
        except MarshalException as exc:  # the format cannot carry a value (inf or nan in JSON, a lone surrogate)
            raise plan.unsendable(trees, type(self).encode_request, exc) from None

    def _result(self, plan: DispatchPlan, url: str, status: int, headers: list[tuple[str, str]], content: bytes) -> Any:
        if type(headers) is AnsweredBy:  # sent again: another instance answered
            url = headers.url
        if status != 200:
            self._raise_error_reply(plan.qualified, url, status, headers, content)
        try:
            result, exception = type(self).decode_response(content)
        except ProtocolException as exc:
            raise ServiceCommunicationException(f"{url} answered {plan.qualified} with an invalid body: {exc}") from None
        if exception is not None:
            raise_remote(plan.qualified, url, status, exception)
        reread = type(self).decode_exact
        if reread is not None and plan.exact_json and may_round_integers(content):
            result = reread(content)[0]  # orjson may have read an integer beyond 64 bits as a float
        try:
            return plan.load_result(result)
        except MarshalException:
            if reread is None or not may_round_integers(content):
                raise
        return plan.load_result(reread(content)[0])  # an integer beyond 64 bits, read as a float at first

    def _raise_error_reply(
        self, qualified: str, url: str, status: int, headers: list[tuple[str, str]], content: bytes
    ) -> None:
        kind = media_type(headers)
        decode = {JSON: decode_response_json, MSGPACK: decode_response_msgpack}.get(kind)
        exception = None
        if decode is not None:
            try:
                exception = decode(content)[1]
            except ProtocolException:
                exception = None
        if status == 401 or status == 403:
            raise _auth_failure(qualified, url, status, headers, exception, content)
        if exception is None:
            raise ServiceCommunicationException(
                f"{url} answered {qualified} with HTTP {status}: {content[:200].decode('utf-8', 'replace')}"
            )
        refused = REFUSALS.get((status, str(exception.get("type") or "")))
        if refused is not None:  # not started there: 504 past the deadline, 503 with a full queue
            message = f"{url} did not run {qualified} (HTTP {status}): {exception.get('message') or ''}"
            if refused is OverloadedException:
                wait = header(headers, "retry-after")
                raise OverloadedException(message, float(wait) if wait.isdigit() else None)
            raise refused(message)
        raise_remote(qualified, url, status, exception)


@channel("dispatch-json")
class DispatchJSONChannel(EnvelopeChannel):
    """Dispatch over HTTP with a JSON envelope."""

    content_type = JSON
    encode_request = staticmethod(encode_request_json)
    decode_response = staticmethod(decode_response_json)
    decode_exact = staticmethod(decode_response_json_exact)


@channel("dispatch-msgpack")
class DispatchMsgpackChannel(EnvelopeChannel):
    """Dispatch over HTTP with a msgpack envelope (``Content-Type: application/msgpack``)."""

    content_type = MSGPACK
    encode_request = staticmethod(encode_request_msgpack)
    decode_response = staticmethod(decode_response_msgpack)


@channel("dispatch-protobuf")
class DispatchProtobufChannel(EnvelopeChannel):
    """Dispatch over HTTP with protobuf messages derived from the method signature."""

    content_type = PROTOBUF

    def __init__(self) -> None:
        super().__init__()
        self._method_headers: dict[str, list[tuple[str, str]]] = {}

    #: the method's protobuf codec (built once); the server shares it through warpcall.wire
    codec = staticmethod(codec_of)

    def _encode_call(self, invocation: Any) -> tuple[Any, list[tuple[str, str]], bytes]:
        method = invocation.descriptor
        codec = method.plans.get("dispatch-protobuf") or self.codec(method)
        headers = self._method_headers.get(method.qualified)
        if headers is None:  # one header list per method and channel, built on the first call
            headers = self._method_headers[method.qualified] = [*self.headers, (METHOD_HEADER, method.qualified)]
        return codec, headers, codec.encode_request(positional_args(invocation))

    def invoke(self, invocation: Any) -> Any:
        if self._observed or _profile_everywhere or _profile_here() or _trace_context() is not None:
            from warpcall.observe.client import invoke

            return invoke(self, invocation)
        codec, headers, body = self._encode_call(invocation)
        url = self.get_url()
        status, reply_headers, content = self._request("POST", url + "/invoke", headers, body, invocation.descriptor)
        if status == 200 and _is_protobuf(reply_headers):
            try:
                result, exception = codec.decode_response(content)
            except ProtocolException:
                pass  # _protobuf_result names the problem
            else:
                if exception is None:
                    return result
        return self._protobuf_result(invocation.descriptor.qualified, codec, url, status, reply_headers, content)

    async def invoke_async(self, invocation: Any) -> Any:
        if self._observed or _profile_everywhere or _profile_here() or _trace_context() is not None:
            from warpcall.observe.client import invoke_async

            return await invoke_async(self, invocation)
        codec, headers, body = self._encode_call(invocation)
        url = self.get_url()
        status, reply_headers, content = await self._request_async(
            "POST", url + "/invoke", headers, body, invocation.descriptor
        )
        return self._protobuf_result(invocation.descriptor.qualified, codec, url, status, reply_headers, content)

    def _protobuf_result(
        self, qualified: str, codec: Any, url: str, status: int, headers: list[tuple[str, str]], content: bytes
    ) -> Any:
        if type(headers) is AnsweredBy:  # sent again: another instance answered
            url = headers.url
        if not _is_protobuf(headers):
            self._raise_error_reply(qualified, url, status, headers, content)
        if status == 401 or status == 403:  # refused by the server's authorization, in a protobuf body
            try:
                exception = codec.decode_response(content)[1]
            except ProtocolException:
                exception = None
            raise _auth_failure(qualified, url, status, headers, exception, content)
        try:
            result, exception = codec.decode_response(content)
        except ProtocolException as exc:
            raise ServiceCommunicationException(f"{url} answered {qualified} with an invalid body: {exc}") from None
        if exception is not None:
            raise_remote(qualified, url, status, exception)
        return result
