"""The floors' servers, run in their own process: ``python _echo_server.py http|tcp``.

``http``: uvicorn (its defaults: uvloop and httptools where installed) serving a
bare ASGI app that answers every request with its body. ``tcp``: a socket that
sends back whatever it receives (no HTTP at all). Both bind a free 127.0.0.1
port, print ``READY <address>`` and stop when stdin closes.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Callable


async def echo_app(scope: dict, receive: Callable, send: Callable) -> None:
    """Bare ASGI echo: the response body is the request body."""
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


def on_stdin_closed(stop: Callable[[], None]) -> None:
    def watch() -> None:
        sys.stdin.read()
        stop()

    threading.Thread(target=watch, daemon=True).start()


def serve_http(sock: socket.socket) -> None:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(echo_app, log_level="warning", access_log=False, lifespan="off"))

    def stop() -> None:
        server.should_exit = True

    on_stdin_closed(stop)
    print(f"READY http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    server.run(sockets=[sock])


def serve_tcp(sock: socket.socket) -> None:
    def echo(conn: socket.socket) -> None:
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                conn.sendall(data)

    on_stdin_closed(lambda: os._exit(0))
    print(f"READY 127.0.0.1:{sock.getsockname()[1]}", flush=True)
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    listener = socket.create_server(("127.0.0.1", 0))
    {"http": serve_http, "tcp": serve_tcp}[sys.argv[1]](listener)
