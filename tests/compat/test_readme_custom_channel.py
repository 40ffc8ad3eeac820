"""The README's custom channel: a ``@channel("fancy")`` Channel receiving ``DynamicProxy.Invocation``s and
naming the method by ``invocation.method.__name__``, calling a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import ModuleType

import pytest
from readme_support import running, stop

from warpcall import ServiceManager
from warpcall.reflection import DynamicProxy


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[ModuleType]:
    with running("readme_custom_channel.app", tmp_path_factory.mktemp("registry")) as module:
        yield module


def test_the_fancy_channel_carries_sync_calls(app) -> None:
    service = app.environment.read(ServiceManager).get_service(app.TestService, preferred_channel="fancy")
    assert not isinstance(service, app.TestServiceImpl)
    app.SEEN.clear()
    assert service.hello("world") == "hello world"
    assert service.hello(message="keyword") == "hello keyword"
    first, second = app.SEEN
    assert isinstance(first, DynamicProxy.Invocation)
    assert first.type is app.TestService
    assert first.method is app.TestService.hello and first.method.__name__ == "hello"
    assert (first.args, first.kwargs) == (("world",), {})
    assert (second.args, second.kwargs) == ((), {"message": "keyword"})


def test_the_fancy_channel_carries_async_calls(app) -> None:
    service = app.environment.read(ServiceManager).get_service(app.TestService, preferred_channel="fancy")
    app.SEEN.clear()
    assert asyncio.run(service.hello_async("world")) == "hello world (async)"
    (invocation,) = app.SEEN
    assert invocation.method.__name__ == "hello_async" and invocation.type is app.TestService


def test_destroy_stops_the_server(app) -> None:
    stop(app)
