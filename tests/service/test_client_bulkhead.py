"""Issue 16, the client's bulkhead: at most N calls in flight per component and channel.

A real server on 127.0.0.1 serves a method that holds each call until the test releases it. With
``http.bulkhead.max_in_flight: 2``, two calls are held at the server; a third waits in the client,
never sent (the server sees two), and goes when one of the two finishes; or, under a deadline
that passes first, fails with OverloadedException naming the component and the limit, still never
sent. Sync threads and async tasks alike, through a dispatch channel and the REST channel.
"""

from __future__ import annotations

import asyncio
import threading
from abc import abstractmethod
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from rawhttp import wait_until
from warpcall import (
    AbstractComponent,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    LocalComponentRegistry,
    Service,
    ServiceManager,
    ServiceModule,
    blocking,
    component,
    get,
    implementation,
    rest,
    service,
)
from warpcall.di import Environment, create, module
from warpcall.di.configuration import ConfigurationSource
from warpcall.exceptions import OverloadedException
from warpcall.resilience.deadline import deadline

LIMIT = 2
CHANNELS = ["dispatch-json", "rest"]

#: calls the server has started, by key, and the events that let each finish
ARRIVED: list[str] = []
RELEASE: dict[str, threading.Event] = {}
GUARD = threading.Lock()


def _arrive(key: str) -> threading.Event:
    with GUARD:
        ARRIVED.append(key)
        return RELEASE.setdefault(key, threading.Event())


@service(name="holder")
@rest("/holder")
class HolderService(Service):
    @get("/hold/{key}")
    @abstractmethod
    def hold(self, key: str) -> str:
        """Held at the server until the test releases ``key``."""

    @get("/hold-async/{key}")
    @abstractmethod
    async def hold_async(self, key: str) -> str:
        """:meth:`hold` for async callers."""


@component(name="bulkhead-shop", services=[HolderService])
class BulkheadShop(Component):
    pass


@implementation()
class HolderServiceImpl(HolderService):
    @blocking
    def hold(self, key: str) -> str:
        _arrive(key).wait(10)
        return key

    async def hold_async(self, key: str) -> str:
        event = _arrive(key)
        await asyncio.get_running_loop().run_in_executor(None, event.wait, 10)
        return key


@implementation()
class BulkheadShopImpl(AbstractComponent, BulkheadShop):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress(name, f"http://127.0.0.1:{port}") for name in CHANNELS]


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    @module(imports=[ServiceModule])
    class ServerModule:
        @create()
        def create_registry(self) -> ComponentRegistry:
            return LocalComponentRegistry()

        @create()
        def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
            return FastAPIServer(FastAPI(), manager, registry)

    environment = FastAPIServer.boot(ServerModule, host="127.0.0.1", port=0)
    try:
        yield environment.get(FastAPIServer).url
    finally:
        for event in list(RELEASE.values()):
            event.set()
        environment.destroy()


class Settings(ConfigurationSource):
    def load(self) -> dict[str, Any]:
        # the global key for every channel; rest's own key says the same, to show the override is read
        return {"http": {"bulkhead": {"max_in_flight": LIMIT}, "rest": {"bulkhead": {"max_in_flight": LIMIT}}}}


@pytest.fixture
def manager(server_url: str) -> Iterator[ServiceManager]:
    """A client process's view, with its own environment: the registry lists the server for every channel."""

    @module(imports=[ServiceModule])
    class ClientModule:
        @create()
        def create_registry(self) -> ComponentRegistry:
            registry = LocalComponentRegistry()
            registry.register_remote("bulkhead-shop", [ChannelAddress(name, server_url) for name in CHANNELS])
            return registry

        @create()
        def create_settings(self) -> Settings:
            return Settings()

    ARRIVED.clear()
    environment = Environment(ClientModule)
    try:
        yield environment.get(ServiceManager)
    finally:
        for event in list(RELEASE.values()):
            event.set()
        environment.destroy()


def arrived(*keys: str) -> bool:
    with GUARD:
        return sorted(ARRIVED) == sorted(keys)


def release(key: str) -> None:
    with GUARD:
        RELEASE.setdefault(key, threading.Event()).set()


def test_the_limit_is_configuration(manager: ServiceManager) -> None:
    for name in CHANNELS:
        manager.get_service(HolderService, name)
        channel = manager._channels[("bulkhead-shop", name)]
        assert channel.bulkhead is not None and channel.bulkhead.limit == LIMIT, name


def test_no_limit_by_default_and_no_wrapper() -> None:
    from warpcall.channels.dispatch import DispatchJSONChannel

    channel = DispatchJSONChannel()
    channel._setup_resilience()
    assert channel.bulkhead is None and "request" not in vars(channel)


@pytest.mark.parametrize("name", CHANNELS)
def test_sync_the_extra_call_waits_unsent_and_goes_when_one_finishes(manager: ServiceManager, name: str) -> None:
    proxy = manager.get_service(HolderService, name)
    bulkhead = manager._channels[("bulkhead-shop", name)].bulkhead
    keys = [f"{name}-sync-{i}" for i in range(LIMIT + 1)]
    results: dict[str, Any] = {}

    def call(key: str) -> None:
        try:
            results[key] = proxy.hold(key)
        except Exception as exc:  # noqa: BLE001 - asserted below
            results[key] = exc

    threads = [threading.Thread(target=call, args=(key,)) for key in keys[:LIMIT]]
    for thread in threads:
        thread.start()
    wait_until(lambda: arrived(*keys[:LIMIT]), what="the first calls at the server")
    extra = threading.Thread(target=call, args=(keys[LIMIT],))
    extra.start()
    wait_until(lambda: bulkhead.waiting == 1, what="the extra call waiting in the client")
    assert arrived(*keys[:LIMIT])  # not sent
    release(keys[0])
    wait_until(lambda: arrived(*keys), what="the extra call at the server once one finished")
    assert bulkhead.in_flight == LIMIT
    for key in keys[1:]:
        release(key)
    for thread in [*threads, extra]:
        thread.join(10)
    assert results == {key: key for key in keys}
    assert bulkhead.in_flight == 0 and bulkhead.waiting == 0


@pytest.mark.parametrize("name", CHANNELS)
def test_sync_the_extra_call_fails_clearly_when_its_deadline_passes_first(manager: ServiceManager, name: str) -> None:
    proxy = manager.get_service(HolderService, name)
    bulkhead = manager._channels[("bulkhead-shop", name)].bulkhead
    keys = [f"{name}-deadline-{i}" for i in range(LIMIT)]
    threads = [threading.Thread(target=proxy.hold, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    wait_until(lambda: arrived(*keys), what="the first calls at the server")
    with pytest.raises(OverloadedException) as info, deadline(0.2):
        proxy.hold(f"{name}-late")
    message = str(info.value)
    assert f"channel '{name}' of component 'bulkhead-shop'" in message, message
    assert f"{LIMIT} calls already in flight" in message, message
    assert arrived(*keys)  # never sent
    assert bulkhead.waiting == 0
    for key in keys:
        release(key)
    for thread in threads:
        thread.join(10)
    assert bulkhead.in_flight == 0
    release(f"{name}-after")
    assert proxy.hold(f"{name}-after") == f"{name}-after"  # the places came back


@pytest.mark.parametrize("name", CHANNELS)
def test_async_tasks_share_the_limit_with_threads(manager: ServiceManager, name: str) -> None:
    proxy = manager.get_service(HolderService, name)
    bulkhead = manager._channels[("bulkhead-shop", name)].bulkhead
    thread_key = f"{name}-thread"
    release(f"{name}-after")  # the call after the scenario returns at once
    thread = threading.Thread(target=proxy.hold, args=(thread_key,))
    thread.start()
    wait_until(lambda: arrived(thread_key), what="the thread's call at the server")

    async def scenario() -> list[Any]:
        task_key, extra_key = f"{name}-task", f"{name}-extra"
        task = asyncio.ensure_future(proxy.hold_async(task_key))  # takes the second place
        for _ in range(500):  # bounded: the task's call reaches the server
            if arrived(thread_key, task_key):
                break
            await asyncio.sleep(0.01)
        assert arrived(thread_key, task_key)
        with deadline(0.2):  # the deadline passes before a place comes free
            late = await asyncio.gather(proxy.hold_async(f"{name}-late"), return_exceptions=True)
        extra = asyncio.ensure_future(proxy.hold_async(extra_key))
        for _ in range(500):
            if bulkhead.waiting == 1:
                break
            await asyncio.sleep(0.01)
        assert bulkhead.waiting == 1 and arrived(thread_key, task_key)  # waiting, not sent
        release(thread_key)  # the thread's call finishes: its place goes to the waiting task
        done = await asyncio.wait_for(asyncio.gather(extra, return_exceptions=True), 10)
        release(task_key)
        first = await asyncio.wait_for(task, 10)
        return [late[0], done[0], first]

    release(f"{name}-extra")
    late, extra, first = asyncio.run(scenario())
    thread.join(10)
    assert isinstance(late, OverloadedException), late
    assert f"channel '{name}' of component 'bulkhead-shop'" in str(late)
    assert (extra, first) == (f"{name}-extra", f"{name}-task")
    assert f"{name}-late" not in ARRIVED
    assert bulkhead.in_flight == 0 and bulkhead.waiting == 0
