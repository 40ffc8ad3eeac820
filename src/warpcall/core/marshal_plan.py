"""The marshalling plan builder and the failure helpers of ``warpcall.core.marshal``.

``PlanBuilder`` reads type hints and chooses a plan per type, once per type. It runs once per
type, so it stays plain Python; it instantiates the plan classes of the build of
``warpcall.core.marshal`` it is given (the compiled one, or the same source run as plain
Python, which tests load beside it), so both builds support the same types and fail at plan
time with the same messages. ``Fail`` and the message helpers are what the plans raise and
render while walking a value.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import enum
import sys
import threading
import types
import typing
from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable, Literal, TypeVar, Union, get_args, get_origin
from uuid import UUID

from warpcall.exceptions import MarshalException

if TYPE_CHECKING:
    from pydantic import BaseModel

NoneType = type(None)
_PRIMITIVES = (str, int, float, bool, NoneType)


def iso_parser(tp: Any) -> Callable[[str], Any]:
    """``tp.fromisoformat``, accepting a ``Z`` suffix for UTC on every supported Python.

    Python 3.10's parser rejects ``2024-01-01T06:00:00Z`` (JavaScript's and pydantic's way of writing
    UTC); 3.11 and later read it as ``+00:00``.
    """
    parse: Callable[[str], Any] = tp.fromisoformat
    if sys.version_info >= (3, 11) or tp is date:
        return parse

    def parse_utc_suffix(text: str) -> Any:
        if text[-1:] in ("Z", "z"):
            text = text[:-1] + "+00:00"
        return parse(text)

    return parse_utc_suffix


# ---------------------------------------------------------------- pydantic, looked up, never imported here
#
# pydantic is optional, and importing it costs a calling process more than the rest of its client
# path: a type is a pydantic model, and an error pydantic's, only once pydantic has defined them,
# so the builder and the plans look pydantic up in sys.modules instead of importing it.


def pydantic_base_model() -> type[BaseModel] | None:
    """pydantic's ``BaseModel`` once pydantic has defined it in this process, else None."""
    main = sys.modules.get("pydantic.main")
    return getattr(main, "BaseModel", None) if main is not None else None


def is_pydantic_error(exc: BaseException) -> bool:
    """True for pydantic's ``ValidationError`` (pydantic_core's class, which pydantic re-exports)."""
    core = sys.modules.get("pydantic_core")
    error = getattr(core, "ValidationError", None) if core is not None else None
    return error is not None and isinstance(exc, error)


# ---------------------------------------------------------------- helpers of the plans


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


class NonFiniteFloat(float):
    """An inf or nan in a dumped tree, marked by the plans so that JSON's writer refuses it by name.

    A plain float to msgpack and protobuf, which carry it. orjson would write a plain one as ``null``
    (a different value) without a word; this subclass it refuses, so the check costs nothing until
    such a value turns up (``warpcall.core.envelope``).
    """

    __slots__ = ()


class Fail(Exception):
    """Raised inside a plan; ``path`` collects segments while unwinding, innermost first."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str] = []

    def render(self, root: str) -> str:
        return f"{root}{''.join(reversed(self.path))}: {self.message}"


def union_mismatch(name: str, value: Any, attempts: list[tuple[str, Fail]]) -> Fail:
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


# ---------------------------------------------------------------- the plan builder


class PlanBuilder:
    """Builds and caches plans; ``kinds`` is the build of the marshal module whose plan classes to use."""

    def __init__(self, kinds: types.ModuleType) -> None:
        self.kinds = kinds
        self.cache: dict[Any, Any] = {}
        self._lock = threading.RLock()
        self._active = False  # a build is under way (on the thread holding the lock)
        self._building: dict[Any, Any] = {}  # its plans so far, published when it completes
        # dataclasses and models whose fields lead back to them (found when a field's plan is the one
        # being set up), built as the Recursive* plans, which bound their recursion
        self._recursive: set[Any] = set()
        self._in_setup: set[Any] = set()
        self._found_recursive = False

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
        if self._active:  # plan_for() again on this thread, from inside a build
            return self._build(tp, type_name(tp))
        self._active = True
        try:
            plan = self._build(tp, type_name(tp))
            while self._found_recursive:
                # a type turned out to lead back to itself after its plan was made: build again, that
                # type's plan now of the recursive kind (no half-built plan was published)
                self._found_recursive = False
                self._building = {}
                plan = self._build(tp, type_name(tp))
            if cache:
                # publish only complete plans: nothing half-built is visible to other threads
                self.cache.update(self._building)
                self.cache[tp] = plan
            return plan
        finally:
            self._active = False
            self._building = {}
            self._in_setup = set()
            self._found_recursive = False

    def _build(self, tp: Any, where: str) -> Any:
        try:
            known = self.cache.get(tp) or self._building.get(tp)
        except TypeError:
            known = None
        if known is not None:
            if tp in self._in_setup and tp not in self._recursive:
                self._recursive.add(tp)
                self._found_recursive = True
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
        base_model = pydantic_base_model()
        if base_model is not None and isinstance(tp, type) and issubclass(tp, base_model):
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
        if hasattr(tp, "__get_pydantic_core_schema__"):
            try:  # the type speaks pydantic's protocol: the first such type imports pydantic
                from pydantic import ConfigDict, TypeAdapter
            except ImportError:
                pass
            else:
                try:  # inf and nan dumped as they are, not as None: the plan marks them for JSON's writer
                    adapter = TypeAdapter(tp, config=ConfigDict(ser_json_inf_nan="constants"))
                except Exception:  # noqa: BLE001 - a type with a config of its own takes none here
                    adapter = TypeAdapter(tp)
                return k.AdapterPlan(tp, adapter)
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

    def _enum(self, tp: type[enum.Enum], where: str) -> Any:
        members: dict[Any, enum.Enum] = {}
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
        load_exact: dict[Any, Any] = {}
        dump_exact: dict[Any, Any] = {}
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

    def _dataclass(self, tp: Any, cls: Any, where: str) -> Any:
        recursive = tp in self._recursive
        plan = (self.kinds.RecursiveDataclassPlan if recursive else self.kinds.DataclassPlan)(tp)
        self._building[tp] = plan  # before the fields, so recursive references find it
        self._in_setup.add(tp)
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
        self._in_setup.discard(tp)
        return plan

    def _hints(self, cls: type, where: str) -> dict[str, Any]:
        module = sys.modules.get(cls.__module__)
        globalns = dict(vars(module)) if module is not None else {}
        try:
            return typing.get_type_hints(cls, globalns=globalns, localns={cls.__name__: cls})
        except Exception as exc:
            raise MarshalException(
                f"{where}: cannot resolve the type hints of {cls.__name__} ({exc}); "
                "define the referenced types at module level"
            ) from None

    def _pydantic(self, tp: type[BaseModel], where: str) -> Any:
        k = self.kinds
        if not tp.__pydantic_complete__:
            try:
                tp.model_rebuild()
            except Exception as exc:
                raise MarshalException(
                    f"{where}: pydantic model {tp.__name__} is not complete ({exc})"
                ) from None
        plan = (k.RecursivePydanticPlan if tp in self._recursive else k.PydanticPlan)(tp)
        self._building[tp] = plan
        self._in_setup.add(tp)
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
        self._in_setup.discard(tp)
        return plan


def _substitute(hint: Any, mapping: dict[Any, Any]) -> Any:
    """Replace type variables of a generic dataclass by its arguments (Page[T] as Page[Data])."""
    if not mapping:
        return hint
    if isinstance(hint, TypeVar):
        return mapping.get(hint, Any)
    params = getattr(hint, "__parameters__", ())
    if params and get_origin(hint) is not None:
        return hint[tuple(mapping.get(p, Any) for p in params)]
    return hint


def _validates_natively(tp: Any, seen: set[Any]) -> bool:
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
    base_model = pydantic_base_model()
    if isinstance(tp, type) and base_model is not None and issubclass(tp, base_model):
        if tp in seen:
            return False
        seen.add(tp)
        return all(_validates_natively(f.annotation, seen) for f in tp.model_fields.values())
    return False


# ---------------------------------------------------------------- JSON numbers

_rounding: dict[Any, bool] = {}


def may_take_rounded_integers(tp: Any) -> bool:
    """Whether a value of ``tp`` loaded from JSON could silently take an integer that orjson read as a float.

    orjson reads integers beyond 64 bits as floats. Where the type admits an int and no float
    (``int``, ``list[int]``, a model's ``int`` field) loading such a float fails, and the caller
    reads the body again exactly; where a float is taken as it is (``Any``, ``int | float``,
    ``Decimal``, a type only pydantic knows), the caller must check the body first. Decided once
    per type; conservative for what it does not know.
    """
    try:
        known = _rounding.get(tp)
    except TypeError:  # an unhashable hint
        return _rounds(tp, set())
    if known is None:
        known = _rounding[tp] = _rounds(tp, set())
    return known


def _rounds(tp: Any, seen: set[int]) -> bool:
    if id(tp) in seen:
        return False  # a recursive type: its other members decide
    seen.add(id(tp))
    if tp is Any or tp is object or isinstance(tp, TypeVar) or tp is Decimal:
        return True
    if tp in _PRIMITIVES or tp in (bytes, datetime, date, time, UUID) or tp is None:
        return False
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is typing.Annotated:
        return _rounds(args[0], seen)
    if origin is Literal:
        return False
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return False
    if origin is Union or origin is types.UnionType:
        bare = {arg for arg in args if arg is not NoneType}
        if float in bare and (int in bare or any(isinstance(a, type) and issubclass(a, int) for a in bare)):
            return True
        return any(_rounds(arg, seen) for arg in bare)
    base_model = pydantic_base_model()
    if base_model is not None and isinstance(tp, type) and issubclass(tp, base_model):
        return any(_rounds(f.annotation, seen) for f in tp.model_fields.values())
    dataclass_type = origin if origin is not None else tp
    if isinstance(dataclass_type, type) and dataclasses.is_dataclass(dataclass_type):
        try:
            hints = typing.get_type_hints(dataclass_type)
        except Exception:  # noqa: BLE001 - unresolvable: assume the worst
            return True
        return any(_rounds(hints.get(f.name, Any), seen) for f in dataclasses.fields(dataclass_type))
    container = origin if origin is not None else tp
    if isinstance(container, type) and issubclass(container, (cabc.Iterable, cabc.Mapping)):
        # bare containers hold Any
        return not args or any(arg is not Ellipsis and _rounds(arg, seen) for arg in args)
    return True


# ---------------------------------------------------------------- nesting (error path)

# how many objects nesting_failure looks at before it gives up looking for a cycle
_NESTING_BUDGET = 1_000_000


def _children(value: Any) -> list[tuple[str, Any]] | None:
    """What a value holds, each with the path segment leading to it; None for a value holding nothing."""
    kind = type(value)
    if kind is dict or isinstance(value, cabc.Mapping):
        return [(f"[{show(key)}]", item) for key, item in value.items()]
    if kind in (list, tuple, set, frozenset) or isinstance(value, (list, tuple, set, frozenset)):
        return [(f"[{index}]", item) for index, item in enumerate(value)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [(f".{f.name}", getattr(value, f.name, None)) for f in dataclasses.fields(value)]
    base_model = pydantic_base_model()
    if base_model is not None and isinstance(value, base_model):
        held = [(f".{name}", getattr(value, name, None)) for name in type(value).model_fields]
        return held + [(f".{name}", item) for name, item in (value.__pydantic_extra__ or {}).items()]
    return None


def _render(root: str, node: tuple[Any, ...] | None) -> str:
    """A path kept as linked (segment, parent) pairs, written out, its middle cut when long."""
    parts: list[str] = []
    while node is not None:
        parts.append(node[0])
        node = node[1]
    parts.reverse()
    if len(parts) > 12:
        parts = [*parts[:6], f"...({len(parts) - 10} more)...", *parts[-4:]]
    return root + "".join(parts)


def nesting_failure(root: str, value: Any) -> str:
    """Why a value made the plans hit the recursion limit: where it contains itself, or how deep it nests.

    The error path of ``TypePlan.dump``/``load``: walks with a stack of its own (the value is deeper than
    Python recurses), keeping the path as linked pairs (a copy per level would be quadratic).
    """
    on_path: dict[int, tuple[Any, ...] | None] = {}
    stack: list[tuple[Any, tuple[Any, ...] | None, int, bool]] = [(value, None, 1, False)]
    deepest = 0
    budget = _NESTING_BUDGET
    while stack and budget:
        item, path, depth, leaving = stack.pop()
        if leaving:
            del on_path[id(item)]
            continue
        children = _children(item)
        if not children:
            continue
        if id(item) in on_path:
            return (f"{_render(root, path)}: the value contains itself (it is the {type(item).__name__} at "
                    f"{_render(root, on_path[id(item)])}), which cannot be marshalled")
        budget -= 1
        deepest = max(deepest, depth)
        on_path[id(item)] = path
        stack.append((item, path, depth, True))
        for segment, child in reversed(children):
            stack.append((child, (segment, path), depth + 1, False))
    found = f"{deepest} levels of objects and containers" if not stack else f"more than {deepest} levels"
    return (f"{root}: the value nests deeper than the plans recurse ({found}; Python's recursion limit, "
            f"{sys.getrecursionlimit()}, bounds the depth of recursive types)")


def mark_non_finite_deep(value: Any) -> Any:
    """``marshal._mark_non_finite`` with a stack of its own, for plain Python where that one hit the recursion limit.

    Lists, tuples and dicts up to 1024 levels deep (the most an envelope carries) are copied where they hold
    an inf or nan, which is wrapped as ``NonFiniteFloat``; deeper ones are left as they are (no writer sends
    them).
    """
    def marked(item: Any) -> Any:
        if type(item) is float and item - item != 0.0:
            return NonFiniteFloat(item)
        return item

    # post-order: a container is rebuilt once its children are done; results[id] holds the replaced ones
    replaced: dict[int, Any] = {}
    stack: list[tuple[Any, int, bool]] = [(value, 1, False)]
    while stack:
        item, depth, done = stack.pop()
        kind = type(item)
        if kind is not list and kind is not tuple and kind is not dict:
            continue
        if not done:
            if depth > 1024:
                continue
            stack.append((item, depth, True))
            for child in (item.values() if kind is dict else item):
                stack.append((child, depth + 1, False))
            continue
        if id(item) in replaced:
            continue
        if kind is dict:
            out_map = {key: replaced.get(id(child), marked(child)) for key, child in item.items()}
            if any(out_map[key] is not child for key, child in item.items()):
                replaced[id(item)] = out_map
        else:
            items = [replaced.get(id(child), marked(child)) for child in item]
            if any(new is not old for new, old in zip(items, item)):
                replaced[id(item)] = items if kind is list else tuple(items)
    return replaced.get(id(value), marked(value))
