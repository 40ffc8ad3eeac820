"""Compiled twin of warpcall._pure.proxy: method descriptors, invocations and service proxies."""

cimport cython
from cpython.dict cimport PyDict_Copy, PyDict_Size
from cpython.object cimport PyObject, PyTypeObject, ternaryfunc

import inspect
import threading
import typing
from typing import Any

cdef object _POSITIONAL_ONLY = inspect.Parameter.POSITIONAL_ONLY
cdef tuple _POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
cdef object _EMPTY = inspect.Parameter.empty
cdef object _iscoroutinefunction = inspect.iscoroutinefunction
cdef object _isfunction = inspect.isfunction
cdef object _signature = inspect.signature
cdef object _get_type_hints = typing.get_type_hints

# instance-dict key under which a proxy keeps its channel (service methods never start with "_")
cdef str _CHANNEL_KEY = "_warpcall_channel"


cdef str _quoted_names(list names):
    """Python's own way of listing missing arguments: 'a', 'a' and 'b', 'a', 'b', and 'c'."""
    cdef list quoted = [repr(name) for name in names]
    if len(quoted) == 1:
        return quoted[0]
    if len(quoted) == 2:
        return f"{quoted[0]} and {quoted[1]}"
    cdef Py_ssize_t last = len(quoted) - 1
    return ", ".join(quoted[:last]) + ", and " + quoted[last]


class _Missing:
    __slots__ = ()

    def __repr__(self):
        return "<missing>"


cdef object _MISSING = _Missing()


cdef class MethodDescriptor:
    """Everything about one service method that does not depend on a call's arguments (built once, cached)."""

    cdef public str name
    cdef public str qualified
    cdef public object func
    cdef public bint is_async
    cdef public object signature
    cdef public tuple param_names
    cdef public dict plans
    cdef object _param_types
    cdef object _return_type
    cdef str _label
    cdef Py_ssize_t _count
    cdef Py_ssize_t _required
    cdef tuple _defaults
    cdef dict _index
    cdef frozenset _positional_only
    cdef str _unbindable

    def __init__(self, func):
        self.func = func
        self.name = func.__name__
        self.qualified = self.name
        self.is_async = _iscoroutinefunction(func)
        self.signature = _signature(func)
        self.plans = {}
        self._param_types = None
        self._return_type = None
        self._label = f"{getattr(func, '__qualname__', self.name)}()"

        cdef list params = list(self.signature.parameters.values())
        # the first positional parameter is the instance the method is called on
        if params and params[0].kind in _POSITIONAL:
            params = params[1:]
        self.param_names = tuple([p.name for p in params])
        cdef list positional = [p for p in params if p.kind in _POSITIONAL]
        self._count = len(positional)
        cdef list defaults = [p.default for p in positional if p.default is not _EMPTY]
        self._required = self._count - len(defaults)
        self._defaults = tuple(defaults)
        self._index = {p.name: i for i, p in enumerate(positional)}
        self._positional_only = frozenset([p.name for p in positional if p.kind is _POSITIONAL_ONLY])
        self._unbindable = ", ".join([repr(p.name) for p in params if p.kind not in _POSITIONAL])

    @classmethod
    def from_function(cls, func):
        """Describe the function declared on a service class (its first parameter is the instance)."""
        return cls(func)

    cdef _resolve_hints(self):
        try:
            hints = _get_type_hints(self.func)
        except Exception as exc:
            raise TypeError(
                f"cannot resolve the type hints of {self._label}: {exc}; "
                "define every type the signature names at module level"
            ) from exc
        self._return_type = hints.get("return", Any)
        self._param_types = tuple([hints.get(name, Any) for name in self.param_names])

    @property
    def param_types(self):
        """Resolved type hints of the parameters (without the instance); ``Any`` where a hint is missing."""
        if self._param_types is None:
            self._resolve_hints()
        return self._param_types

    @property
    def return_type(self):
        """Resolved return hint; ``Any`` when missing, ``type(None)`` for ``-> None``."""
        if self._param_types is None:
            self._resolve_hints()
        return self._return_type

    cpdef tuple bind(self, object args, object kwargs=None):
        """Return the positional arguments in declared order with defaults applied; TypeError like Python's own."""
        if type(args) is not tuple:
            args = tuple(args)
        cdef tuple positional = <tuple>args
        cdef Py_ssize_t given = len(positional)
        if not kwargs and given == self._count and not self._unbindable:
            return positional
        if self._unbindable:
            raise TypeError(
                f"{self._label} has keyword-only or variadic parameters ({self._unbindable}); "
                "a service method takes plain positional parameters so every channel can pass them in order"
            )
        cdef Py_ssize_t count = self._count
        if given > count:
            raise TypeError(self._too_many(given))
        if not kwargs:
            if given < self._required:
                raise TypeError(self._missing(list(self.param_names[given:self._required])))
            return positional + self._defaults[given - self._required:]
        cdef list values = list(positional)
        values.extend([_MISSING] * (count - given))
        cdef Py_ssize_t i
        for key, value in kwargs.items():
            position = self._index.get(key)
            if position is None:
                raise TypeError(f"{self._label} got an unexpected keyword argument {key!r}")
            if key in self._positional_only:
                raise TypeError(
                    f"{self._label} got some positional-only arguments passed as keyword arguments: {key!r}"
                )
            if <Py_ssize_t>position < given:
                raise TypeError(f"{self._label} got multiple values for argument {key!r}")
            values[<Py_ssize_t>position] = value
        cdef list missing = [self.param_names[i] for i in range(given, self._required) if values[i] is _MISSING]
        if missing:
            raise TypeError(self._missing(missing))
        for i in range(max(given, self._required), count):
            if values[i] is _MISSING:
                values[i] = self._defaults[i - self._required]
        return tuple(values)

    cdef str _too_many(self, Py_ssize_t given):
        cdef str was = "was" if given == 1 else "were"
        if self._required == self._count:
            plural = "" if self._count == 1 else "s"
            return f"{self._label} takes {self._count} positional argument{plural} but {given} {was} given"
        return f"{self._label} takes from {self._required} to {self._count} positional arguments but {given} {was} given"

    cdef str _missing(self, list names):
        plural = "" if len(names) == 1 else "s"
        return f"{self._label} missing {len(names)} required positional argument{plural}: {_quoted_names(names)}"

    def __repr__(self):
        return f"<MethodDescriptor {self.qualified}{self.signature}>"


@cython.final
@cython.freelist(32)
cdef class Invocation:
    """One call through a proxy: the method, the positional arguments, and the keywords (None when none)."""

    cdef public MethodDescriptor method
    cdef public tuple args
    cdef public object kwargs

    def __init__(self, MethodDescriptor method, args, kwargs=None):
        self.method = method
        self.args = args if type(args) is tuple else tuple(args)
        self.kwargs = kwargs

    def positional(self):
        """The call's arguments as a positional tuple in declared order, defaults applied."""
        return self.method.bind(self.args, self.kwargs)

    def __repr__(self):
        return f"<Invocation {self.method.qualified} args={self.args!r} kwargs={self.kwargs!r}>"


cdef object _methods_lock = threading.Lock()
cdef object _classes_lock = threading.Lock()
cdef dict _methods_cache = {}
cdef dict _proxy_classes = {}


cdef dict _collect_methods(object service_type):
    cdef dict methods = {}
    cdef set seen = set()
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
            if _isfunction(value):
                methods[name] = MethodDescriptor.from_function(value)
    return methods


cpdef dict service_methods(object service_type):
    """The public methods of a service interface, by name; built once per type and cached (thread-safe)."""
    methods = _methods_cache.get(service_type)
    if methods is None:
        with _methods_lock:
            methods = _methods_cache.get(service_type)
            if methods is None:
                methods = _collect_methods(service_type)
                _methods_cache[service_type] = methods
    return methods


def _forwarder(str name, object func):
    """Class-level stand-in for a service method: overrides the abstract one and forwards to the instance's call."""

    def method(self, *args, **kwargs):
        return self.__dict__[name](*args, **kwargs)

    method.__name__ = func.__name__
    method.__qualname__ = getattr(func, "__qualname__", func.__name__)
    method.__doc__ = func.__doc__
    method.__module__ = func.__module__
    return method


def _proxy_repr(self):
    service_type = type(self).__warpcall_service__
    channel = self.__dict__.get(_CHANNEL_KEY)
    return f"<warpcall proxy for {service_type.__module__}.{service_type.__qualname__} via {channel!r}>"


cdef object _build_proxy_class(object service_type):
    cdef dict methods = service_methods(service_type)
    cdef dict namespace = {
        "__module__": service_type.__module__,
        "__qualname__": f"{service_type.__qualname__}Proxy",
        "__doc__": f"Proxy of {service_type.__qualname__}: every call goes to a channel.",
        "__repr__": _proxy_repr,
        "__warpcall_proxy__": True,
        "__warpcall_service__": service_type,
        "__warpcall_methods__": methods,
    }
    for name, descriptor in methods.items():
        namespace[name] = _forwarder(name, (<MethodDescriptor>descriptor).func)
    cls = type(service_type)(f"{service_type.__name__}Proxy", (service_type,), namespace)
    # abstract methods the proxy does not route (private ones, those of root classes) must not block instantiation
    cls.__abstractmethods__ = frozenset()
    return cls


cpdef object proxy_class(object service_type):
    """The proxy class of a service type: a subclass whose public methods go to a channel (built once, cached)."""
    cls = _proxy_classes.get(service_type)
    if cls is None:
        with _classes_lock:
            cls = _proxy_classes.get(service_type)
            if cls is None:
                cls = _build_proxy_class(service_type)
                _proxy_classes[service_type] = cls
    return cls


@cython.final
cdef class _Call:
    """A proxy's method, bound once to its descriptor and to the channel's handler: a call builds one Invocation."""

    cdef MethodDescriptor method
    cdef object handler

    def __call__(self, *args, **kwargs):
        # only reached through __call__ itself; the type's call slot is _call_slot (below)
        return _call_slot(self, args, <PyObject*>kwargs)

    @property
    def __name__(self):
        return self.method.name

    @property
    def __qualname__(self):
        return getattr(self.method.func, "__qualname__", self.method.name)

    @property
    def __doc__(self):
        return self.method.func.__doc__

    def __repr__(self):
        return f"<proxy method {self.method.qualified} via {self.handler!r}>"


cdef object _call_slot(object self, object args, PyObject* kwargs):
    """tp_call of _Call: CPython passes NULL when there are no keywords, so no empty dict is built per call."""
    cdef _Call call = <_Call>self
    cdef Invocation invocation = Invocation.__new__(Invocation)
    invocation.method = call.method
    invocation.args = <tuple>args
    if kwargs is not NULL and PyDict_Size(<object>kwargs) > 0:
        # the dict may be the caller's own (C callers of PyObject_Call); the invocation keeps a copy, like Python
        invocation.kwargs = PyDict_Copy(<object>kwargs)
    return call.handler(invocation)


# a def __call__ with **kwargs always builds a dict; the C slot takes the keywords as CPython hands them over
(<PyTypeObject*>_Call).tp_call = <ternaryfunc>_call_slot


cdef _Call _new_call(MethodDescriptor method, object handler):
    cdef _Call call = _Call.__new__(_Call)
    call.method = method
    call.handler = handler
    return call


def make_proxy(service_type, channel):
    """An instance of ``service_type``'s proxy class whose methods call ``channel.invoke`` / ``channel.invoke_async``.

    Sync methods return what ``channel.invoke(invocation)`` returns; async methods return
    ``channel.invoke_async(invocation)``, the awaitable the caller awaits. The service's
    ``__init__`` is not called. The channel's handlers are looked up once, here.
    """
    cls = proxy_class(service_type)
    proxy = object.__new__(cls)
    cdef dict attributes = proxy.__dict__
    attributes[_CHANNEL_KEY] = channel
    invoke = invoke_async = None
    for name, method in (<dict>cls.__warpcall_methods__).items():
        if (<MethodDescriptor>method).is_async:
            if invoke_async is None:
                invoke_async = channel.invoke_async
            attributes[name] = _new_call(method, invoke_async)
        else:
            if invoke is None:
                invoke = channel.invoke
            attributes[name] = _new_call(method, invoke)
    return proxy
