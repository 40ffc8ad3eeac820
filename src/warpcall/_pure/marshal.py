"""Type-driven marshalling: values <-> primitive trees (dict/list/str/int/float/bool/None).

``plan_for(tp)`` builds a ``TypePlan`` once per type and caches it; ``plan.dump(value)``
and ``plan.load(data)`` then only walk the value. Bad input raises ``MarshalException``
whose message names the type and the path, e.g. ``Order.items[2].when: expected an ISO
datetime string, got int``.

The plan *builder* (reading type hints, choosing a plan per type) lives here and is shared
by the compiled twin, which passes its own plan classes in; so both cores support the same
types and fail at plan time with the same messages.
"""

from __future__ import annotations

import binascii
import collections.abc as cabc
import dataclasses
import enum
import sys
import threading
import types
import typing
from base64 import b64decode, b64encode
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, TypeVar, Union, get_args, get_origin
from uuid import UUID

from warpcall.exceptions import MarshalException

try:
    from pydantic import BaseModel, TypeAdapter, ValidationError
except ImportError:  # pydantic is optional for users who marshal only dataclasses
    BaseModel = TypeAdapter = ValidationError = None  # type: ignore[assignment,misc]

NoneType = type(None)
_MISSING = dataclasses.MISSING
_PRIMITIVES = (str, int, float, bool, NoneType)


# ---------------------------------------------------------------- helpers shared by both cores


def type_name(tp: Any) -> str:
    """A short readable name for a type or type hint, as used in error messages."""
    if tp is None or tp is NoneType:
        return "None"
    if tp is Any:
        return "Any"
    if tp is Ellipsis:
        return "..."
    if isinstance(tp, TypeVar):
        return tp.__name__
    if isinstance(tp, typing.ForwardRef):
        return tp.__forward_arg__
    if isinstance(tp, str):
        return tp
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is Union or origin is types.UnionType:
        return " | ".join(type_name(a) for a in args)
    if origin is Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    if origin is typing.Annotated:
        return type_name(tp.__origin__)
    if origin is not None:
        base = getattr(origin, "__name__", None) or repr(origin)
        return f"{base}[{', '.join(type_name(a) for a in args)}]" if args else base
    if isinstance(tp, type):
        return tp.__name__
    return repr(tp)


def show(value: Any) -> str:
    """A value in an error message: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_int_key(key: str) -> int | None:
    """An int from a JSON object key ('-12'), or None when it is not a plain decimal integer."""
    digits = key[1:] if key[:1] == "-" else key
    if digits.isascii() and digits.isdigit():
        return int(key)
    return None


class Fail(Exception):
    """Raised inside a plan; ``path`` collects segments while unwinding, innermost first."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str] = []

    def render(self, root: str) -> str:
        return f"{root}{''.join(reversed(self.path))}: {self.message}"


def union_mismatch(name: str, value: Any, attempts: list) -> Fail:
    """The failure of a union: for a dict or list, also why each member tried rejected it."""
    message = f"expected {name}, got {type(value).__name__}"
    if attempts and type(value) in (dict, list):
        reasons = "; ".join(
            f"as {member}{''.join(reversed(fail.path))}: {fail.message}" for member, fail in attempts
        )
        message += f" ({reasons})"
    return Fail(message)


def pydantic_failure(exc: Any) -> Fail:
    """Turn a pydantic ValidationError into a Fail carrying the first error's location."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    if first["type"] == "missing":
        message = "missing required field"
    else:
        message = f"{first['msg']}, got {type(first.get('input')).__name__}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more errors)"
    fail = Fail(message)
    for part in reversed(first["loc"]):
        fail.path.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return fail


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


# ---------------------------------------------------------------- the plan builder (shared)


class PlanBuilder:
    """Builds and caches plans; ``kinds`` is the module whose plan classes to instantiate."""

    def __init__(self, kinds: Any) -> None:
        self.kinds = kinds
        self.cache: dict[Any, Any] = {}
        self._lock = threading.RLock()
        self._building: dict[Any, Any] | None = None

    def plan_for(self, tp: Any) -> Any:
        """The cached plan for ``tp``, built on first use; raises MarshalException for unsupported types."""
        try:
            plan = self.cache.get(tp)
        except TypeError:  # unhashable hint (e.g. Annotated metadata): build, never cache
            with self._lock:
                return self._build_top(tp, cache=False)
        if plan is not None:
            return plan
        with self._lock:
            plan = self.cache.get(tp)
            if plan is None:
                plan = self._build_top(tp, cache=True)
            return plan

    def _build_top(self, tp: Any, cache: bool) -> Any:
        if self._building is not None:  # plan_for() again on this thread, from inside a build
            return self._build(tp, type_name(tp))
        self._building = {}
        try:
            plan = self._build(tp, type_name(tp))
            if cache:
                # publish only complete plans: nothing half-built is visible to other threads
                self.cache.update(self._building)
                self.cache[tp] = plan
            return plan
        finally:
            self._building = None

    def _build(self, tp: Any, where: str) -> Any:
        try:
            known = self.cache.get(tp) or self._building.get(tp)
        except TypeError:
            known = None
        if known is not None:
            return known
        plan = self._make(tp, where)
        try:
            self._building[tp] = plan
        except TypeError:
            pass
        return plan

    def _unsupported(self, tp: Any, where: str, why: str = "") -> MarshalException:
        detail = f" ({why})" if why else ""
        name = type_name(tp)
        subject = name if where == name else f"{where}: {name}"
        return MarshalException(
            f"{subject} is not a supported type{detail}; use dataclasses, pydantic models, enums, "
            "primitives, datetime/date/time, UUID, Decimal, bytes, Literal, unions and standard containers"
        )

    def _make(self, tp: Any, where: str) -> Any:
        k = self.kinds
        origin = get_origin(tp)
        if origin is typing.Annotated:
            return self._build(tp.__origin__, where)
        if tp is Any or tp is object or isinstance(tp, TypeVar):
            return k.AnyPlan(tp)
        if tp is None or tp is NoneType:
            return k.NonePlan(tp)
        simple = {
            str: k.StrPlan, int: k.IntPlan, float: k.FloatPlan, bool: k.BoolPlan, bytes: k.BytesPlan,
            datetime: k.DateTimePlan, date: k.DatePlan, time: k.TimePlan,
            UUID: k.UUIDPlan, Decimal: k.DecimalPlan,
        }
        try:
            maker = simple.get(tp)
        except TypeError:
            maker = None
        if maker is not None:
            return maker(tp)
        if isinstance(tp, typing.NewType):
            return self._build(tp.__supertype__, where)
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return self._enum(tp, where)
        if BaseModel is not None and isinstance(tp, type) and issubclass(tp, BaseModel):
            return self._pydantic(tp, where)
        dataclass_type = origin if origin is not None else tp
        if isinstance(dataclass_type, type) and dataclasses.is_dataclass(dataclass_type):
            return self._dataclass(tp, dataclass_type, where)
        if origin is Union or origin is types.UnionType:
            return self._union(tp, where)
        if origin is Literal:
            return self._literal(tp, where)
        container = origin if origin is not None else tp
        args = get_args(tp)
        if container in (list, cabc.Sequence, cabc.MutableSequence, typing.Sequence):
            item = self._build(args[0] if args else Any, f"{where}[]")
            return k.ListPlan(tp, item, list, (list, tuple))
        if container in (set, frozenset, cabc.Set, cabc.MutableSet):
            item = self._build(args[0] if args else Any, f"{where}[]")
            factory = frozenset if container is frozenset else set
            return k.ListPlan(tp, item, factory, (set, frozenset, list, tuple))
        if container is tuple:
            if origin is None or (len(args) == 2 and args[1] is Ellipsis):
                item = self._build(args[0] if args else Any, f"{where}[]")
                return k.ListPlan(tp, item, tuple, (tuple, list))
            if args == ((),):
                args = ()
            items = tuple(self._build(a, f"{where}[{i}]") for i, a in enumerate(args))
            return k.TuplePlan(tp, items)
        if container in (dict, cabc.Mapping, cabc.MutableMapping):
            key_type, value_type = args if len(args) == 2 else (Any, Any)
            key = self._key(key_type, where)
            return k.DictPlan(tp, key, self._build(value_type, f"{where}[]"))
        if hasattr(tp, "__get_pydantic_core_schema__") and TypeAdapter is not None:
            return k.AdapterPlan(tp, TypeAdapter(tp))
        raise self._unsupported(tp, where)

    def _key(self, key_type: Any, where: str) -> Any:
        k = self.kinds
        plan = self._build(key_type, f"{where} key")
        inner = key_type.__origin__ if get_origin(key_type) is typing.Annotated else key_type
        as_strings = (k.StrPlan, k.AnyPlan, k.UUIDPlan, k.DecimalPlan, k.DateTimePlan, k.DatePlan, k.TimePlan)
        if isinstance(plan, as_strings):
            return plan
        if isinstance(plan, k.IntPlan):
            return k.IntKeyPlan(key_type, plan)
        values = []
        if isinstance(plan, k.EnumPlan):
            values = [m.value for m in inner]
        elif isinstance(plan, k.LiteralPlan):
            values = [getattr(v, "value", v) for v in get_args(inner)]
        if values and all(type(v) is str for v in values):
            return plan
        if values and all(type(v) is int for v in values):
            return k.IntKeyPlan(key_type, plan)
        raise MarshalException(
            f"{where}: dict keys must be str, int, an enum or a string-valued type, got {type_name(key_type)}"
        )

    def _enum(self, tp: type, where: str) -> Any:
        members = {}
        for member in tp:
            if type(member._value_) not in _PRIMITIVES:
                kind = type(member._value_).__name__
                raise self._unsupported(tp, where, f"member {member.name} has a {kind} value")
            members.setdefault(member._value_, member)
        value_types = frozenset(type(v) for v in members)
        choices = ", ".join(show(v) for v in members)
        return self.kinds.EnumPlan(tp, members, value_types, choices)

    def _literal(self, tp: Any, where: str) -> Any:
        load_map, dump_map = {}, {}
        for value in get_args(tp):
            wire = value._value_ if isinstance(value, enum.Enum) else value
            if type(wire) not in _PRIMITIVES:
                raise self._unsupported(tp, where, f"literal {value!r}")
            load_map[(type(wire), wire)] = value
            dump_map[(type(value), value)] = wire
        choices = ", ".join(show(w) for _, w in load_map)
        return self.kinds.LiteralPlan(tp, load_map, dump_map, choices)

    def _union(self, tp: Any, where: str) -> Any:
        k = self.kinds
        members = [a for a in get_args(tp) if a is not NoneType and a is not None]
        none_ok = len(members) != len(get_args(tp))
        if none_ok and len(members) == 1:
            return k.OptionalPlan(tp, self._build(members[0], where))
        load_exact: dict = {}
        dump_exact: dict = {}
        others = []
        for member in members:
            plan = self._build(member, where)
            bare = member.__origin__ if get_origin(member) is typing.Annotated else member
            if bare in (str, int, float, bool, bytes):
                load_exact.setdefault(bare, plan)
                dump_exact.setdefault(bare, plan)
                if bare is bytes:
                    others.append(plan)  # bytes also come as base64 strings
                continue
            if isinstance(bare, type) and get_origin(member) is None and bare not in (object,):
                dump_exact.setdefault(bare, plan)  # classes: dataclasses, models, enums, datetime, ...
            others.append(plan)
        subclassed = tuple(plan for bare, plan in load_exact.items() if bare in (str, int, float))
        if float in load_exact and int not in load_exact:
            load_exact[int] = load_exact[float]
            dump_exact[int] = dump_exact[float]
        return k.UnionPlan(tp, none_ok, load_exact, dump_exact, tuple(others), subclassed)

    def _dataclass(self, tp: Any, cls: type, where: str) -> Any:
        plan = self.kinds.DataclassPlan(tp)
        self._building[tp] = plan  # before the fields, so recursive references find it
        hints = self._hints(cls, where)
        params = getattr(cls, "__parameters__", ())
        args = get_args(tp)
        mapping = dict(zip(params, args)) if args else {}
        fields = []
        for field in dataclasses.fields(cls):
            hint = _substitute(hints.get(field.name, Any), mapping)
            field_plan = self._build(hint, f"{type_name(tp)}.{field.name}")
            fields.append((field.name, field_plan, field.init, field.default, field.default_factory))
        init_vars = any(
            f._field_type is dataclasses._FIELD_INITVAR  # type: ignore[attr-defined]
            for f in cls.__dataclass_fields__.values()
        )
        direct = (
            cls.__dataclass_params__.init
            and not init_vars
            and cls.__new__ is object.__new__
            and not hasattr(cls, "__pydantic_validator__")  # pydantic dataclasses validate in __init__
        )
        has_dict = cls.__dictoffset__ != 0
        plan.setup(cls, fields, has_dict, hasattr(cls, "__post_init__"), bool(direct))
        return plan

    def _hints(self, cls: type, where: str) -> dict:
        module = sys.modules.get(cls.__module__)
        globalns = dict(vars(module)) if module is not None else {}
        try:
            return typing.get_type_hints(cls, globalns=globalns, localns={cls.__name__: cls})
        except Exception as exc:
            raise MarshalException(
                f"{where}: cannot resolve the type hints of {cls.__name__} ({exc}); "
                "define the referenced types at module level"
            ) from None

    def _pydantic(self, tp: type, where: str) -> Any:
        k = self.kinds
        if not tp.__pydantic_complete__:
            try:
                tp.model_rebuild()
            except Exception as exc:
                raise MarshalException(
                    f"{where}: pydantic model {tp.__name__} is not complete ({exc})"
                ) from None
        plan = k.PydanticPlan(tp)
        self._building[tp] = plan
        fields, convert = [], []
        by_name = False
        for name, info in tp.model_fields.items():
            field_plan = self._build(info.annotation, f"{type_name(tp)}.{name}")
            fields.append((name, field_plan))
            if not _validates_natively(info.annotation, set()):
                convert.append((name, field_plan))
            if info.alias is not None and info.alias != name:
                by_name = True
        extra = tp.model_config.get("extra") == "allow"
        plan.setup(tp, fields, convert, by_name, extra)
        return plan


def _substitute(hint: Any, mapping: dict) -> Any:
    """Replace type variables of a generic dataclass by its arguments (Page[T] as Page[Data])."""
    if not mapping:
        return hint
    if isinstance(hint, TypeVar):
        return mapping.get(hint, Any)
    params = getattr(hint, "__parameters__", ())
    if params and get_origin(hint) is not None:
        return hint[tuple(mapping.get(p, Any) for p in params)]
    return hint


def _validates_natively(tp: Any, seen: set) -> bool:
    """True when pydantic's own validator turns our wire form of ``tp`` into the same value we would."""
    if tp in _PRIMITIVES or tp is Any or tp is None or isinstance(tp, TypeVar):
        return True
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is typing.Annotated:
        return _validates_natively(tp.__origin__, seen)
    if origin is Union or origin is types.UnionType:
        return all(_validates_natively(a, seen) for a in args)
    if origin is Literal:
        return all(type(a) in _PRIMITIVES for a in args)
    if origin in (list, cabc.Sequence, typing.Sequence):
        return not args or _validates_natively(args[0], seen)
    if origin is dict:
        return args[0] is str and _validates_natively(args[1], seen)
    if isinstance(tp, type) and BaseModel is not None and issubclass(tp, BaseModel):
        if tp in seen:
            return False
        seen.add(tp)
        return all(_validates_natively(f.annotation, seen) for f in tp.model_fields.values())
    return False


# ---------------------------------------------------------------- public API

_builder = PlanBuilder(sys.modules[__name__])


def plan_for(tp: Any) -> TypePlan:
    """The marshalling plan for ``tp``: built once per type (thread-safe) and cached."""
    return _builder.plan_for(tp)


__all__ = ["TypePlan", "plan_for"]
