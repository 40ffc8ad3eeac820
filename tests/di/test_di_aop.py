"""Advice woven into managed instances: pointcuts, order, arguments, results, errors, sync and async."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, Callable

import pytest

from warpcall.di import Decorators, Environment, injectable, module, order
from warpcall.di.aop import Invocation, advice, after, around, before, classes, error, methods

LOG: list[str] = []


def audited() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A user-defined marker decorator, made visible to pointcuts through Decorators.add."""

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        Decorators.add(func, audited)
        return func

    return decorator


def tracked(cls: type) -> type:
    Decorators.add(cls, tracked)
    return cls


@injectable()
class Calculator:
    def add(self, a: int, b: int) -> int:
        LOG.append("add")
        return a + b

    def divide(self, a: int, b: int) -> float:
        return a / b

    def shout(self, text: str) -> str:
        return text

    @audited()
    def transfer(self, amount: int) -> int:
        return amount

    async def fetch(self, key: str) -> str:
        await asyncio.sleep(0)
        return f"value of {key}"

    async def explode(self) -> None:
        await asyncio.sleep(0)
        raise KeyError("gone")

    def untouched(self) -> str:
        return "plain"


@injectable()
@tracked
class Inventory:
    def count(self) -> int:
        return 3

    def name(self) -> str:
        return "inventory"


@injectable()
class Warehouse:
    def load(self) -> str:
        return "loaded"

    def unload(self) -> str:
        return "unloaded"


class Channel:
    """Stands for the service layer's channel base: advice on customize() must reach every subclass instance."""

    def customize(self) -> str:
        return "base"


@injectable(scope="request", eager=False)
class HttpChannel(Channel):
    pass


@advice
class Tracing:
    def __init__(self) -> None:
        self.seen: list[Any] = []

    @before(methods().named("add").of_type(Calculator))
    def before_add(self, invocation: Invocation) -> None:
        LOG.append("before")
        self.seen.append(invocation.args)

    @around(methods().named("add"))
    @order(2)
    def inner(self, invocation: Invocation) -> Any:
        LOG.append("around inner")
        return invocation.proceed()

    @around(methods().named("add"))
    @order(1)
    def outer(self, invocation: Invocation) -> Any:
        LOG.append("around outer")
        return invocation.proceed()

    @after(methods().named("add"))
    def after_add(self, invocation: Invocation) -> None:
        LOG.append(f"after result={invocation.result}")

    @error(methods().named("divide"))
    def on_error(self, invocation: Invocation) -> None:
        LOG.append(f"error {type(invocation.exception).__name__}")

    @after(methods().named("divide"))
    def after_divide(self, invocation: Invocation) -> None:
        LOG.append("after divide")

    @around(methods().named("sh.*t"))
    def louder(self, invocation: Invocation) -> Any:
        self_, text = invocation.args
        return invocation.proceed(self_, text + "!").upper()

    @around(methods().decorated_with(audited), classes().decorated_with(tracked))
    def count_calls(self, invocation: Invocation) -> Any:
        LOG.append(f"audited {invocation.func.__name__}")
        return invocation.proceed()

    @around(methods().named("fetch").that_are_async())
    async def around_fetch(self, invocation: Invocation) -> Any:
        LOG.append("around fetch")
        return (await invocation.proceed()).upper()

    @before(methods().named("fetch"))
    async def before_fetch(self, invocation: Invocation) -> None:
        LOG.append("before fetch")

    @error(methods().named("explode"))
    def explode_error(self, invocation: Invocation) -> None:
        LOG.append(f"async error {invocation.exception!r}")

    @around(methods().named("customize").of_type(Channel))
    def customize(self, invocation: Invocation) -> Any:
        return "advised " + invocation.proceed()

    @before(classes().of_type(Warehouse))
    def every_warehouse_method(self, invocation: Invocation) -> None:
        LOG.append(f"warehouse {invocation.func.__name__}")

    @around(methods().matches(lambda func: func.__name__ == "count"))
    def predicate(self, invocation: Invocation) -> Any:
        return invocation.proceed() * 10


@injectable()
class Greeter:
    def greet(self) -> str:
        return "hi"


@advice
@injectable()
class AdviceBelowInjectable:
    @around(methods().named("greet").of_type(Greeter))
    def wrap(self, invocation: Invocation) -> Any:
        return "[" + invocation.proceed() + "]"


@injectable()
@advice
class AdviceAboveInjectable:
    @around(methods().named("greet").of_type(Greeter))
    @order(5)
    def wrap(self, invocation: Invocation) -> Any:
        return "(" + invocation.proceed() + ")"


@module()
class AopModule:
    pass


@pytest.fixture
def environment() -> Environment:
    env = Environment(AopModule)
    LOG.clear()
    yield env
    env.destroy()


def test_advice_runs_in_documented_order(environment: Environment) -> None:
    calculator = environment.get(Calculator)
    assert calculator.add(1, 2) == 3
    assert LOG == ["before", "around outer", "around inner", "add", "after result=3"]
    assert environment.get(Tracing).seen == [(calculator, 1, 2)]


def test_weaving_keeps_isinstance_and_sync_methods_sync(environment: Environment) -> None:
    calculator = environment.get(Calculator)
    assert isinstance(calculator, Calculator)
    assert type(calculator) is Calculator
    assert not inspect.iscoroutinefunction(calculator.add)
    assert calculator.add.__name__ == "add"
    assert list(inspect.signature(calculator.add).parameters) == ["a", "b"]
    assert calculator.untouched() == "plain"


def test_error_advice_sees_the_exception_and_it_is_reraised(environment: Environment) -> None:
    with pytest.raises(ZeroDivisionError):
        environment.get(Calculator).divide(1, 0)
    assert LOG == ["error ZeroDivisionError", "after divide"]


def test_around_replaces_arguments_and_result(environment: Environment) -> None:
    assert environment.get(Calculator).shout("hey") == "HEY!"


def test_decorated_with_on_methods_and_classes(environment: Environment) -> None:
    assert environment.get(Calculator).transfer(5) == 5
    assert environment.get(Inventory).name() == "inventory"
    assert LOG == ["audited transfer", "audited name"]


def test_several_advices_on_one_method_combine(environment: Environment) -> None:
    assert environment.get(Inventory).count() == 30
    assert LOG == ["audited count"]


def test_async_methods_stay_awaitable_with_async_advice(environment: Environment) -> None:
    calculator = environment.get(Calculator)
    assert inspect.iscoroutinefunction(calculator.fetch)
    assert asyncio.run(calculator.fetch("k")) == "VALUE OF K"
    assert LOG == ["before fetch", "around fetch"]


def test_async_errors_reach_error_advice(environment: Environment) -> None:
    with pytest.raises(KeyError):
        asyncio.run(environment.get(Calculator).explode())
    assert LOG == ["async error KeyError('gone')"]


def test_request_scoped_subclass_instances_are_woven(environment: Environment) -> None:
    first, second = environment.get(HttpChannel), environment.get(HttpChannel)
    assert first is not second
    assert first.customize() == "advised base"
    assert second.customize() == "advised base"
    assert Channel().customize() == "base"


def test_unmanaged_instances_are_not_woven(environment: Environment) -> None:
    LOG.clear()
    assert Calculator().add(2, 2) == 4
    assert LOG == ["add"]



def test_class_pointcut_covers_every_method_of_the_class(environment: Environment) -> None:
    warehouse = environment.get(Warehouse)
    assert (warehouse.load(), warehouse.unload()) == ("loaded", "unloaded")
    assert LOG == ["warehouse load", "warehouse unload"]


def test_advice_registers_alone_or_with_injectable_in_either_order(environment: Environment) -> None:
    assert environment.get(Greeter).greet() == "[(hi)]"
    assert environment.has_provider(AdviceBelowInjectable) and environment.has_provider(AdviceAboveInjectable)
