"""The proxy core on both cores: method descriptors, binding, service methods and proxies."""

from __future__ import annotations

import abc
import asyncio
import inspect
import threading
import traceback
import types
from dataclasses import dataclass
from typing import Any

import pytest

from warpcall._compiled import load_variant

# ---------------------------------------------------------------- services used by the tests


class Root:
    """Stands in for the Service base class of the service layer."""

    __warpcall_root__ = True

    def describe(self) -> str:
        return "root"


class Greeter(Root, abc.ABC):
    """A service interface: sync and async methods, defaults, a forward reference."""

    def __init__(self) -> None:
        raise AssertionError("a proxy must not call the service's __init__")

    @abc.abstractmethod
    def hello(self, name: str, punctuation: str = "!") -> str: ...

    @abc.abstractmethod
    async def hello_async(self, name: str) -> str: ...

    @abc.abstractmethod
    def later(self, item: Later, count: int, tags: list[str] | None = None) -> Later: ...

    @abc.abstractmethod
    def nothing(self, value) -> None: ...

    def untyped(self, a, b=2): ...

    def _helper(self) -> None: ...

    @abc.abstractmethod
    def _private_abstract(self) -> None: ...

    @staticmethod
    def static_thing() -> int:
        return 1

    @property
    def prop(self) -> int:
        return 1


class LoudGreeter(Greeter):
    """Inherits every Greeter method and adds and overrides one each."""

    def shout(self, text: str) -> str: ...

    def hello(self, name: str, punctuation: str = "!!!") -> str: ...


class SubRoot(Root):
    """Inherits the root marker but does not set it itself: its methods are service methods."""

    def ping(self) -> str: ...


@dataclass
class Later:
    """Defined after the service that names it: a forward reference."""

    value: int


class PositionalOnly:
    def method(self, a, /, b): ...


class Variadic:
    def method(self, a, *rest, flag=False, **extra): ...


class Broken:
    def method(self, a: DoesNotExist) -> None: ...  # noqa: F821 - unresolvable on purpose


class Recorder:
    """A channel that returns at once and remembers what it received."""

    def __init__(self, result: Any = "result") -> None:
        self.result = result
        self.calls: list[Any] = []
        self.async_calls: list[Any] = []

    def invoke(self, invocation: Any) -> Any:
        self.calls.append(invocation)
        return self.result

    async def invoke_async(self, invocation: Any) -> Any:
        self.async_calls.append(invocation)
        return self.result


class Boom(Exception):
    pass


class FailingChannel:
    def __init__(self) -> None:
        self.error = Boom("channel failed")

    def invoke(self, invocation: Any) -> Any:
        raise self.error

    async def invoke_async(self, invocation: Any) -> Any:
        raise self.error


def fresh_service_type() -> type:
    """A new service type per call, for cache tests that must start cold."""

    class Fresh(abc.ABC):
        @abc.abstractmethod
        def one(self, x: int) -> int: ...

        async def two(self) -> None: ...

    return Fresh


# ---------------------------------------------------------------- descriptors


def test_descriptor_names_and_shape(core) -> None:
    proxy = core.proxy
    desc = proxy.MethodDescriptor.from_function(Greeter.hello)
    assert isinstance(desc, proxy.MethodDescriptor)
    assert desc.name == "hello"
    assert desc.qualified == "hello"
    assert desc.func is Greeter.hello
    assert desc.is_async is False
    assert desc.param_names == ("name", "punctuation")
    assert list(desc.signature.parameters) == ["self", "name", "punctuation"]
    assert desc.plans == {}
    desc.qualified = "greeting:greeter:hello"
    desc.plans["dispatch-json"] = "plan"
    assert desc.qualified == "greeting:greeter:hello"
    assert desc.plans == {"dispatch-json": "plan"}
    assert "greeting:greeter:hello" in repr(desc)


def test_descriptor_detects_async(core) -> None:
    desc = core.proxy.MethodDescriptor.from_function(Greeter.hello_async)
    assert desc.is_async is True
    assert desc.param_names == ("name",)


def test_descriptor_resolves_hints_with_future_annotations_and_forward_refs(core) -> None:
    # this module uses `from __future__ import annotations`, so every hint here is a string
    desc = core.proxy.MethodDescriptor.from_function(Greeter.later)
    assert desc.param_types == (Later, int, list[str] | None)
    assert desc.return_type is Later
    nothing = core.proxy.MethodDescriptor.from_function(Greeter.nothing)
    assert nothing.param_types == (Any,)
    assert nothing.return_type is type(None)
    untyped = core.proxy.MethodDescriptor.from_function(Greeter.untyped)
    assert untyped.param_types == (Any, Any)
    assert untyped.return_type is Any


def test_descriptor_resolves_hints_without_future_import(core) -> None:
    source = (
        "class Service:\n"
        "    def method(self, a: int, b: 'Item', c) -> 'list[Item]': ...\n"
        "class Item:\n"
        "    pass\n"
    )
    module = types.ModuleType("proxy_hints_plain")
    exec(compile(source, "proxy_hints_plain.py", "exec", dont_inherit=True), module.__dict__)
    desc = core.proxy.MethodDescriptor.from_function(module.Service.method)
    assert desc.param_types == (int, module.Item, Any)
    assert desc.return_type == list[module.Item]


def test_unresolvable_hint_fails_on_first_use_naming_the_method(core) -> None:
    desc = core.proxy.MethodDescriptor.from_function(Broken.method)  # building does not resolve hints yet
    with pytest.raises(TypeError, match=r"cannot resolve the type hints of Broken\.method\(\).*DoesNotExist"):
        desc.param_types  # noqa: B018
    with pytest.raises(TypeError, match=r"Broken\.method\(\)"):
        desc.return_type  # noqa: B018


# ---------------------------------------------------------------- bind


def python_message(func: Any, *args: Any, **kwargs: Any) -> str:
    """The message Python itself gives for calling ``func`` unbound with these arguments (after ``self``)."""
    with pytest.raises(TypeError) as info:
        func(object(), *args, **kwargs)
    return str(info.value)


def test_bind_fast_path_returns_the_same_tuple(core) -> None:
    desc = core.proxy.MethodDescriptor.from_function(Greeter.hello)
    args = ("ann", "?")
    assert desc.bind(args, None) is args
    assert desc.bind(args, {}) is args


def test_bind_applies_defaults_and_keywords(core) -> None:
    desc = core.proxy.MethodDescriptor.from_function(Greeter.later)
    assert desc.bind((1, 2), None) == (1, 2, None)
    assert desc.bind((1,), {"count": 2}) == (1, 2, None)
    assert desc.bind((), {"tags": ["t"], "item": 1, "count": 2}) == (1, 2, ["t"])
    assert desc.bind([1, 2, 3], None) == (1, 2, 3)
    assert type(desc.bind([1, 2, 3], None)) is tuple


def test_bind_errors_read_like_pythons_own(core) -> None:
    desc = core.proxy.MethodDescriptor.from_function(Greeter.later)
    cases: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        ((), {}),
        ((1,), {}),
        ((), {"tags": []}),
        ((1, 2), {"colour": "red"}),
        ((1, 2), {"item": 3}),
    ]
    for args, kwargs in cases:
        with pytest.raises(TypeError) as info:
            desc.bind(args, kwargs or None)
        assert str(info.value) == python_message(Greeter.later, *args, **kwargs)
    assert "missing 2 required positional arguments: 'item' and 'count'" in python_message(Greeter.later)

    three = core.proxy.MethodDescriptor.from_function(Greeter.untyped)
    with pytest.raises(TypeError) as info:
        three.bind((), None)
    assert str(info.value) == python_message(Greeter.untyped)

    positional_only = core.proxy.MethodDescriptor.from_function(PositionalOnly.method)
    assert positional_only.bind((1,), {"b": 2}) == (1, 2)
    with pytest.raises(TypeError) as info:
        positional_only.bind((), {"a": 1, "b": 2})
    assert str(info.value) == (
        "PositionalOnly.method() got some positional-only arguments passed as keyword arguments: 'a'"
    )


def test_bind_too_many_counts_the_callers_arguments(core) -> None:
    # Python counts `self` here; a proxy's caller never passes it, so the method's own parameters are counted
    later = core.proxy.MethodDescriptor.from_function(Greeter.later)
    with pytest.raises(TypeError) as info:
        later.bind((1, 2, 3, 4), None)
    assert str(info.value) == "Greeter.later() takes from 2 to 3 positional arguments but 4 were given"
    nothing = core.proxy.MethodDescriptor.from_function(Greeter.nothing)
    with pytest.raises(TypeError) as info:
        nothing.bind((1, 2), None)
    assert str(info.value) == "Greeter.nothing() takes 1 positional argument but 2 were given"
    ping = core.proxy.MethodDescriptor.from_function(SubRoot.ping)
    with pytest.raises(TypeError) as info:
        ping.bind((1,), {})
    assert str(info.value) == "SubRoot.ping() takes 0 positional arguments but 1 was given"


def test_bind_rejects_keyword_only_and_variadic_parameters(core) -> None:
    desc = core.proxy.MethodDescriptor.from_function(Variadic.method)
    assert desc.param_names == ("a", "rest", "flag", "extra")
    with pytest.raises(TypeError, match=r"Variadic\.method\(\) has keyword-only or variadic parameters"):
        desc.bind((1,), None)


def test_invocation_positional_binds(core) -> None:
    proxy = core.proxy
    desc = proxy.MethodDescriptor.from_function(Greeter.hello)
    invocation = proxy.Invocation(desc, ("ann",), {"punctuation": "?"})
    assert invocation.descriptor is desc
    assert invocation.method is Greeter.hello  # aspyx's DynamicProxy.Invocation: the function
    assert invocation.args == ("ann",)
    assert invocation.kwargs == {"punctuation": "?"}
    assert invocation.positional() == ("ann", "?")
    assert proxy.Invocation(desc, ("bob",)).positional() == ("bob", "!")
    assert proxy.Invocation(desc, ("bob",)).keywords is None
    assert proxy.Invocation(desc, ("bob",)).kwargs == {}


@pytest.mark.c_extension
def test_messages_are_identical_on_both_cores() -> None:
    try:
        native = load_variant("proxy", native=True)
    except ImportError:
        pytest.skip("the compiled core is not built here")
    pure = load_variant("proxy", native=False)
    calls: list[tuple[Any, tuple[Any, ...], dict[str, Any] | None]] = [
        (Greeter.later, (), None),
        (Greeter.later, (1, 2, 3, 4), None),
        (Greeter.later, (1,), {"item": 2}),
        (Greeter.later, (1, 2), {"nope": 2}),
        (Greeter.untyped, (), None),
        (Greeter.nothing, (1, 2), None),
        (PositionalOnly.method, (), {"a": 1}),
        (Variadic.method, (), None),
    ]
    for func, args, kwargs in calls:
        messages = []
        for module in (native, pure):
            with pytest.raises(TypeError) as info:
                module.MethodDescriptor.from_function(func).bind(args, kwargs)
            messages.append(str(info.value))
        assert messages[0] == messages[1]
    hint_messages = []
    for module in (native, pure):
        with pytest.raises(TypeError) as info:
            module.MethodDescriptor.from_function(Broken.method).param_types  # noqa: B018
        hint_messages.append(str(info.value))
    assert hint_messages[0] == hint_messages[1]


# ---------------------------------------------------------------- service_methods


def test_service_methods_are_the_public_functions_below_the_root(core) -> None:
    methods = core.proxy.service_methods(Greeter)
    assert set(methods) == {"hello", "hello_async", "later", "nothing", "untyped"}
    assert all(isinstance(m, core.proxy.MethodDescriptor) for m in methods.values())
    assert methods["hello"].func is Greeter.hello
    assert methods["hello_async"].is_async


def test_service_methods_follow_inheritance(core) -> None:
    methods = core.proxy.service_methods(LoudGreeter)
    assert set(methods) == {"hello", "hello_async", "later", "nothing", "untyped", "shout"}
    assert methods["hello"].func is LoudGreeter.hello
    assert methods["hello"].bind(("x",), None) == ("x", "!!!")
    assert methods["later"].func is Greeter.later
    # each service type gets its own descriptors, so the service layer can name them per service
    assert methods["later"] is not core.proxy.service_methods(Greeter)["later"]


def test_root_marker_counts_only_in_the_class_own_dict(core) -> None:
    assert set(core.proxy.service_methods(SubRoot)) == {"ping"}
    assert core.proxy.service_methods(Root) == {}


def test_service_methods_are_cached_per_type(core) -> None:
    fresh = fresh_service_type()
    first = core.proxy.service_methods(fresh)
    assert core.proxy.service_methods(fresh) is first
    assert core.proxy.service_methods(fresh_service_type()) is not first


# ---------------------------------------------------------------- proxies


def test_proxy_is_an_instance_of_the_service(core) -> None:
    channel = Recorder()
    proxy = core.proxy.make_proxy(Greeter, channel)
    assert isinstance(proxy, Greeter)
    assert isinstance(proxy, Root)
    assert "Greeter" in repr(proxy)
    assert repr(channel) in repr(proxy)


def test_sync_call_returns_the_channel_result(core) -> None:
    channel = Recorder(result={"greeting": "hi"})
    proxy = core.proxy.make_proxy(Greeter, channel)
    assert proxy.hello("ann") is channel.result
    (invocation,) = channel.calls
    assert invocation.descriptor is core.proxy.service_methods(Greeter)["hello"]
    assert invocation.args == ("ann",)
    assert type(invocation.args) is tuple
    assert invocation.keywords is None
    assert invocation.positional() == ("ann", "!")
    assert channel.async_calls == []


def test_invocation_reads_as_aspyx_dynamic_proxy_invocation(core) -> None:
    """A channel written for aspyx reads type, method (the function), args and kwargs (a dict)."""
    channel = Recorder()
    proxy = core.proxy.make_proxy(Greeter, channel)
    proxy.hello("ann")
    asyncio.run(proxy.hello_async("bob"))
    (sync_call,), (async_call,) = channel.calls, channel.async_calls
    assert sync_call.type is Greeter and async_call.type is Greeter
    assert sync_call.method is Greeter.hello and sync_call.method.__name__ == "hello"
    assert async_call.method is Greeter.hello_async and inspect.iscoroutinefunction(async_call.method)
    assert sync_call.args == ("ann",) and async_call.args == ("bob",)
    # no keywords: an empty dict on reading (as aspyx's), kept, so what a channel adds stays
    assert sync_call.kwargs == {}
    sync_call.kwargs["punctuation"] = "?"
    assert sync_call.kwargs == {"punctuation": "?"}
    assert sync_call.positional() == ("ann", "?")


def test_keywords_reach_the_channel(core) -> None:
    channel = Recorder()
    proxy = core.proxy.make_proxy(Greeter, channel)
    proxy.hello("ann", punctuation="?")
    proxy.later(item=Later(1), count=2)
    first, second = channel.calls
    assert first.args == ("ann",)
    assert first.kwargs == {"punctuation": "?"}
    assert first.positional() == ("ann", "?")
    assert second.args == ()
    assert second.positional() == (Later(1), 2, None)


def test_caller_keyword_dict_is_not_shared(core) -> None:
    channel = Recorder()
    proxy = core.proxy.make_proxy(Greeter, channel)
    keywords = {"punctuation": "?"}
    proxy.hello("ann", **keywords)
    keywords["punctuation"] = "changed"
    assert channel.calls[0].kwargs == {"punctuation": "?"}


def test_qualified_name_set_by_the_service_layer_reaches_the_channel(core) -> None:
    service = fresh_service_type()
    core.proxy.service_methods(service)["one"].qualified = "component:fresh:one"
    channel = Recorder()
    core.proxy.make_proxy(service, channel).one(1)
    assert channel.calls[0].descriptor.qualified == "component:fresh:one"


def test_async_call_returns_an_awaitable(core) -> None:
    channel = Recorder(result="hi ann")
    proxy = core.proxy.make_proxy(Greeter, channel)
    awaitable = proxy.hello_async("ann")
    assert inspect.isawaitable(awaitable)
    assert channel.calls == []
    assert asyncio.run(awaitable) == "hi ann"
    (invocation,) = channel.async_calls
    assert invocation.descriptor.name == "hello_async"
    assert invocation.args == ("ann",)
    assert invocation.keywords is None


def test_channel_exceptions_propagate_unchanged(core) -> None:
    channel = FailingChannel()
    proxy = core.proxy.make_proxy(Greeter, channel)
    with pytest.raises(Boom) as info:
        proxy.hello("ann")
    assert info.value is channel.error
    frames = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert "invoke" in frames

    async def call() -> None:
        await proxy.hello_async("ann")

    with pytest.raises(Boom) as info:
        asyncio.run(call())
    assert info.value is channel.error
    frames = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert "invoke_async" in frames


def test_proxy_class_is_built_once_per_type(core) -> None:
    first = core.proxy.make_proxy(Greeter, Recorder())
    second = core.proxy.make_proxy(Greeter, Recorder())
    assert type(first) is type(second)
    assert core.proxy.proxy_class(Greeter) is type(first)
    assert type(core.proxy.make_proxy(LoudGreeter, Recorder())) is not type(first)


def test_each_proxy_calls_its_own_channel(core) -> None:
    one, two = Recorder("one"), Recorder("two")
    assert core.proxy.make_proxy(Greeter, one).hello("x") == "one"
    assert core.proxy.make_proxy(Greeter, two).hello("x") == "two"
    assert len(one.calls) == len(two.calls) == 1


def test_proxy_methods_carry_the_service_method_names(core) -> None:
    proxy = core.proxy.make_proxy(Greeter, Recorder())
    assert proxy.hello.__name__ == "hello"
    assert proxy.hello_async.__qualname__ == "Greeter.hello_async"
    # the proxy class's forwarders are not mistaken for service methods
    assert set(core.proxy.service_methods(type(proxy))) == set(core.proxy.service_methods(Greeter))


def test_proxy_methods_carry_docstrings_and_refuse_unknown_attributes(core) -> None:
    class Documented:
        def act(self, value: int) -> int:
            """Acts on a value."""
            ...

    method = core.proxy.make_proxy(Documented, Recorder()).act
    assert method.__doc__ == "Acts on a value."
    assert method.__qualname__.endswith("Documented.act")
    with pytest.raises(AttributeError, match="'_Call' object has no attribute 'nope'"):
        method.nope  # noqa: B018


def test_explicit_dunder_call_matches_a_plain_call(core) -> None:
    # compiled, a plain call takes the type's C call slot and __call__ the method Cython wrote: both must agree
    channel = Recorder()
    proxy = core.proxy.make_proxy(Greeter, channel)
    proxy.hello("ann", punctuation="?")
    proxy.hello.__call__("ann", punctuation="?")
    proxy.hello.__call__("bob")
    first, second, third = channel.calls
    assert (first.args, first.kwargs) == (second.args, second.kwargs) == (("ann",), {"punctuation": "?"})
    assert (third.args, third.keywords) == (("bob",), None)


def test_invocation_args_are_a_tuple(core) -> None:
    desc = core.proxy.MethodDescriptor.from_function(Greeter.hello)
    invocation = core.proxy.Invocation(desc, ["ann"])
    assert invocation.args == ("ann",)
    assert invocation.keywords is None


def test_calls_through_the_class_forward_to_the_channel(core) -> None:
    channel = Recorder()
    proxy = core.proxy.make_proxy(LoudGreeter, channel)
    assert type(proxy).shout(proxy, "hey") == "result"
    assert channel.calls[0].args == ("hey",)
    assert proxy.describe() == "root"  # root methods are not routed


def test_proxy_cache_is_thread_safe(core) -> None:
    service = fresh_service_type()
    workers = 8
    barrier = threading.Barrier(workers)
    classes: list[type] = []
    method_maps: list[dict[str, Any]] = []

    def build() -> None:
        barrier.wait(timeout=10)
        proxy = core.proxy.make_proxy(service, Recorder())
        classes.append(type(proxy))
        method_maps.append(core.proxy.service_methods(service))

    threads = [threading.Thread(target=build) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(classes) == workers
    assert all(cls is classes[0] for cls in classes)
    assert all(methods is method_maps[0] for methods in method_maps)
