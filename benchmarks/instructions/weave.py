"""Woven method calls and ``Environment.get`` of a singleton (the DI container's hot paths).

The woven calls go through an environment's weaver, as a program's calls do; the call without
advice binds a bare ``MethodPlan`` (an environment leaves unadvised methods alone). The plain
call is the floor the woven ones are measured against (benchmarks/test_bench_di.py: woven 5.0x).
"""

SETUP = """
try:
    from warpcall.di import weave
except ImportError:
    from warpcall._native import weave
from warpcall.di import Environment, injectable, module
from warpcall.di.aop import advice, after, around, before, methods


class Plain:
    def greet(self, name):
        return name


@injectable()
class AroundGreeter:
    def greet(self, name):
        return name

    async def fetch(self, name):
        return name


@injectable()
class BeforeAfterGreeter:
    def greet(self, name):
        return name


@injectable()
class Singleton:
    pass


@advice
class Aspects:
    @around(methods().named("greet").of_type(AroundGreeter))
    def proceed(self, invocation):
        return invocation.proceed()

    @around(methods().named("fetch").of_type(AroundGreeter))
    def proceed_async(self, invocation):
        return invocation.proceed()

    @before(methods().named("greet").of_type(BeforeAfterGreeter))
    def enter(self, invocation):
        pass

    @after(methods().named("greet").of_type(BeforeAfterGreeter))
    def leave(self, invocation):
        pass


@module()
class BenchModule:
    pass


def drive(coroutine):
    # one step of a coroutine that never suspends, without an event loop
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("the coroutine suspended")


environment = Environment(BenchModule)
plain = Plain().greet
bare = weave.MethodPlan(Plain.greet).bind(Plain())
around_greet = environment.get(AroundGreeter).greet
around_fetch = environment.get(AroundGreeter).fetch
before_after_greet = environment.get(BeforeAfterGreeter).greet
get = environment.get
assert type(around_greet).__name__ == "WovenMethod" and type(before_after_greet).__name__ == "WovenMethod"
assert around_greet("x") == "x" and before_after_greet("x") == "x" and drive(around_fetch("x")) == "x"
assert get(Singleton) is get(Singleton)
"""

CASES = {
    "plain call": "plain('x')",
    "woven, no advice": "bare('x')",
    "woven, one around": "around_greet('x')",
    "woven, one around, keyword": "around_greet(name='x')",
    "woven, before+after": "before_after_greet('x')",
    "woven async, one around": "drive(around_fetch('x'))",
    "Environment.get singleton": "get(Singleton)",
}
