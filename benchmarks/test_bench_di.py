"""DI and AOP hot paths beside aspyx: a plain call, the same call woven with one proceeding @around,
and ``Environment.get`` of a created singleton.

Run: ``/work/venv/bin/pytest benchmarks/test_bench_di.py --benchmark-only -q``
(``WARPCALL_PURE=1`` in front measures the pure-Python core).
"""

from __future__ import annotations

import pytest

from warpcall.di import Environment, injectable, module
from warpcall.di.aop import Invocation, advice, around, methods


class Plain:
    def greet(self, name: str) -> str:
        return name


@injectable()
class WovenGreeter:
    def greet(self, name: str) -> str:
        return name


@injectable()
class Unwoven:
    def greet(self, name: str) -> str:
        return name


@advice
class ProceedOnly:
    @around(methods().named("greet").of_type(WovenGreeter))
    def proceed(self, invocation: Invocation) -> object:
        return invocation.proceed()


@module()
class BenchModule:
    pass


def measure(benchmark, func, *args):
    """Many calls per round, so the timer's own cost does not swamp a call of tens of nanoseconds."""
    return benchmark.pedantic(func, args, iterations=2000, rounds=100, warmup_rounds=2)


@pytest.fixture(scope="module")
def environment() -> Environment:
    env = Environment(BenchModule)
    yield env
    env.destroy()


@pytest.fixture(scope="module")
def aspyx_world() -> dict[str, object]:
    """The same three cases declared with aspyx, built in a module of their own."""
    pytest.importorskip("aspyx.di")
    import _aspyx_bench_world as world

    return world.build()


def test_plain_call_warpcall(benchmark) -> None:
    benchmark.group = "method call"
    target = Plain()
    assert measure(benchmark, target.greet, "x") == "x"


def test_woven_call_warpcall(benchmark, environment: Environment) -> None:
    benchmark.group = "method call"
    target = environment.get(WovenGreeter)
    assert measure(benchmark, target.greet, "x") == "x"


def test_plain_call_aspyx(benchmark, aspyx_world: dict[str, object]) -> None:
    benchmark.group = "method call"
    target = aspyx_world["plain"]
    assert measure(benchmark, target.greet, "x") == "x"


def test_woven_call_aspyx(benchmark, aspyx_world: dict[str, object]) -> None:
    benchmark.group = "method call"
    target = aspyx_world["woven"]
    assert measure(benchmark, target.greet, "x") == "x"


def test_get_singleton_warpcall(benchmark, environment: Environment) -> None:
    benchmark.group = "Environment.get of a singleton"
    expected = environment.get(Unwoven)
    assert measure(benchmark, environment.get, Unwoven) is expected


def test_get_singleton_aspyx(benchmark, aspyx_world: dict[str, object]) -> None:
    benchmark.group = "Environment.get of a singleton"
    env, cls = aspyx_world["environment"], aspyx_world["singleton"]
    expected = env.get(cls)
    assert measure(benchmark, env.get, cls) is expected
