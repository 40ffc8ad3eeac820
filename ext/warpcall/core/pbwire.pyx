"""The protobuf wire format of flat messages, written and read without a message object (compiled only).

This module is a ``.pyx`` and has no Python source: its worth is raw-buffer work through the C API
(growing a malloc'd buffer, varints written in place, borrowed list items), which plain Python
would do slower than protobuf's own C parser. Where it is not compiled, or ``WARPCALL_PURE=1`` is
set, ``warpcall.wire.protobuf_codec`` uses protobuf alone, with the same bytes and errors.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.list cimport PyList_GET_ITEM, PyList_SET_ITEM
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.ref cimport Py_INCREF, Py_DECREF
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcpy, memmove

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object text, Py_ssize_t* size) except NULL

__all__ = ["SINT64", "DOUBLE", "BOOL", "STRING", "BYTES", "MESSAGE", "FieldNumbers", "MessageWire"]

SINT64, DOUBLE, BOOL, STRING, BYTES, MESSAGE = range(6)

cdef enum:
    K_SINT64 = 0
    K_DOUBLE = 1
    K_BOOL = 2
    K_STRING = 3
    K_BYTES = 4
    K_MESSAGE = 5
    MAX_DEPTH = 100

# return codes of the writers and readers: 0 done, FALLBACK when protobuf must take over
cdef enum:
    FALLBACK = 1

cdef object _MISSING = object()
cdef tuple _DEFAULTS = (0, 0.0, False, "", b"")


cdef class _Out:
    """A growing byte buffer."""

    cdef char* data
    cdef Py_ssize_t size
    cdef Py_ssize_t capacity

    def __cinit__(self):
        self.capacity = 512
        self.data = <char*>PyMem_Malloc(self.capacity)
        if self.data == NULL:
            raise MemoryError()
        self.size = 0

    def __dealloc__(self):
        PyMem_Free(self.data)

    cdef int reserve(self, Py_ssize_t extra) except -1:
        cdef Py_ssize_t wanted = self.size + extra
        cdef Py_ssize_t capacity = self.capacity
        cdef char* grown
        if wanted <= capacity:
            return 0
        while capacity < wanted:
            capacity *= 2
        grown = <char*>PyMem_Realloc(self.data, capacity)
        if grown == NULL:
            raise MemoryError()
        self.data = grown
        self.capacity = capacity
        return 0

    cdef inline int varint(self, uint64_t value) except -1:
        self.reserve(10)
        while value > 0x7F:
            self.data[self.size] = <char>((value & 0x7F) | 0x80)
            self.size += 1
            value >>= 7
        self.data[self.size] = <char>value
        self.size += 1
        return 0

    cdef inline int fixed64(self, uint64_t bits) except -1:
        cdef int shift
        self.reserve(8)
        for shift in range(0, 64, 8):  # little-endian on the wire, whatever the host
            self.data[self.size] = <char>((bits >> shift) & 0xFF)
            self.size += 1
        return 0

    cdef inline int raw(self, const char* source, Py_ssize_t size) except -1:
        self.reserve(size)
        memcpy(self.data + self.size, source, size)
        self.size += size
        return 0


cdef inline int _varint_size(uint64_t value) noexcept:
    cdef int size = 1
    while value > 0x7F:
        value >>= 7
        size += 1
    return size


cdef class _Field:
    cdef int kind
    cdef int wire_type
    cdef bint presence
    cdef bint nullable
    cdef object dump
    cdef object load
    cdef MessageWire sub
    cdef char tag[5]
    cdef int tag_size

    def __init__(self, int number, int kind, bint presence, bint nullable, dump, load, sub):
        cdef uint64_t tag
        if kind < K_SINT64 or kind > K_MESSAGE:
            raise ValueError(f"unknown field kind {kind!r}")
        if (kind == K_MESSAGE) != (sub is not None):
            raise ValueError("a message field needs its MessageWire, and only a message field has one")
        self.kind = kind
        self.presence = presence or kind == K_MESSAGE
        self.nullable = nullable
        self.dump = dump
        self.load = load
        self.sub = sub
        self.wire_type = 0 if kind in (K_SINT64, K_BOOL) else 1 if kind == K_DOUBLE else 2
        tag = (<uint64_t>number << 3) | <uint64_t>self.wire_type
        self.tag_size = 0
        while tag > 0x7F:
            self.tag[self.tag_size] = <char>((tag & 0x7F) | 0x80)
            self.tag_size += 1
            tag >>= 7
        self.tag[self.tag_size] = <char>tag
        self.tag_size += 1


cdef class MessageWire:
    """The wire layout of one message; ``define`` it once, then ``encode``/``decode`` per call."""

    cdef list _fields
    cdef Py_ssize_t _count
    cdef object _build
    cdef object _cls
    cdef object _read
    cdef frozenset _reject
    cdef bint _strict
    cdef bint _defined

    def __init__(self):
        self._fields = []
        self._count = 0
        self._cls = object
        self._reject = frozenset()
        self._strict = False
        self._defined = False

    def define(self, fields, build=None, cls=object, read=None, reject=(), strict=False):
        """Set the layout. Field ``i`` (number ``i + 1``) is ``(kind, presence, nullable, dump, load, sub)``.

        ``dump`` converts a value before it is written and ``load`` after it is read (None: as is).
        A message used as a field needs ``cls`` (what its values must be instances of), ``read``
        (an instance's field values, in order) and ``build`` (values -> instance). ``reject``
        names field numbers whose presence in a body means "not the plain case"; ``strict``, that any
        number beyond the layout does (a request: protobuf refuses a parameter it does not know), where
        otherwise it is skipped, as protobuf skips unknown fields.
        Defined after construction so that recursive messages can refer to themselves.
        """
        self._fields = [_Field(number, *spec) for number, spec in enumerate(fields, start=1)]
        self._count = len(self._fields)
        self._build = build
        self._cls = cls
        self._read = read
        self._reject = frozenset(reject)
        self._strict = strict
        self._defined = True

    # -- encode
    def encode(self, values):
        """The message holding one value per field, or None when protobuf must do it."""
        cdef _Out out
        if not self._defined or len(values) != self._count:
            return None
        out = _Out()
        if self._write(values, out, 0) == FALLBACK:
            return None
        return PyBytes_FromStringAndSize(out.data, out.size)

    cdef int _write(self, object values, _Out out, int depth) except -1:
        cdef _Field field
        cdef MessageWire sub
        cdef Py_ssize_t index, size, start, body_size, length_size
        cdef const char* text
        cdef int64_t number
        cdef double real
        cdef uint64_t bits
        cdef object value, inner
        if depth > MAX_DEPTH:  # protobuf's own nesting limit; deeper values take its path and its error
            return FALLBACK
        if type(values) is not tuple and type(values) is not list:
            values = tuple(values)
        for index in range(self._count):
            field = <_Field>PyList_GET_ITEM(self._fields, index)
            value = values[index]
            if value is None:
                if field.nullable:
                    continue
                return FALLBACK
            if field.dump is not None:
                try:
                    value = field.dump(value)
                except Exception:
                    return FALLBACK
            if field.kind == K_STRING:
                if not isinstance(value, str):
                    return FALLBACK
                try:
                    text = PyUnicode_AsUTF8AndSize(value, &size)
                except UnicodeEncodeError:  # lone surrogates
                    return FALLBACK
                if size or field.presence:
                    out.raw(field.tag, field.tag_size)
                    out.varint(<uint64_t>size)
                    out.raw(text, size)
            elif field.kind == K_SINT64:
                if not isinstance(value, int) or isinstance(value, bool):
                    return FALLBACK
                try:
                    number = value
                except OverflowError:
                    return FALLBACK
                if number or field.presence:
                    out.raw(field.tag, field.tag_size)
                    out.varint((<uint64_t>number << 1) ^ <uint64_t>(number >> 63))
            elif field.kind == K_DOUBLE:
                if type(value) is float:
                    real = PyFloat_AS_DOUBLE(value)
                elif isinstance(value, (int, float)) and not isinstance(value, bool):
                    try:
                        real = float(value)
                    except OverflowError:
                        return FALLBACK
                else:
                    return FALLBACK
                memcpy(&bits, &real, 8)
                if bits or field.presence:  # -0.0 is not the default: it is written
                    out.raw(field.tag, field.tag_size)
                    out.fixed64(bits)
            elif field.kind == K_BOOL:
                if value is True:
                    out.raw(field.tag, field.tag_size)
                    out.raw(b"\x01", 1)
                elif value is False:
                    if field.presence:
                        out.raw(field.tag, field.tag_size)
                        out.raw(b"\x00", 1)
                else:
                    return FALLBACK
            elif field.kind == K_BYTES:
                if not isinstance(value, bytes):
                    return FALLBACK
                size = PyBytes_GET_SIZE(value)
                if size or field.presence:
                    out.raw(field.tag, field.tag_size)
                    out.varint(<uint64_t>size)
                    out.raw(PyBytes_AS_STRING(value), size)
            else:
                sub = field.sub
                if not sub._defined or sub._read is None or not isinstance(value, sub._cls):
                    return FALLBACK
                try:
                    inner = sub._read(value)
                    if len(inner) != sub._count:
                        return FALLBACK
                except Exception:
                    return FALLBACK
                out.raw(field.tag, field.tag_size)
                # the body goes after a one-byte length; a longer length moves it once it is known
                start = out.size + 1
                out.raw(b"\x00", 1)
                if sub._write(inner, out, depth + 1) == FALLBACK:
                    return FALLBACK
                body_size = out.size - start
                length_size = _varint_size(<uint64_t>body_size)
                if length_size > 1:
                    out.reserve(length_size - 1)
                    memmove(out.data + start + length_size - 1, out.data + start, body_size)
                out.size = start - 1
                out.varint(<uint64_t>body_size)
                out.size += body_size
        return 0

    # -- decode
    def decode(self, body):
        """One value per field (converted back), or None when protobuf must read the body."""
        cdef const unsigned char[:] view
        cdef object values
        if not self._defined:
            return None
        if type(body) is bytes:
            values = self._read_values(<const unsigned char*>PyBytes_AS_STRING(body), PyBytes_GET_SIZE(body), 0)
        else:
            view = body
            if view.shape[0] == 0:
                values = self._read_values(<const unsigned char*>b"", 0, 0)
            else:
                values = self._read_values(&view[0], view.shape[0], 0)
        return None if values is _MISSING else values

    cdef object _read_values(self, const unsigned char* data, Py_ssize_t end, int depth):
        """The values of one message body, or _MISSING when protobuf must read it."""
        cdef list values
        cdef Py_ssize_t position = 0, index, size
        cdef uint64_t tag, raw
        cdef unsigned int wire_type
        cdef _Field field
        cdef MessageWire sub
        cdef double real
        cdef int shift
        cdef object value, inner
        if depth > MAX_DEPTH:
            return _MISSING
        values = [_MISSING] * self._count
        while position < end:
            if _read_varint(data, &position, end, &tag) or tag > 0xFFFFFFFF:
                return _MISSING
            wire_type = tag & 7
            tag >>= 3
            if tag == 0 or (self._reject and tag in self._reject):
                return _MISSING
            if tag > <uint64_t>self._count:
                if self._strict or _skip(data, &position, end, wire_type):
                    return _MISSING
                continue
            index = <Py_ssize_t>tag - 1
            field = <_Field>PyList_GET_ITEM(self._fields, index)
            if wire_type != <unsigned int>field.wire_type:
                return _MISSING
            if field.kind == K_SINT64:
                if _read_varint(data, &position, end, &raw):
                    return _MISSING
                value = <int64_t>((raw >> 1) ^ (0 - (raw & 1)))
            elif field.kind == K_BOOL:
                if _read_varint(data, &position, end, &raw):
                    return _MISSING
                value = raw != 0
            elif field.kind == K_DOUBLE:
                if end - position < 8:
                    return _MISSING
                raw = 0
                for shift in range(8):
                    raw |= <uint64_t>data[position + shift] << (8 * shift)
                memcpy(&real, &raw, 8)
                position += 8
                value = real
            else:
                if _read_varint(data, &position, end, &raw) or raw > <uint64_t>(end - position):
                    return _MISSING
                size = <Py_ssize_t>raw
                if field.kind == K_STRING:
                    try:
                        value = PyUnicode_DecodeUTF8(<const char*>data + position, size, NULL)
                    except UnicodeDecodeError:
                        return _MISSING
                elif field.kind == K_BYTES:
                    value = PyBytes_FromStringAndSize(<const char*>data + position, size)
                else:
                    if values[index] is not _MISSING:  # protobuf merges a repeated message field
                        return _MISSING
                    sub = field.sub
                    if not sub._defined or sub._build is None:
                        return _MISSING
                    inner = sub._read_values(data + position, size, depth + 1)
                    if inner is _MISSING:
                        return _MISSING
                    try:
                        value = sub._build(inner)
                    except Exception:
                        return _MISSING
                position += size
            values[index] = value
        for index in range(self._count):
            field = <_Field>PyList_GET_ITEM(self._fields, index)
            value = <object>PyList_GET_ITEM(values, index)
            if value is _MISSING:
                if field.presence:
                    if not field.nullable:
                        return _MISSING
                    values[index] = None
                    continue
                value = _DEFAULTS[field.kind]
                values[index] = value
            if field.load is not None:
                try:
                    values[index] = field.load(value)
                except Exception:
                    return _MISSING
        return values


cdef class FieldNumbers:
    """The field numbers of a message: ``unknown(body)`` finds a top-level field it does not have.

    The numbers are 1 .. ``highest``, or those in the frozenset ``known`` when it is not None. What
    protobuf's ``UnknownFieldSet`` would tell after a parse, without building it (a request's unknown
    field is a parameter of a newer version, which the codec refuses).
    """

    cdef Py_ssize_t highest
    cdef frozenset known

    def __init__(self, Py_ssize_t highest, frozenset known=None):
        self.highest = highest
        self.known = known

    def unknown(self, body):
        """The first field number of ``body`` the message does not have, 0 when it has them all, -1 when this
        cannot tell (a body that is not ``bytes``, or that cannot be walked: protobuf then says why)."""
        cdef const unsigned char* data
        cdef Py_ssize_t position = 0, end
        cdef uint64_t tag, number
        if type(body) is not bytes:
            return -1
        data = <const unsigned char*>PyBytes_AS_STRING(body)
        end = PyBytes_GET_SIZE(body)
        while position < end:
            if _read_varint(data, &position, end, &tag) or tag > 0xFFFFFFFF or (tag >> 3) == 0:
                return -1
            number = tag >> 3
            if number > <uint64_t>self.highest or (self.known is not None and <Py_ssize_t>number not in self.known):
                return <Py_ssize_t>number
            if _skip(data, &position, end, tag & 7):
                return -1
        return 0


cdef inline int _read_varint(const unsigned char* data, Py_ssize_t* position, Py_ssize_t end,
                             uint64_t* out) noexcept:
    """1 when the varint is truncated or longer than ten bytes."""
    cdef uint64_t result = 0
    cdef int shift = 0
    cdef unsigned char byte
    cdef Py_ssize_t at = position[0]
    while True:
        if at >= end or shift > 63:
            return 1
        byte = data[at]
        at += 1
        if shift == 63 and byte > 1:  # beyond 64 bits
            return 1
        result |= <uint64_t>(byte & 0x7F) << shift
        if byte < 0x80:
            position[0] = at
            out[0] = result
            return 0
        shift += 7


cdef inline int _skip(const unsigned char* data, Py_ssize_t* position, Py_ssize_t end,
                      unsigned int wire_type) noexcept:
    cdef uint64_t size
    if wire_type == 0:
        return _read_varint(data, position, end, &size)
    if wire_type == 1:
        size = 8
    elif wire_type == 5:
        size = 4
    elif wire_type == 2:
        if _read_varint(data, position, end, &size):
            return 1
    else:  # groups (3, 4) and invalid wire types
        return 1
    if size > <uint64_t>(end - position[0]):
        return 1
    position[0] += <Py_ssize_t>size
    return 0
