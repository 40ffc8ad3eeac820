"""Compiled twin of warpcall._pure.marshal: the per-call walk of values and primitive trees.

Only the plans are compiled here. Reading type hints and choosing a plan per type happens
once per type, in the builder shared with the pure twin (``warpcall.core.marshal_plan.PlanBuilder``),
which instantiates the plan classes of this module; so both cores accept the same types and
say the same things.
"""

import binascii
import collections.abc as cabc
import dataclasses
import sys
from base64 import b64decode, b64encode
from datetime import datetime
from decimal import Decimal, InvalidOperation
from uuid import UUID

from cpython.dict cimport PyDict_GetItem, PyDict_SetItem
from cpython.object cimport PyObject, PyObject_GenericGetDict, PyObject_GenericSetAttr

from warpcall.exceptions import MarshalException
from warpcall.core.marshal_plan import (
    Fail,
    PlanBuilder,
    parse_int_key,
    pydantic_failure,
    show,
    type_name,
    union_mismatch,
)

try:
    from pydantic import ValidationError
except ImportError:
    class ValidationError(Exception):
        pass

cdef object _MISSING = dataclasses.MISSING
cdef object _object_new = object.__new__
cdef object _Mapping = cabc.Mapping


cdef extern from "Python.h":
    dict _PyDict_NewPresized(Py_ssize_t minused)

# Field kinds whose plan is a plain type check: the field loops below do that check
# inline and call the plan only when it fails (to get its conversion or its error).
cdef enum:
    K_OTHER, K_STR, K_INT, K_FLOAT, K_BOOL, K_ANY


cdef inline str _tname(object value):
    return type(value).__name__


cdef inline bint _fits(int kind, object value):
    """True when a value of this primitive field kind needs no conversion, on dump and on load."""
    if kind == K_STR:
        return type(value) is str
    if kind == K_INT:
        return type(value) is int
    if kind == K_FLOAT:
        return type(value) is float
    if kind == K_BOOL:
        return value is True or value is False
    return kind == K_ANY


cdef class TypePlan:
    """How to dump and load one type; built once by ``plan_for`` and cached."""

    cdef readonly object tp
    cdef readonly str name

    def __init__(self, tp):
        self.tp = tp
        self.name = type_name(tp)

    def dump(self, value):
        """Turn ``value`` (an instance of ``tp``) into a JSON-safe primitive tree."""
        try:
            return self._dump(value)
        except Fail as fail:
            raise MarshalException(fail.render(self.name)) from None

    def load(self, data):
        """Turn a primitive tree back into a validated value of ``tp``."""
        try:
            return self._load(data)
        except Fail as fail:
            raise MarshalException(fail.render(self.name)) from None

    def __repr__(self):
        return f"<{type(self).__name__} {self.name}>"

    cdef object _dump(self, object value):
        raise NotImplementedError

    cdef object _load(self, object data):
        raise NotImplementedError


cdef class AnyPlan(TypePlan):
    cdef object _dump(self, object value):
        return value

    cdef object _load(self, object data):
        return data


cdef class NonePlan(TypePlan):
    cdef object _dump(self, object value):
        if value is None:
            return None
        raise Fail(f"expected None, got {_tname(value)}")

    cdef object _load(self, object data):
        return self._dump(data)


cdef class StrPlan(TypePlan):
    cdef object _dump(self, object value):
        if type(value) is str:
            return value
        if isinstance(value, str):
            return str(value)
        raise Fail(f"expected str, got {_tname(value)}")

    cdef object _load(self, object data):
        return self._dump(data)


cdef class IntPlan(TypePlan):
    cdef object _dump(self, object value):
        if type(value) is int:
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
        raise Fail(f"expected int, got {_tname(value)}")

    cdef object _load(self, object data):
        return self._dump(data)


cdef class FloatPlan(TypePlan):
    cdef object _dump(self, object value):
        if type(value) is float:
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise Fail(f"expected float, got {_tname(value)}")

    cdef object _load(self, object data):
        return self._dump(data)


cdef class BoolPlan(TypePlan):
    cdef object _dump(self, object value):
        if value is True or value is False:
            return value
        raise Fail(f"expected bool, got {_tname(value)}")

    cdef object _load(self, object data):
        return self._dump(data)


cdef class BytesPlan(TypePlan):
    cdef object _dump(self, object value):
        if isinstance(value, (bytes, bytearray, memoryview)):
            return b64encode(value).decode("ascii")
        raise Fail(f"expected bytes, got {_tname(value)}")

    cdef object _load(self, object data):
        if type(data) is str:
            try:
                return b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise Fail(f"invalid base64 string {show(data)}") from None
        if isinstance(data, (bytes, bytearray)):
            return bytes(data)
        raise Fail(f"expected a base64 string or bytes, got {_tname(data)}")


cdef class _IsoPlan(TypePlan):
    """datetime, date and time travel as ISO 8601 strings."""

    cdef str kind
    cdef object exclude
    cdef object parse

    def __init__(self, tp):
        TypePlan.__init__(self, tp)
        self.exclude = None
        self.parse = tp.fromisoformat

    cdef object _dump(self, object value):
        if isinstance(value, self.tp) and (self.exclude is None or not isinstance(value, self.exclude)):
            return value.isoformat()
        raise Fail(f"expected {self.kind}, got {_tname(value)}")

    cdef object _load(self, object data):
        if type(data) is str:
            try:
                return self.parse(data)
            except ValueError:
                raise Fail(f"invalid ISO {self.kind} string {show(data)}") from None
        if type(data) is self.tp:
            return data
        raise Fail(f"expected an ISO {self.kind} string, got {_tname(data)}")


cdef class DateTimePlan(_IsoPlan):
    def __init__(self, tp):
        _IsoPlan.__init__(self, tp)
        self.kind = "datetime"


cdef class DatePlan(_IsoPlan):
    def __init__(self, tp):
        _IsoPlan.__init__(self, tp)
        self.kind = "date"
        self.exclude = datetime


cdef class TimePlan(_IsoPlan):
    def __init__(self, tp):
        _IsoPlan.__init__(self, tp)
        self.kind = "time"


cdef class UUIDPlan(TypePlan):
    cdef object _dump(self, object value):
        if isinstance(value, UUID):
            return str(value)
        raise Fail(f"expected UUID, got {_tname(value)}")

    cdef object _load(self, object data):
        if type(data) is str:
            try:
                return UUID(data)
            except ValueError:
                raise Fail(f"invalid UUID string {show(data)}") from None
        if type(data) is UUID:
            return data
        raise Fail(f"expected a UUID string, got {_tname(data)}")


cdef class DecimalPlan(TypePlan):
    cdef object _dump(self, object value):
        if isinstance(value, Decimal):
            return str(value)
        raise Fail(f"expected Decimal, got {_tname(value)}")

    cdef object _load(self, object data):
        kind = type(data)
        if kind is str:
            try:
                return Decimal(data)
            except InvalidOperation:
                raise Fail(f"invalid decimal string {show(data)}") from None
        if kind is int or kind is Decimal:
            return Decimal(data)
        if kind is float:
            return Decimal(repr(data))
        raise Fail(f"expected a decimal string or number, got {kind.__name__}")


cdef class EnumPlan(TypePlan):
    """An enum member travels as its value."""

    cdef dict members
    cdef frozenset value_types
    cdef str choices

    def __init__(self, tp, dict members, frozenset value_types, str choices):
        TypePlan.__init__(self, tp)
        self.members = members
        self.value_types = value_types
        self.choices = choices

    cdef object _dump(self, object value):
        if isinstance(value, self.tp):
            return value._value_
        raise Fail(f"expected {self.name}, got {_tname(value)}")

    cdef object _load(self, object data):
        cdef PyObject* member
        if type(data) in self.value_types:
            member = PyDict_GetItem(self.members, data)
            if member != NULL:
                return <object>member
            try:  # Flag combinations and _missing_ hooks
                return self.tp(data)
            except ValueError:
                pass
        raise Fail(f"expected a {self.name} value ({self.choices}), got {show(data)}")


cdef class LiteralPlan(TypePlan):
    """One of fixed values; ``(type, value)`` keys keep True apart from 1."""

    cdef dict load_map
    cdef dict dump_map
    cdef str choices

    def __init__(self, tp, dict load_map, dict dump_map, str choices):
        TypePlan.__init__(self, tp)
        self.load_map = load_map
        self.dump_map = dump_map
        self.choices = choices

    cdef object _dump(self, object value):
        try:
            return self.dump_map[(type(value), value)]
        except (KeyError, TypeError):
            raise Fail(f"expected one of {self.choices}, got {show(value)}") from None

    cdef object _load(self, object data):
        try:
            return self.load_map[(type(data), data)]
        except (KeyError, TypeError):
            raise Fail(f"expected one of {self.choices}, got {show(data)}") from None


cdef class OptionalPlan(TypePlan):
    cdef TypePlan inner

    def __init__(self, tp, TypePlan inner):
        TypePlan.__init__(self, tp)
        self.inner = inner

    cdef object _dump(self, object value):
        return None if value is None else self.inner._dump(value)

    cdef object _load(self, object data):
        return None if data is None else self.inner._load(data)


cdef class UnionPlan(TypePlan):
    """Members are chosen by exact runtime type first, then tried in declaration order."""

    cdef bint none_ok
    cdef dict load_exact
    cdef dict dump_exact
    cdef tuple others
    cdef tuple subclassed  # primitive members, tried last on dump only (StrEnum/IntEnum values)

    def __init__(self, tp, bint none_ok, dict load_exact, dict dump_exact, tuple others, tuple subclassed):
        TypePlan.__init__(self, tp)
        self.none_ok = none_ok
        self.load_exact = load_exact
        self.dump_exact = dump_exact
        self.others = others
        self.subclassed = subclassed

    cdef object _dump(self, object value):
        cdef TypePlan plan
        if value is None and self.none_ok:
            return None
        cdef PyObject* found = PyDict_GetItem(self.dump_exact, type(value))
        if found != NULL:
            return (<TypePlan>found)._dump(value)
        cdef list attempts = []
        for plan in self.others:
            try:
                return plan._dump(value)
            except Fail as fail:
                attempts.append((plan.name, fail))
        for plan in self.subclassed:
            try:
                return plan._dump(value)
            except Fail:
                continue
        raise union_mismatch(self.name, value, attempts)

    cdef object _load(self, object data):
        cdef TypePlan plan
        if data is None and self.none_ok:
            return None
        cdef PyObject* found = PyDict_GetItem(self.load_exact, type(data))
        if found != NULL:
            return (<TypePlan>found)._load(data)
        cdef list attempts = []
        for plan in self.others:
            try:
                return plan._load(data)
            except Fail as fail:
                attempts.append((plan.name, fail))
        raise union_mismatch(self.name, data, attempts)


cdef class ListPlan(TypePlan):
    """Variadic sequences and sets: a list on the wire, ``factory`` (list/tuple/set/frozenset) in Python."""

    cdef TypePlan item
    cdef object factory
    cdef tuple accept

    def __init__(self, tp, TypePlan item, factory, tuple accept):
        TypePlan.__init__(self, tp)
        self.item = item
        self.factory = factory
        self.accept = accept

    cdef object _dump(self, object value):
        if type(value) is not list and not isinstance(value, self.accept):
            raise Fail(f"expected {self.name}, got {_tname(value)}")
        cdef TypePlan item = self.item
        cdef list out = []
        cdef Py_ssize_t index = 0
        try:
            for element in value:
                out.append(item._dump(element))
                index += 1
        except Fail as fail:
            fail.path.append(f"[{index}]")
            raise
        return out

    cdef object _load(self, object data):
        if type(data) is not list and type(data) is not tuple:
            raise Fail(f"expected a list, got {_tname(data)}")
        cdef TypePlan item = self.item
        cdef list out = []
        cdef Py_ssize_t index = 0
        try:
            for element in data:
                out.append(item._load(element))
                index += 1
        except Fail as fail:
            fail.path.append(f"[{index}]")
            raise
        if self.factory is list:
            return out
        try:
            return self.factory(out)
        except TypeError:  # an element that cannot go into a set
            raise Fail(f"items of {self.name} must be hashable") from None


cdef class TuplePlan(TypePlan):
    """Fixed-length tuples: a list of exactly len(items) on the wire."""

    cdef tuple items

    def __init__(self, tp, tuple items):
        TypePlan.__init__(self, tp)
        self.items = items

    cdef list _walk(self, object value, bint dumping):
        cdef Py_ssize_t n = len(self.items)
        if len(value) != n:
            raise Fail(f"expected {n} items, got {len(value)}")
        cdef list out = []
        cdef Py_ssize_t index = 0
        cdef TypePlan plan
        try:
            for index in range(n):
                plan = self.items[index]
                out.append(plan._dump(value[index]) if dumping else plan._load(value[index]))
        except Fail as fail:
            fail.path.append(f"[{index}]")
            raise
        return out

    cdef object _dump(self, object value):
        if type(value) is not tuple and type(value) is not list:
            raise Fail(f"expected {self.name}, got {_tname(value)}")
        return self._walk(value, True)

    cdef object _load(self, object data):
        if type(data) is not list and type(data) is not tuple:
            raise Fail(f"expected a list, got {_tname(data)}")
        return tuple(self._walk(data, False))


cdef class DictPlan(TypePlan):
    cdef TypePlan key
    cdef TypePlan value

    def __init__(self, tp, TypePlan key, TypePlan value):
        TypePlan.__init__(self, tp)
        self.key = key
        self.value = value

    cdef object _dump(self, object value):
        if type(value) is not dict and not isinstance(value, _Mapping):
            raise Fail(f"expected {self.name}, got {_tname(value)}")
        cdef TypePlan key_plan = self.key
        cdef TypePlan value_plan = self.value
        cdef dict out = {}
        k = None
        try:
            for k, v in value.items():
                out[key_plan._dump(k)] = value_plan._dump(v)
        except Fail as fail:
            fail.path.append(f"[{show(k)}]")
            raise
        return out

    cdef object _load(self, object data):
        if type(data) is not dict:
            raise Fail(f"expected a dict, got {_tname(data)}")
        cdef TypePlan key_plan = self.key
        cdef TypePlan value_plan = self.value
        cdef dict out = {}
        k = None
        try:
            for k, v in (<dict>data).items():
                out[key_plan._load(k)] = value_plan._load(v)
        except Fail as fail:
            fail.path.append(f"[{show(k)}]")
            raise
        return out


cdef class IntKeyPlan(TypePlan):
    """An int-valued dict key: a decimal string in JSON, an int from msgpack."""

    cdef TypePlan inner

    def __init__(self, tp, TypePlan inner):
        TypePlan.__init__(self, tp)
        self.inner = inner

    cdef object _dump(self, object value):
        return str(self.inner._dump(value))

    cdef object _load(self, object data):
        if type(data) is str:
            number = parse_int_key(data)
            if number is None:
                raise Fail(f"expected an integer key, got {show(data)}")
            return self.inner._load(number)
        return self.inner._load(data)


cdef class _Field:
    """One field of a dataclass or pydantic model, with its plan."""

    cdef str name
    cdef TypePlan plan
    cdef bint init
    cdef object default
    cdef object factory
    cdef int kind

    def __init__(self, str name, TypePlan plan, bint init=True, default=_MISSING, factory=_MISSING):
        self.name = name
        self.plan = plan
        self.init = init
        self.default = default
        self.factory = factory
        kind = type(plan)
        self.kind = (
            K_STR if kind is StrPlan else K_INT if kind is IntPlan else K_FLOAT if kind is FloatPlan
            else K_BOOL if kind is BoolPlan else K_ANY if kind is AnyPlan else K_OTHER
        )


cdef object _read_attribute(object value, str name):
    try:
        return getattr(value, name)
    except AttributeError:
        raise Fail("attribute is not set") from None


cdef class DataclassPlan(TypePlan):
    """A dataclass travels as a dict of field name -> dumped value."""

    cdef object cls
    cdef tuple fields
    cdef bint has_dict
    cdef bint post_init
    cdef bint direct

    def setup(self, cls, list fields, bint has_dict, bint post_init, bint direct):
        """Fill in the fields once their plans exist (after recursion)."""
        self.cls = cls
        self.fields = tuple(_Field(*f) for f in fields)
        self.has_dict = has_dict
        self.post_init = post_init
        self.direct = direct

    cdef object _dump(self, object value):
        cdef bint exact = type(value) is self.cls
        if not exact and not isinstance(value, self.cls):
            raise Fail(f"expected {self.name}, got {_tname(value)}")
        cdef dict out = _PyDict_NewPresized(len(self.fields))
        cdef dict attrs
        cdef _Field f = None
        cdef PyObject* found
        try:
            if self.has_dict and exact:
                attrs = PyObject_GenericGetDict(value, NULL)
                for f in self.fields:
                    found = PyDict_GetItem(attrs, f.name)
                    if found != NULL:
                        if _fits(f.kind, <object>found):
                            PyDict_SetItem(out, f.name, <object>found)
                        else:
                            PyDict_SetItem(out, f.name, f.plan._dump(<object>found))
                    else:
                        PyDict_SetItem(out, f.name, f.plan._dump(_read_attribute(value, f.name)))
            else:
                for f in self.fields:
                    PyDict_SetItem(out, f.name, f.plan._dump(_read_attribute(value, f.name)))
        except Fail as fail:
            fail.path.append(f".{f.name}")
            raise
        return out

    cdef object _load(self, object data):
        if type(data) is not dict:
            if isinstance(data, self.cls):
                return data
            raise Fail(f"expected a dict for {self.name}, got {_tname(data)}")
        cdef dict values
        cdef object obj = None
        if self.direct and self.has_dict:
            # Fill the instance's own __dict__, as the generated __init__ would: faster than
            # cls(**values), and bypasses a frozen class's __setattr__ the same way.
            obj = _object_new(self.cls)
            values = PyObject_GenericGetDict(obj, NULL)
        else:
            values = {}
        cdef _Field f = None
        cdef PyObject* raw
        try:
            for f in self.fields:
                if f.init:
                    raw = PyDict_GetItem(<dict>data, f.name)
                    if raw != NULL:
                        if _fits(f.kind, <object>raw):
                            PyDict_SetItem(values, f.name, <object>raw)
                        else:
                            PyDict_SetItem(values, f.name, f.plan._load(<object>raw))
                        continue
                if f.factory is not _MISSING:
                    PyDict_SetItem(values, f.name, f.factory())
                elif f.default is not _MISSING:
                    PyDict_SetItem(values, f.name, f.default)
                elif f.init:
                    raise Fail("missing required field")
        except Fail as fail:
            fail.path.append(f".{f.name}")
            raise
        try:
            if obj is None:
                obj = self._construct(values)
            if self.post_init and self.direct:
                obj.__post_init__()
        except ValidationError as exc:  # a pydantic dataclass validating in __init__
            raise pydantic_failure(exc) from None
        except Exception as exc:
            raise Fail(f"constructor raised {type(exc).__name__}: {exc}") from None
        return obj

    cdef object _construct(self, dict values):
        cdef _Field f
        if not self.direct:
            return self.cls(**{f.name: values[f.name] for f in self.fields if f.init and f.name in values})
        obj = _object_new(self.cls)
        for name, value in values.items():
            PyObject_GenericSetAttr(obj, name, value)
        return obj


cdef class PydanticPlan(TypePlan):
    """A pydantic model: dumped field by field (by name, like model_dump()), loaded through its validator."""

    cdef object cls
    cdef tuple fields
    cdef tuple convert
    cdef object validate
    cdef bint by_name
    cdef bint extra

    def setup(self, cls, list fields, list convert, bint by_name, bint extra):
        """Fill in the fields once their plans exist; ``convert``: fields we load before validation."""
        self.cls = cls
        self.fields = tuple(_Field(*f) for f in fields)
        self.convert = tuple(_Field(*f) for f in convert)
        self.validate = cls.__pydantic_validator__.validate_python
        self.by_name = by_name
        self.extra = extra

    cdef object _dump(self, object value):
        if not isinstance(value, self.cls):
            raise Fail(f"expected {self.name}, got {_tname(value)}")
        cdef dict attrs = value.__dict__
        cdef dict out = _PyDict_NewPresized(len(self.fields))
        cdef _Field f = None
        cdef PyObject* found
        try:
            for f in self.fields:
                found = PyDict_GetItem(attrs, f.name)
                if found != NULL:
                    if _fits(f.kind, <object>found):
                        PyDict_SetItem(out, f.name, <object>found)
                    else:
                        PyDict_SetItem(out, f.name, f.plan._dump(<object>found))
                else:
                    PyDict_SetItem(out, f.name, f.plan._dump(_read_attribute(value, f.name)))
        except Fail as fail:
            fail.path.append(f".{f.name}")
            raise
        if self.extra and value.__pydantic_extra__:
            out.update(value.__pydantic_extra__)
        return out

    cdef object _load(self, object data):
        if type(data) is not dict:
            if isinstance(data, self.cls):
                return data
            raise Fail(f"expected a dict for {self.name}, got {_tname(data)}")
        cdef _Field f = None
        cdef PyObject* raw
        if self.convert:
            data = dict(data)
            try:
                for f in self.convert:
                    raw = PyDict_GetItem(<dict>data, f.name)
                    if raw != NULL:
                        PyDict_SetItem(<dict>data, f.name, f.plan._load(<object>raw))
            except Fail as fail:
                fail.path.append(f".{f.name}")
                raise
        try:
            if self.by_name:
                return self.validate(data, by_alias=False, by_name=True)
            return self.validate(data)
        except ValidationError as exc:
            raise pydantic_failure(exc) from None


cdef class AdapterPlan(TypePlan):
    """A type only pydantic knows (it has __get_pydantic_core_schema__): a TypeAdapter does both ways."""

    cdef object adapter

    def __init__(self, tp, adapter):
        TypePlan.__init__(self, tp)
        self.adapter = adapter

    cdef object _dump(self, object value):
        try:
            return self.adapter.dump_python(value, mode="json")
        except Exception as exc:
            raise Fail(f"cannot dump {_tname(value)}: {exc}") from None

    cdef object _load(self, object data):
        try:
            return self.adapter.validate_python(data)
        except ValidationError as exc:
            raise pydantic_failure(exc) from None


cdef object _builder = PlanBuilder(sys.modules[__name__])
cdef dict _cache = _builder.cache
cdef object _build = _builder.plan_for


def plan_for(tp):
    """The marshalling plan for ``tp``: built once per type (thread-safe) and cached."""
    cdef PyObject* found = PyDict_GetItem(_cache, tp)  # NULL for unhashable hints too
    if found != NULL:
        return <object>found
    return _build(tp)


__all__ = ["TypePlan", "plan_for"]
