"""Declaring, implementing, injecting and calling services in-process (no HTTP)."""

from __future__ import annotations

import asyncio
import traceback
from abc import abstractmethod
from typing import Any, cast

import pytest

from warpcall import (
    AbstractComponent,
    Channel,
    ChannelAddress,
    Component,
    ComponentRegistry,
    ComponentStatus,
    LocalComponentRegistry,
    Service,
    ServiceException,
    ServiceManager,
    ServiceModule,
    channel,
    component,
    implementation,
    inject_service,
    service,
)
from warpcall.di import Environment, create, injectable, module
from warpcall.di.aop import Invocation, advice, around, methods
from warpcall.service import component_descriptor, service_descriptor


@service(description="counts things")
class CounterService(Service):
    @abstractmethod
    def add(self, a: int, b: int = 1) -> int: ...

    @abstractmethod
    async def add_async(self, a: int, b: int) -> int: ...

    @abstractmethod
    def fail(self, message: str) -> None: ...


@service(name="names")
class NameService(Service):
    @abstractmethod
    def upper(self, name: str) -> str: ...


@component(name="local-test", services=[CounterService, NameService])
class LocalTestComponent(Component):
    pass


class CounterBroken(ValueError):
    pass


@implementation()
class CounterServiceImpl(CounterService):
    def add(self, a: int, b: int = 1) -> int:
        return a + b

    async def add_async(self, a: int, b: int) -> int:
        await asyncio.sleep(0)
        return a + b

    def fail(self, message: str) -> None:
        raise CounterBroken(message)


@implementation()
class NameServiceImpl(NameService):
    def upper(self, name: str) -> str:
        return name.upper()


@implementation()
class LocalTestComponentImpl(AbstractComponent, LocalTestComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("recording", f"memory://{port}")]


# a remote-only component: declared here, implemented nowhere in this process


@service()
class FarAwayService(Service):
    @abstractmethod
    def ping(self, text: str) -> str: ...

    @abstractmethod
    async def ping_async(self, text: str) -> str: ...


@component(name="far-away", services=[FarAwayService])
class FarAwayComponent(Component):
    pass


@channel("recording")
class RecordingChannel(Channel):
    """A custom channel: answers every call itself and remembers what it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, tuple[Any, ...], Any]] = []
        self.customized = 0

    def customize(self) -> None:
        self.customized += 1

    def invoke(self, invocation: Any) -> Any:
        self.seen.append((invocation.descriptor.qualified, invocation.args, invocation.keywords))
        return f"sync:{invocation.descriptor.name}:{invocation.positional()}"

    async def invoke_async(self, invocation: Any) -> Any:
        self.seen.append((invocation.descriptor.qualified, invocation.args, invocation.keywords))
        return f"async:{invocation.descriptor.name}:{invocation.positional()}"


CUSTOMIZED: list[str] = []


@advice
class ChannelCustomizer:
    @around(methods().named("customize").of_type(Channel))
    def customize_channel(self, invocation: Invocation) -> Any:
        channel = cast(Channel, invocation.args[0])
        CUSTOMIZED.append(channel.name)
        channel.select_round_robin()
        return invocation.proceed()


@injectable()
class Consumer:
    def __init__(self) -> None:
        self.counter: CounterService | None = None
        self.far: FarAwayService | None = None

    @inject_service()
    def set_counter(self, counter: CounterService) -> None:
        self.counter = counter

    @inject_service(preferred_channel="recording")
    def set_far(self, far: FarAwayService) -> None:
        self.far = far


@module(imports=[ServiceModule])
class LocalTestModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        registry = LocalComponentRegistry()
        registry.register(component_descriptor(FarAwayComponent), [ChannelAddress("recording", "memory://far")])
        return registry


@pytest.fixture
def environment():
    CUSTOMIZED.clear()
    environment = Environment(LocalTestModule)
    yield environment
    environment.destroy()


@pytest.fixture
def manager(environment) -> ServiceManager:
    return environment.get(ServiceManager)


def test_service_names_default_to_aspyx_snake_case():
    assert service_descriptor(CounterService).name == "counter-service"
    assert service_descriptor(NameService).name == "names"
    assert service_descriptor(CounterService).description == "counts things"
    assert [s.name for s in component_descriptor(LocalTestComponent).services] == ["counter-service", "names"]


def test_local_channel_hands_back_the_implementation(manager):
    counter = manager.get_service(CounterService, "local")
    assert type(counter) is CounterServiceImpl or isinstance(counter, CounterServiceImpl)
    assert counter.add(2, 3) == 5
    assert counter.add(2) == 3
    assert asyncio.run(counter.add_async(4, 5)) == 9


def test_default_channel_is_local_when_implemented_here(manager):
    names = manager.get_service(NameService)
    assert isinstance(names, NameServiceImpl)
    assert names.upper("ada") == "ADA"


def test_local_exceptions_propagate_unchanged_with_traceback(manager):
    counter = manager.get_service(CounterService, "local")
    with pytest.raises(CounterBroken, match="broken on purpose") as info:
        counter.fail("broken on purpose")
    frames = [frame.name for frame in traceback.extract_tb(info.tb)]
    assert frames[-1] == "fail"


def test_remote_component_is_called_through_a_typed_proxy(manager):
    far = manager.get_service(FarAwayService)
    assert isinstance(far, FarAwayService)
    assert not isinstance(far, CounterService)
    assert far.ping("x") == "sync:ping:('x',)"
    assert asyncio.run(far.ping_async("y")) == "async:ping_async:('y',)"
    assert manager.get_service(FarAwayService) is far


def test_proxy_passes_arguments_as_given(manager):
    far = manager.get_service(FarAwayService, "recording")
    far.ping(text="kw")
    far.ping("pos")
    channel = far_channel(manager)
    assert channel.seen == [("far-away:far-away-service:ping", (), {"text": "kw"}), ("far-away:far-away-service:ping", ("pos",), None)]


def far_channel(manager: ServiceManager) -> RecordingChannel:
    return cast(RecordingChannel, manager._channels[("far-away", "recording")])


def test_customize_runs_once_per_channel_and_advice_sees_it(manager):
    manager.get_service(FarAwayService, "recording").ping("a")
    manager.get_service(FarAwayService, "recording").ping("b")
    channel = far_channel(manager)
    assert channel.customized == 1
    assert CUSTOMIZED == ["recording"]
    assert isinstance(channel.selector, Channel.RoundRobinURLSelector)
    assert channel.selector.urls == ("memory://far",)


@pytest.fixture
def started(manager):
    """The local component started and registered, exposing the 'recording' channel."""
    manager.startup(port=4711)
    yield manager
    manager.shutdown()


def test_preferred_channel_of_a_local_component_can_be_remote(started):
    manager = started
    counter = manager.get_service(CounterService, "recording")
    assert not isinstance(counter, CounterServiceImpl)
    assert counter.add(1, 2) == "sync:add:(1, 2)"
    assert counter.add(1) == "sync:add:(1, 1)"


def test_global_preferred_channel(started):
    manager = started
    manager.set_preferred_channel("recording")
    try:
        assert manager.get_service(NameService).upper("x") == "sync:upper:('x',)"
        # far-away exposes no local channel: the global default applies where the component has it
        assert manager.get_service(FarAwayService).ping("x") == "sync:ping:('x',)"
    finally:
        manager.set_preferred_channel("")


def test_inject_service_sets_proxies(environment):
    consumer = environment.get(Consumer)
    assert isinstance(consumer.counter, CounterServiceImpl)
    assert consumer.far is not None and consumer.far.ping("z") == "sync:ping:('z',)"


def test_component_lifecycle_and_registration(environment, manager):
    instance = environment.get(LocalTestComponent)
    assert instance.get_status() is ComponentStatus.VIRGIN
    manager.startup(port=4711)
    assert instance.get_status() is ComponentStatus.RUNNING
    registry = environment.get(ComponentRegistry)
    descriptor = component_descriptor(LocalTestComponent)
    assert [(a.channel, a.urls) for a in registry.get_addresses(descriptor)] == [("recording", ["memory://4711"])]
    manager.shutdown()
    assert instance.get_status() is ComponentStatus.STOPPED
    assert registry.get_addresses(descriptor) == []


def test_unknown_service_is_named(manager):
    class Undeclared(Service):
        pass

    with pytest.raises(ServiceException, match=r"Undeclared is not a declared service; decorate it with @service\(\)"):
        manager.get_service(Undeclared)


def test_unknown_channel_lists_the_known_ones(manager):
    with pytest.raises(ServiceException, match=r"no channel named 'carrier-pigeon' is registered; known channels: \[.*'dispatch-json'.*'recording'"):
        manager.get_service(FarAwayService, "carrier-pigeon")


def test_channel_the_component_does_not_expose(manager):
    with pytest.raises(
        ServiceException,
        match=r"service FarAwayService cannot be called over channel 'dispatch-json': component 'far-away' exposes \['recording'\]",
    ):
        manager.get_service(FarAwayService, "dispatch-json")
    with pytest.raises(ServiceException, match=r"channel 'local': component 'far-away' exposes \['recording'\]"):
        manager.get_service(FarAwayService, "local")


def test_service_without_implementation_or_instance_says_so():
    @service()
    class OrphanService(Service):
        @abstractmethod
        def lonely(self) -> None: ...

    @component(name="orphanage", services=[OrphanService])
    class Orphanage(Component):
        pass

    environment = Environment(LocalTestModule)
    try:
        with pytest.raises(ServiceException, match="OrphanService has no implementation in this process and no instance of component 'orphanage' is registered"):
            environment.get(ServiceManager).get_service(OrphanService)
    finally:
        environment.destroy()
