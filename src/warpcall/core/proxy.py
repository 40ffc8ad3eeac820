"""Service proxies: per-method descriptors, the invocation a channel receives, and the proxy classes.

Everything that depends only on a service type or a method (signature, type
hints, sync/async shape, the channel's bound handler) is computed once; a
call through a proxy builds one ``Invocation`` and hands it to the channel.

Compiled with the C types of ``ext/warpcall/core/proxy.pxd``; the same file runs as plain Python.
One thing only the C API does: compiled, a proxy method's call slot takes the caller's keywords as
CPython hands them over, without building a dict per call (``_call_slot`` in the .pxd).
"""

from __future__ import annotations

import inspect
import threading
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # type checkers read the shim: Cython ships no types for its pure-mode names
    from warpcall import _cython_shim as cython
else:
    try:
        import cython
    except ImportError:  # plain Python without Cython installed
        from warpcall import _cython_shim as cython

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)

# instance-dict key under which a proxy keeps its channel (service methods never start with "_")
_CHANNEL_KEY = "_warpcall_channel"


@cython.locals(quoted=list, last=cython.Py_ssize_t)
def _quoted_names(names: list[str]) -> str:
    """Python's own way of listing missing arguments: 'a', 'a' and 'b', 'a', 'b', and 'c'."""
    quoted = [repr(name) for name in names]
    if len(quoted) == 1:
        return quoted[0]
    if len(quoted) == 2:
        return f"{quoted[0]} and {quoted[1]}"
    last = len(quoted) - 1
    return ", ".join(quoted[:last]) + ", and " + quoted[last]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


class MethodDescriptor:
    """Everything about one service method that does not depend on a call's arguments (built once, cached)."""

    # plain Python; compiled, the fields are those the .pxd declares (a class attribute then)
    __slots__ = (
        "name",
        "qualified",
        "func",
        "service_type",
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

    @cython.locals(params=list, positional=list, defaults=list)
    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        #: the service type whose proxy calls this method (set by service_methods; None for a bare function)
        self.service_type: Any = None
        self.name: str = func.__name__
        self.qualified: str = self.name
        self.is_async: bool = inspect.iscoroutinefunction(func)
        self.signature: inspect.Signature = inspect.signature(func)
        self.plans: dict[str, Any] = {}
        self._param_types: tuple[Any, ...] | None = None
        self._return_type: Any = None
        self._label: str = f"{getattr(func, '__qualname__', self.name)}()"

        params = list(self.signature.parameters.values())
        # the first positional parameter is the instance the method is called on
        if params and params[0].kind in _POSITIONAL:
            params = params[1:]
        self.param_names: tuple[str, ...] = tuple([p.name for p in params])
        positional = [p for p in params if p.kind in _POSITIONAL]
        self._count: int = len(positional)
        defaults = [p.default for p in positional if p.default is not inspect.Parameter.empty]
        self._required: int = self._count - len(defaults)
        self._defaults: tuple[Any, ...] = tuple(defaults)
        self._index: dict[str, int] = {p.name: i for i, p in enumerate(positional)}
        self._positional_only: frozenset[str] = frozenset(
            [p.name for p in positional if p.kind is inspect.Parameter.POSITIONAL_ONLY]
        )
        self._unbindable: str = ", ".join([repr(p.name) for p in params if p.kind not in _POSITIONAL])

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
        self._param_types = tuple([hints.get(name, Any) for name in self.param_names])

    @property
    def param_types(self) -> tuple[Any, ...]:
        """Resolved type hints of the parameters (without the instance); ``Any`` where a hint is missing."""
        if self._param_types is None:
            self._resolve_hints()
        return typing.cast("tuple[Any, ...]", self._param_types)

    @property
    def return_type(self) -> Any:
        """Resolved return hint; ``Any`` when missing, ``type(None)`` for ``-> None``."""
        if self._param_types is None:
            self._resolve_hints()
        return self._return_type

    @cython.locals(
        positional=tuple,
        given=cython.Py_ssize_t,
        count=cython.Py_ssize_t,
        at=cython.Py_ssize_t,
        i=cython.Py_ssize_t,
        values=list,
        missing=list,
    )
    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> tuple[Any, ...]:
        """Return the positional arguments in declared order with defaults applied; TypeError like Python's own."""
        positional = args if type(args) is tuple else tuple(args)
        given = len(positional)
        if not kwargs and given == self._count and not self._unbindable:
            return positional
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
            return positional + self._defaults[given - self._required :]
        values = list(positional)
        values.extend([_MISSING] * (count - given))
        for key, value in kwargs.items():
            position = self._index.get(key)
            if position is None:
                raise TypeError(f"{self._label} got an unexpected keyword argument {key!r}")
            if key in self._positional_only:
                raise TypeError(
                    f"{self._label} got some positional-only arguments passed as keyword arguments: {key!r}"
                )
            at = position
            if at < given:
                raise TypeError(f"{self._label} got multiple values for argument {key!r}")
            values[at] = value
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
        return (
            f"{self._label} missing {len(names)} required positional argument{plural}: {_quoted_names(names)}"
        )

    def __repr__(self) -> str:
        return f"<MethodDescriptor {self.qualified}{self.signature}>"


@cython.freelist(32)  # directives Cython takes only here, on a class it compiles as cclass (.pxd: final)
@cython.cclass
class Invocation:
    """One call through a proxy, as a channel receives it.

    aspyx's ``DynamicProxy.Invocation`` names: ``type`` (the service type called), ``method`` (the
    service's function: ``invocation.method.__name__`` is the method name), ``args`` (the positional
    arguments, without ``self``) and ``kwargs`` (a dict, empty when the caller passed no keywords).
    warpcall's own channels read ``descriptor`` (the method's :class:`MethodDescriptor`) and
    ``keywords`` (None when no keywords: the common call builds no dict).
    """

    __slots__ = ("descriptor", "args", "keywords")

    @cython.locals(method=MethodDescriptor)
    def __init__(
        self, method: MethodDescriptor, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None
    ) -> None:
        self.descriptor = method
        self.args = args if type(args) is tuple else tuple(args)
        self.keywords = kwargs

    @property
    def method(self) -> Callable[..., Any]:
        """The function the service type declares (aspyx: ``invocation.method``)."""
        return self.descriptor.func

    @property
    def type(self) -> Any:
        """The service type whose proxy made the call (None for a method described outside a service)."""
        return self.descriptor.service_type

    @property
    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments as a dict (created, empty, on first read when the caller gave none)."""
        if self.keywords is None:
            self.keywords = {}
        return self.keywords

    @kwargs.setter
    def kwargs(self, value: dict[str, Any] | None) -> None:
        self.keywords = value

    def positional(self) -> tuple[Any, ...]:
        """The call's arguments as a positional tuple in declared order, defaults applied."""
        return self.descriptor.bind(self.args, self.keywords)

    def __repr__(self) -> str:
        return f"<Invocation {self.descriptor.qualified} args={self.args!r} kwargs={self.keywords!r}>"


_methods_lock = threading.Lock()
_classes_lock = threading.Lock()
_methods_cache: dict[type, dict[str, MethodDescriptor]] = {}
_proxy_classes: dict[type, type] = {}


@cython.locals(methods=dict, seen=set)
def _collect_methods(service_type: type) -> dict[str, MethodDescriptor]:
    methods = {}
    seen = set()
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
                descriptor = MethodDescriptor.from_function(value)
                descriptor.service_type = service_type
                methods[name] = descriptor
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


@cython.locals(methods=dict, namespace=dict)
def _build_proxy_class(service_type: type) -> type:
    methods = service_methods(service_type)
    namespace = {
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
    cls: type = type(service_type)(f"{service_type.__name__}Proxy", (service_type,), namespace)
    # abstract methods the proxy does not route (private ones, those of root classes) must not block instantiation
    cls.__abstractmethods__ = frozenset()  # type: ignore[attr-defined]  # typeshed's type does not declare it
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


class _Call:
    """A proxy's method, bound once to its descriptor and to the channel's handler: a call builds one Invocation."""

    __slots__ = ("method", "handler")

    @cython.locals(method=MethodDescriptor)
    def __init__(self, method: MethodDescriptor, handler: Callable[[Invocation], Any]) -> None:
        self.method = method
        self.handler = handler

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # compiled, the type's call slot is _call_slot of proxy.pxd, which takes the keywords without a dict
        return self._invoke(args, kwargs or None)

    @cython.locals(invocation=Invocation)
    def _invoke(self, args: tuple[Any, ...], kwargs: dict[str, Any] | None) -> Any:
        invocation = Invocation.__new__(Invocation)  # no __init__: args is a tuple already
        invocation.descriptor = self.method
        invocation.args = args
        invocation.keywords = kwargs
        return self.handler(invocation)

    def _name(self) -> str:
        return self.method.name

    def _doc(self) -> str | None:
        return self.method.func.__doc__

    # the service method's name and docstring (property() here: Cython's pure mode refuses @property
    # on a name the class statement defines itself)
    __name__ = property(_name)
    __doc__ = property(_doc)

    def __getattr__(self, name: str) -> Any:
        # the service method's qualified name: a class body cannot hold a __qualname__ property, as the
        # class statement takes that name for the class's own
        if name == "__qualname__":
            return getattr(self.method.func, "__qualname__", self.method.name)
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __repr__(self) -> str:
        return f"<proxy method {self.method.qualified} via {self.handler!r}>"


if cython.compiled:
    # C API only: a def __call__ taking **kwargs builds a dict on every call; the slot in proxy.pxd takes
    # the keywords as CPython hands them over (NULL when there are none)
    _install_call_slot()  # type: ignore[name-defined]  # noqa: F821 - a cdef inline function of proxy.pxd


_S = typing.TypeVar("_S")


@cython.locals(attributes=dict, methods=dict, method=MethodDescriptor)
def make_proxy(service_type: type[_S], channel: Any) -> _S:
    """An instance of ``service_type``'s proxy class whose methods call ``channel.invoke`` / ``channel.invoke_async``.

    Sync methods return what ``channel.invoke(invocation)`` returns; async methods return
    ``channel.invoke_async(invocation)``, the awaitable the caller awaits. The service's
    ``__init__`` is not called. The channel's handlers are looked up once, here.
    """
    cls: Any = proxy_class(service_type)
    proxy: Any = object.__new__(cls)
    attributes = proxy.__dict__
    attributes[_CHANNEL_KEY] = channel
    invoke = invoke_async = None
    methods = cls.__warpcall_methods__
    for name, method in methods.items():
        if method.is_async:
            if invoke_async is None:
                invoke_async = channel.invoke_async
            attributes[name] = _Call(method, invoke_async)
        else:
            if invoke is None:
                invoke = channel.invoke
            attributes[name] = _Call(method, invoke)
    return typing.cast(_S, proxy)
