"""Channels: how a proxy's invocation reaches an implementation.

Each name is imported on first use (PEP 562), so the channel contract in
``warpcall.channels.base`` loads without the HTTP clients.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_EXPORTS = {
    **dict.fromkeys(("Channel", "channel", "channel_name"), "warpcall.channels.base"),
    **dict.fromkeys(
        ("DispatchJSONChannel", "DispatchMsgpackChannel", "DispatchProtobufChannel"), "warpcall.channels.dispatch"
    ),
    "HTTPXChannel": "warpcall.channels.http",
    **dict.fromkeys(("Request", "Response"), "warpcall.channels.messages"),
    "TokenContext": "warpcall.context",
}

if TYPE_CHECKING:
    from warpcall.channels.base import Channel, channel, channel_name
    from warpcall.channels.dispatch import (
        DispatchJSONChannel,
        DispatchMsgpackChannel,
        DispatchProtobufChannel,
    )
    from warpcall.channels.http import HTTPXChannel
    from warpcall.channels.messages import Request, Response
    from warpcall.context import TokenContext

    #: aspyx-service's name of the dispatch-msgpack channel
    DispatchMSPackChannel = DispatchMsgpackChannel
else:
    from warpcall._lazy import export_lazily

    _resolve, _names = export_lazily(__name__, _EXPORTS)

    def __getattr__(name: str) -> Any:
        if name == "DispatchMSPackChannel":  # aspyx-service's name of the dispatch-msgpack channel
            return _resolve("DispatchMsgpackChannel")
        return _resolve(name)

    def __dir__() -> list[str]:
        return sorted({*_names(), "DispatchMSPackChannel"})

__all__ = [
    "Channel",
    "DispatchJSONChannel",
    "DispatchMSPackChannel",
    "DispatchMsgpackChannel",
    "DispatchProtobufChannel",
    "HTTPXChannel",
    "Request",
    "Response",
    "TokenContext",
    "channel",
    "channel_name",
]
