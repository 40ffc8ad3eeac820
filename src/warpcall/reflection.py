"""aspyx.reflection's public names for programs ported from aspyx: ``DynamicProxy``, ``TypeDescriptor``,
``Decorators``, ``DecoratorDescriptor``.

The decorator records are warpcall's own (``warpcall.di``): what ``Decorators.add`` records here is
what the container, the weaver and the service layer read. ``DynamicProxy.Invocation`` is the type
of what warpcall's service proxies hand a channel (``isinstance`` holds for it), with aspyx's fields
``type``, ``method`` (the function), ``args`` and ``kwargs``. ``TypeDescriptor`` describes a class as
aspyx 1.9.8's does: its methods (``TypeDescriptor.MethodDescriptor``: ``clazz``, ``method``,
``decorators``, ``params``, ``param_types``, ``return_type``), its decorators and its properties.
"""

from __future__ import annotations

import functools
import inspect
import sys
import threading
import typing
from abc import ABC, ABCMeta, abstractmethod
from collections.abc import Callable, MutableMapping
from types import FunctionType
from typing import Any, ClassVar, Generic, TypeVar
from weakref import WeakKeyDictionary

from warpcall.core import proxy as _core_proxy
from warpcall.di._reflection import CachedTypeDescriptor, DecoratorDescriptor, strip_annotated
from warpcall.di._reflection import Decorators as _Decorators

T = TypeVar("T")

__all__ = ["DecoratorDescriptor", "Decorators", "DynamicProxy", "TypeDescriptor"]


class Decorators(_Decorators):
    """Records of the decorators applied to functions and classes (the same records ``warpcall.di`` reads).

    As in aspyx: ``get`` and ``has_decorator`` see what was applied to the object itself;
    ``get_all`` and ``get_decorator`` also see what a class inherits.
    """

    @staticmethod
    def get_all(target: Any) -> list[DecoratorDescriptor]:
        """The decorators of ``target`` itself, else the nearest ones it inherits (aspyx's lookup)."""
        target = getattr(target, "__func__", target)
        if isinstance(target, type):
            for owner in target.__mro__:
                own = Decorators.get(owner)
                if own:
                    return own
            return []
        return Decorators.get(target)

    @staticmethod
    def get_decorator(target: Any, decorator: Callable[..., Any]) -> DecoratorDescriptor | None:
        """The record of ``decorator`` on ``target`` or, for a class, the one it inherits; None when none."""
        return next((entry for entry in Decorators.get_all(target) if entry.decorator is decorator), None)


def _hints(obj: Any, extras: bool = False) -> dict[str, Any]:
    """Resolved type hints; the raw annotations where a hint does not resolve (aspyx never raises here)."""
    try:
        return typing.get_type_hints(obj, include_extras=extras)
    except Exception:  # an unresolvable forward reference: keep the strings, as aspyx does
        return dict(getattr(obj, "__annotations__", {}))


class DynamicProxy(Generic[T]):
    """A proxy of any class whose method calls go to an ``InvocationHandler`` (aspyx's ``DynamicProxy``).

    ``DynamicProxy.create(SomeClass, handler).method(1)`` calls ``handler.invoke(invocation)``
    (``invoke_async`` for ``async def`` methods). warpcall's service proxies are faster classes of
    their own (``ServiceManager.get_service``); their invocations are ``DynamicProxy.Invocation`` too.
    """

    class Invocation(metaclass=ABCMeta):  # noqa: B024 - abstract only to register warpcall's invocations
        """One call: ``type`` (the proxied class), ``method`` (its function), ``args``, ``kwargs`` (a dict)."""

        __slots__ = ("type", "method", "args", "kwargs")

        def __init__(self, type: Any, method: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
            self.type = type
            self.method = method
            self.args = args
            self.kwargs = kwargs

        def positional(self) -> tuple[Any, ...]:
            """The arguments in declared order with defaults applied (as warpcall's invocations answer)."""
            bound = inspect.signature(self.method).bind(None, *self.args, **self.kwargs)
            bound.apply_defaults()
            return tuple(bound.args[1:])

    class InvocationHandler(ABC):
        """What a dynamic proxy hands its calls to."""

        @abstractmethod
        def invoke(self, invocation: DynamicProxy.Invocation) -> Any:
            """Answer a sync call."""

        @abstractmethod
        async def invoke_async(self, invocation: DynamicProxy.Invocation) -> Any:
            """Answer an ``async def`` call."""
            return self.invoke(invocation)

    __slots__ = ("type", "invocation_handler")

    @classmethod
    def create(cls, type: type[T], invocation_handler: DynamicProxy.InvocationHandler) -> T:
        """A proxy of ``type`` calling ``invocation_handler``."""
        return typing.cast(T, DynamicProxy(type, invocation_handler))

    def __init__(self, type: type[T], invocation_handler: DynamicProxy.InvocationHandler) -> None:
        self.type = type
        self.invocation_handler = invocation_handler

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.type, name)
        handler = self.invocation_handler
        proxied = self.type
        if inspect.iscoroutinefunction(method):

            @functools.wraps(method)
            async def call_async(*args: Any, **kwargs: Any) -> Any:
                return await handler.invoke_async(DynamicProxy.Invocation(proxied, method, *args, **kwargs))

            return call_async

        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            return handler.invoke(DynamicProxy.Invocation(proxied, method, *args, **kwargs))

        return call


# what a warpcall service proxy hands its channel is a DynamicProxy.Invocation (the compiled or the plain build's)
DynamicProxy.Invocation.register(_core_proxy.Invocation)


class TypeDescriptor(CachedTypeDescriptor["TypeDescriptor.MethodDescriptor"]):
    """A class's methods, decorators and properties, read once per class (``for_type`` caches), as in aspyx.

    The cache and the method lookup (``for_type``, ``get_methods``, ``get_method``) are those of
    ``warpcall.di``'s descriptors; this class reads the class as aspyx does.
    """

    class ParameterDescriptor:
        """A parameter's name and type hint (None when it has none)."""

        def __init__(self, name: str, type: Any) -> None:
            self.name = name
            self.type = type

    class AnnotatedParam:
        """A parameter with the metadata of its ``Annotated[T, ...]`` hint and its default."""

        __slots__ = ("name", "type", "metadata", "has_default", "default")

        def __init__(
            self, name: str, type: Any, metadata: tuple[Any, ...], has_default: bool,
            default: Any = inspect.Parameter.empty,
        ) -> None:
            self.name = name
            self.type = type
            self.metadata = metadata
            self.has_default = has_default
            self.default = default

        def __str__(self) -> str:
            meta = f", metadata={self.metadata}" if self.metadata else ""
            default = f", default={self.default}" if self.has_default else ""
            return f"AnnotatedParam({self.name}: {getattr(self.type, '__name__', self.type)}{meta}{default})"

    class PropertyDescriptor:
        """A property (field) of a class: read with ``get``, written with ``set``."""

        def __init__(self, cls: type, name: str, typ: Any = None, default: Any = None, type_property: Any = None) -> None:
            self.clazz = cls
            self.name = name
            self.type = typ or object
            self.default = default
            self.type_property = type_property

        def get(self, instance: Any) -> Any:
            return getattr(instance, self.name, self.default)

        def set(self, instance: Any, value: Any) -> None:
            setattr(instance, self.name, value)

        def __str__(self) -> str:
            return f"Property({self.name}: {getattr(self.type, '__name__', self.type)})"

    class MethodDescriptor:
        """A method of a class: its function, decorators, parameters (without ``self``) and return type."""

        def __init__(self, cls: type, method: Callable[..., Any]) -> None:
            self.clazz = cls
            self.method = method
            self.decorators: list[DecoratorDescriptor] = Decorators.get(method)
            self.param_types: list[Any] = []
            self.params: list[TypeDescriptor.ParameterDescriptor] = []
            hints = _hints(method)
            for name in inspect.signature(method).parameters:
                if name != "self":
                    self.params.append(TypeDescriptor.ParameterDescriptor(name, hints.get(name)))
                    self.param_types.append(hints.get(name, object))
            self.return_type: Any = hints.get("return", None)

        def get_name(self) -> str:
            return self.method.__name__

        def get_doc(self, default: str = "") -> str:
            return self.method.__doc__ or default

        def is_async(self) -> bool:
            return inspect.iscoroutinefunction(self.method)

        def get_decorators(self) -> list[DecoratorDescriptor]:
            return self.decorators

        def get_decorator(self, decorator: Callable[..., Any]) -> DecoratorDescriptor | None:
            return next((entry for entry in self.decorators if entry.decorator is decorator), None)

        def has_decorator(self, decorator: Callable[..., Any]) -> bool:
            return any(entry.decorator is decorator for entry in self.decorators)

        def get_annotated_params(self) -> list[TypeDescriptor.AnnotatedParam]:
            """The parameters with the metadata of their ``Annotated`` hints."""
            hints = _hints(self.method, extras=True)
            params = []
            for name, param in inspect.signature(self.method).parameters.items():
                if name == "self":
                    continue
                hint = hints.get(name, param.annotation)
                if hint is inspect.Parameter.empty:
                    hint = object
                hint, metadata = strip_annotated(hint)
                has_default = param.default is not inspect.Parameter.empty
                params.append(TypeDescriptor.AnnotatedParam(name, hint, metadata, has_default, param.default))
            return params

        def __str__(self) -> str:
            return f"Method({self.method.__name__})"

    # weak, as aspyx's: a descriptor does not keep a class alive; reentrant: a class's descriptor asks for its bases'
    _cache: ClassVar[MutableMapping[type, Any]] = WeakKeyDictionary()
    _lock = threading.RLock()

    def __init__(self, cls: type) -> None:
        super().__init__(cls)
        self.decorators: list[DecoratorDescriptor] = Decorators.get(cls)
        # base classes first, so that what the class defines itself replaces what it inherits
        self.super_types = [TypeDescriptor.for_type(base) for base in cls.__bases__ if not _framework_class(base)]
        for super_type in self.super_types:
            self.methods = self.methods | super_type.methods
        for name, member in cls.__dict__.items():
            if isinstance(member, FunctionType):
                method = TypeDescriptor.MethodDescriptor(cls, member)
                self.local_methods[name] = method
                self.methods[name] = method
        self._properties: dict[str, TypeDescriptor.PropertyDescriptor] | None = None

    @property
    def properties(self) -> dict[str, TypeDescriptor.PropertyDescriptor]:
        """The class's properties: a pydantic model's or a dataclass's fields, else its constructor's parameters."""
        if self._properties is None:
            self._properties = _extract_properties(self.cls)
        return self._properties

    def get_decorator(self, decorator: Callable[..., Any]) -> DecoratorDescriptor | None:
        return next((entry for entry in self.decorators if entry.decorator is decorator), None)

    def has_decorator(self, decorator: Callable[..., Any]) -> bool:
        return any(entry.decorator is decorator for entry in self.decorators)

    def get_properties(self) -> list[TypeDescriptor.PropertyDescriptor]:
        return list(self.properties.values())

    def get_property_names(self) -> list[str]:
        return list(self.properties)

    def get_property(self, name: str) -> TypeDescriptor.PropertyDescriptor | None:
        return self.properties.get(name)

    def has_property(self, name: str) -> bool:
        return name in self.properties

    def constructor_parameters(self) -> list[TypeDescriptor.ParameterDescriptor]:
        """The parameters of the class's own ``__init__``."""
        return self.local_methods["__init__"].params


def _framework_class(cls: type) -> bool:
    module = getattr(cls, "__module__", "")
    return cls is object or module.startswith(("pydantic.", "sqlalchemy."))


def _extract_properties(cls: type) -> dict[str, TypeDescriptor.PropertyDescriptor]:
    import dataclasses

    pydantic = sys.modules.get("pydantic")  # a class can be a model only once pydantic is loaded
    if pydantic is not None and issubclass(cls, pydantic.BaseModel):
        fields: dict[str, Any] = getattr(cls, "model_fields")  # noqa: B009 - typed as any class here
        return {
            name: TypeDescriptor.PropertyDescriptor(cls, name, field.annotation, field.default)
            for name, field in fields.items()
        }
    if dataclasses.is_dataclass(cls):
        hints = _hints(cls)
        properties = {}
        for field in dataclasses.fields(cls):
            default = None if field.default is dataclasses.MISSING else field.default
            properties[field.name] = TypeDescriptor.PropertyDescriptor(cls, field.name, hints.get(field.name, field.type), default)
        return properties
    hints = _hints(cls)
    try:
        signature = inspect.signature(getattr(cls, "__init__"))  # noqa: B009 - read as a function
    except (TypeError, ValueError):
        return {}
    return {
        name: TypeDescriptor.PropertyDescriptor(
            cls, name, hints.get(name, object), None if param.default is inspect.Parameter.empty else param.default
        )
        for name, param in signature.parameters.items()
        if name != "self" and param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD)
    }
