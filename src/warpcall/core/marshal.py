"""Type-driven marshalling: values <-> primitive trees (dict/list/str/int/float/bool/None).

``plan_for(tp)`` builds a ``TypePlan`` once per type and caches it; ``plan.dump(value)``
and ``plan.load(data)`` then only walk the value. Bad input raises ``MarshalException``
whose message names the type and the path, e.g. ``Order.items[2].when: expected an ISO
datetime string, got int``.

This module holds the plans (the per-call path). The plan *builder* (reading type hints,
choosing a plan per type) lives in ``warpcall.core.marshal_plan`` and is shared by the
compiled twin, which passes its own plan classes in; so both cores support the same types
and fail at plan time with the same messages.
"""

from __future__ import annotations

import binascii
import collections.abc as cabc
import dataclasses
import sys
from base64 import b64decode, b64encode
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from warpcall.core.marshal_plan import (
    Fail,
    PlanBuilder,
    parse_int_key,
    pydantic_failure,
    show,
    type_name,
    union_mismatch,
)
from warpcall.exceptions import MarshalException

try:
    from pydantic import ValidationError
except ImportError:  # pydantic is optional for users who marshal only dataclasses
    ValidationError = None  # type: ignore[assignment,misc]

_MISSING = dataclasses.MISSING


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

    def load(self, data: Any) -> Any:
        """Turn a primitive tree back into a validated value of ``tp``."""
        try:
            return self._load(data)
        except Fail as fail:
            raise MarshalException(fail.render(self.name)) from None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    def _dump(self, value: Any) -> Any:
        raise NotImplementedError

    def _load(self, data: Any) -> Any:
        raise NotImplementedError


class AnyPlan(TypePlan):
    def _dump(self, value: Any) -> Any:
        return value

    def _load(self, data: Any) -> Any:
        return data


class NonePlan(TypePlan):
    def _dump(self, value: Any) -> Any:
        if value is None:
            return None
        raise Fail(f"expected None, got {type(value).__name__}")

    _load = _dump


class StrPlan(TypePlan):
    def _dump(self, value: Any) -> Any:
        if type(value) is str:
            return value
        if isinstance(value, str):
            return str(value)
        raise Fail(f"expected str, got {type(value).__name__}")

    _load = _dump


class IntPlan(TypePlan):
    def _dump(self, value: Any) -> Any:
        if type(value) is int:
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
        raise Fail(f"expected int, got {type(value).__name__}")

    _load = _dump


class FloatPlan(TypePlan):
    def _dump(self, value: Any) -> Any:
        if type(value) is float:
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise Fail(f"expected float, got {type(value).__name__}")

    _load = _dump


class BoolPlan(TypePlan):
    def _dump(self, value: Any) -> Any:
        if value is True or value is False:
            return value
        raise Fail(f"expected bool, got {type(value).__name__}")

    _load = _dump


class BytesPlan(TypePlan):
    def _dump(self, value: Any) -> Any:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return b64encode(value).decode("ascii")
        raise Fail(f"expected bytes, got {type(value).__name__}")

    def _load(self, data: Any) -> Any:
        if type(data) is str:
            try:
                return b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise Fail(f"invalid base64 string {show(data)}") from None
        if isinstance(data, (bytes, bytearray)):
            return bytes(data)
        raise Fail(f"expected a base64 string or bytes, got {type(data).__name__}")


class _IsoPlan(TypePlan):
    """datetime, date and time travel as ISO 8601 strings."""

    kind = ""
    exclude: type | None = None

    def _dump(self, value: Any) -> Any:
        if isinstance(value, self.tp) and (self.exclude is None or not isinstance(value, self.exclude)):
            return value.isoformat()
        raise Fail(f"expected {self.kind}, got {type(value).__name__}")

    def _load(self, data: Any) -> Any:
        if type(data) is str:
            try:
                return self.tp.fromisoformat(data)
            except ValueError:
                raise Fail(f"invalid ISO {self.kind} string {show(data)}") from None
        if type(data) is self.tp:
            return data
        raise Fail(f"expected an ISO {self.kind} string, got {type(data).__name__}")


class DateTimePlan(_IsoPlan):
    kind = "datetime"


class DatePlan(_IsoPlan):
    kind = "date"
    exclude = datetime


class TimePlan(_IsoPlan):
    kind = "time"


class UUIDPlan(TypePlan):
    def _dump(self, value: Any) -> Any:
        if isinstance(value, UUID):
            return str(value)
        raise Fail(f"expected UUID, got {type(value).__name__}")

    def _load(self, data: Any) -> Any:
        if type(data) is str:
            try:
                return UUID(data)
            except ValueError:
                raise Fail(f"invalid UUID string {show(data)}") from None
        if type(data) is UUID:
            return data
        raise Fail(f"expected a UUID string, got {type(data).__name__}")


class DecimalPlan(TypePlan):
    def _dump(self, value: Any) -> Any:
        if isinstance(value, Decimal):
            return str(value)
        raise Fail(f"expected Decimal, got {type(value).__name__}")

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

    def __init__(self, tp: Any, members: dict, value_types: frozenset, choices: str) -> None:
        super().__init__(tp)
        self.members = members
        self.value_types = value_types
        self.choices = choices

    def _dump(self, value: Any) -> Any:
        if isinstance(value, self.tp):
            return value._value_
        raise Fail(f"expected {self.name}, got {type(value).__name__}")

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

    def __init__(self, tp: Any, load_map: dict, dump_map: dict, choices: str) -> None:
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
        self, tp: Any, none_ok: bool, load_exact: dict, dump_exact: dict, others: tuple, subclassed: tuple
    ) -> None:
        super().__init__(tp)
        self.none_ok = none_ok
        self.load_exact = load_exact
        self.dump_exact = dump_exact
        self.others = others
        self.subclassed = subclassed

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

    def __init__(self, tp: Any, item: TypePlan, factory: type, accept: tuple) -> None:
        super().__init__(tp)
        self.item = item
        self.factory = factory
        self.accept = accept

    def _dump(self, value: Any) -> Any:
        if not isinstance(value, self.accept):
            raise Fail(f"expected {self.name}, got {type(value).__name__}")
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

    def _load(self, data: Any) -> Any:
        if type(data) is not list and type(data) is not tuple:
            raise Fail(f"expected a list, got {type(data).__name__}")
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
        factory = self.factory
        if factory is list:
            return out
        try:
            return factory(out)
        except TypeError:  # an element that cannot go into a set
            raise Fail(f"items of {self.name} must be hashable") from None


class TuplePlan(TypePlan):
    """Fixed-length tuples: a list of exactly len(items) on the wire."""

    def __init__(self, tp: Any, items: tuple) -> None:
        super().__init__(tp)
        self.items = items

    def _walk(self, value: Any, dumping: bool) -> list:
        if len(value) != len(self.items):
            raise Fail(f"expected {len(self.items)} items, got {len(value)}")
        out = []
        index = 0
        try:
            for plan, element in zip(self.items, value):
                out.append(plan._dump(element) if dumping else plan._load(element))
                index += 1
        except Fail as fail:
            fail.path.append(f"[{index}]")
            raise
        return out

    def _dump(self, value: Any) -> Any:
        if type(value) is not tuple and type(value) is not list:
            raise Fail(f"expected {self.name}, got {type(value).__name__}")
        return self._walk(value, True)

    def _load(self, data: Any) -> Any:
        if type(data) is not list and type(data) is not tuple:
            raise Fail(f"expected a list, got {type(data).__name__}")
        return tuple(self._walk(data, False))


class DictPlan(TypePlan):
    def __init__(self, tp: Any, key: TypePlan, value: TypePlan) -> None:
        super().__init__(tp)
        self.key = key
        self.value = value

    def _dump(self, value: Any) -> Any:
        if not isinstance(value, cabc.Mapping):
            raise Fail(f"expected {self.name}, got {type(value).__name__}")
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

    def _load(self, data: Any) -> Any:
        if type(data) is not dict:
            raise Fail(f"expected a dict, got {type(data).__name__}")
        key_plan = self.key
        value_plan = self.value
        out = {}
        k = None
        try:
            for k, v in data.items():
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


class DataclassPlan(TypePlan):
    """A dataclass travels as a dict of field name -> dumped value."""

    def setup(self, cls: type, fields: list, has_dict: bool, post_init: bool, direct: bool) -> None:
        """Fill in the fields once their plans exist (after recursion)."""
        self.cls = cls
        self.fields = tuple(fields)  # (name, plan, init, default, factory)
        self.has_dict = has_dict
        self.post_init = post_init
        self.direct = direct

    def _dump(self, value: Any) -> Any:
        if type(value) is not self.cls and not isinstance(value, self.cls):
            raise Fail(f"expected {self.name}, got {type(value).__name__}")
        out = {}
        name = None
        try:
            if self.has_dict and type(value) is self.cls:
                attrs = value.__dict__
                for name, plan, _, _, _ in self.fields:
                    try:
                        field = attrs[name]
                    except KeyError:
                        field = _read_attribute(value, name)
                    out[name] = plan._dump(field)
            else:
                for name, plan, _, _, _ in self.fields:
                    out[name] = plan._dump(_read_attribute(value, name))
        except Fail as fail:
            fail.path.append(f".{name}")
            raise
        return out

    def _load(self, data: Any) -> Any:
        if type(data) is not dict:
            if isinstance(data, self.cls):
                return data
            raise Fail(f"expected a dict for {self.name}, got {type(data).__name__}")
        values = {}
        name = None
        try:
            for name, plan, init, default, factory in self.fields:
                if init:
                    raw = data.get(name, _MISSING)
                    if raw is not _MISSING:
                        values[name] = plan._load(raw)
                        continue
                if factory is not _MISSING:
                    values[name] = factory()
                elif default is not _MISSING:
                    values[name] = default
                elif init:
                    raise Fail("missing required field")
        except Fail as fail:
            fail.path.append(f".{name}")
            raise
        return self._construct(values)

    def _construct(self, values: dict) -> Any:
        cls = self.cls
        try:
            if not self.direct:
                return cls(**{f[0]: values[f[0]] for f in self.fields if f[2] and f[0] in values})
            # Fill the instance directly, as the generated __init__ would: faster than
            # cls(**values), and bypasses a frozen class's __setattr__ the same way.
            obj = object.__new__(cls)
            if self.has_dict:
                obj.__dict__.update(values)
            else:
                for name, value in values.items():
                    object.__setattr__(obj, name, value)
            if self.post_init:
                obj.__post_init__()
            return obj
        except ValidationError as exc:  # a pydantic dataclass validating in __init__
            raise pydantic_failure(exc) from None
        except Exception as exc:
            raise Fail(f"constructor raised {type(exc).__name__}: {exc}") from None


def _read_attribute(value: Any, name: str) -> Any:
    try:
        return getattr(value, name)
    except AttributeError:
        raise Fail("attribute is not set") from None


class PydanticPlan(TypePlan):
    """A pydantic model: dumped field by field (by name, like model_dump()), loaded through its validator."""

    def setup(self, cls: type, fields: list, convert: list, by_name: bool, extra: bool) -> None:
        """Fill in the fields once their plans exist; ``convert``: fields we load before validation."""
        self.cls = cls
        self.fields = tuple(fields)  # (name, plan)
        self.convert = tuple(convert)  # (name, plan)
        self.validate = cls.__pydantic_validator__.validate_python
        self.by_name = by_name
        self.extra = extra

    def _dump(self, value: Any) -> Any:
        if not isinstance(value, self.cls):
            raise Fail(f"expected {self.name}, got {type(value).__name__}")
        attrs = value.__dict__
        out = {}
        name = None
        try:
            for name, plan in self.fields:
                try:
                    field = attrs[name]
                except KeyError:
                    field = _read_attribute(value, name)
                out[name] = plan._dump(field)
        except Fail as fail:
            fail.path.append(f".{name}")
            raise
        if self.extra and value.__pydantic_extra__:
            out.update(value.__pydantic_extra__)
        return out

    def _load(self, data: Any) -> Any:
        if type(data) is not dict:
            if isinstance(data, self.cls):
                return data
            raise Fail(f"expected a dict for {self.name}, got {type(data).__name__}")
        if self.convert:
            data = dict(data)
            name = None
            try:
                for name, plan in self.convert:
                    if name in data:
                        data[name] = plan._load(data[name])
            except Fail as fail:
                fail.path.append(f".{name}")
                raise
        try:
            if self.by_name:
                return self.validate(data, by_alias=False, by_name=True)
            return self.validate(data)
        except ValidationError as exc:
            raise pydantic_failure(exc) from None


class AdapterPlan(TypePlan):
    """A type only pydantic knows (it has __get_pydantic_core_schema__): a TypeAdapter does both ways."""

    def __init__(self, tp: Any, adapter: Any) -> None:
        super().__init__(tp)
        self.adapter = adapter

    def _dump(self, value: Any) -> Any:
        try:
            return self.adapter.dump_python(value, mode="json")
        except Exception as exc:
            raise Fail(f"cannot dump {type(value).__name__}: {exc}") from None

    def _load(self, data: Any) -> Any:
        try:
            return self.adapter.validate_python(data)
        except ValidationError as exc:
            raise pydantic_failure(exc) from None


# ---------------------------------------------------------------- public API

_builder = PlanBuilder(sys.modules[__name__])


def plan_for(tp: Any) -> TypePlan:
    """The marshalling plan for ``tp``: built once per type (thread-safe) and cached."""
    return _builder.plan_for(tp)


__all__ = ["TypePlan", "plan_for"]
