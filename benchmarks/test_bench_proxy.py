"""The proxy itself: a call through a service proxy to a channel that returns at once (no I/O).

Groups ``proxy-sync`` and ``proxy-async`` put side by side: warpcall's proxy (compiled and
pure core), aspyx-service's proxy (``aspyx.reflection.DynamicProxy`` with an
``InvocationHandler``, which is what its ``ServiceManager.get_service`` hands out for a
remote channel) and a plain method call as the floor. Each round makes ``CALLS`` calls, so
the time per call is the table's time divided by ``CALLS``. Async calls are awaited inside
one coroutine per round, driven without an event loop (no I/O, so nothing ever suspends).

Run: ``/work/venv/bin/pytest benchmarks/test_bench_proxy.py --benchmark-only -q``
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from warpcall._compiled import load_variant

CALLS = 100


class Greeter(abc.ABC):
    """The service both proxies stand for."""

    @abc.abstractmethod
    def hello(self, name: str) -> str: ...

    @abc.abstractmethod
    async def hello_async(self, name: str) -> str: ...


class GreeterImpl(Greeter):
    """The floor: the same methods called directly."""

    def hello(self, name: str) -> str:
        return name

    async def hello_async(self, name: str) -> str:
        return name


class NullChannel:
    """A warpcall channel that returns at once."""

    def invoke(self, invocation: Any) -> Any:
        return invocation

    async def invoke_async(self, invocation: Any) -> Any:
        return invocation


def finish(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends to its result, without an event loop (the same for every rival)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("the coroutine suspended; this benchmark needs channels that return at once")


def sync_round(proxy: Any) -> Callable[[], None]:
    def run() -> None:
        for _ in range(CALLS):
            proxy.hello("ann")

    return run


def async_round(proxy: Any) -> Callable[[], None]:
    # the caller awaits inside its own coroutine, as an application does; one round is one such coroutine
    async def calls() -> None:
        for _ in range(CALLS):
            await proxy.hello_async("ann")

    def run() -> None:
        finish(calls())

    return run


def warpcall_proxy(native: bool) -> Any:
    try:
        module = load_variant("proxy", native)
    except ImportError:
        pytest.skip("the compiled core is not built here")
    return module.make_proxy(Greeter, NullChannel())


def aspyx_proxy() -> Any:
    reflection = pytest.importorskip("aspyx.reflection")
    pytest.importorskip("aspyx_service")
    proxy_type = reflection.DynamicProxy

    class NullHandler(proxy_type.InvocationHandler):
        """An aspyx-service invocation handler that returns at once."""

        def invoke(self, invocation: Any) -> Any:
            return invocation

        async def invoke_async(self, invocation: Any) -> Any:
            return invocation

    return proxy_type.create(Greeter, NullHandler())


def check(proxy: Any) -> None:
    """Each rival really goes through its channel/handler before it is timed."""
    assert proxy.hello("ann") is not None
    assert finish(proxy.hello_async("ann")) is not None


@pytest.mark.parametrize("native", [True, False], ids=["native", "pure"])
def test_warpcall_proxy_sync(benchmark: Any, native: bool) -> None:
    benchmark.group = "proxy-sync"
    benchmark.extra_info["calls_per_round"] = CALLS
    proxy = warpcall_proxy(native)
    check(proxy)
    benchmark(sync_round(proxy))


def test_aspyx_service_proxy_sync(benchmark: Any) -> None:
    benchmark.group = "proxy-sync"
    benchmark.extra_info["calls_per_round"] = CALLS
    proxy = aspyx_proxy()
    check(proxy)
    benchmark(sync_round(proxy))


def test_plain_call_sync(benchmark: Any) -> None:
    benchmark.group = "proxy-sync"
    benchmark.extra_info["calls_per_round"] = CALLS
    benchmark(sync_round(GreeterImpl()))


@pytest.mark.parametrize("native", [True, False], ids=["native", "pure"])
def test_warpcall_proxy_async(benchmark: Any, native: bool) -> None:
    benchmark.group = "proxy-async"
    benchmark.extra_info["calls_per_round"] = CALLS
    proxy = warpcall_proxy(native)
    check(proxy)
    benchmark(async_round(proxy))


def test_aspyx_service_proxy_async(benchmark: Any) -> None:
    benchmark.group = "proxy-async"
    benchmark.extra_info["calls_per_round"] = CALLS
    proxy = aspyx_proxy()
    check(proxy)
    benchmark(async_round(proxy))


def test_plain_call_async(benchmark: Any) -> None:
    benchmark.group = "proxy-async"
    benchmark.extra_info["calls_per_round"] = CALLS
    benchmark(async_round(GreeterImpl()))
