"""Protobuf wire format of flat messages, written and read without a message object.

Pure twin of the compiled ``warpcall._native.pbwire``. A ``MessageWire`` describes one
message whose fields are numbered 1..n in order, each a scalar (``sint64``, ``double``,
``bool``, ``string``, ``bytes``) or a nested message described by another ``MessageWire``.
It encodes a sequence of field values straight to bytes and decodes bytes straight back,
in the canonical encoding a protobuf library writes: fields in number order, proto3
defaults left out unless the field tracks presence.

It is the fast path of ``warpcall.channels.protobuf_codec``. Whenever a value or a body is
anything but the plain case (a value of the wrong type, a field sent twice, a wrong wire
type, a truncated body, a converter that raises, a rejected field number) ``encode`` and
``decode`` return None, and the codec takes protobuf's own path, which accepts or names the
problem exactly as before. So this module never raises for bad data, and never has to agree
with protobuf on an error message.
"""

from __future__ import annotations

import struct
from typing import Any, Callable, Sequence

__all__ = ["SINT64", "DOUBLE", "BOOL", "STRING", "BYTES", "MESSAGE", "MessageWire"]

SINT64, DOUBLE, BOOL, STRING, BYTES, MESSAGE = range(6)

_WIRE_TYPES = {SINT64: 0, DOUBLE: 1, BOOL: 0, STRING: 2, BYTES: 2, MESSAGE: 2}
_DEFAULTS: dict[int, Any] = {SINT64: 0, DOUBLE: 0.0, BOOL: False, STRING: "", BYTES: b""}
_SINT64_MIN, _SINT64_MAX = -(2**63), 2**63 - 1
_DOUBLE = struct.Struct("<d")
_MISSING = object()


class _Fallback(Exception):
    """The value or body is not the plain case: let protobuf handle it."""


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class _Field:
    __slots__ = ("kind", "presence", "nullable", "dump", "load", "sub", "tag", "wire_type")

    def __init__(self, number: int, kind: int, presence: bool, nullable: bool,
                 dump: Callable[[Any], Any] | None, load: Callable[[Any], Any] | None,
                 sub: MessageWire | None) -> None:
        if kind not in _WIRE_TYPES:
            raise ValueError(f"unknown field kind {kind!r}")
        if (kind == MESSAGE) != (sub is not None):
            raise ValueError("a message field needs its MessageWire, and only a message field has one")
        self.kind = kind
        self.presence = presence or kind == MESSAGE
        self.nullable = nullable
        self.dump = dump
        self.load = load
        self.sub = sub
        self.wire_type = _WIRE_TYPES[kind]
        self.tag = _varint(number << 3 | self.wire_type)


class MessageWire:
    """The wire layout of one message; ``define`` it once, then ``encode``/``decode`` per call."""

    def __init__(self) -> None:
        self._fields: list[_Field] = []
        self._build: Callable[[list[Any]], Any] | None = None
        self._cls: Any = object
        self._read: Callable[[Any], Sequence[Any]] | None = None
        self._reject: frozenset[int] = frozenset()
        self._defined = False

    def define(self, fields: Sequence[tuple[int, bool, bool, Any, Any, MessageWire | None]],
               build: Callable[[list[Any]], Any] | None = None, cls: Any = object,
               read: Callable[[Any], Sequence[Any]] | None = None, reject: Sequence[int] = ()) -> None:
        """Set the layout. Field ``i`` (number ``i + 1``) is ``(kind, presence, nullable, dump, load, sub)``.

        ``dump`` converts a value before it is written and ``load`` after it is read (None: as is).
        A message used as a field needs ``cls`` (what its values must be instances of), ``read``
        (an instance's field values, in order) and ``build`` (values -> instance). ``reject``
        names field numbers whose presence in a body means "not the plain case".
        Defined after construction so that recursive messages can refer to themselves.
        """
        self._fields = [_Field(number, *spec) for number, spec in enumerate(fields, start=1)]
        self._build, self._cls, self._read = build, cls, read
        self._reject = frozenset(reject)
        self._defined = True

    # -- encode
    def encode(self, values: Sequence[Any]) -> bytes | None:
        """The message holding one value per field, or None when protobuf must do it."""
        if not self._defined or len(values) != len(self._fields):
            return None
        out = bytearray()
        try:
            self._write(values, out, 0)
        except _Fallback:
            return None
        return bytes(out)

    def _write(self, values: Sequence[Any], out: bytearray, depth: int) -> None:
        if depth > 100:  # protobuf's own nesting limit; deeper values take its path and its error
            raise _Fallback
        for field, value in zip(self._fields, values):
            if value is None:
                if field.nullable:
                    continue
                raise _Fallback
            if field.dump is not None:
                try:
                    value = field.dump(value)
                except Exception:
                    raise _Fallback from None
            kind = field.kind
            if kind == STRING:
                if not isinstance(value, str):
                    raise _Fallback
                try:
                    data = value.encode("utf-8")
                except UnicodeEncodeError:
                    raise _Fallback from None
                if data or field.presence:
                    out += field.tag
                    out += _varint(len(data))
                    out += data
            elif kind == SINT64:
                if not isinstance(value, int) or isinstance(value, bool) or not _SINT64_MIN <= value <= _SINT64_MAX:
                    raise _Fallback
                if value or field.presence:
                    out += field.tag
                    out += _varint(((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF)
            elif kind == DOUBLE:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise _Fallback
                try:
                    data = _DOUBLE.pack(float(value))
                except OverflowError:
                    raise _Fallback from None
                if field.presence or data != b"\0" * 8:  # -0.0 is not the default: it is written
                    out += field.tag
                    out += data
            elif kind == BOOL:
                if not isinstance(value, bool):
                    raise _Fallback
                if value or field.presence:
                    out += field.tag
                    out.append(1 if value else 0)
            elif kind == BYTES:
                if not isinstance(value, bytes):
                    raise _Fallback
                if value or field.presence:
                    out += field.tag
                    out += _varint(len(value))
                    out += value
            else:
                sub = field.sub
                assert sub is not None
                if not sub._defined or not isinstance(value, sub._cls) or sub._read is None:
                    raise _Fallback
                try:
                    inner_values = sub._read(value)
                except Exception:
                    raise _Fallback from None
                if len(inner_values) != len(sub._fields):
                    raise _Fallback
                inner = bytearray()
                sub._write(inner_values, inner, depth + 1)
                out += field.tag
                out += _varint(len(inner))
                out += inner

    # -- decode
    def decode(self, body: bytes) -> list[Any] | None:
        """One value per field (converted back), or None when protobuf must read the body."""
        if not self._defined:
            return None
        try:
            return self._read_values(memoryview(body).cast("B"), 0)
        except _Fallback:
            return None

    def _read_values(self, data: memoryview, depth: int) -> list[Any]:
        if depth > 100:
            raise _Fallback
        fields = self._fields
        count = len(fields)
        values: list[Any] = [_MISSING] * count
        position, end = 0, len(data)
        while position < end:
            tag, position = _read_varint(data, position, end)
            number, wire_type = tag >> 3, tag & 7
            if number == 0 or number in self._reject or tag > 0xFFFFFFFF:
                raise _Fallback
            if number > count:
                position = _skip(data, position, end, wire_type)
                continue
            field = fields[number - 1]
            if wire_type != field.wire_type:
                raise _Fallback
            kind = field.kind
            if kind == SINT64:
                raw, position = _read_varint(data, position, end)
                value: Any = (raw >> 1) ^ -(raw & 1)
            elif kind == BOOL:
                raw, position = _read_varint(data, position, end)
                value = raw != 0
            elif kind == DOUBLE:
                if end - position < 8:
                    raise _Fallback
                value = _DOUBLE.unpack_from(data, position)[0]
                position += 8
            else:
                size, position = _read_varint(data, position, end)
                if size > end - position:
                    raise _Fallback
                chunk = data[position:position + size]
                position += size
                if kind == STRING:
                    try:
                        value = str(chunk, "utf-8")
                    except UnicodeDecodeError:
                        raise _Fallback from None
                elif kind == BYTES:
                    value = bytes(chunk)
                else:
                    if values[number - 1] is not _MISSING:  # protobuf merges a repeated message field
                        raise _Fallback
                    sub = field.sub
                    assert sub is not None
                    if not sub._defined or sub._build is None:
                        raise _Fallback
                    inner = sub._read_values(chunk, depth + 1)
                    try:
                        value = sub._build(inner)
                    except Exception:
                        raise _Fallback from None
            values[number - 1] = value
        for index, field in enumerate(fields):
            value = values[index]
            if value is _MISSING:
                if field.presence:
                    if not field.nullable:
                        raise _Fallback
                    values[index] = None
                    continue
                value = _DEFAULTS[field.kind]
            if field.load is not None:
                try:
                    value = field.load(value)
                except Exception:
                    raise _Fallback from None
            values[index] = value
        return values


def _read_varint(data: memoryview, position: int, end: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if position >= end or shift > 63:
            raise _Fallback
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            if result > 0xFFFFFFFFFFFFFFFF:
                raise _Fallback
            return result, position
        shift += 7


def _skip(data: memoryview, position: int, end: int, wire_type: int) -> int:
    if wire_type == 0:
        return _read_varint(data, position, end)[1]
    if wire_type == 1:
        size = 8
    elif wire_type == 5:
        size = 4
    elif wire_type == 2:
        size, position = _read_varint(data, position, end)
    else:  # groups (3, 4) and invalid wire types
        raise _Fallback
    if size > end - position:
        raise _Fallback
    return position + size
