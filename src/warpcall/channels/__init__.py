"""Channels: how a proxy's invocation reaches an implementation.

Each name is imported on first use (PEP 562), so the channel contract in
``warpcall.channels.base`` loads without the HTTP clients.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

_EXPORTS = {
    **dict.fromkeys(("Channel", "channel", "channel_name"), "warpcall.channels.base"),
    **dict.fromkeys(
        ("DispatchJSONChannel", "DispatchMsgpackChannel", "DispatchProtobufChannel"), "warpcall.channels.dispatch"
    ),
    "HTTPXChannel": "warpcall.channels.http",
}

if TYPE_CHECKING:
    from warpcall.channels.base import Channel, channel, channel_name
    from warpcall.channels.dispatch import (
        DispatchJSONChannel,
        DispatchMsgpackChannel,
        DispatchProtobufChannel,
    )
    from warpcall.channels.http import HTTPXChannel
else:
    from warpcall._lazy import export_lazily

    __getattr__, __dir__ = export_lazily(__name__, _EXPORTS)

__all__ = [
    "Channel",
    "DispatchJSONChannel",
    "DispatchMsgpackChannel",
    "DispatchProtobufChannel",
    "HTTPXChannel",
    "channel",
    "channel_name",
]
