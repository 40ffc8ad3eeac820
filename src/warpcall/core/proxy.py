"""Service proxies: per-method descriptors, the invocation a channel receives, and the proxy classes.

Everything that depends only on a service type or a method (signature, type
hints, sync/async shape, the channel's bound handler) is computed once; a
call through a proxy builds one ``Invocation`` and hands it to the channel.
"""

from __future__ import annotations

import inspect
import threading
import typing
from collections.abc import Callable
from typing import Any

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)

# instance-dict key under which a proxy keeps its channel (service methods never start with "_")
_CHANNEL_KEY = "_warpcall_channel"


def _quoted_names(names: list[str]) -> str:
    """Python's own way of listing missing arguments: 'a', 'a' and 'b', 'a', 'b', and 'c'."""
    quoted = [repr(name) for name in names]
    if len(quoted) == 1:
        return quoted[0]
    if len(quoted) == 2:
        return f"{quoted[0]} and {quoted[1]}"
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]


class MethodDescriptor:
    """Everything about one service method that does not depend on a call's arguments (built once, cached)."""

    __slots__ = (
        "name",
        "qualified",
        "func",
        "is_async",
        "signature",
        "param_names",
        "plans",
        "_param_types",
        "_return_type",
        "_label",
        "_count",
        "_required",
        "_defaults",
        "_index",
        "_positional_only",
        "_unbindable",
    )

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        self.name: str = func.__name__
        self.qualified: str = self.name
        self.is_async: bool = inspect.iscoroutinefunction(func)
        self.signature: inspect.Signature = inspect.signature(func)
        self.plans: dict[str, Any] = {}
        self._param_types: tuple[Any, ...] | None = None
        self._return_type: Any = None
        self._label = f"{getattr(func, '__qualname__', self.name)}()"

        params = list(self.signature.parameters.values())
        # the first positional parameter is the instance the method is called on
        if params and params[0].kind in _POSITIONAL:
            params = params[1:]
        self.param_names: tuple[str, ...] = tuple(p.name for p in params)
        positional = [p for p in params if p.kind in _POSITIONAL]
        self._count = len(positional)
        defaults = [p.default for p in positional if p.default is not inspect.Parameter.empty]
        self._required = self._count - len(defaults)
        self._defaults = tuple(defaults)
        self._index = {p.name: i for i, p in enumerate(positional)}
        self._positional_only = frozenset(p.name for p in positional if p.kind is inspect.Parameter.POSITIONAL_ONLY)
        self._unbindable = ", ".join(repr(p.name) for p in params if p.kind not in _POSITIONAL)

    @classmethod
    def from_function(cls, func: Callable[..., Any]) -> MethodDescriptor:
        """Describe the function declared on a service class (its first parameter is the instance)."""
        return cls(func)

    def _resolve_hints(self) -> None:
        try:
            hints = typing.get_type_hints(self.func)
        except Exception as exc:
            raise TypeError(
                f"cannot resolve the type hints of {self._label}: {exc}; "
                "define every type the signature names at module level"
            ) from exc
        self._return_type = hints.get("return", Any)
        self._param_types = tuple(hints.get(name, Any) for name in self.param_names)

    @property
    def param_types(self) -> tuple[Any, ...]:
        """Resolved type hints of the parameters (without the instance); ``Any`` where a hint is missing."""
        if self._param_types is None:
            self._resolve_hints()
        return self._param_types  # type: ignore[return-value]

    @property
    def return_type(self) -> Any:
        """Resolved return hint; ``Any`` when missing, ``type(None)`` for ``-> None``."""
        if self._param_types is None:
            self._resolve_hints()
        return self._return_type

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> tuple[Any, ...]:
        """Return the positional arguments in declared order with defaults applied; TypeError like Python's own."""
        if type(args) is not tuple:
            args = tuple(args)
        given = len(args)
        if not kwargs and given == self._count and not self._unbindable:
            return args
        if self._unbindable:
            raise TypeError(
                f"{self._label} has keyword-only or variadic parameters ({self._unbindable}); "
                "a service method takes plain positional parameters so every channel can pass them in order"
            )
        count = self._count
        if given > count:
            raise TypeError(self._too_many(given))
        if not kwargs:
            if given < self._required:
                raise TypeError(self._missing(list(self.param_names[given : self._required])))
            return args + self._defaults[given - self._required :]
        values: list[Any] = list(args)
        values.extend([_MISSING] * (count - given))
        index = self._index
        for key, value in kwargs.items():
            position = index.get(key)
            if position is None:
                raise TypeError(f"{self._label} got an unexpected keyword argument {key!r}")
            if key in self._positional_only:
                raise TypeError(
                    f"{self._label} got some positional-only arguments passed as keyword arguments: {key!r}"
                )
            if position < given:
                raise TypeError(f"{self._label} got multiple values for argument {key!r}")
            values[position] = value
        missing = [self.param_names[i] for i in range(given, self._required) if values[i] is _MISSING]
        if missing:
            raise TypeError(self._missing(missing))
        for i in range(max(given, self._required), count):
            if values[i] is _MISSING:
                values[i] = self._defaults[i - self._required]
        return tuple(values)

    def _too_many(self, given: int) -> str:
        was = "was" if given == 1 else "were"
        if self._required == self._count:
            plural = "" if self._count == 1 else "s"
            return f"{self._label} takes {self._count} positional argument{plural} but {given} {was} given"
        return f"{self._label} takes from {self._required} to {self._count} positional arguments but {given} {was} given"

    def _missing(self, names: list[str]) -> str:
        plural = "" if len(names) == 1 else "s"
        return f"{self._label} missing {len(names)} required positional argument{plural}: {_quoted_names(names)}"

    def __repr__(self) -> str:
        return f"<MethodDescriptor {self.qualified}{self.signature}>"


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


class Invocation:
    """One call through a proxy: the method, the positional arguments, and the keywords (None when none)."""

    __slots__ = ("method", "args", "kwargs")

    def __init__(self, method: MethodDescriptor, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> None:
        self.method = method
        self.args = args if type(args) is tuple else tuple(args)
        self.kwargs = kwargs

    def positional(self) -> tuple[Any, ...]:
        """The call's arguments as a positional tuple in declared order, defaults applied."""
        return self.method.bind(self.args, self.kwargs)

    def __repr__(self) -> str:
        return f"<Invocation {self.method.qualified} args={self.args!r} kwargs={self.kwargs!r}>"


_methods_lock = threading.Lock()
_classes_lock = threading.Lock()
_methods_cache: dict[type, dict[str, MethodDescriptor]] = {}
_proxy_classes: dict[type, type] = {}


def _collect_methods(service_type: type) -> dict[str, MethodDescriptor]:
    methods: dict[str, MethodDescriptor] = {}
    seen: set[str] = set()
    for cls in service_type.__mro__:
        own = cls.__dict__
        # a proxy class's forwarders are not service methods; its service type's methods are
        if cls is object or own.get("__warpcall_root__") is True or own.get("__warpcall_proxy__") is True:
            continue
        for name, value in own.items():
            if name.startswith("_") or name in seen:
                continue
            # the most derived definition wins, even when it is not a function (it hides the method)
            seen.add(name)
            if inspect.isfunction(value):
                methods[name] = MethodDescriptor.from_function(value)
    return methods


def service_methods(service_type: type) -> dict[str, MethodDescriptor]:
    """The public methods of a service interface, by name; built once per type and cached (thread-safe)."""
    methods = _methods_cache.get(service_type)
    if methods is None:
        with _methods_lock:
            methods = _methods_cache.get(service_type)
            if methods is None:
                methods = _collect_methods(service_type)
                _methods_cache[service_type] = methods
    return methods


def _forwarder(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Class-level stand-in for a service method: overrides the abstract one and forwards to the instance's call."""

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return self.__dict__[name](*args, **kwargs)

    method.__name__ = func.__name__
    method.__qualname__ = getattr(func, "__qualname__", func.__name__)
    method.__doc__ = func.__doc__
    method.__module__ = func.__module__
    return method


def _proxy_repr(self: Any) -> str:
    service_type = type(self).__warpcall_service__
    channel = self.__dict__.get(_CHANNEL_KEY)
    return f"<warpcall proxy for {service_type.__module__}.{service_type.__qualname__} via {channel!r}>"


def _build_proxy_class(service_type: type) -> type:
    methods = service_methods(service_type)
    namespace: dict[str, Any] = {
        "__module__": service_type.__module__,
        "__qualname__": f"{service_type.__qualname__}Proxy",
        "__doc__": f"Proxy of {service_type.__qualname__}: every call goes to a channel.",
        "__repr__": _proxy_repr,
        "__warpcall_proxy__": True,
        "__warpcall_service__": service_type,
        "__warpcall_methods__": methods,
    }
    for name, descriptor in methods.items():
        namespace[name] = _forwarder(name, descriptor.func)
    cls = type(service_type)(f"{service_type.__name__}Proxy", (service_type,), namespace)
    # abstract methods the proxy does not route (private ones, those of root classes) must not block instantiation
    cls.__abstractmethods__ = frozenset()
    return cls


def proxy_class(service_type: type) -> type:
    """The proxy class of a service type: a subclass whose public methods go to a channel (built once, cached)."""
    cls = _proxy_classes.get(service_type)
    if cls is None:
        with _classes_lock:
            cls = _proxy_classes.get(service_type)
            if cls is None:
                cls = _build_proxy_class(service_type)
                _proxy_classes[service_type] = cls
    return cls


def _sync_call(method: MethodDescriptor, invoke: Callable[[Invocation], Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        return invoke(Invocation(method, args, kwargs or None))

    call.__name__ = method.name
    call.__qualname__ = getattr(method.func, "__qualname__", method.name)
    call.__doc__ = method.func.__doc__
    return call


def make_proxy(service_type: type, channel: Any) -> Any:
    """An instance of ``service_type``'s proxy class whose methods call ``channel.invoke`` / ``channel.invoke_async``.

    Sync methods return what ``channel.invoke(invocation)`` returns; async methods return
    ``channel.invoke_async(invocation)``, the awaitable the caller awaits. The service's
    ``__init__`` is not called. The channel's handlers are looked up once, here.
    """
    cls = proxy_class(service_type)
    proxy = object.__new__(cls)
    attributes = proxy.__dict__
    attributes[_CHANNEL_KEY] = channel
    invoke = invoke_async = None
    for name, method in cls.__warpcall_methods__.items():
        if method.is_async:
            if invoke_async is None:
                invoke_async = channel.invoke_async
            attributes[name] = _sync_call(method, invoke_async)
        else:
            if invoke is None:
                invoke = channel.invoke
            attributes[name] = _sync_call(method, invoke)
    return proxy
