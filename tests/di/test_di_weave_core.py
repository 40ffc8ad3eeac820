"""The joinpoint chain of a woven method (warpcall.di.weave), on both cores."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest


class Account:
    def __init__(self) -> None:
        self.log: list[str] = []

    def deposit(self, amount: int, note: str = "") -> int:
        self.log.append(f"deposit {amount} {note}".strip())
        return amount * 2

    def fail(self) -> None:
        raise ValueError("broken")

    async def fetch(self, key: str) -> str:
        await asyncio.sleep(0)
        return key.upper()

    async def fail_async(self) -> None:
        await asyncio.sleep(0)
        raise LookupError("missing")


def test_plan_without_advice_calls_the_method(core: Any) -> None:
    account = Account()
    woven = core.weave.MethodPlan(Account.deposit).bind(account)
    assert woven(3) == 6
    assert woven(1, note="x") == 2
    assert account.log == ["deposit 3", "deposit 1 x"]


def test_order_before_around_after(core: Any) -> None:
    log: list[str] = []
    account = Account()

    def before(invocation: Any) -> None:
        log.append(f"before {invocation.args[1:]}")

    def outer(invocation: Any) -> Any:
        log.append("outer in")
        result = invocation.proceed()
        log.append("outer out")
        return result

    def inner(invocation: Any) -> Any:
        log.append("inner")
        return invocation.proceed()

    def after(invocation: Any) -> None:
        log.append(f"after {invocation.result} {invocation.exception}")

    plan = core.weave.MethodPlan(Account.deposit, befores=(before,), arounds=(outer, inner), afters=(after,))
    assert plan.bind(account)(5) == 10
    assert log == ["before (5,)", "outer in", "inner", "outer out", "after 10 None"]


def test_invocation_carries_func_self_args_and_kwargs(core: Any) -> None:
    seen: list[Any] = []
    account = Account()

    def around(invocation: Any) -> Any:
        seen.append((invocation.func, invocation.args, invocation.kwargs))
        return invocation.proceed()

    core.weave.MethodPlan(Account.deposit, arounds=(around,)).bind(account)(4, note="n")
    assert seen == [(Account.deposit, (account, 4), {"note": "n"})]


def test_around_replaces_arguments_and_result(core: Any) -> None:
    account = Account()

    def around(invocation: Any) -> Any:
        self_, amount = invocation.args
        return invocation.proceed(self_, amount + 1) + 1000

    assert core.weave.MethodPlan(Account.deposit, arounds=(around,)).bind(account)(1) == 1004
    assert account.log == ["deposit 2"]


def test_around_may_proceed_twice(core: Any) -> None:
    account = Account()
    calls: list[str] = []

    def retry(invocation: Any) -> Any:
        invocation.proceed()
        return invocation.proceed()

    def inner(invocation: Any) -> Any:
        calls.append("inner")
        return invocation.proceed()

    assert core.weave.MethodPlan(Account.deposit, arounds=(retry, inner)).bind(account)(2) == 4
    assert calls == ["inner", "inner"]
    assert account.log == ["deposit 2", "deposit 2"]


def test_error_advice_sees_the_exception_then_after_runs_then_it_is_reraised(core: Any) -> None:
    log: list[str] = []

    def on_error(invocation: Any) -> None:
        log.append(f"error {invocation.exception!r}")

    def after(invocation: Any) -> None:
        log.append("after")

    woven = core.weave.MethodPlan(Account.fail, afters=(after,), errors=(on_error,)).bind(Account())
    with pytest.raises(ValueError, match="broken"):
        woven()
    assert log == ["error ValueError('broken')", "after"]


def test_error_advice_may_swallow_and_after_may_replace_the_result(core: Any) -> None:
    def swallow(invocation: Any) -> None:
        invocation.exception = None
        invocation.result = "recovered"

    assert core.weave.MethodPlan(Account.fail, errors=(swallow,)).bind(Account())() == "recovered"

    def replace(invocation: Any) -> None:
        invocation.result = -1

    assert core.weave.MethodPlan(Account.deposit, afters=(replace,)).bind(Account())(3) == -1


def test_woven_method_looks_like_the_bound_method(core: Any) -> None:
    account = Account()
    woven = core.weave.MethodPlan(Account.deposit).bind(account)
    assert woven.__name__ == "deposit"
    assert woven.__qualname__ == "Account.deposit"
    assert woven.__self__ is account
    assert woven.__func__ is Account.deposit
    assert woven.__wrapped__ == account.deposit


def test_async_chain_awaits_async_advice_and_calls_sync_advice(core: Any) -> None:
    log: list[str] = []
    account = Account()

    async def before(invocation: Any) -> None:
        log.append("async before")

    def sync_after(invocation: Any) -> None:
        log.append(f"after {invocation.result}")

    async def around(invocation: Any) -> Any:
        log.append("around")
        return "<" + await invocation.proceed() + ">"

    def sync_around(invocation: Any) -> Any:
        log.append("sync around")
        return invocation.proceed()

    plan = core.weave.MethodPlan(Account.fetch, befores=(before,), arounds=(around, sync_around), afters=(sync_after,))
    assert asyncio.run(plan.run_async(account, ("k",), {})) == "<K>"
    assert log == ["async before", "around", "sync around", "after <K>"]


def test_async_chain_with_proceed_async_and_errors(core: Any) -> None:
    log: list[str] = []

    async def around(invocation: Any) -> Any:
        return await invocation.proceed_async()

    async def on_error(invocation: Any) -> None:
        log.append(type(invocation.exception).__name__)

    plan = core.weave.MethodPlan(Account.fail_async, arounds=(around,), errors=(on_error,))
    with pytest.raises(LookupError):
        asyncio.run(plan.run_async(Account(), (), {}))
    assert log == ["LookupError"]


def test_proceed_without_a_chain_says_so(core: Any) -> None:
    invocation = core.weave.Invocation(Account.deposit, (Account(), 1))
    with pytest.raises(RuntimeError, match="Account.deposit has no advice chain"):
        invocation.proceed()


def test_instance_cache_answers_hits_and_delegates_misses(core: Any) -> None:
    store: dict[Any, Any] = {int: "cached"}
    misses: list[Any] = []

    def miss(key: Any) -> Any:
        misses.append(key)
        return f"made {key.__name__}"

    cache = core.weave.InstanceCache(store, miss)
    assert cache.get(int) == "cached"
    assert cache.get(str) == "made str"
    store[str] = "now cached"
    assert cache.get(str) == "now cached"
    assert misses == [str]
