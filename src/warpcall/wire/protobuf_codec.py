"""Protobuf messages for one service method, derived from its signature at startup.

No ``.proto`` file is needed: the request message has one field per parameter
(numbered in declaration order, or as ``Annotated[T, FieldNumber(n)]`` says: see
``warpcall.wire.numbers``), the response message a presence-tracked ``result`` and an
``exception`` submessage. Python types map to protobuf as follows:

- ``int``, ``float``, ``bool``, ``str``, ``bytes`` -> ``sint64``, ``double``, ``bool``, ``string``, ``bytes``
- ``datetime``, ``date``, ``time``, ``UUID``, ``Decimal`` -> ``string`` (ISO format / ``str``)
- an ``Enum`` -> the scalar type of its values
- a dataclass or pydantic v2 model -> a message (one per type, recursive types allowed)
- ``list``, ``tuple[X, ...]``, ``set``, ``Sequence`` -> ``repeated``
- ``dict[str | int | bool, V]`` -> ``map`` (``V`` wrapped in a message where protobuf requires)
- ``Optional[X]`` -> proto3 ``optional``, or a wrapper message for lists and maps
- anything else (``Union``, ``Any``, lists of lists) -> ``bytes``: msgpack of the marshaller's tree

A message field that is absent decodes as None when the type is Optional, as its default when the
field or parameter declares one, and is an error otherwise (``InvalidArgumentsException`` for a
parameter). A scalar declared with a default has explicit presence: it is written even when it is
zero, so a reader tells a zero from a field the writer's version does not have. A request field no
parameter has (a newer client's parameter, which that client sends only when it is not the default)
and an enum value the enum does not have are refused with ``InvalidArgumentsException`` (422) naming
them; in a result, such an enum value raises ``MarshalException`` naming the type and the value. The
rules of rolling upgrades are in ``warpcall.wire.numbers``. Ints travel as 64-bit ``sint64``: an int outside -2**63 .. 2**63-1 is
refused with a ``MarshalException`` naming the parameter (or ``result``) and the value (inside a
field carried as msgpack bytes, any int travels, as on dispatch-msgpack). Floats travel as
``double``, inf and nan included. A string holding a lone surrogate is refused by name.

Every type is analysed once per method; the per-call path only walks the value.
The type analysis and the message types live in ``warpcall.wire.protobuf_schema``.

Where the compiled core is built, messages without repeated fields or maps (scalars,
optional scalars, enums, dates, nested dataclasses and models) are written and read by
``warpcall.core.pbwire`` (compiled only) without building a protobuf message object; any value or
body that is not the plain case goes through protobuf as before, so errors and the
bytes on the wire stay the same.
"""

from __future__ import annotations

import importlib
import inspect
import threading
from types import ModuleType
from typing import Any, Callable, Sequence

import msgpack
from google.protobuf import unknown_fields
from google.protobuf.message import DecodeError

from warpcall.exceptions import (
    InvalidArgumentsException,
    MalformedRequestException,
    MarshalException,
    ProtocolException,
)
from warpcall.wire.protobuf_schema import (
    _F,
    _SCALARS,
    _constant,
    _Field,
    _FileBuilder,
    _Message,
    _Wire,
    defaulted,
)

__all__ = ["ProtobufMethodCodec", "codec_for"]

DEFAULT_WIRE: ModuleType | None
try:  # the wire fast path exists only compiled: in Python it would be slower than protobuf's own C parser
    # (compiled only, it has no Python source for type checkers: its module is a ModuleType to them)
    DEFAULT_WIRE = importlib.import_module("warpcall.core.pbwire")
except ImportError:
    DEFAULT_WIRE = None


class _NoWire:
    """The layout of a message the fast path does not carry: protobuf does all the work."""

    @staticmethod
    def encode(values: Sequence[Any]) -> None:
        return None

    @staticmethod
    def decode(body: bytes) -> None:
        return None


# Everything a broken value or body can raise while being converted; anything else is a bug and propagates.
_CONVERSION_ERRORS = (
    TypeError, ValueError, AttributeError, KeyError, OverflowError, RecursionError, MarshalException
)
# ... and what a body that is not a valid message can raise while being parsed and converted
_DECODE_ERRORS = (DecodeError, msgpack.UnpackException, *_CONVERSION_ERRORS)


class ProtobufMethodCodec:
    """Request and response messages of one service method, derived from its signature once."""

    def __init__(self, qualified: str, param_names: Sequence[str], param_types: Sequence[Any],
                 return_type: Any, *, wire: ModuleType | None | bool = True,
                 param_defaults: Sequence[Any] | None = None, param_hints: Sequence[Any] | None = None) -> None:
        """``param_defaults``: each parameter's default, ``inspect.Parameter.empty`` for none (None: no
        parameter has one); ``param_hints``: the annotations with their ``Annotated`` metadata, where the
        parameters' ``FieldNumber`` are read (None: ``param_types``)."""
        if len(param_names) != len(param_types):
            raise ValueError(f"{qualified}: {len(param_names)} parameter names but {len(param_types)} types")
        self.qualified = qualified
        builder = _FileBuilder(qualified)
        request = builder.new_message("Request", f"request of {qualified}")
        request.field_label = lambda index: f"parameter {self._params[index]!r}"  # type: ignore[method-assign]
        builder.used.update(("Response", "Error"))
        self._params = list(param_names)
        defaults = list(param_defaults) if param_defaults is not None else [inspect.Parameter.empty] * len(param_names)
        hints = list(param_hints) if param_hints is not None else list(param_types)
        for name, tp, hint, default in zip(param_names, param_types, hints, defaults):
            field = builder.field(tp)
            defaulted(field, hint, None if default is inspect.Parameter.empty else _constant(default))
            request.fields.append((builder.field_name(request, name), field))
        request.seal()
        #: how many leading parameters have no default; the trailing ones that do, with their defaults
        self._required = len(defaults)
        while self._required and defaults[self._required - 1] is not inspect.Parameter.empty:
            self._required -= 1
        self._defaults = tuple(defaults)
        if self._required < len(defaults):  # only methods with defaults pay for leaving them out
            self.encode_request = self._encode_trimming  # type: ignore[method-assign]
        response = _Message("Response", f"response of {qualified}")
        error = _Message("Error", "exception")
        error.fields = [("type", _SCALARS[str]()), ("message", _SCALARS[str]()),
                        ("extra", builder.map(dict[str, str]))]
        error.seal()
        error_field = _Field(_F.TYPE_MESSAGE, "exception", message=error)
        self._returns = return_type is not None and return_type is not type(None)
        if self._returns:
            result = builder.field(return_type)
            result = builder.optional(result) if not result.nullable else result
            response.fields.append(("result", result))
        response.fields.append(("exception", error_field))
        response.seal()
        builder.messages[1:1] = [response, error]
        builder.compile()
        self._request = request
        self._response = response
        self._result = response.fields[0][1] if self._returns else None
        self.request_type: type = request.cls
        self.response_type: type = response.cls
        # the wire fast path writes and reads plain values and bodies; protobuf itself handles the rest,
        # and names every problem. ``wire``: True for DEFAULT_WIRE, a pbwire module, or False/None for none
        if wire is True:
            wire = DEFAULT_WIRE
        # strict: a request field this version does not have goes to protobuf, where it is refused
        self._request_wire: _Wire | type[_NoWire] = (wire and request.wire(wire, strict=True)) or _NoWire
        # the request's numbers, and the compiled walk that finds a field it lacks without protobuf's
        # UnknownFieldSet (which costs a tenth of a decode)
        self._highest = max(request.numbers, default=0)
        self._known = None if request.positional else frozenset(request.numbers)
        self._numbers: Any = wire.FieldNumbers(self._highest, self._known) if wire else None
        self._response_wire: _Wire | type[_NoWire] = (
            (wire and response.wire(wire, reject=[len(response.fields)])) or _NoWire
        )

    # -- request
    def encode_request(self, args: Sequence[Any]) -> bytes:
        """Serialize the call's arguments (one per parameter, in order) into a request message.

        For a method whose last parameters have defaults, the last arguments that are their parameter's
        default object itself are left out: the receiver reads an absent parameter as its own default, so
        a server one version older, which lacks a parameter added with a default, still takes the call
        while the caller leaves that parameter alone.
        """
        request = self._request
        if len(args) != len(request.fields):
            raise MarshalException(
                f"{self.qualified} takes {len(request.fields)} argument(s) {self._params}, got {len(args)}"
            )
        body = self._request_wire.encode(args)
        if body is not None:
            return body
        try:
            return request.cls(**request.dump_values(args)).SerializeToString()
        except _CONVERSION_ERRORS as exc:
            raise self._explain(args, exc) from None

    def _encode_trimming(self, args: Sequence[Any]) -> bytes:
        """:meth:`encode_request` of a method with defaults: its last arguments that are their defaults left out."""
        if not args or len(args) != len(self._defaults) or args[-1] is not self._defaults[-1]:
            return ProtobufMethodCodec.encode_request(self, args)
        count = len(args)
        while count > self._required and args[count - 1] is self._defaults[count - 1]:
            count -= 1
        head = args[:count]
        try:
            return self._request.cls(**self._request.dump_prefix(head)).SerializeToString()
        except _CONVERSION_ERRORS as exc:
            raise self._explain(head, exc) from None

    def _explain(self, args: Sequence[Any], error: Exception) -> MarshalException:
        """Name the parameter behind an encode failure (slow path, only taken on errors)."""
        request = self._request
        for param, (name, field), value in zip(self._params, request.fields, args):
            try:
                if value is None:
                    if not field.nullable:
                        raise MarshalException(f"expected {field.describe}, got None")
                    continue
                request.cls(**{name: field.dump(value)})
            except _CONVERSION_ERRORS as exc:
                return MarshalException(f"{self.qualified}: parameter {param!r}: {_reason(exc)}")
        return MarshalException(f"{self.qualified}: arguments cannot be encoded: {_reason(error)}")

    def decode_request(self, body: bytes) -> list[Any]:
        """Parse a request message into argument values of the declared types.

        A parameter absent from the body takes its default (``InvalidArgumentsException`` when it has
        none); a field number the method does not have (a parameter of a newer version, sent with a value
        other than its default) and a value the parameter's type does not have (an enum value of a newer
        version) are refused with ``InvalidArgumentsException`` (422) naming them; a body that is not a
        protobuf message with ``MalformedRequestException`` (400).
        """
        values = self._request_wire.decode(body)
        if values is not None:
            return values
        try:
            message = self._request.cls.FromString(body)
            numbers = self._numbers
            number = numbers.unknown(body) if numbers is not None else -1
            if number < 0:  # no compiled walk, or one that cannot tell
                number = self._unknown_number(message)
            if number:
                raise InvalidArgumentsException(
                    f"{self.qualified}: the call carries field number {number}, which no "
                    f"parameter of this server's {self.qualified} has (its parameters: {', '.join(self._params) or 'none'}); "
                    "a newer client's parameter is only accepted while it is left at its default"
                )
            return self._request.load_values(message)
        except MarshalException as exc:  # a value the parameter's type does not have, or a missing parameter
            raise InvalidArgumentsException(f"{self.qualified}: {exc}") from None
        except _DECODE_ERRORS as exc:
            raise MalformedRequestException(
                f"body is not a valid protobuf request for {self.qualified}: {_reason(exc)}"
            ) from None

    def _unknown_number(self, message: Any) -> int:
        """The first field number of a parsed request that no parameter has (a newer client's parameter), 0 for
        none. A known number with another wire type is not one: protobuf skips it, as before."""
        unknown = unknown_fields.UnknownFieldSet(message)
        for index in range(len(unknown)):
            number: int = unknown[index].field_number
            if number > self._highest or (self._known is not None and number not in self._known):
                return number
        return 0

    # -- response
    def encode_response(self, result: Any, exception: dict[str, str] | None = None) -> bytes:
        """Serialize a result, or an exception ``{"type": ..., "message": ...}``, into a response message."""
        if exception is None and self._returns:
            body = self._response_wire.encode((result,))
            if body is not None:
                return body
        fields: dict[str, Any] = {}
        if exception is not None:
            fields["exception"] = _error_fields(exception)
        elif result is not None:
            result_field = self._result  # None exactly when the method returns nothing
            if result_field is None:
                raise MarshalException(f"{self.qualified}: result: declared to return None, "
                                       f"got {type(result).__name__}")
            try:
                fields["result"] = result_field.dump(result)
                return self._response.cls(**fields).SerializeToString()
            except _CONVERSION_ERRORS as exc:
                raise MarshalException(f"{self.qualified}: result: {_reason(exc)}") from None
        return self._response.cls(**fields).SerializeToString()

    def decode_response(self, body: bytes) -> tuple[Any, dict[str, str] | None]:
        """Parse a response message into ``(result, exception)``; exception is None on success."""
        values = self._response_wire.decode(body)
        if values is not None:
            return (values[0] if self._returns else None), None
        try:
            message: Any = self._response.cls.FromString(body)  # generated: its fields are attributes
            if message.HasField("exception"):
                error = message.exception
                exception = {"type": error.type, "message": error.message}
                exception.update(error.extra)
                return None, exception
            result_field = self._result  # None exactly when the method returns nothing
            if result_field is None or not message.HasField("result"):
                return None, None
            load = result_field.load
            value = message.result
            return (load(value) if load is not None else value), None
        except MarshalException as exc:
            # a value the declared type does not have (an enum value of a newer server): the caller's
            # MarshalException naming the type and the value, as on JSON; not a broken body
            raise MarshalException(f"{self.qualified}: result: {exc}") from None
        except _DECODE_ERRORS as exc:
            raise ProtocolException(
                f"body is not a valid protobuf response of {self.qualified}: {_reason(exc)}"
            ) from None


def _error_fields(exception: dict[str, Any]) -> dict[str, Any]:
    extra = {str(k): str(v) for k, v in exception.items() if k not in ("type", "message") and v is not None}
    return {"type": str(exception.get("type") or ""), "message": str(exception.get("message") or ""),
            "extra": extra}


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "the value nests too deeply or contains itself"
    text = str(exc)
    if isinstance(exc, ValueError) and text.startswith("Value out of range"):
        # protobuf's words for an int beyond the field: say which rule it broke and what carries the value
        number = text.partition(":")[2].strip()
        return (f"the integer {number} is outside sint64 (-2**63 .. 2**63-1), the range dispatch-protobuf "
                "carries ints in; dispatch-json and dispatch-msgpack carry any int")
    if isinstance(exc, UnicodeEncodeError):
        return f"a string holding the lone surrogate {exc.object[exc.start]!a}, which is not Unicode text"
    return text if isinstance(exc, MarshalException) else f"{type(exc).__name__}: {text}"


_codecs: dict[Any, ProtobufMethodCodec] = {}
_codecs_lock = threading.Lock()


def codec_for(qualified: str, param_names: Sequence[str], param_types: Sequence[Any],
              return_type: Any, method: Any = None) -> ProtobufMethodCodec:
    """The codec of ``component:service:method``, built on first use and cached (thread-safe).

    ``method``: the service method's descriptor, whose signature gives the parameters' defaults and
    ``FieldNumber`` annotations.
    """
    # keyed by the types too: two versions of one interface in a process (a test of rolling upgrades, a
    # gateway) name the same method with different shapes
    key: Any = (qualified, tuple(param_names), tuple(param_types), return_type, getattr(method, "func", None))
    try:
        codec = _codecs.get(key)
    except TypeError:  # an unhashable hint: by name and declaring function only
        key = (qualified, getattr(method, "func", None))
        codec = _codecs.get(key)
    if codec is None:
        with _codecs_lock:
            codec = _codecs.get(key)
            if codec is None:
                defaults, hints = _parameters(method)
                codec = ProtobufMethodCodec(qualified, param_names, param_types, return_type,
                                            param_defaults=defaults, param_hints=hints)
                _codecs[key] = codec
    return codec


def _parameters(method: Any) -> tuple[list[Any] | None, list[Any] | None]:
    """A method descriptor's parameter defaults and annotations with their metadata (None, None: unknown)."""
    signature = getattr(method, "signature", None)
    if signature is None:
        return None, None
    parameters = list(signature.parameters.values())[1:]  # the first is the instance
    func: Callable[..., Any] | None = getattr(method, "func", None)
    try:
        import typing

        annotations = typing.get_type_hints(func, include_extras=True) if func is not None else {}
    except Exception:  # noqa: BLE001 - the descriptor resolved them already; without extras, no numbers
        annotations = {}
    hints = [annotations.get(p.name, method.param_types[i]) for i, p in enumerate(parameters)]
    return [p.default for p in parameters], hints
