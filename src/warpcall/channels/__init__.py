"""Channels: how a proxy's invocation reaches an implementation."""

from warpcall.channels.base import Channel, ChannelRegistry, channel
from warpcall.channels.dispatch import DispatchJSONChannel, DispatchMsgpackChannel, DispatchProtobufChannel
from warpcall.channels.http import HTTPXChannel

__all__ = [
    "Channel",
    "ChannelRegistry",
    "DispatchJSONChannel",
    "DispatchMsgpackChannel",
    "DispatchProtobufChannel",
    "HTTPXChannel",
    "channel",
]
