"""The installed uvicorn still has everything the server's inline protocol uses of it.

``protocol.UVICORN_USES`` lists what the inline protocol overrides, calls and reads on uvicorn's
httptools protocol and its request cycle. Each path is looked up on a real ``HttpToolsProtocol``,
made the way uvicorn's ``Server.startup`` makes one, while it serves a request on 127.0.0.1; a
uvicorn release that renamed or dropped any of them fails here, naming each one.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import pytest
from uvicorn import Config
from uvicorn.server import ServerState

from warpcall.server import protocol

pytest.importorskip("httptools")  # without it uvicorn runs h11 and the inline protocol is off


_ABSENT = object()


def _missing(root: Any, paths: tuple[str, ...]) -> list[str]:
    """The paths of ``paths`` that ``root`` lacks (or that are not callable where ``()`` says so)."""
    missing = []
    for path in paths:
        wants_call = path.endswith("()")
        value = root
        for name in path.removesuffix("()").split("."):
            value = getattr(value, name, _ABSENT)
            if value is _ABSENT:
                break
        if value is _ABSENT or (wants_call and not callable(value)):
            missing.append(path)
    return missing


def test_uvicorn_has_every_member_the_inline_protocol_uses() -> None:
    import uvicorn
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    found: dict[str, list[str]] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        # the request is under way: the protocol has its cycle, transport and flow control
        (serving,) = state.connections
        assert type(serving) is HttpToolsProtocol
        found["missing"] = _missing(serving, protocol.UVICORN_USES)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def main() -> bytes:
        config.load()
        # as uvicorn's Server.startup makes its protocol factory
        protocol_class: Any = config.http_protocol_class  # typed as a bare asyncio.Protocol
        factory = partial(protocol_class, config=config, server_state=state, app_state={})
        server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
        try:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            reply = await reader.read()
            writer.close()
            return reply
        finally:
            server.close()
            await server.wait_closed()

    config = Config(app, http="httptools", lifespan="off", log_level="warning")
    state = ServerState()
    reply = asyncio.run(main())

    assert reply.startswith(b"HTTP/1.1 200 "), reply
    missing = found["missing"]
    assert not missing, (
        f"uvicorn {uvicorn.__version__} lacks what warpcall's inline protocol uses of HttpToolsProtocol: "
        + ", ".join(missing)
    )
    assert protocol.SUPPORTED, f"uvicorn {uvicorn.__version__}: protocol.SUPPORTED is false"
