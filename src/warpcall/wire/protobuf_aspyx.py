"""aspyx-service 0.11's protobuf wire, for components whose dispatch-protobuf peers run aspyx-service.

warpcall's own dispatch-protobuf (``warpcall.wire.protobuf_codec``) carries ints as ``sint64``, floats as
``double`` and an exception as a message; aspyx-service's ``ProtobufChannel`` (0.11.0 on) derives other
messages from the same signature: ``int`` -> ``int32``, ``float`` -> ``float`` (32 bits), the exception as
a ``string``. The field numbers match, so one read with the other's schema silently gives wrong values
(an aspyx ``3`` reads as ``-2``, its floats as absent). Components named with :func:`use_aspyx_protobuf`
(or in ``WARPCALL_ASPYX_PROTOBUF``, comma-separated, ``*`` for all) speak aspyx's messages instead, as
client and as server, on the same channel name ``dispatch-protobuf``:

- request: one field per parameter, numbered in order; response: ``result`` (1) and ``exception`` (2, the
  text ``"<type>: <message>"``; aspyx-service sends ``str(exception)``, which arrives as the message of a
  ``RemoteServiceException`` without a type name, as on dispatch-json);
- ``str``, ``int`` (``int32``), ``float`` (32-bit ``float``: about 7 significant digits arrive), ``bool``,
  ``bytes``; dataclasses and pydantic models (fields numbered in declared order); ``list[X]`` of these;
  an ``Enum`` whose values are all ``str`` (its value travels; aspyx's side gets the ``str``);
  ``Optional[str]`` (None is an absent field).

Anything else aspyx-service declares as a ``string`` field it cannot fill (``Optional[int]``, ``datetime``,
``dict``, ``tuple``, unions, an int-valued enum) or cannot declare at all (a recursive dataclass: its message
builder recurses without end), so using such a type is refused with a ``MarshalException`` naming the
method, the parameter or field and the type, on the first call, before anything is sent (a server asked
for such a method answers 415 naming them, without running it); an int outside int32 is refused by
value. Codecs are built once per method: name the components before their first call.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import os
import re
import threading
import types
import typing
from typing import Any, Callable, Sequence

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

from warpcall.exceptions import (
    MalformedRequestException,
    MarshalException,
    ProtocolException,
    UnsupportedMediaTypeException,
)
from warpcall.wire.protobuf_schema import _bad, _identifier, strip_hint

try:
    from pydantic import BaseModel, RootModel
except ImportError:  # pragma: no cover - pydantic is a dependency
    BaseModel = RootModel = None  # type: ignore[assignment,misc]

__all__ = [
    "ENVIRONMENT_VARIABLE", "AspyxProtobufCodec", "RefusingCodec", "aspyx_codec_for", "aspyx_codec_of", "speaks_aspyx",
    "use_aspyx_protobuf",
]

#: components (comma-separated, ``*``: all) whose dispatch-protobuf is aspyx-service's
ENVIRONMENT_VARIABLE = "WARPCALL_ASPYX_PROTOBUF"

_F = descriptor_pb2.FieldDescriptorProto
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_components: set[str] = set()


def use_aspyx_protobuf(*components: str) -> None:
    """Speak aspyx-service 0.11's protobuf on dispatch-protobuf for these component names (``"*"``: every
    component), in this process, as client and as server; call it before their first protobuf call."""
    for name in components:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a component name or '*' is expected, got {name!r}")
    _components.update(components)


def speaks_aspyx(qualified: str) -> bool:
    """Whether the method ``component:service:method`` travels in aspyx-service's protobuf messages."""
    component = qualified.split(":", 1)[0]
    named = {name.strip() for name in os.environ.get(ENVIRONMENT_VARIABLE, "").split(",") if name.strip()}
    named |= _components
    return "*" in named or component in named


class _Refused(MarshalException):
    """A type aspyx-service's protobuf cannot carry (raised while the codec is built)."""


class _Field:
    """One protobuf field: its descriptor parts, and the conversions of its values both ways."""

    __slots__ = ("name", "ptype", "repeated", "message", "nullable", "describe", "dump", "load")

    def __init__(self, name: str, ptype: int, describe: str, dump: Callable[[Any], Any],
                 load: Callable[[Any], Any] | None = None, message: _Message | None = None) -> None:
        self.name = name
        self.ptype = ptype
        self.repeated = False
        self.message = message
        self.nullable = False
        self.describe = describe
        self.dump = dump
        self.load = load


class _Message:
    """A message: a dataclass, a pydantic model, a request or a response."""

    def __init__(self, name: str, describe: str) -> None:
        self.name = name
        self.describe = describe
        self.fields: list[_Field] = []
        self.attrs: list[str] = []
        self.cls: Callable[..., Message] = Message  # the generated class, once compiled
        self.build: Callable[[dict[str, Any]], Any] = dict

    def dump(self, values: Sequence[Any]) -> Message:
        """A message instance holding one value per field (None: absent where allowed)."""
        kwargs: dict[str, Any] = {}
        for field, value in zip(self.fields, values):
            if value is None:
                if field.nullable:
                    continue
                raise MarshalException(f"field {field.name!r} of {self.describe}: expected {field.describe}, got None")
            try:
                kwargs[field.name] = field.dump(value)
            except MarshalException as exc:
                raise MarshalException(f"field {field.name!r} of {self.describe}: {exc}") from None
        try:
            return self.cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise MarshalException(f"{self.describe}: {_reason(exc)}") from None

    def parse(self, body: bytes) -> Message:
        """A message of this type read from ``body`` (DecodeError when it is none)."""
        message = self.cls()
        message.ParseFromString(body)
        return message

    def load(self, message: Any) -> list[Any]:
        """The values of a message's fields (absent optional fields: None)."""
        values: list[Any] = []
        for field in self.fields:
            if field.repeated:
                items = getattr(message, field.name)
                values.append([field.load(item) for item in items] if field.load is not None else list(items))
                continue
            if not message.HasField(field.name):
                if not field.nullable:
                    raise MarshalException(f"field {field.name!r} of {self.describe} is missing")
                values.append(None)
                continue
            value = getattr(message, field.name)
            values.append(field.load(value) if field.load is not None else value)
        return values


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, ValueError) and text.startswith("Value out of range"):
        number = text.partition(":")[2].strip()
        return (f"the integer {number} is outside int32 (-2**31 .. 2**31-1), the range aspyx-service's protobuf "
                "carries ints in")
    if isinstance(exc, UnicodeEncodeError):
        return f"a string holding the lone surrogate {exc.object[exc.start]!a}, which is not Unicode text"
    return f"{type(exc).__name__}: {text}"


def _checked(kind: type, describe: str, accept: Callable[[Any], bool]) -> Callable[[Any], Any]:
    def dump(value: Any) -> Any:
        if type(value) is kind or accept(value):
            return value
        raise _bad(value, describe)

    return dump


def _text_only(value: Any) -> str:
    # proto2 (aspyx's syntax) does not check UTF-8: protobuf hands bytes over for a string that is none
    if type(value) is not str:
        raise MarshalException("a string field holds bytes that are not UTF-8 text")
    return value


def _dump_int(value: Any) -> int:
    if type(value) is int or (isinstance(value, int) and not isinstance(value, bool)):
        if not _INT32_MIN <= value <= _INT32_MAX:
            raise MarshalException(
                f"the integer {value} is outside int32 (-2**31 .. 2**31-1), the range aspyx-service's protobuf "
                "carries ints in"
            )
        return int(value)
    raise _bad(value, "int")


_SCALARS: dict[Any, tuple[int, Callable[[Any], Any]]] = {
    str: (_F.TYPE_STRING, _checked(str, "str", lambda v: isinstance(v, str))),
    int: (_F.TYPE_INT32, _dump_int),
    float: (_F.TYPE_FLOAT, _checked(
        float, "float", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool))),
    bool: (_F.TYPE_BOOL, _checked(bool, "bool", lambda v: isinstance(v, bool))),
    bytes: (_F.TYPE_BYTES, _checked(bytes, "bytes", lambda v: isinstance(v, bytes))),
}

_SUPPORTED = ("str, int (int32), float (32 bits), bool, bytes, dataclasses, pydantic models, lists of these, "
              "str-valued enums and Optional[str]")


def _type_name(tp: Any) -> str:
    return tp.__qualname__ if isinstance(tp, type) else repr(tp).replace("typing.", "")


class _Builder:
    """Derives the messages of one method the way aspyx-service 0.11's ProtobufBuilder declares them."""

    def __init__(self, qualified: str) -> None:
        self.qualified = qualified
        digest = hashlib.sha1(qualified.encode()).hexdigest()[:12]
        self.package = "warpcall_aspyx_" + re.sub(r"\W", "_", qualified, flags=re.ASCII) + "_" + digest
        self.messages: list[_Message] = []
        self.by_type: dict[Any, _Message] = {}
        self.building: set[Any] = set()

    def new_message(self, name: str, describe: str) -> _Message:
        taken = {m.name for m in self.messages}
        unique = name
        while unique in taken:
            unique += "_"
        message = _Message(unique, describe)
        self.messages.append(message)
        return message

    def field(self, name: str, tp: Any, where: str) -> _Field:
        """The field ``name`` carrying ``tp``; ``where`` names it in a refusal."""
        tp = self.strip(tp)
        origin = typing.get_origin(tp)
        if origin is typing.Union or origin is types.UnionType:
            args = typing.get_args(tp)
            others = [a for a in args if a is not type(None)]
            if len(others) == 1 and len(others) < len(args) and self.strip(others[0]) is str:
                field = self.field(name, str, where)
                field.nullable = True
                field.describe = "Optional[str]"
                return field
            raise self.refuse(where, tp, "it declares a union (Optional[X] included) as a string field "
                                         "that only a str fills")
        if tp in _SCALARS:
            ptype, dump = _SCALARS[tp]
            return _Field(name, ptype, tp.__name__, dump, load=_text_only if tp is str else None)
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return self.enum(name, tp, where)
        if origin is list:
            args = typing.get_args(tp)
            element = self.field(name, args[0] if args else str, f"{where} (an item)")
            if element.repeated or element.nullable:
                raise self.refuse(where, tp, "it has no lists of lists or of optional values")
            return self.repeated(element, tp)
        if self.is_structure(tp):
            return self.structure(name, tp, where)
        raise self.refuse(where, tp, "it declares it as a string field and cannot send its values")

    def refuse(self, where: str, tp: Any, why: str) -> _Refused:
        return _Refused(
            f"{self.qualified}: {where} is {_type_name(tp)}, which aspyx-service's protobuf cannot carry: {why}; "
            f"it carries {_SUPPORTED}"
        )

    strip = staticmethod(strip_hint)

    @staticmethod
    def is_structure(tp: Any) -> bool:
        if not isinstance(tp, type):
            return False
        if dataclasses.is_dataclass(tp):
            return True
        return BaseModel is not None and issubclass(tp, BaseModel) and tp is not BaseModel and not issubclass(
            tp, RootModel
        )

    def enum(self, name: str, tp: type[enum.Enum], where: str) -> _Field:
        if not all(isinstance(member.value, str) for member in tp):
            raise self.refuse(where, tp, "it declares an enum as a string field, and only str values fit it")

        def dump(value: Any) -> str:
            if isinstance(value, tp):
                return str(value.value)
            raise _bad(value, tp.__name__)

        return _Field(name, _F.TYPE_STRING, tp.__name__, dump, load=tp)

    def repeated(self, element: _Field, tp: Any) -> _Field:
        describe = f"list[{element.describe}]"
        dump_item = element.dump

        def dump(value: Any) -> list[Any]:
            if not isinstance(value, (list, tuple)):
                raise _bad(value, describe)
            items = []
            for index, item in enumerate(value):
                if item is None:
                    raise MarshalException(f"item {index}: expected {element.describe}, got None")
                try:
                    items.append(dump_item(item))
                except MarshalException as exc:
                    raise MarshalException(f"item {index}: {exc}") from None
            return items

        field = _Field(element.name, element.ptype, describe, dump, load=element.load, message=element.message)
        field.repeated = True
        return field

    def structure(self, name: str, tp: type, where: str) -> _Field:
        if tp in self.building:
            raise self.refuse(where, tp, "its message builder recurses without end on a type that contains itself")
        message = self.by_type.get(tp)
        if message is None:
            message = self.new_message(_identifier(tp.__name__), tp.__name__)
            self.building.add(tp)
            try:
                self.structure_fields(message, tp)
            finally:
                self.building.discard(tp)
            self.by_type[tp] = message

        def dump(value: Any) -> Message:
            if not isinstance(value, tp):
                raise _bad(value, message.describe)
            return message.dump([getattr(value, attr) for attr in message.attrs])

        def load(sub: Any) -> Any:
            return message.build(dict(zip(message.attrs, message.load(sub))))

        return _Field(name, _F.TYPE_MESSAGE, message.describe, dump, load=load, message=message)

    def structure_fields(self, message: _Message, tp: type) -> None:
        if dataclasses.is_dataclass(tp):
            try:
                hints = typing.get_type_hints(tp)
            except Exception as exc:  # NameError and friends from string annotations
                raise MarshalException(f"{self.qualified}: cannot resolve the type hints of {tp.__name__}: {exc}") from None
            items = [(f.name, hints[f.name]) for f in dataclasses.fields(tp)]
            late = {f.name for f in dataclasses.fields(tp) if not f.init}

            def build(values: dict[str, Any]) -> Any:
                obj = tp(**{k: v for k, v in values.items() if k not in late})
                for attr in late:
                    object.__setattr__(obj, attr, values[attr])
                return obj

            message.build = build
        else:
            model: Any = tp
            items = [(attr, info.annotation) for attr, info in model.model_fields.items()]
            validate = model.__pydantic_validator__.validate_python
            message.build = lambda values: validate(values)
        for attr, annotation in items:
            field = self.field(_identifier(attr), annotation, f"field {attr!r} of {tp.__name__}")
            message.fields.append(field)
            message.attrs.append(attr)

    def compile(self) -> None:
        proto = descriptor_pb2.FileDescriptorProto(
            name=self.package + ".proto", package=self.package, syntax="proto2"  # as aspyx declares them
        )
        for message in self.messages:
            described = proto.message_type.add(name=message.name)
            for number, field in enumerate(message.fields, start=1):
                label = _F.LABEL_REPEATED if field.repeated else _F.LABEL_OPTIONAL
                fd = described.field.add(name=field.name, number=number, label=label, type=field.ptype)
                if field.message is not None:
                    fd.type_name = f".{self.package}.{field.message.name}"
        pool = descriptor_pool.DescriptorPool()
        pool.Add(proto)
        for message in self.messages:
            message.cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{self.package}.{message.name}"))


_DECODE_ERRORS = (DecodeError, TypeError, ValueError, AttributeError, KeyError, RecursionError, MarshalException)


class AspyxProtobufCodec:
    """Request and response messages of one method as aspyx-service 0.11 derives them (see the module)."""

    def __init__(self, qualified: str, param_names: Sequence[str], param_types: Sequence[Any],
                 return_type: Any) -> None:
        if len(param_names) != len(param_types):
            raise ValueError(f"{qualified}: {len(param_names)} parameter names but {len(param_types)} types")
        self.qualified = qualified
        self._params = list(param_names)
        builder = _Builder(qualified)
        request = builder.new_message("Request", f"request of {qualified}")
        response = builder.new_message("Response", f"response of {qualified}")
        for name, tp in zip(param_names, param_types):
            request.fields.append(builder.field(_identifier(name), tp, f"parameter {name!r}"))
        self._returns = return_type is not None and return_type is not type(None)
        if self._returns:
            result = builder.field("result", return_type, "the result")
        else:  # aspyx declares `-> None` as a string field, never filled
            result = builder.field("result", str, "the result")
        result.nullable = True
        exception = builder.field("exception", str, "the exception")
        exception.nullable = True
        response.fields += [result, exception]
        builder.compile()
        self._request = request
        self._response = response
        self._result = result
        self.request_type: Any = request.cls
        self.response_type: Any = response.cls

    def encode_request(self, args: Sequence[Any]) -> bytes:
        """The request message of the call's arguments (one per parameter, in order)."""
        request = self._request
        if len(args) != len(request.fields):
            raise MarshalException(
                f"{self.qualified} takes {len(request.fields)} argument(s) {self._params}, got {len(args)}"
            )
        kwargs: dict[str, Any] = {}
        for param, field, value in zip(self._params, request.fields, args):
            if value is None:
                if field.nullable:
                    continue
                raise MarshalException(f"{self.qualified}: parameter {param!r}: expected {field.describe}, got None")
            try:
                kwargs[field.name] = field.dump(value)
                request.cls(**{field.name: kwargs[field.name]})  # protobuf's own checks, by parameter
            except MarshalException as exc:
                raise MarshalException(f"{self.qualified}: parameter {param!r}: {exc}") from None
            except (TypeError, ValueError) as exc:
                raise MarshalException(f"{self.qualified}: parameter {param!r}: {_reason(exc)}") from None
        return request.cls(**kwargs).SerializeToString()

    def decode_request(self, body: bytes) -> list[Any]:
        """The argument values of a request message."""
        try:
            return self._request.load(self._request.parse(body))
        except _DECODE_ERRORS as exc:
            raise MalformedRequestException(
                f"body is not a valid aspyx-service protobuf request for {self.qualified}: {_text(exc)}"
            ) from None

    def encode_response(self, result: Any, exception: dict[str, str] | None = None) -> bytes:
        """The response message of a result, or of an exception ``{"type": ..., "message": ...}`` (as text)."""
        if exception is not None:
            kind, message = str(exception.get("type") or ""), str(exception.get("message") or "")
            text = f"{kind}: {message}" if kind else message
            return self._response.cls(exception=text.encode("utf-8", "backslashreplace").decode()).SerializeToString()
        if result is None:
            return self._response.cls().SerializeToString()
        if not self._returns:
            raise MarshalException(f"{self.qualified}: result: declared to return None, got {type(result).__name__}")
        try:
            return self._response.cls(result=self._result.dump(result)).SerializeToString()
        except MarshalException as exc:
            raise MarshalException(f"{self.qualified}: result: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise MarshalException(f"{self.qualified}: result: {_reason(exc)}") from None

    def decode_response(self, body: bytes) -> tuple[Any, dict[str, str] | None]:
        """``(result, exception)`` of a response message; the exception of aspyx's text has no type name."""
        try:
            result, exception = self._response.load(self._response.parse(body))
        except _DECODE_ERRORS as exc:
            raise ProtocolException(
                f"body is not a valid aspyx-service protobuf response of {self.qualified}: {_text(exc)}"
            ) from None
        if exception is not None:
            return None, {"type": "", "message": exception}
        return (result if self._returns else None), None


def _text(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, MarshalException) else _reason(exc)


class RefusingCodec:
    """The codec of a method whose types aspyx-service's protobuf cannot carry: every use says why.

    The caller gets the ``MarshalException`` before anything is sent; a server asked for the method
    answers 415 (``UnsupportedMediaTypeException``) naming the method and the type, never running it.
    """

    def __init__(self, refusal: MarshalException) -> None:
        self.refusal = refusal

    def encode_request(self, args: Sequence[Any]) -> bytes:
        raise MarshalException(str(self.refusal))

    def decode_request(self, body: bytes) -> list[Any]:
        raise UnsupportedMediaTypeException(f"{self.refusal}. Call it over dispatch-json or dispatch-msgpack")

    def encode_response(self, result: Any, exception: dict[str, str] | None = None) -> bytes:
        raise MarshalException(str(self.refusal))

    def decode_response(self, body: bytes) -> tuple[Any, dict[str, str] | None]:
        raise ProtocolException(str(self.refusal))


_codecs: dict[str, AspyxProtobufCodec | RefusingCodec] = {}
_codecs_lock = threading.Lock()


def aspyx_codec_for(qualified: str, param_names: Sequence[str], param_types: Sequence[Any],
                    return_type: Any) -> AspyxProtobufCodec | RefusingCodec:
    """The aspyx-service protobuf codec of ``component:service:method``, built once and cached (thread-safe);
    a :class:`RefusingCodec` when its types cannot travel that way."""
    codec = _codecs.get(qualified)
    if codec is None:
        with _codecs_lock:
            codec = _codecs.get(qualified)
            if codec is None:
                try:
                    codec = AspyxProtobufCodec(qualified, param_names, param_types, return_type)
                except MarshalException as exc:  # _Refused, or type hints that do not resolve
                    codec = RefusingCodec(exc)
                _codecs[qualified] = codec
    return codec


def aspyx_codec_of(method: Any) -> Any:
    """The aspyx-service protobuf codec of a method descriptor when its component speaks it (kept in its plans,
    where ``warpcall.wire.codec_of`` finds it), else None. Duck-typed as ``ProtobufMethodCodec``."""
    if not speaks_aspyx(method.qualified):
        return None
    codec = method.plans["dispatch-protobuf"] = aspyx_codec_for(
        method.qualified, method.param_names, method.param_types, method.return_type
    )
    return codec
