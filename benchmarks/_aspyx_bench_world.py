"""The aspyx side of benchmarks/test_bench_di.py, in its own module so that its @module manages only this."""

from __future__ import annotations

from aspyx.di import Environment, injectable, module
from aspyx.di.aop import Invocation, advice, around, methods


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
@injectable()
class ProceedOnly:
    @around(methods().named("greet").of_type(WovenGreeter))
    def proceed(self, invocation: Invocation) -> object:
        return invocation.proceed()


@module()
class AspyxBenchModule:
    pass


def build() -> dict[str, object]:
    env = Environment(AspyxBenchModule)
    return {"environment": env, "plain": Plain(), "woven": env.get(WovenGreeter), "singleton": Unwoven}
