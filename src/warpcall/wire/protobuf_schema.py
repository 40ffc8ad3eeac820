"""Type analysis and message building for the protobuf codec: Python types -> protobuf fields.

``_FileBuilder`` analyses the parameter and return types of one method once, generates
one message type per dataclass, pydantic model or wrapper (recursive types allowed) in a
descriptor pool of its own, and gives each ``_Field`` the converters the per-call path
runs; the mapping of types to fields is described in ``warpcall.wire.protobuf_codec``.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import inspect
import operator
import re
import types
import typing
from collections import abc
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from types import ModuleType
from typing import Any, Callable, Protocol, Sequence, TypeAlias
from uuid import UUID

import msgpack
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from warpcall.core.envelope import msgpack_default, msgpack_ext_hook
from warpcall.core.marshal_plan import iso_parser
from warpcall.exceptions import MarshalException
from warpcall.wire.numbers import field_number

try:
    from pydantic import BaseModel, RootModel
except ImportError:  # pragma: no cover - pydantic is a dependency, but the codec does not need it
    BaseModel = RootModel = None  # type: ignore[assignment,misc]
# pydantic >= 2.11 can validate by field name whatever the aliases are
_BY_NAME = BaseModel is not None and "by_name" in inspect.signature(BaseModel.model_validate).parameters

_F = descriptor_pb2.FieldDescriptorProto
_Kind: TypeAlias = "descriptor_pb2.FieldDescriptorProto.Type.ValueType"  # TYPE_*, an int
_Label: TypeAlias = "descriptor_pb2.FieldDescriptorProto.Label.ValueType"  # LABEL_*, an int
_SINT64_MIN, _SINT64_MAX = -(2**63), 2**63 - 1

Dump = Callable[[Any], Any]
Load = Callable[[Any], Any]


def _message_class(descriptor: Descriptor) -> type[Message]:
    # GetMessageClass exists from protobuf 4.21 on (the dependency asks for 4.25)
    return message_factory.GetMessageClass(descriptor)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__qualname__", None) or getattr(tp, "__name__", None) or repr(tp)


def _bad(value: Any, expected: str) -> MarshalException:
    return MarshalException(f"expected {expected}, got {type(value).__name__}")


def _identifier(text: str) -> str:
    name = re.sub(r"\W", "_", text, flags=re.ASCII) or "_"
    return "_" + name if name[0].isdigit() else name


def strip_hint(tp: Any) -> Any:
    """``tp`` without its ``Annotated`` and ``NewType`` wrappers; ``Any`` for an unannotated parameter or return
    value (both protobuf wires, warpcall's and aspyx-service's, read hints this way)."""
    while True:
        if tp is inspect.Parameter.empty:  # an unannotated parameter or return value
            return Any
        if typing.get_origin(tp) is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif hasattr(tp, "__supertype__"):  # typing.NewType
            tp = tp.__supertype__
        else:
            return tp


def _tuple_getter(names: Sequence[Any], getter: Callable[..., Any]) -> Callable[[Any], tuple[Any, ...]]:
    """``attrgetter``/``itemgetter`` that always returns a tuple, whatever the number of names."""
    if len(names) > 1:
        many: Callable[[Any], tuple[Any, ...]] = getter(*names)  # with two names or more, a tuple
        return many
    if len(names) == 1:
        one = getter(names[0])
        return lambda obj: (one(obj),)
    return lambda obj: ()


class _Wire(Protocol):
    """A message's layout on the wire fast path (``pbwire.MessageWire``): values to a body and back, or
    None where protobuf must do it."""

    def define(self, fields: Sequence[tuple[Any, ...]], build: Callable[[Sequence[Any]], Any] | None = None,
               cls: type | None = object, read: Callable[[Any], tuple[Any, ...]] | None = None,
               reject: Sequence[int] = (), strict: bool = False) -> None: ...

    def encode(self, values: Sequence[Any]) -> bytes | None: ...

    def decode(self, body: bytes) -> list[Any] | None: ...


def _no_match(value: Any) -> bool:
    """The check of a field that accepts only its exact type."""
    return False


class _Field:
    """How one Python type sits in one protobuf field: descriptor parts plus dump and load.

    ``dump`` checks and converts a non-None value into what a message constructor accepts; when
    ``passthrough`` is set it is the identity after ``check``, so containers may skip the call
    when the value's type is exactly ``exact``. ``load`` turns the field's value back (None: as is).
    """

    __slots__ = ("label", "ptype", "message", "map_key", "map_value", "optional", "presence", "nullable",
                 "exact", "check", "dump", "load", "passthrough", "describe", "direct", "number", "default")

    def __init__(
        self, ptype: _Kind, describe: str, *, exact: type | None = None,
        check: Callable[[Any], bool] | None = None,
        dump: Dump | None = None, load: Load | None = None, label: _Label = _F.LABEL_OPTIONAL,
        message: _Message | None = None,
    ) -> None:
        self.label = label
        self.ptype = ptype
        self.message = message
        self.map_key: _Kind = _F.TYPE_STRING  # set for maps only
        self.map_value: _Field | None = None
        self.optional = False  # proto3 `optional` keyword on a scalar
        self.presence = message is not None  # absence decodes to None
        self.nullable = False  # None is accepted on encode
        self.exact = exact
        self.check: Callable[[Any], bool] = check if check is not None else _no_match
        self.passthrough = dump is None
        self.dump: Dump = dump if dump is not None else self._checked
        self.load = load
        self.describe = describe
        # a plain scalar or message: may be a repeated element or a map value without a wrapper
        self.direct = label == _F.LABEL_OPTIONAL
        self.number = 0  # an explicit field number (FieldNumber), 0 for the one after the previous field's
        # what an absent field reads as, for a field or parameter declared with a default: a zero-argument
        # callable (a dataclass default_factory, or one returning the default), None for no default
        self.default: Callable[[], Any] | None = None

    def _checked(self, value: Any) -> Any:
        if type(value) is self.exact or self.check(value):
            return value
        raise _bad(value, self.describe)


class _Message:
    """A message type generated for a dataclass, pydantic model, request, response or wrapper."""

    def __init__(self, name: str, describe: str) -> None:
        self.name = name
        self.describe = describe
        self.cls: type[Message] = Message  # the generated class, once the file is compiled
        self.fields: list[tuple[str, _Field]] = []  # (protobuf field name, field)
        self.build: Callable[[Sequence[Any]], Any] = list
        self.getter: Callable[[Any], tuple[Any, ...]] = tuple
        self.read_attrs: Callable[[Any], tuple[Any, ...]] = tuple
        self.attrs: list[str] = []  # the Python attribute behind each field, for dataclasses and models
        self.load: Callable[[Any], Any] = self.build
        self.sealed = False
        self.instance_of: type | None = None  # the dataclass or model behind the message, if any
        self._wires: dict[str, _Wire] = {}  # pbwire module name -> this message's layout as a nested field

    def seal(self) -> None:
        """Precompute what the per-call path needs, once all fields are known."""
        names = tuple(name for name, _ in self.fields)
        self.names = names
        self.exact = tuple(field.exact for _, field in self.fields)
        fields = list(enumerate(self.fields))
        self.converted = [(i, name, field.dump) for i, (name, field) in fields if not field.passthrough]
        self.presence = [(i, name, field.nullable, field.default) for i, (name, field) in fields if field.presence]
        self.loaders = [(i, field.load) for i, (_, field) in enumerate(self.fields) if field.load is not None]
        self.numbers = _numbers(self.fields, self.describe)
        #: numbered 1, 2, 3, ... as aspyx-service numbers them: the only layout the wire fast path knows
        self.positional = self.numbers == list(range(1, len(self.fields) + 1))
        self.getter = _tuple_getter(names, operator.attrgetter)
        self.plain = not self.converted and list(names) == self.attrs
        getter, build = self.getter, self.build
        if self.presence or self.loaders:
            self.load = lambda message: build(self.load_values(message))
        else:  # every field reads as is: skip the per-field loops
            self.load = lambda message: build(getter(message))
        self.sealed = True

    # -- encode
    def dump_values(self, values: Sequence[Any]) -> dict[str, Any]:
        """Check and convert one value per field into constructor keywords; raises MarshalException."""
        if tuple(map(type, values)) != self.exact:
            self.validate(values)
        out = dict(zip(self.names, values))
        name = ""
        try:
            for i, name, dump in self.converted:
                value = values[i]
                if value is not None:
                    out[name] = dump(value)
        except MarshalException as exc:
            raise MarshalException(f"field {name!r} of {self.describe}: {exc}") from None
        return out

    def validate(self, values: Sequence[Any]) -> None:
        for (name, field), value in zip(self.fields, values):
            if value is None:
                if not field.nullable:
                    raise MarshalException(
                        f"field {name!r} of {self.describe}: expected {field.describe}, got None"
                    )
            elif field.passthrough and not (type(value) is field.exact or field.check(value)):
                raise MarshalException(f"field {name!r} of {self.describe}: {_bad(value, field.describe)}")

    def dump_prefix(self, values: Sequence[Any]) -> dict[str, Any]:
        """:meth:`dump_values` for the first ``len(values)`` fields, the others left absent (a request whose
        last arguments were left at their defaults: the receiver applies its own)."""
        out: dict[str, Any] = {}
        for (name, field), value in zip(self.fields, values):
            try:
                if value is None:
                    if not field.nullable:
                        raise MarshalException(f"expected {field.describe}, got None")
                elif field.passthrough:
                    if not (type(value) is field.exact or field.check(value)):
                        raise _bad(value, field.describe)
                    out[name] = value
                else:
                    out[name] = field.dump(value)
            except MarshalException as exc:
                raise MarshalException(f"field {name!r} of {self.describe}: {exc}") from None
        return out

    # -- decode
    def load_values(self, message: Any) -> list[Any]:
        values = list(self.getter(message))
        defaulted: set[int] | None = None
        for i, name, nullable, default in self.presence:
            if not message.HasField(name):
                if nullable:
                    values[i] = None
                elif default is not None:
                    # the writer's version has no such field (or parameter): the declared default, as on JSON
                    values[i] = default()
                    defaulted = {i} if defaulted is None else defaulted | {i}
                else:
                    raise MarshalException(f"field {name!r} of {self.describe} is missing")
        for i, load in self.loaders:
            value = values[i]
            if value is not None and (defaulted is None or i not in defaulted):
                try:
                    values[i] = load(value)
                except MarshalException as exc:
                    raise MarshalException(f"{self.field_label(i)}: {exc}") from None
        return values

    def field_label(self, index: int) -> str:
        """How an error names field ``index``."""
        return f"field {self.fields[index][0]!r} of {self.describe}"

    # -- the wire fast path
    def wire(self, pbwire: ModuleType, reject: Sequence[int] = (), strict: bool = False) -> _Wire | None:
        """This message's ``pbwire.MessageWire`` (the codec's fast path), or None when a field needs protobuf.

        ``reject`` leaves the message's last ``len(reject)`` fields out of the layout and makes their
        numbers in a body fall back to protobuf (the response's ``exception``). ``strict``: a field number
        beyond the layout falls back to protobuf too (a request, whose unknown fields are refused there).
        """
        fields = self.fields[:len(self.fields) - len(reject)]
        if not self.positional or not all(_wire_ready(field, set()) for _, field in fields):
            return None
        wire: _Wire = pbwire.MessageWire()
        if strict:
            wire.define([_wire_field(field, pbwire) for _, field in fields], reject=reject, strict=True)
        else:
            wire.define([_wire_field(field, pbwire) for _, field in fields], reject=reject)
        return wire

    def nested_wire(self, pbwire: ModuleType) -> _Wire:
        """The layout of this message as a field of another (built once; recursive types share it)."""
        wire = self._wires.get(pbwire.__name__)
        if wire is None:
            wire = self._wires[pbwire.__name__] = pbwire.MessageWire()
            wire.define([_wire_field(field, pbwire) for _, field in self.fields], build=self.build,
                        cls=self.instance_of, read=self.read_attrs)
        return wire

    def emit(self, package: str) -> descriptor_pb2.DescriptorProto:
        proto = descriptor_pb2.DescriptorProto(name=self.name)
        for number, (name, field) in zip(self.numbers, self.fields):
            fd = proto.field.add(name=name, number=number, label=field.label, type=field.ptype)
            fd.json_name = name
            if field.map_value is not None:
                # protobuf names a map's entry type after the field, in CamelCase
                entry_name = "".join(part[:1].upper() + part[1:] for part in name.split("_")) + "Entry"
                entry = proto.nested_type.add(name=entry_name)
                entry.options.map_entry = True
                entry.field.add(name="key", number=1, label=_F.LABEL_OPTIONAL, type=field.map_key)
                value = entry.field.add(name="value", number=2, label=_F.LABEL_OPTIONAL)
                _describe_type(value, field.map_value, package)
                fd.type_name = f".{package}.{self.name}.{entry.name}"
            elif field.message is not None:
                fd.type_name = f".{package}.{field.message.name}"
            if field.optional:
                fd.proto3_optional = True
                fd.oneof_index = len(proto.oneof_decl)
                proto.oneof_decl.add(name="_" + name)
        return proto


def _numbers(fields: Sequence[tuple[str, _Field]], describe: str) -> list[int]:
    """The field numbers of a message: each field's ``FieldNumber``, else the previous field's number plus one."""
    numbers: list[int] = []
    taken: dict[int, str] = {}
    number = 0
    for name, field in fields:
        number = field.number or number + 1
        if number in taken:
            raise MarshalException(
                f"{describe}: fields {taken[number]!r} and {name!r} both have the protobuf field number {number}; "
                "give one of them another with Annotated[..., FieldNumber(n)]"
            )
        taken[number] = name
        numbers.append(number)
    return numbers


def defaulted(field: _Field, hint: Any, default: Callable[[], Any] | None, metadata: Sequence[Any] = ()) -> _Field:
    """``field`` with the number ``hint`` (or pydantic's ``metadata``) declares and what an absent field reads as.

    A scalar declared with a default gets explicit presence (written even when it is zero), so that a
    reader tells a zero from a field the writer's version does not have, which reads as the default.
    Lists and maps have no presence in protobuf: absent, they read as empty.
    """
    field.number = field_number(hint, metadata)
    if default is not None:
        field.default = default
        if field.label == _F.LABEL_OPTIONAL and field.message is None and not field.presence:
            field.optional = True
            field.presence = True
    return field


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def dataclass_default(f: dataclasses.Field[Any]) -> Callable[[], Any] | None:
    """What an absent dataclass field reads as: its default or default_factory, None when it has neither."""
    if f.default is not dataclasses.MISSING:
        return _constant(f.default)
    if f.default_factory is not dataclasses.MISSING:
        factory: Callable[[], Any] = f.default_factory
        return factory
    return None


_WIRE_KINDS: dict[_Kind, str] = {
    _F.TYPE_SINT64: "SINT64", _F.TYPE_DOUBLE: "DOUBLE", _F.TYPE_BOOL: "BOOL",
    _F.TYPE_STRING: "STRING", _F.TYPE_BYTES: "BYTES", _F.TYPE_MESSAGE: "MESSAGE",
}


def _wire_ready(field: _Field, seen: set[int]) -> bool:
    """Whether the wire fast path can carry ``field``: no repeated fields or maps, down every nested message."""
    if field.label != _F.LABEL_OPTIONAL or field.ptype not in _WIRE_KINDS:
        return False
    message = field.message
    if message is None or id(message) in seen:  # a scalar, or a message already being checked (recursion)
        return True
    if message.instance_of is None:  # only dataclasses and models have a class to check and build
        return False
    if not message.positional:  # explicit field numbers: the fast path knows only 1, 2, 3, ...
        return False
    seen.add(id(message))
    return all(_wire_ready(inner, seen) for _, inner in message.fields)


def _wire_field(field: _Field, pbwire: ModuleType) -> tuple[Any, bool, bool, Any, Any, Any]:
    """A field of ``pbwire.MessageWire.define``."""
    kind = getattr(pbwire, _WIRE_KINDS[field.ptype])
    if field.message is not None:
        return kind, True, field.nullable, None, None, field.message.nested_wire(pbwire)
    return kind, field.presence, field.nullable, None if field.passthrough else field.dump, field.load, None


def _describe_type(fd: descriptor_pb2.FieldDescriptorProto, field: _Field, package: str) -> None:
    fd.type = field.ptype
    if field.message is not None:
        fd.type_name = f".{package}.{field.message.name}"


def _scalar(ptype: _Kind, tp: type, check: Callable[[Any], bool], describe: str) -> _Field:
    return _Field(ptype, describe, exact=tp, check=check)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and _SINT64_MIN <= v <= _SINT64_MAX


_SCALARS: dict[Any, Callable[[], _Field]] = {
    int: lambda: _scalar(_F.TYPE_SINT64, int, _is_int, "int"),
    float: lambda: _scalar(
        _F.TYPE_DOUBLE, float, lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "float"
    ),
    bool: lambda: _scalar(_F.TYPE_BOOL, bool, lambda v: isinstance(v, bool), "bool"),
    str: lambda: _scalar(_F.TYPE_STRING, str, lambda v: isinstance(v, str), "str"),
    bytes: lambda: _scalar(_F.TYPE_BYTES, bytes, lambda v: isinstance(v, bytes), "bytes"),
}


def _text_field(tp: type, to_text: Callable[[Any], str], from_text: Load, reject: Any = ()) -> _Field:
    name = tp.__name__

    def dump(value: Any) -> str:
        if type(value) is tp or (isinstance(value, tp) and not isinstance(value, reject)):
            return to_text(value)
        raise _bad(value, name)

    return _Field(_F.TYPE_STRING, name, exact=tp, dump=dump, load=from_text)


def _decimal_from_text(text: str) -> Decimal:
    """A Decimal from its text; text that is not a number raises ValueError, as the other text types do
    (Decimal itself raises decimal.InvalidOperation, an ArithmeticError, which no decoder expects)."""
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text[:40]!r} is not a decimal number") from None


_TEXT: dict[Any, Callable[[], _Field]] = {
    datetime: lambda: _text_field(datetime, datetime.isoformat, iso_parser(datetime)),
    date: lambda: _text_field(date, date.isoformat, date.fromisoformat, reject=datetime),
    time: lambda: _text_field(time, time.isoformat, iso_parser(time)),
    UUID: lambda: _text_field(UUID, str, UUID),
    Decimal: lambda: _text_field(Decimal, str, _decimal_from_text),
}


_SEQUENCES = {
    list: list, abc.Sequence: list, abc.MutableSequence: list, abc.Collection: list, abc.Iterable: list,
    tuple: tuple, set: set, abc.Set: set, abc.MutableSet: set, frozenset: frozenset,
}
_MAPPINGS = {dict, abc.Mapping, abc.MutableMapping}
_MAP_KEYS = {str: _F.TYPE_STRING, int: _F.TYPE_SINT64, bool: _F.TYPE_BOOL}


def _model_default(info: Any) -> Callable[[], Any]:
    """What an absent pydantic field reads as: its default, or its default_factory's value."""
    return lambda: info.get_default(call_default_factory=True)


def _substitute(hint: Any, bindings: dict[Any, Any]) -> Any:
    if isinstance(hint, typing.TypeVar):
        return bindings.get(hint, Any)
    params = getattr(hint, "__parameters__", ())
    if params and typing.get_origin(hint) is not None:
        return hint[tuple(bindings.get(p, Any) for p in params)]
    return hint


class _FileBuilder:
    """Builds the message types of one method and their converters, sharing one message per type."""

    def __init__(self, qualified: str) -> None:
        parts = [_identifier(p) for p in qualified.split(":")]
        package = "warpcall.m." + ".".join(parts)
        if ":".join(parts) != qualified:  # sanitizing changed the name: keep it unique anyway
            package += "_" + hashlib.sha1(qualified.encode()).hexdigest()[:8]
        self.package = package
        self.qualified = qualified
        self.messages: list[_Message] = []
        self.by_type: dict[Any, _Message] = {}
        self.used: set[str] = set()

    def new_message(self, name: str, describe: str) -> _Message:
        base, n = _identifier(name), 1
        unique = base
        while unique in self.used:
            n += 1
            unique = f"{base}_{n}"
        self.used.add(unique)
        message = _Message(unique, describe)
        self.messages.append(message)
        return message

    # -- type analysis
    def field(self, tp: Any) -> _Field:
        """The field for a value of type ``tp``; ``Optional`` gives a nullable field with presence."""
        tp = self.strip(tp)
        try:
            hash(tp)
        except TypeError:  # e.g. a Literal of unhashable values: only the marshaller can handle it
            return self.fallback(tp)
        origin = typing.get_origin(tp)
        if origin is typing.Union or origin is types.UnionType:
            args = typing.get_args(tp)
            others = [a for a in args if a is not type(None)]
            if len(others) == 1 and len(others) < len(args):
                return self.optional(self.field(others[0]))
            return self.fallback(tp)
        if tp in _SCALARS:
            return _SCALARS[tp]()
        if tp in _TEXT:
            return _TEXT[tp]()
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return self.enum(tp)
        if origin in _SEQUENCES:
            return self.repeated(tp, _SEQUENCES[origin])
        if origin in _MAPPINGS:
            return self.map(tp)
        structured = self.structure(tp)
        if structured is not None:
            return structured
        return self.fallback(tp)

    strip = staticmethod(strip_hint)

    def optional(self, inner: _Field) -> _Field:
        if inner.nullable:
            return inner
        if inner.label == _F.LABEL_REPEATED:  # lists and maps have no presence: wrap them
            inner = self.wrap(inner, inner.describe)
        elif inner.message is None:
            inner.optional = True
        inner.presence = True
        inner.nullable = True
        inner.describe = f"Optional[{inner.describe}]"
        return inner

    def wrap(self, inner: _Field, describe: str) -> _Field:
        """A message holding ``inner`` as its only field ``value``, so it can nest or have presence."""
        message = self.new_message("Wrapper", describe)
        message.fields.append(("value", inner))
        message.seal()
        holder = _Field(_F.TYPE_MESSAGE, describe, message=message)
        holder.passthrough = False
        holder.dump = lambda value: message.dump_values((value,))
        holder.load = lambda msg: message.load_values(msg)[0]
        return holder

    def enum(self, tp: type[enum.Enum]) -> _Field:
        kinds = {type(member.value) for member in tp}
        scalar = next(iter(kinds)) if len(kinds) == 1 else None
        if scalar not in _SCALARS:
            return self.fallback(tp)
        field = _SCALARS[scalar]()
        by_value = {member.value: member for member in tp}

        def dump(value: Any) -> Any:
            if isinstance(value, tp):
                return value.value
            raise _bad(value, tp.__name__)

        choices = ", ".join(repr(value)[:60] for value in by_value)

        def load(value: Any) -> Any:
            member = by_value.get(value)
            if member is not None:
                return member
            try:  # Flag combinations and _missing_ hooks
                return tp(value)
            except ValueError:
                # a value this version of the enum does not have (a newer peer's): refused by name, as on JSON
                raise MarshalException(
                    f"{tp.__name__}: expected a {tp.__name__} value ({choices}), got {repr(value)[:60]}"
                ) from None

        return _Field(field.ptype, tp.__name__, exact=tp, dump=dump, load=load)

    def repeated(self, tp: Any, container: type) -> _Field:
        args = typing.get_args(tp)
        if container is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return self.fallback(tp)  # a fixed-shape tuple has no repeated equivalent
        if len(args) != (2 if container is tuple else 1):
            return self.fallback(tp)
        element = self.field(args[0])
        if not element.direct or element.nullable:
            return self.fallback(tp)
        describe = f"{getattr(typing.get_origin(tp), '__name__', 'list')}[{element.describe}]"
        exact_ok = {element.exact}
        if element.exact is float:
            exact_ok.add(int)

        check_element = element.dump
        if element.passthrough:
            def dump(value: Any) -> list[Any]:
                if isinstance(value, (str, bytes, abc.Mapping)) or not isinstance(value, abc.Iterable):
                    raise _bad(value, describe)
                items = value if type(value) is list else list(value)
                if not set(map(type, items)) <= exact_ok:
                    for index, item in enumerate(items):
                        self.element_check(check_element, item, index)
                return items
        else:
            def dump(value: Any) -> list[Any]:
                if isinstance(value, (str, bytes, abc.Mapping)) or not isinstance(value, abc.Iterable):
                    raise _bad(value, describe)
                element_dump = element.dump
                try:
                    return [element_dump(item) for item in value]
                except (MarshalException, AttributeError, TypeError):
                    for index, item in enumerate(value):
                        self.element_check(check_element, item, index)
                    raise

        element_load = element.load
        if element_load is None:
            load: Load = container
        elif container is list:
            load = lambda values: [element_load(v) for v in values]  # noqa: E731
        else:
            load = lambda values: container(element_load(v) for v in values)  # noqa: E731
        field = _Field(element.ptype, describe, exact=container, dump=dump, load=load, label=_F.LABEL_REPEATED,
                       message=element.message)
        field.presence = False
        return field

    @staticmethod
    def element_check(dump: Dump, item: Any, index: Any) -> None:
        if item is None:
            raise MarshalException(f"item {index!r}: expected a value, got None")
        try:
            dump(item)
        except MarshalException as exc:
            raise MarshalException(f"item {index!r}: {exc}") from None

    def map(self, tp: Any) -> _Field:
        args = typing.get_args(tp)
        if len(args) != 2:
            return self.fallback(tp)
        key_tp = self.strip(args[0])
        if key_tp not in _MAP_KEYS:
            return self.fallback(tp)
        key = _SCALARS[key_tp]()
        value = self.field(args[1])
        none_ok = value.nullable
        if not value.direct or value.nullable:
            value = self.wrap(value, value.describe)
        describe = f"dict[{key.describe}, {value.describe}]"
        value_message = value.message
        value_dump, value_load, value_passthrough = value.dump, value.load, value.passthrough

        def dump(mapping: Any) -> dict[Any, Any]:
            if not isinstance(mapping, abc.Mapping):
                raise _bad(mapping, describe)
            out: dict[Any, Any] = {}
            for item_key, item in mapping.items():
                if type(item_key) is not key.exact and not key.check(item_key):
                    raise MarshalException(f"key {item_key!r}: {_bad(item_key, key.describe)}")
                if item is None and not none_ok:
                    raise MarshalException(f"value of {item_key!r}: expected {value.describe}, got None")
                if value_passthrough and type(item) is value.exact:
                    out[item_key] = item
                    continue
                try:
                    converted = value_dump(item)
                except MarshalException as exc:
                    raise MarshalException(f"value of {item_key!r}: {exc}") from None
                # map values that are messages must be message instances, not keyword dicts
                out[item_key] = value_message.cls(**converted) if value_message is not None else converted
            return out

        if value_load is None:
            load: Load = dict
        else:
            load = lambda entries: {k: value_load(v) for k, v in entries.items()}  # noqa: E731
        field = _Field(_F.TYPE_MESSAGE, describe, exact=dict, dump=dump, load=load, label=_F.LABEL_REPEATED)
        field.map_key = _MAP_KEYS[key_tp]
        field.map_value = value
        field.presence = False
        return field

    def structure(self, tp: Any) -> _Field | None:
        """A message field for a dataclass or pydantic model (generic dataclasses included)."""
        origin = typing.get_origin(tp) or tp
        if not isinstance(origin, type):
            return None
        is_dataclass = dataclasses.is_dataclass(origin)
        is_model = (BaseModel is not None and issubclass(origin, BaseModel) and origin is not BaseModel
                    and not issubclass(origin, RootModel))  # a RootModel is its root value, not a message
        if not (is_dataclass or is_model):
            return None
        message = self.by_type.get(tp)
        if message is None:
            args = typing.get_args(tp)
            name = _type_name(origin) + "".join("_" + _identifier(_type_name(a)) for a in args)
            message = self.new_message(name, _type_name(origin))
            message.instance_of = origin
            self.by_type[tp] = message  # registered before its fields, so recursive types find it
            if is_dataclass:
                self.dataclass_fields(message, origin, dict(zip(getattr(origin, "__parameters__", ()), args)))
            else:
                self.model_fields(message, origin)
            message.seal()
        cls = origin
        describe = message.describe

        def dump(value: Any) -> dict[str, Any]:
            if type(value) is cls:
                # a plain instance's __dict__ holds exactly its fields, in order: when their types are
                # exactly the declared ones it already is the constructor's keywords
                attrs: dict[str, Any] | None = getattr(value, "__dict__", None)
                if (message.plain and attrs is not None and tuple(map(type, attrs.values())) == message.exact
                        and tuple(attrs) == message.names):
                    return attrs
            elif not isinstance(value, cls):
                raise _bad(value, describe)
            return message.dump_values(message.read_attrs(value))

        # message.load is set once the fields are known, which for a recursive type is after this
        load = message.load if message.sealed else lambda msg: message.load(msg)
        return _Field(_F.TYPE_MESSAGE, describe, exact=cls, dump=dump, load=load, message=message)

    def dataclass_fields(self, message: _Message, cls: type, bindings: dict[Any, Any]) -> None:
        try:
            hints = typing.get_type_hints(cls, include_extras=True)  # extras: FieldNumber
        except Exception as exc:  # NameError and friends from evaluating string annotations
            raise MarshalException(
                f"{self.qualified}: cannot resolve the type hints of {_type_name(cls)}: {exc}; "
                "define the types it refers to at module level"
            ) from None
        fields = [f for f in dataclasses.fields(cls)]
        attrs = [f.name for f in fields]
        for f in fields:
            tp = _substitute(hints[f.name], bindings)
            field = defaulted(self.field(tp), tp, dataclass_default(f))
            message.fields.append((self.field_name(message, f.name), field))
        message.read_attrs = _tuple_getter(attrs, operator.attrgetter)
        message.attrs = attrs
        late = [(i, f.name) for i, f in enumerate(fields) if not f.init]
        if not late and not any(getattr(f, "kw_only", False) for f in fields):
            message.build = lambda values: cls(*values)
            return
        init = [(i, f.name) for i, f in enumerate(fields) if f.init]

        def build(values: Sequence[Any]) -> Any:
            obj = cls(**{name: values[i] for i, name in init})
            for i, name in late:
                object.__setattr__(obj, name, values[i])  # also works for frozen dataclasses
            return obj

        message.build = build

    def model_fields(self, message: _Message, cls: Any) -> None:
        items = list(cls.model_fields.items())
        for name, info in items:
            default = None if info.is_required() else _model_default(info)
            field = defaulted(self.field(info.annotation), info.annotation, default, info.metadata)
            message.fields.append((self.field_name(message, name), field))
        message.attrs = [name for name, _ in items]
        message.read_attrs = _tuple_getter(message.attrs, operator.attrgetter)
        names = message.attrs
        # validation keeps the model's own validators in force on this side; the validator itself is what
        # model_validate calls, without its Python frame
        validate = cls.__pydantic_validator__.validate_python
        if not any(info.alias or info.validation_alias for _, info in items):
            message.build = lambda values: validate(dict(zip(names, values)))
        elif _BY_NAME:
            message.build = lambda values: validate(dict(zip(names, values)), by_name=True)
        else:  # pydantic < 2.11 validates by alias only
            keys = [info.validation_alias if isinstance(info.validation_alias, str) else info.alias or name
                    for name, info in items]
            message.build = lambda values: validate(dict(zip(keys, values)))

    @staticmethod
    def field_name(message: _Message, attr: str) -> str:
        name = _identifier(attr)
        taken = {n for n, _ in message.fields}
        while name in taken:
            name += "_"
        return name

    def fallback(self, tp: Any) -> _Field:
        """A ``bytes`` field carrying msgpack of the marshaller's primitive tree of the value."""
        plan: list[Any] = []
        describe = repr(tp) if not isinstance(tp, type) else tp.__name__

        def get_plan() -> Any:
            if not plan:
                from warpcall.core.marshal import plan_for

                plan.append(plan_for(tp))
            return plan[0]

        def dump(value: Any) -> bytes:
            # integers beyond 64 bits travel as the dispatch-msgpack envelope carries them
            return msgpack.packb(get_plan().dump(value), use_bin_type=True, default=msgpack_default)

        def load(body: bytes) -> Any:
            return get_plan().load(
                msgpack.unpackb(body, raw=False, strict_map_key=False, ext_hook=msgpack_ext_hook)
            )

        field = _Field(_F.TYPE_BYTES, describe, exact=None, dump=dump, load=load)
        field.check = lambda value: True  # the marshaller checks the value
        origin = typing.get_origin(tp)
        field.nullable = tp in (Any, object, type(None)) or (
            (origin is typing.Union or origin is types.UnionType) and type(None) in typing.get_args(tp)
        )
        field.optional = True
        field.presence = True
        return field

    # -- file
    def compile(self) -> None:
        """Add all messages to a private descriptor pool and bind their classes."""
        proto = descriptor_pb2.FileDescriptorProto(
            name=self.package.replace(".", "/") + ".proto", package=self.package, syntax="proto3"
        )
        for message in self.messages:
            proto.message_type.add().CopyFrom(message.emit(self.package))
        pool = descriptor_pool.DescriptorPool()
        pool.Add(proto)
        for message in self.messages:
            message.cls = _message_class(pool.FindMessageTypeByName(f"{self.package}.{message.name}"))
