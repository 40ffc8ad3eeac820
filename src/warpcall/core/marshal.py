"""Type-driven marshalling: values <-> primitive trees (dict/list/str/int/float/bool/None).

``plan_for(tp)`` builds a ``TypePlan`` once per type and caches it; ``plan.dump(value)``
and ``plan.load(data)`` then only walk the value. Bad input raises ``MarshalException``
whose message names the type and the path, e.g. ``Order.items[2].when: expected an ISO
datetime string, got int``.

This module holds the plans (the per-call path); Cython compiles it with the C types of
``ext/warpcall/core/marshal.pxd``, where the plans become extension types calling each other
in C. Reading type hints and choosing a plan per type happens once per type, in
``warpcall.core.marshal_plan``, which instantiates the plan classes of the build it serves
(compiled or plain Python; tests hold both in one process).

Only the recursive types' plans branch on ``cython.compiled`` (their recursion check); what Cython makes of ``dict.get``, ``obj.__dict__``
and a copied dict of the field names counts within 5% of the instructions of the C API calls
(borrowed lookups, the generic ``__dict__`` getter, presized dicts) they replace.

pydantic is never imported here: a process marshalling only dataclasses does not load it, and
the plans tell pydantic's errors by looking pydantic up (``marshal_plan.is_pydantic_error``).
"""

from __future__ import annotations

import binascii
import collections.abc as cabc
import dataclasses
import sys
from base64 import b64decode, b64encode
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from uuid import UUID

from warpcall.core.marshal_plan import (
    Fail,
    NonFiniteFloat,
    PlanBuilder,
    is_pydantic_error,
    iso_parser,
    mark_non_finite_deep,
    nesting_failure,
    parse_int_key,
    pydantic_failure,
    show,
    type_name,
    union_mismatch,
)
from warpcall.exceptions import MarshalException

if TYPE_CHECKING:  # type checkers read the shim: Cython ships no types for its pure-mode names
    from warpcall import _cython_shim as cython
else:
    try:
        import cython
    except ImportError:  # plain Python without Cython installed
        from warpcall import _cython_shim as cython

if cython.compiled:
    from cython.cimports.warpcall.core.marshal import Py_EnterRecursiveCall, Py_LeaveRecursiveCall

_MISSING = dataclasses.MISSING
_object_new = object.__new__
_object_setattr = object.__setattr__
_Mapping = cabc.Mapping


def _tname(value: object) -> str:
    return type(value).__name__


def _read_attribute(value: object, name: str) -> Any:
    try:
        return getattr(value, name)
    except AttributeError:
        raise Fail("attribute is not set") from None


def _as_float(value: object) -> float:
    """A number other than an exact float as a float; Fail for anything else or an int beyond a double."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise Fail(f"expected float, got an integer of {value.bit_length()} bits, beyond a float") from None  # type: ignore[union-attr]
    raise Fail(f"expected float, got {_tname(value)}")


@cython.locals(number=cython.double, items=list, out=dict)
def _mark_non_finite(value: Any, depth: int) -> Any:
    """``value`` (Any-typed) with every inf and nan in it wrapped as NonFiniteFloat; ``value`` itself if none.

    JSON cannot carry them and orjson would write ``null``: marked, its writer refuses them by name.
    Deeper than the envelopes nest, a value cannot be sent at all: it is left to the writer to refuse.
    """
    kind = type(value)
    if kind is float:
        number = value
        return value if number - number == 0.0 else NonFiniteFloat(value)
    if depth > 1024:
        return value
    if kind is list or kind is tuple:
        items = None
        for index, item in enumerate(value):
            marked = _mark_non_finite(item, depth + 1)
            if marked is not item:
                if items is None:
                    items = list(value)
                items[index] = marked
        if items is None:
            return value
        return items if kind is list else tuple(items)
    if kind is dict:
        out = None
        for key, item in value.items():
            marked = _mark_non_finite(item, depth + 1)
            if marked is not item:
                if out is None:
                    out = dict(value)
                out[key] = marked
        return value if out is None else out
    return value


def _dump_untyped(value: Any) -> Any:
    """A value of no declared type (Any, a pydantic model's extra field, a TypeAdapter's output), inf and nan marked."""
    kind = type(value)
    if kind is dict or kind is list or kind is float or kind is tuple:
        if cython.compiled:  # recursion in C, bounded by the depth the envelopes carry
            return _mark_non_finite(value, 0)
        try:
            return _mark_non_finite(value, 0)
        except RecursionError:  # plain Python recurses less deep than the envelopes nest
            return mark_non_finite_deep(value)
    return value


# ---------------------------------------------------------------- plans (the per-call path)


class TypePlan:
    """How to dump and load one type; built once by ``plan_for`` and cached."""

    def __init__(self, tp: Any) -> None:
        self.tp = tp
        self.name = type_name(tp)

    def dump(self, value: Any) -> Any:
        """Turn ``value`` (an instance of ``tp``) into a JSON-safe primitive tree."""
        try:
            return self._dump(value)
        except Fail as fail:
            raise MarshalException(fail.render(self.name)) from None
        except RecursionError:  # a recursive type's value nesting as deep as Python recurses, or a cycle
            raise MarshalException(nesting_failure(self.name, value)) from None

    def load(self, data: Any) -> Any:
        """Turn a primitive tree back into a validated value of ``tp``."""
        try:
            return self._load(data)
        except Fail as fail:
            raise MarshalException(fail.render(self.name)) from None
        except RecursionError:
            raise MarshalException(nesting_failure(self.name, data)) from None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    def _dump(self, value: Any) -> Any:
        raise NotImplementedError

    def _load(self, data: Any) -> Any:
        raise NotImplementedError


class AnyPlan(TypePlan):
    def _dump(self, value: Any) -> Any:
        return _dump_untyped(value)

    def _load(self, data: Any) -> Any:
        return data


class NonePlan(TypePlan):
    def _dump(self, value: Any) -> Any:
        if value is None:
            return None
        raise Fail(f"expected None, got {_tname(value)}")

    def _load(self, data: Any) -> Any:
        return self._dump(data)


class StrPlan(TypePlan):
    def _dump(self, value: Any) -> Any:
        if type(value) is str:
            return value
        if isinstance(value, str):
            return str(value)
        raise Fail(f"expected str, got {_tname(value)}")

    def _load(self, data: Any) -> Any:
        return self._dump(data)


class IntPlan(TypePlan):
    def _dump(self, value: Any) -> Any:
        if type(value) is int:
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
        raise Fail(f"expected int, got {_tname(value)}")

    def _load(self, data: Any) -> Any:
        return self._dump(data)


class FloatPlan(TypePlan):
    @cython.locals(number=cython.double)
    def _dump(self, value: Any) -> Any:
        if type(value) is not float:
            value = _as_float(value)
        number = value
        if number - number == 0.0:  # finite: inf - inf and nan - nan are nan
            return value
        return NonFiniteFloat(value)

    def _load(self, data: Any) -> Any:
        if type(data) is float:
            return data
        return _as_float(data)


class BoolPlan(TypePlan):
    def _dump(self, value: Any) -> Any:
        if value is True or value is False:
            return value
        raise Fail(f"expected bool, got {_tname(value)}")

    def _load(self, data: Any) -> Any:
        return self._dump(data)


class BytesPlan(TypePlan):
    def _dump(self, value: Any) -> Any:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return b64encode(value).decode("ascii")
        raise Fail(f"expected bytes, got {_tname(value)}")

    def _load(self, data: Any) -> Any:
        if type(data) is str:
            try:
                return b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise Fail(f"invalid base64 string {show(data)}") from None
        if isinstance(data, (bytes, bytearray)):
            return bytes(data)
        raise Fail(f"expected a base64 string or bytes, got {_tname(data)}")


class _IsoPlan(TypePlan):
    """datetime, date and time travel as ISO 8601 strings; ``exclude``: a subclass that is not one."""

    def __init__(self, tp: Any, kind: str, exclude: type | None = None) -> None:
        super().__init__(tp)
        self.kind = kind
        self.exclude = exclude
        self.parse: Callable[[str], Any] = iso_parser(tp)

    def _dump(self, value: Any) -> Any:
        if isinstance(value, self.tp) and (self.exclude is None or not isinstance(value, self.exclude)):
            return value.isoformat()
        raise Fail(f"expected {self.kind}, got {_tname(value)}")

    def _load(self, data: Any) -> Any:
        if type(data) is str:
            try:
                return self.parse(data)
            except ValueError:
                raise Fail(f"invalid ISO {self.kind} string {show(data)}") from None
        if type(data) is self.tp:
            return data
        raise Fail(f"expected an ISO {self.kind} string, got {_tname(data)}")


class DateTimePlan(_IsoPlan):
    def __init__(self, tp: Any) -> None:
        super().__init__(tp, "datetime")


class DatePlan(_IsoPlan):
    def __init__(self, tp: Any) -> None:
        super().__init__(tp, "date", datetime)


class TimePlan(_IsoPlan):
    def __init__(self, tp: Any) -> None:
        super().__init__(tp, "time")


class UUIDPlan(TypePlan):
    def _dump(self, value: Any) -> Any:
        if isinstance(value, UUID):
            return str(value)
        raise Fail(f"expected UUID, got {_tname(value)}")

    def _load(self, data: Any) -> Any:
        if type(data) is str:
            try:
                return UUID(data)
            except ValueError:
                raise Fail(f"invalid UUID string {show(data)}") from None
        if type(data) is UUID:
            return data
        raise Fail(f"expected a UUID string, got {_tname(data)}")


class DecimalPlan(TypePlan):
    def _dump(self, value: Any) -> Any:
        if isinstance(value, Decimal):
            return str(value)
        raise Fail(f"expected Decimal, got {_tname(value)}")

    def _load(self, data: Any) -> Any:
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


class EnumPlan(TypePlan):
    """An enum member travels as its value."""

    def __init__(self, tp: Any, members: dict[Any, Any], value_types: frozenset[type], choices: str) -> None:
        super().__init__(tp)
        self.members = members
        self.value_types = value_types
        self.choices = choices

    def _dump(self, value: Any) -> Any:
        if isinstance(value, self.tp):
            return value._value_
        raise Fail(f"expected {self.name}, got {_tname(value)}")

    def _load(self, data: Any) -> Any:
        if type(data) in self.value_types:
            member = self.members.get(data)
            if member is not None:
                return member
            try:  # Flag combinations and _missing_ hooks
                return self.tp(data)
            except ValueError:
                pass
        raise Fail(f"expected a {self.name} value ({self.choices}), got {show(data)}")


class LiteralPlan(TypePlan):
    """One of fixed values; ``(type, value)`` keys keep True apart from 1."""

    def __init__(self, tp: Any, load_map: dict[Any, Any], dump_map: dict[Any, Any], choices: str) -> None:
        super().__init__(tp)
        self.load_map = load_map
        self.dump_map = dump_map
        self.choices = choices

    def _dump(self, value: Any) -> Any:
        try:
            return self.dump_map[(type(value), value)]
        except (KeyError, TypeError):
            raise Fail(f"expected one of {self.choices}, got {show(value)}") from None

    def _load(self, data: Any) -> Any:
        try:
            return self.load_map[(type(data), data)]
        except (KeyError, TypeError):
            raise Fail(f"expected one of {self.choices}, got {show(data)}") from None


class OptionalPlan(TypePlan):
    def __init__(self, tp: Any, inner: TypePlan) -> None:
        super().__init__(tp)
        self.inner = inner

    def _dump(self, value: Any) -> Any:
        return None if value is None else self.inner._dump(value)

    def _load(self, data: Any) -> Any:
        return None if data is None else self.inner._load(data)


class UnionPlan(TypePlan):
    """Members are chosen by exact runtime type first, then tried in declaration order.

    ``subclassed`` are the primitive members, tried last on dump only, so that a str or int
    subclass (a StrEnum or IntEnum member) dumps as its primitive; load stays exact.
    """

    def __init__(
        self,
        tp: Any,
        none_ok: bool,
        load_exact: dict[type, TypePlan],
        dump_exact: dict[type, TypePlan],
        others: tuple[TypePlan, ...],
        subclassed: tuple[TypePlan, ...],
    ) -> None:
        super().__init__(tp)
        self.none_ok = none_ok
        self.load_exact = load_exact
        self.dump_exact = dump_exact
        self.others = others
        self.subclassed = subclassed

    @cython.locals(plan=TypePlan, attempts=list)
    def _dump(self, value: Any) -> Any:
        if value is None and self.none_ok:
            return None
        plan = self.dump_exact.get(type(value))
        if plan is not None:
            return plan._dump(value)
        attempts = []
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

    @cython.locals(plan=TypePlan, attempts=list)
    def _load(self, data: Any) -> Any:
        if data is None and self.none_ok:
            return None
        plan = self.load_exact.get(type(data))
        if plan is not None:
            return plan._load(data)
        attempts = []
        for plan in self.others:
            try:
                return plan._load(data)
            except Fail as fail:
                attempts.append((plan.name, fail))
        raise union_mismatch(self.name, data, attempts)


class ListPlan(TypePlan):
    """Variadic sequences and sets: a list on the wire, ``factory`` (list/tuple/set/frozenset) in Python."""

    def __init__(
        self, tp: Any, item: TypePlan, factory: type, accept: tuple[type[Iterable[Any]], ...]
    ) -> None:
        super().__init__(tp)
        self.item = item
        self.factory = factory
        self.accept = accept

    @cython.locals(item=TypePlan, out=list, index=cython.Py_ssize_t)
    def _dump(self, value: Any) -> Any:
        if type(value) is not list and not isinstance(value, self.accept):
            raise Fail(f"expected {self.name}, got {_tname(value)}")
        item = self.item
        out = []
        index = 0
        try:
            for element in value:
                out.append(item._dump(element))
                index += 1
        except Fail as fail:
            fail.path.append(f"[{index}]")
            raise
        return out

    @cython.locals(item=TypePlan, out=list, index=cython.Py_ssize_t)
    def _load(self, data: Any) -> Any:
        if type(data) is not list and type(data) is not tuple:
            raise Fail(f"expected a list, got {_tname(data)}")
        item = self.item
        out = []
        index = 0
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


class TuplePlan(TypePlan):
    """Fixed-length tuples: a list of exactly len(items) on the wire."""

    def __init__(self, tp: Any, items: tuple[TypePlan, ...]) -> None:
        super().__init__(tp)
        self.items = items

    @cython.locals(n=cython.Py_ssize_t, out=list, index=cython.Py_ssize_t, plan=TypePlan)
    def _walk(self, value: Any, dumping: bool) -> list[Any]:
        n = len(self.items)
        if len(value) != n:
            raise Fail(f"expected {n} items, got {len(value)}")
        out = []
        index = 0
        try:
            for index in range(n):
                plan = self.items[index]
                out.append(plan._dump(value[index]) if dumping else plan._load(value[index]))
        except Fail as fail:
            fail.path.append(f"[{index}]")
            raise
        return out

    def _dump(self, value: Any) -> Any:
        if type(value) is not tuple and type(value) is not list:
            raise Fail(f"expected {self.name}, got {_tname(value)}")
        return self._walk(value, True)

    def _load(self, data: Any) -> Any:
        if type(data) is not list and type(data) is not tuple:
            raise Fail(f"expected a list, got {_tname(data)}")
        return tuple(self._walk(data, False))


class DictPlan(TypePlan):
    def __init__(self, tp: Any, key: TypePlan, value: TypePlan) -> None:
        super().__init__(tp)
        self.key = key
        self.value = value

    @cython.locals(key_plan=TypePlan, value_plan=TypePlan, out=dict)
    def _dump(self, value: Any) -> Any:
        if type(value) is not dict and not isinstance(value, _Mapping):
            raise Fail(f"expected {self.name}, got {_tname(value)}")
        key_plan = self.key
        value_plan = self.value
        out = {}
        k = None
        try:
            for k, v in value.items():
                out[key_plan._dump(k)] = value_plan._dump(v)
        except Fail as fail:
            fail.path.append(f"[{show(k)}]")
            raise
        return out

    @cython.locals(key_plan=TypePlan, value_plan=TypePlan, out=dict, source=dict)
    def _load(self, data: Any) -> Any:
        if type(data) is not dict:
            raise Fail(f"expected a dict, got {_tname(data)}")
        source = data
        key_plan = self.key
        value_plan = self.value
        out = {}
        k = None
        try:
            for k, v in source.items():
                out[key_plan._load(k)] = value_plan._load(v)
        except Fail as fail:
            fail.path.append(f"[{show(k)}]")
            raise
        return out


class IntKeyPlan(TypePlan):
    """An int-valued dict key: a decimal string in JSON, an int from msgpack."""

    def __init__(self, tp: Any, inner: TypePlan) -> None:
        super().__init__(tp)
        self.inner = inner

    def _dump(self, value: Any) -> Any:
        return str(self.inner._dump(value))

    def _load(self, data: Any) -> Any:
        if type(data) is str:
            number = parse_int_key(data)
            if number is None:
                raise Fail(f"expected an integer key, got {show(data)}")
            return self.inner._load(number)
        return self.inner._load(data)


# The plans whose whole work, for a value of this exact type, is to return it: the field loops
# check the type inline and call the plan only for other values (to convert or to fail).
_PASSED_AS_IS = {StrPlan: str, IntPlan: int, FloatPlan: float, BoolPlan: bool}


class _Field:
    """One field of a dataclass or pydantic model, with its plan."""

    def __init__(
        self, name: str, plan: TypePlan, init: bool = True, default: Any = _MISSING, factory: Any = _MISSING
    ) -> None:
        self.name = name
        self.plan = plan
        self.init = init
        self.default = default
        self.factory = factory
        self.exact = _PASSED_AS_IS.get(type(plan))  # values of this type need no call to the plan
        # ... when loaded; dumped, a float is checked for inf and nan, which FloatPlan marks for JSON's writer
        self.dump_exact = None if type(plan) is FloatPlan else self.exact


class DataclassPlan(TypePlan):
    """A dataclass travels as a dict of field name -> dumped value."""

    def setup(
        self, cls: type, fields: list[tuple[Any, ...]], has_dict: bool, post_init: bool, direct: bool
    ) -> None:
        """Fill in the fields, each (name, plan, init, default, factory), once their plans exist."""
        self.cls = cls
        self.fields = tuple(_Field(*f) for f in fields)
        self.template = dict.fromkeys(f[0] for f in fields)
        self.has_dict = has_dict
        self.post_init = post_init
        self.direct = direct

    @cython.locals(exact=cython.bint, out=dict, attrs=dict, f=_Field)
    def _dump(self, value: Any) -> Any:
        exact = type(value) is self.cls
        if not exact and not isinstance(value, self.cls):
            raise Fail(f"expected {self.name}, got {_tname(value)}")
        out = self.template.copy()
        try:
            if self.has_dict and exact:
                attrs = value.__dict__
                for f in self.fields:
                    field = attrs.get(f.name, _MISSING)
                    if type(field) is not f.dump_exact:
                        field = f.plan._dump(_read_attribute(value, f.name) if field is _MISSING else field)
                    out[f.name] = field
            else:
                for f in self.fields:
                    out[f.name] = f.plan._dump(_read_attribute(value, f.name))
        except Fail as fail:
            fail.path.append(f".{f.name}")
            raise
        return out

    @cython.locals(source=dict, values=dict, f=_Field)
    def _load(self, data: Any) -> Any:
        if type(data) is not dict:
            if isinstance(data, self.cls):
                return data
            raise Fail(f"expected a dict for {self.name}, got {_tname(data)}")
        source = data
        obj: Any = None
        if self.direct and self.has_dict:
            # Fill the instance's own __dict__, as the generated __init__ would: faster than
            # cls(**values), and bypasses a frozen class's __setattr__ the same way.
            obj = _object_new(self.cls)
            values = obj.__dict__
        else:
            values = {}
        try:
            for f in self.fields:
                if f.init:
                    raw = source.get(f.name, _MISSING)
                    if raw is not _MISSING:
                        values[f.name] = raw if type(raw) is f.exact else f.plan._load(raw)
                        continue
                if f.factory is not _MISSING:
                    values[f.name] = f.factory()
                elif f.default is not _MISSING:
                    values[f.name] = f.default
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
        except Exception as exc:
            if is_pydantic_error(exc):  # a pydantic dataclass validating in __init__
                raise pydantic_failure(exc) from None
            raise Fail(f"constructor raised {type(exc).__name__}: {exc}") from None
        return obj

    @cython.locals(f=_Field)
    def _construct(self, values: dict[str, Any]) -> Any:
        if not self.direct:
            return self.cls(**{f.name: values[f.name] for f in self.fields if f.init and f.name in values})
        # no __dict__ (slots): set each attribute as the generated __init__ would, past a frozen __setattr__
        obj: Any = _object_new(self.cls)
        for name, value in values.items():
            _object_setattr(obj, name, value)
        return obj


class RecursiveDataclassPlan(DataclassPlan):
    """A dataclass whose fields can hold it again (a tree, a linked list): each level counts against the
    recursion limit, as a Python frame does, so a value nesting deeper, or containing itself, raises
    RecursionError (a ``MarshalException`` from ``dump``/``load``) where the compiled plans would overflow
    the C stack. Only recursive types pay for the check.
    """

    def _dump(self, value: Any) -> Any:
        if cython.compiled:
            Py_EnterRecursiveCall(" while marshalling")
            try:
                return DataclassPlan._dump(self, value)
            finally:
                Py_LeaveRecursiveCall()
        return DataclassPlan._dump(self, value)  # a Python frame per level: Python counts it

    def _load(self, data: Any) -> Any:
        if cython.compiled:
            Py_EnterRecursiveCall(" while marshalling")
            try:
                return DataclassPlan._load(self, data)
            finally:
                Py_LeaveRecursiveCall()
        return DataclassPlan._load(self, data)


class PydanticPlan(TypePlan):
    """A pydantic model: dumped field by field (by name, like model_dump()), loaded through its validator."""

    def setup(
        self,
        cls: Any,
        fields: list[tuple[Any, ...]],
        convert: list[tuple[Any, ...]],
        by_name: bool,
        extra: bool,
    ) -> None:
        """Fill in the fields once their plans exist; ``convert``: fields we load before validation."""
        self.cls = cls
        self.fields = tuple(_Field(*f) for f in fields)
        self.template = dict.fromkeys(f[0] for f in fields)
        self.convert = tuple(_Field(*f) for f in convert)
        self.validate: Callable[..., Any] = cls.__pydantic_validator__.validate_python
        self.by_name = by_name
        self.extra = extra

    @cython.locals(attrs=dict, out=dict, f=_Field)
    def _dump(self, value: Any) -> Any:
        if not isinstance(value, self.cls):
            raise Fail(f"expected {self.name}, got {_tname(value)}")
        attrs = value.__dict__
        out = self.template.copy()
        try:
            for f in self.fields:
                field = attrs.get(f.name, _MISSING)
                if type(field) is not f.dump_exact:
                    field = f.plan._dump(_read_attribute(value, f.name) if field is _MISSING else field)
                out[f.name] = field
        except Fail as fail:
            fail.path.append(f".{f.name}")
            raise
        if self.extra and value.__pydantic_extra__:
            # extra fields have no declared type: their values are checked as Any's are (inf and nan marked)
            out.update(_dump_untyped(value.__pydantic_extra__))
        return out

    @cython.locals(source=dict, f=_Field)
    def _load(self, data: Any) -> Any:
        if type(data) is not dict:
            if isinstance(data, self.cls):
                return data
            raise Fail(f"expected a dict for {self.name}, got {_tname(data)}")
        if self.convert:
            source = dict(data)
            try:
                for f in self.convert:
                    raw = source.get(f.name, _MISSING)
                    if raw is not _MISSING:
                        source[f.name] = f.plan._load(raw)
            except Fail as fail:
                fail.path.append(f".{f.name}")
                raise
            data = source
        try:
            if self.by_name:
                return self.validate(data, by_alias=False, by_name=True)
            return self.validate(data)
        except Exception as exc:
            if is_pydantic_error(exc):
                raise pydantic_failure(exc) from None
            raise


class RecursivePydanticPlan(PydanticPlan):
    """A pydantic model whose fields can hold it again: each level counts against the recursion limit."""

    def _dump(self, value: Any) -> Any:
        if cython.compiled:
            Py_EnterRecursiveCall(" while marshalling")
            try:
                return PydanticPlan._dump(self, value)
            finally:
                Py_LeaveRecursiveCall()
        return PydanticPlan._dump(self, value)

    def _load(self, data: Any) -> Any:
        if cython.compiled:
            Py_EnterRecursiveCall(" while marshalling")
            try:
                return PydanticPlan._load(self, data)
            finally:
                Py_LeaveRecursiveCall()
        return PydanticPlan._load(self, data)


class AdapterPlan(TypePlan):
    """A type only pydantic knows (it has __get_pydantic_core_schema__): a TypeAdapter does both ways."""

    def __init__(self, tp: Any, adapter: Any) -> None:
        super().__init__(tp)
        self.adapter = adapter

    def _dump(self, value: Any) -> Any:
        try:
            # the adapter writes inf and nan as they are (``ser_json_inf_nan="constants"``, set by the builder)
            # rather than as None: marked like Any's, JSON's writer refuses them, msgpack carries them
            return _dump_untyped(self.adapter.dump_python(value, mode="json"))
        except Fail:
            raise
        except Exception as exc:
            raise Fail(f"cannot dump {_tname(value)}: {exc}") from None

    def _load(self, data: Any) -> Any:
        try:
            return self.adapter.validate_python(data)
        except Exception as exc:
            if is_pydantic_error(exc):
                raise pydantic_failure(exc) from None
            raise


# ---------------------------------------------------------------- public API

_builder = PlanBuilder(sys.modules[__name__])
_cache: dict[Any, TypePlan] = _builder.cache
_build: Callable[[Any], TypePlan] = _builder.plan_for


def plan_for(tp: Any) -> TypePlan:
    """The marshalling plan for ``tp``: built once per type (thread-safe) and cached."""
    try:
        plan = _cache.get(tp)
    except TypeError:  # an unhashable hint (Annotated metadata): the builder builds it uncached
        plan = None
    if plan is not None:
        return plan
    return _build(tp)


__all__ = ["TypePlan", "plan_for", "type_name"]
