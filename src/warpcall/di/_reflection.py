"""What the container knows about classes and functions: their decorators, methods and type hints.

Decorators record themselves with ``Decorators.add`` (Python keeps no record of
which decorator touched an object). ``TypeDescriptor.for_type`` reads a class
once and caches what the container and the weaver ask about it.
"""

from __future__ import annotations

import inspect
import threading
import typing
from collections.abc import MutableMapping
from contextlib import AbstractContextManager
from typing import Any, Callable, ClassVar, Generic, TypeVar, get_type_hints

_ATTRIBUTE = "__warpcall_decorators__"


class DecoratorDescriptor:
    """One decorator applied to a function or class, with the arguments it was given."""

    __slots__ = ("decorator", "args", "kwargs")

    def __init__(self, decorator: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.decorator = decorator
        self.args = args
        self.kwargs = kwargs

    def __repr__(self) -> str:
        params = [repr(arg) for arg in self.args] + [f"{key}={value!r}" for key, value in self.kwargs.items()]
        return f"@{getattr(self.decorator, '__name__', self.decorator)}({', '.join(params)})"

    def __str__(self) -> str:
        # aspyx's rendering (str of each value), which programs ported from it may print or compare
        params = [str(arg) for arg in self.args] + [f"{key}={value}" for key, value in self.kwargs.items()]
        return f"@{getattr(self.decorator, '__name__', self.decorator)}({', '.join(params)})"


class Decorators:
    """Registry of decorators on functions and classes; custom decorators call ``add`` to be matchable."""

    @staticmethod
    def add(target: Any, decorator: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Record that ``decorator`` (with ``args``) was applied to the function or class ``target``."""
        own = target.__dict__.get(_ATTRIBUTE) if hasattr(target, "__dict__") else None
        if own is None:
            # a subclass must not append to the list it inherited from its base
            own = []
            setattr(target, _ATTRIBUTE, own)
        own.append(DecoratorDescriptor(decorator, *args, **kwargs))

    @staticmethod
    def get(target: Any) -> list[DecoratorDescriptor]:
        """The decorators recorded on ``target`` itself (a bound method answers for its function)."""
        target = getattr(target, "__func__", target)
        holder = getattr(target, "__dict__", None)
        if holder is None:
            return []
        return list(holder.get(_ATTRIBUTE, ()))

    @staticmethod
    def has_decorator(target: Any, decorator: Callable[..., Any]) -> bool:
        """True when ``decorator`` was applied to ``target``."""
        return any(entry.decorator is decorator for entry in Decorators.get(target))

    @staticmethod
    def get_decorator(target: Any, decorator: Callable[..., Any]) -> DecoratorDescriptor | None:
        """The record of ``decorator`` on ``target``, or None."""
        return next((entry for entry in Decorators.get(target) if entry.decorator is decorator), None)


def type_hints(obj: Any) -> dict[str, Any]:
    """Resolved type hints of a function or class, keeping ``Annotated`` metadata."""
    return get_type_hints(obj, include_extras=True)


def strip_annotated(hint: Any) -> tuple[Any, tuple[Any, ...]]:
    """``Annotated[T, m...]`` -> ``(T, (m...))``; anything else -> ``(hint, ())``."""
    if typing.get_origin(hint) is typing.Annotated:
        base, *metadata = typing.get_args(hint)
        return base, tuple(metadata)
    return hint, ()


class Parameter:
    """One parameter of a method: name, type hint (without ``Annotated``), its metadata and default."""

    __slots__ = ("name", "type", "metadata", "default", "has_default")

    def __init__(self, name: str, hint: Any, default: Any) -> None:
        self.name = name
        self.type, self.metadata = strip_annotated(hint)
        self.has_default = default is not inspect.Parameter.empty
        self.default = default if self.has_default else None


class MethodDescriptor:
    """A method of a class: its function, parameters (without ``self``), return type and decorators."""

    __slots__ = ("owner", "method", "name", "_params", "_return_type", "_hints_read")

    def __init__(self, owner: type, method: Callable[..., Any]) -> None:
        self.owner = owner
        self.method = method
        self.name = method.__name__
        self._params: list[Parameter] = []
        self._return_type: Any = None
        self._hints_read = False

    def _read_hints(self) -> None:
        # hints are read on first use: forward references resolve only once the module is complete
        if self._hints_read:
            return
        try:
            hints = type_hints(self.method)
        except Exception as exc:  # NameError for a hint naming a class the module does not define
            from warpcall.di._errors import DIRegistrationException

            raise DIRegistrationException(
                f"cannot read the type hints of {self.qualified()}: {exc}; the container injects by type hint, "
                "so every hinted type must be importable from the method's module"
            ) from exc
        signature = inspect.signature(self.method)
        params = []
        for index, param in enumerate(signature.parameters.values()):
            if index == 0 or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            params.append(Parameter(param.name, hints.get(param.name), param.default))
        self._params = params
        self._return_type = strip_annotated(hints["return"])[0] if "return" in hints else None
        self._hints_read = True

    def get_name(self) -> str:
        """The method's name."""
        return self.name

    @property
    def params(self) -> list[Parameter]:
        """Parameters after ``self``."""
        self._read_hints()
        return self._params

    @property
    def param_types(self) -> list[Any]:
        """Type hints of the parameters after ``self`` (None where there is none)."""
        return [param.type for param in self.params]

    @property
    def return_type(self) -> Any:
        """The return type hint, or None."""
        self._read_hints()
        return self._return_type

    @property
    def decorators(self) -> list[DecoratorDescriptor]:
        """The decorators recorded on the function."""
        return Decorators.get(self.method)

    def is_async(self) -> bool:
        """True for ``async def`` methods."""
        return inspect.iscoroutinefunction(self.method)

    def has_decorator(self, decorator: Callable[..., Any]) -> bool:
        """True when ``decorator`` was applied to the method."""
        return Decorators.has_decorator(self.method, decorator)

    def get_decorator(self, decorator: Callable[..., Any]) -> DecoratorDescriptor | None:
        """The record of ``decorator`` on the method, or None."""
        return Decorators.get_decorator(self.method, decorator)

    def qualified(self) -> str:
        """``Owner.method``, for messages."""
        return f"{self.owner.__name__}.{self.name}"


_M = TypeVar("_M")
_D = TypeVar("_D", bound="CachedTypeDescriptor[Any]")


class CachedTypeDescriptor(Generic[_M]):
    """What a class's descriptors share: one per class, made on first ask (``for_type``), and method lookup.

    Each concrete descriptor class declares its own ``_cache`` and ``_lock`` (reentrant where its
    constructor asks ``for_type`` about base classes) and fills ``methods`` and ``local_methods``.
    """

    _cache: ClassVar[MutableMapping[type, Any]]
    _lock: ClassVar[AbstractContextManager[Any]]

    __slots__ = ("cls", "methods", "local_methods")

    @classmethod
    def for_type(cls: type[_D], clazz: type) -> _D:
        """The (cached) descriptor of ``clazz``."""
        descriptor: _D | None = cls._cache.get(clazz)
        if descriptor is None:
            with cls._lock:
                descriptor = cls._cache.get(clazz)
                if descriptor is None:
                    descriptor = cls(clazz)
                    cls._cache[clazz] = descriptor
        return descriptor

    def __init__(self, clazz: type) -> None:
        self.cls = clazz
        self.methods: dict[str, _M] = {}
        self.local_methods: dict[str, _M] = {}

    def get_methods(self, local: bool = False) -> list[_M]:
        """The methods of the class (``local``: only those it defines itself)."""
        return list((self.local_methods if local else self.methods).values())

    def get_method(self, name: str, local: bool = False) -> _M | None:
        """One method by name, or None."""
        return (self.local_methods if local else self.methods).get(name)


class TypeDescriptor(CachedTypeDescriptor[MethodDescriptor]):
    """The methods and decorators of a class, computed once per class."""

    _cache: ClassVar[MutableMapping[type, Any]] = {}
    _lock = threading.Lock()

    __slots__ = ()

    def __init__(self, clazz: type) -> None:
        super().__init__(clazz)
        # walk from the root so that overrides replace what a base declared
        for owner in reversed(clazz.__mro__):
            if owner is object:
                continue
            for name, value in vars(owner).items():
                if inspect.isfunction(value):
                    descriptor = MethodDescriptor(owner, value)
                    self.methods[name] = descriptor
                    if owner is clazz:
                        self.local_methods[name] = descriptor
                elif name in self.methods:
                    del self.methods[name]

    def has_decorator(self, decorator: Callable[..., Any]) -> bool:
        """True when ``decorator`` was applied to the class itself."""
        return Decorators.has_decorator(self.cls, decorator)

    def get_decorator(self, decorator: Callable[..., Any]) -> DecoratorDescriptor | None:
        """The record of ``decorator`` on the class, or None."""
        return Decorators.get_decorator(self.cls, decorator)
