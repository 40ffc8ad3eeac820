"""The in-process registry's own behaviour and the watch bookkeeping every registry shares."""

from __future__ import annotations

import logging

import pytest
from registry_support import Descriptor, RecordingChannel

from warpcall.registry.contract import ChannelAddress, ChannelInstances
from warpcall.registry.local import Backoff, LocalComponentRegistry, WatchedChannels, group_by_channel

ORDERS = Descriptor("orders")


def test_separate_local_registries_do_not_share_by_default() -> None:
    first, second = LocalComponentRegistry(), LocalComponentRegistry()
    first.register(ORDERS, [ChannelAddress("local", "local://orders")])
    assert first.get_addresses(ORDERS) == [ChannelInstances("orders", "local", ["local://orders"])]
    assert second.get_addresses(ORDERS) == []


def test_register_again_replaces_this_registrys_addresses() -> None:
    registry = LocalComponentRegistry()
    channel = RecordingChannel(ORDERS, "dispatch-json")
    registry.watch(channel)
    registry.register(ORDERS, [ChannelAddress("dispatch-json", "http://a")])
    registry.register(ORDERS, [ChannelAddress("dispatch-json", "http://b")])
    assert registry.get_addresses(ORDERS) == [ChannelInstances("orders", "dispatch-json", ["http://b"])]
    assert [p.urls for p in channel.pushes if p is not None] == [[], ["http://a"], ["http://b"]]


def test_group_by_channel_keeps_order_and_drops_duplicates() -> None:
    grouped = group_by_channel(
        [
            [ChannelAddress("json", "http://a"), ChannelAddress("rest", "http://a/api")],
            [ChannelAddress("json", "http://b"), ChannelAddress("json", "http://a")],
        ]
    )
    assert grouped == {"json": ["http://a", "http://b"], "rest": ["http://a/api"]}


def test_watched_channels_push_only_changes() -> None:
    watched = WatchedChannels()
    channel = RecordingChannel(ORDERS, "json")
    assert watched.add(channel) is True
    assert watched.add(channel) is False
    watched.update("orders", {"json": ["http://a"]})
    watched.update("orders", {"json": ["http://a"], "rest": ["http://x"]})  # json unchanged: no push
    watched.update("orders", {})
    assert [p.urls for p in channel.pushes if p is not None] == [["http://a"], []]
    late = RecordingChannel(ORDERS, "rest")
    watched.add(late)  # the known state reaches a late channel at once
    assert late.urls == []
    watched.clear()
    watched.update("orders", {"json": ["http://z"]})
    assert channel.urls == []


def test_backoff_doubles_up_to_its_cap_and_logs_a_streak_once(caplog: pytest.LogCaptureFixture) -> None:
    backoff = Backoff(initial=0.1, maximum=0.4)
    logger = logging.getLogger("test.backoff")
    with caplog.at_level(logging.DEBUG, logger="test.backoff"):
        delays = [backoff.failed(logger, "registry down", OSError("refused")) for _ in range(5)]
        backoff.succeeded(logger, "registry back")
    assert all(0.8 * cap <= delay <= cap for delay, cap in zip(delays, [0.1, 0.2, 0.4, 0.4, 0.4]))
    levels = [record.levelno for record in caplog.records]
    assert levels == [logging.WARNING] + [logging.DEBUG] * 4 + [logging.INFO]
    assert "after 5 failed attempt(s)" in caplog.records[-1].getMessage()
    assert backoff.failures == 0 and backoff.next() <= 0.1
