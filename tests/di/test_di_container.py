"""The container: registration, injection, scopes, lifecycle, parent environments, thread safety."""

from __future__ import annotations

import asyncio
import threading
import time
from abc import ABC, abstractmethod
from typing import Any, Callable

import pytest

from warpcall.di import (
    DIRegistrationException,
    DIRuntimeException,
    Environment,
    Factory,
    PostProcessor,
    Scope,
    create,
    factory,
    inject,
    inject_environment,
    injectable,
    module,
    on_destroy,
    on_init,
    on_running,
    order,
    scope,
)

EVENTS: list[str] = []


class Engine(ABC):
    """Abstract base with one concrete injectable implementation."""

    @abstractmethod
    def start(self) -> str: ...


@injectable()
class V8(Engine):
    def start(self) -> str:
        return "vroom"


@injectable()
class Car:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine


class Wheel:
    def __init__(self, size: int) -> None:
        self.size = size


class Tyre:
    pass


@factory()
class TyreFactory(Factory[Tyre]):
    def create(self) -> Tyre:
        return Tyre()


@injectable(eager=False)
class Workshop:
    def __init__(self, car: Car, environment: Environment) -> None:
        self.car = car
        self.environment = environment

    @create(scope="request")
    def wheel(self) -> Wheel:
        return Wheel(17)


@injectable(scope="request")
class Ticket:
    pass


@injectable(eager=False)
class Lifecycled:
    def __init__(self) -> None:
        EVENTS.append("constructor")

    @inject()
    def set_car(self, car: Car) -> None:
        self.car = car
        EVENTS.append("inject")

    @inject_environment()
    def set_environment(self, environment: Environment) -> None:
        self.environment = environment
        EVENTS.append("inject_environment")

    @on_init()
    def init(self) -> None:
        EVENTS.append("on_init")

    @on_running()
    def running(self) -> None:
        EVENTS.append("on_running")

    @on_destroy()
    def destroy(self) -> None:
        EVENTS.append("on_destroy")


@injectable()
@order(5)
class Recorder(PostProcessor):
    """Records each processed instance; checks that injection happened and on_init did not yet."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[object] = []

    def process(self, instance: object, environment: Environment) -> None:
        self.seen.append(instance)
        if isinstance(instance, Lifecycled):
            assert instance.car is environment.get(Car)
            EVENTS.append("post_processor")


PROCESSED: list[str] = []


@injectable(eager=False)
@order(9)
class LateProcessor(PostProcessor):
    """Lazy, yet managed: the environment creates processors while it is built."""

    def process(self, instance: object, environment: Environment) -> None:
        if isinstance(instance, Ticket):
            PROCESSED.append("late")


@injectable()
@order(-1)
class EarlyProcessor(PostProcessor):
    def __init__(self) -> None:
        pass  # skips PostProcessor.__init__ on purpose: its @order must still count

    def process(self, instance: object, environment: Environment) -> None:
        if isinstance(instance, Ticket):
            PROCESSED.append("early")


@injectable()
class AsyncLifecycle:
    def __init__(self) -> None:
        self.events: list[str] = []

    @on_running()
    async def warm_up(self) -> None:
        self.events.append("async running")

    @on_destroy()
    async def close(self) -> None:
        EVENTS.append("async destroy")


@injectable()
class RunningProbe:
    """Declared before DestroyedLater, so created before it; @on_running must still see it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    @inject_environment()
    def set_environment(self, environment: Environment) -> None:
        self.environment = environment

    def _later_exists(self) -> bool:
        return any(isinstance(seen, DestroyedLater) for seen in self.environment.get(Recorder).seen)

    @on_init()
    def init(self) -> None:
        self.calls.append(("init", self._later_exists()))

    @on_running()
    def running(self) -> None:
        self.calls.append(("running", self._later_exists()))


@injectable()
class Destroyed:
    @on_destroy()
    def bye(self) -> None:
        EVENTS.append("destroy Destroyed")


@injectable()
class DestroyedLater:
    def __init__(self, first: Destroyed) -> None:
        self.first = first

    @on_destroy()
    def bye(self) -> None:
        EVENTS.append("destroy DestroyedLater")


@injectable(eager=False)
class SlowSingleton:
    created = 0

    def __init__(self) -> None:
        time.sleep(0.02)  # widen the window in which a second thread could slip in
        SlowSingleton.created += 1


@injectable(scope="environment")
class PerEnvironment:
    pass


@injectable(scope="thread", eager=False)
class PerThread:
    pass


@scope("counting")
class CountingScope(Scope):
    """Hands out a new instance for every second get."""

    def __init__(self) -> None:
        self.calls = 0
        self.value: Any = None

    def get(self, provider: Any, environment: Environment, arg_provider: Callable[[], list[Any]]) -> Any:
        if self.calls % 2 == 0:
            self.value = provider.create(environment, *arg_provider())
        self.calls += 1
        return self.value


@injectable(scope="counting")
class Counted:
    pass


@module()
class ContainerModule:
    pass


@pytest.fixture
def environment() -> Environment:
    EVENTS.clear()
    env = Environment(ContainerModule)
    yield env
    env.destroy()


def test_constructor_injection_resolves_an_abstract_base_to_its_implementation(environment: Environment) -> None:
    car = environment.get(Car)
    assert isinstance(car.engine, V8)
    assert car.engine.start() == "vroom"
    assert environment.get(Engine) is car.engine
    assert environment.read(Car) is car


def test_has_provider(environment: Environment) -> None:
    assert environment.has_provider(Car)
    assert environment.has_provider(Engine)
    assert environment.has_provider(Wheel)
    assert not environment.has_provider(int)


def test_singletons_are_shared_and_request_scope_makes_new_ones(environment: Environment) -> None:
    assert environment.get(Car) is environment.get(Car)
    first, second = environment.get(Ticket), environment.get(Ticket)
    assert isinstance(first, Ticket) and isinstance(second, Ticket)
    assert first is not second


def test_create_methods_and_factories_provide_their_return_types(environment: Environment) -> None:
    wheel = environment.get(Wheel)
    assert wheel.size == 17
    assert environment.get(Wheel) is not wheel  # @create(scope="request")
    assert isinstance(environment.get(Tyre), Tyre)
    workshop = environment.get(Workshop)
    assert workshop.environment is environment
    assert workshop.car is environment.get(Car)


def test_lifecycle_order_inject_then_post_processors_then_on_init(environment: Environment) -> None:
    EVENTS.clear()
    instance = environment.get(Lifecycled)
    assert instance.environment is environment
    assert EVENTS == ["constructor", "inject_environment", "inject", "post_processor", "on_init", "on_running"]
    assert instance in environment.get(Recorder).seen


def test_post_processor_sees_instances_created_after_it(environment: Environment) -> None:
    recorder = environment.get(Recorder)
    assert environment.get(Car) in recorder.seen
    ticket = environment.get(Ticket)
    assert ticket in recorder.seen


def test_destroy_runs_on_destroy_in_reverse_creation_order() -> None:
    EVENTS.clear()
    env = Environment(ContainerModule)
    env.get(Lifecycled)
    EVENTS.clear()
    env.destroy()
    assert EVENTS.index("destroy DestroyedLater") < EVENTS.index("destroy Destroyed")
    assert EVENTS.index("on_destroy") < EVENTS.index("destroy DestroyedLater")  # Lifecycled was created last
    EVENTS.clear()
    env.destroy()
    assert EVENTS == []


def test_on_running_runs_once_every_eager_singleton_exists(environment: Environment) -> None:
    probe = environment.get(RunningProbe)
    assert probe.calls == [("init", False), ("running", True)]


def test_child_environment_inherits_parent_providers_and_singletons(environment: Environment) -> None:
    child = Environment(ContainerModule, parent=environment)
    assert child.get(Car) is environment.get(Car)
    assert child.has_provider(Engine)
    assert child.get(PerEnvironment) is not environment.get(PerEnvironment)
    assert child.get(PerEnvironment) is child.get(PerEnvironment)
    child.destroy()


def test_thread_scope_gives_each_thread_its_own_instance(environment: Environment) -> None:
    main = environment.get(PerThread)
    assert environment.get(PerThread) is main
    other: list[object] = []
    thread = threading.Thread(target=lambda: other.append(environment.get(PerThread)))
    thread.start()
    thread.join(timeout=10)
    assert other and other[0] is not main


def test_user_defined_scope(environment: Environment) -> None:
    first = environment.get(Counted)
    assert environment.get(Counted) is first
    third = environment.get(Counted)
    assert third is not first


def test_concurrent_get_of_a_singleton_creates_exactly_one_instance(environment: Environment) -> None:
    SlowSingleton.created = 0
    threads_count = 16
    barrier = threading.Barrier(threads_count)
    results: list[object] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait(timeout=10)
        instance = environment.get(SlowSingleton)
        with lock:
            results.append(instance)

    threads = [threading.Thread(target=worker) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == threads_count
    assert SlowSingleton.created == 1
    assert all(result is results[0] for result in results)


def test_eager_singletons_exist_after_build_and_lazy_ones_do_not() -> None:
    SlowSingleton.created = 0
    env = Environment(ContainerModule)
    recorder = env.get(Recorder)
    assert any(isinstance(seen, Car) for seen in recorder.seen)
    assert SlowSingleton.created == 0
    env.destroy()


def test_post_processors_run_by_order_lazy_ones_included(environment: Environment) -> None:
    PROCESSED.clear()
    environment.get(Ticket)
    assert PROCESSED == ["early", "late"]


def test_async_on_running_waits_for_start_and_async_on_destroy_runs_at_destroy() -> None:
    env = Environment(ContainerModule)
    instance = env.get(AsyncLifecycle)
    assert instance.events == []
    asyncio.run(env.start())
    assert instance.events == ["async running"]
    EVENTS.clear()
    env.destroy()
    assert "async destroy" in EVENTS


def test_stop_awaits_async_on_destroy_inside_a_loop() -> None:
    env = Environment(ContainerModule)
    EVENTS.clear()
    asyncio.run(env.stop())
    assert "async destroy" in EVENTS and "destroy Destroyed" in EVENTS


def test_destroy_inside_a_running_loop_asks_for_stop() -> None:
    env = Environment(ContainerModule)

    async def main() -> None:
        env.destroy()

    with pytest.raises(DIRuntimeException, match="use 'await environment.stop\\(\\)'"):
        asyncio.run(main())


def test_unresolvable_type_hints_are_reported_at_build() -> None:
    from wdi_cases.bad_hint import BadHintModule

    with pytest.raises(DIRegistrationException, match="cannot read the type hints of Orphan.__init__: name 'Ghost'"):
        Environment(BadHintModule)
