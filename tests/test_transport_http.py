"""The HTTP/1.1 clients and httpx transports against real servers on 127.0.0.1.

A real uvicorn server (in a thread) serves the normal paths; small hand-written
socket servers play the edge cases (closing, trickling, never answering).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import uvicorn

from warpcall.channels.transport import AsyncHTTPClient, AsyncWarpTransport, HTTPClient, WarpTransport

BIG = bytes(range(256)) * (5 * 2**20 // 256)  # 5 MiB, far more than one socket read


# --- a real uvicorn server ------------------------------------------------------------------------------


async def app(scope: dict, receive: Callable, send: Callable) -> None:
    """Bare ASGI app: /echo, /headers, /chunked, /big, /big-chunked, /status/<code>."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path = scope["path"]

    async def respond(status: int, content: bytes, headers: list | None = None) -> None:
        headers = [(b"content-length", b"%d" % len(content)), *(headers or [])]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    async def stream(pieces: list[bytes]) -> None:
        # no content-length: uvicorn answers with Transfer-Encoding: chunked
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        for piece in pieces:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    if path == "/echo":
        await respond(200, body, [(b"content-type", b"application/octet-stream")])
    elif path == "/headers":
        seen = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        await respond(
            200, json.dumps({"method": scope["method"], "headers": seen, "body": len(body)}).encode()
        )
    elif path == "/chunked":
        await stream([b"hello", b" ", b"chunked", b" world"])
    elif path == "/big":
        await respond(200, BIG)
    elif path == "/big-chunked":
        await stream([BIG[i : i + 100_000] for i in range(0, len(BIG), 100_000)])
    elif path.startswith("/status/"):
        await respond(int(path.rsplit("/", 1)[1]), b"")
    else:
        await respond(404, b"not found")


class UvicornThread:
    """uvicorn serving ``app`` on a free 127.0.0.1 port, in a background thread."""

    def __init__(self, **config: object) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", **config))
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def __enter__(self) -> UvicornThread:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self._thread.join(10)
        self._sock.close()


@pytest.fixture(scope="module")
def uvi() -> Iterator[UvicornThread]:
    with UvicornThread() as server:
        yield server


# --- hand-written servers for the edge cases ------------------------------------------------------------


def read_request(conn: socket.socket) -> bytes | None:
    """One request's head and body, or None when the client closed the connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    return head + b"\r\n\r\n" + body


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class ScriptedServer:
    """A TCP server on 127.0.0.1 running ``handler(conn, server)`` on each connection it accepts."""

    def __init__(self, handler: Callable[[socket.socket, ScriptedServer], None], port: int = 0) -> None:
        self.handler = handler
        self._sock = socket.create_server(("127.0.0.1", port))
        self._sock.settimeout(0.05)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/x"
        self.connections = 0
        self.requests = 0
        self.closed = threading.Event()
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(10)
            self.connections += 1
            self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self.handler(conn, self)
        except OSError:
            pass
        finally:
            conn.close()
            self.closed.set()

    def next_request(self, conn: socket.socket) -> bool:
        """Read one request; False when the client closed the connection."""
        if read_request(conn) is None:
            return False
        self.requests += 1
        return True

    def __enter__(self) -> ScriptedServer:
        self._acceptor.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._acceptor.join(5)
        self._sock.close()
        for conn in self._conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(5)


def keep_alive(conn: socket.socket, server: ScriptedServer) -> None:
    while server.next_request(conn):
        conn.sendall(OK)


def answer_then_close(response: bytes) -> Callable[[socket.socket, ScriptedServer], None]:
    def handler(conn: socket.socket, server: ScriptedServer) -> None:
        if server.next_request(conn):
            conn.sendall(response)

    return handler


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return sock.getsockname()[1]


def sync_calls(url: str, n: int, **client_args: object) -> list[tuple[int, bytes]]:
    client = HTTPClient(**client_args)
    try:
        return [client.request("GET", url, [], b"", timeout=5)[::2] for _ in range(n)]
    finally:
        client.close()


def async_calls(url: str, n: int, pause: float = 0.0, **client_args: object) -> list[tuple[int, bytes]]:
    async def run() -> list[tuple[int, bytes]]:
        client = AsyncHTTPClient(**client_args)
        out = []
        try:
            for _ in range(n):
                status, _headers, body = await client.request("GET", url, [], b"", timeout=5)
                out.append((status, body))
                await asyncio.sleep(pause)
        finally:
            await client.aclose()
        return out

    return asyncio.run(run())


CALLS = pytest.mark.parametrize("calls", [sync_calls, async_calls], ids=["sync", "async"])


# --- the normal paths, against uvicorn ------------------------------------------------------------------


def test_sync_echo_and_headers(uvi: UvicornThread) -> None:
    with HTTPClient() as client:
        status, headers, body = client.request("POST", uvi.url + "/echo", [("X-Call", "1")], b"payload")
        assert (status, body) == (200, b"payload")
        assert ("content-type", "application/octet-stream") in headers
        status, _, body = client.request("PUT", uvi.url + "/headers?q=1", [("X-Trace", "abc")], b"12345")
    seen = json.loads(body)
    assert seen["method"] == "PUT" and seen["body"] == 5
    assert seen["headers"]["host"] == f"127.0.0.1:{uvi.port}"
    assert seen["headers"]["content-length"] == "5"
    assert seen["headers"]["x-trace"] == "abc"


def test_async_echo_and_concurrent_calls(uvi: UvicornThread) -> None:
    async def run() -> list[bytes]:
        client = AsyncHTTPClient()
        try:
            results = await asyncio.gather(
                *(client.request("POST", uvi.url + "/echo", [], b"call %d" % i) for i in range(30))
            )
        finally:
            await client.aclose()
        return [body for _status, _headers, body in results]

    assert asyncio.run(run()) == [b"call %d" % i for i in range(30)]


@CALLS
@pytest.mark.parametrize(
    ("path", "expected"), [("/chunked", b"hello chunked world"), ("/big", BIG), ("/big-chunked", BIG)]
)
def test_chunked_and_large_bodies(uvi: UvicornThread, calls: Callable, path: str, expected: bytes) -> None:
    assert calls(uvi.url + path, 2) == [(200, expected)] * 2


@pytest.mark.parametrize("path", ["/status/204", "/status/304"])
def test_no_body_statuses_keep_the_connection_usable(uvi: UvicornThread, path: str) -> None:
    assert sync_calls(uvi.url + path, 3) == [(int(path[-3:]), b"")] * 3
    assert async_calls(uvi.url + path, 3) == [(int(path[-3:]), b"")] * 3


def test_head_has_no_body(uvi: UvicornThread) -> None:
    with HTTPClient(timeout=5) as client:
        status, headers, body = client.request("HEAD", uvi.url + "/big", [], b"")
        assert (status, body) == (200, b"")
        assert ("content-length", str(len(BIG))) in headers
        assert client.request("POST", uvi.url + "/echo", [], b"after")[2] == b"after"


def test_max_body_is_enforced(uvi: UvicornThread) -> None:
    for path in ("/big", "/big-chunked"):
        with pytest.raises(
            httpx.RemoteProtocolError, match=f"bad response from {uvi.url}{path}: response body exceeds"
        ):
            HTTPClient(max_body=2**20).request("GET", uvi.url + path, [], b"")
        with pytest.raises(httpx.RemoteProtocolError, match="exceeds the limit of 1048576 bytes"):
            async_calls(uvi.url + path, 1, max_body=2**20)


def test_async_client_survives_successive_event_loops(uvi: UvicornThread) -> None:
    client = AsyncHTTPClient()
    for i in range(3):
        status, _, body = asyncio.run(client.request("POST", uvi.url + "/echo", [], b"loop %d" % i))
        assert (status, body) == (200, b"loop %d" % i)
    asyncio.run(client.aclose())


def test_uvicorn_idle_timeout_is_survived() -> None:
    with UvicornThread(timeout_keep_alive=0.2) as server:
        url = server.url + "/echo"
        with HTTPClient() as client:
            assert client.request("POST", url, [], b"one")[2] == b"one"
            time.sleep(0.6)  # uvicorn closes the idle connection meanwhile
            assert client.request("POST", url, [], b"two")[2] == b"two"

        async def run() -> bytes:
            client = AsyncHTTPClient()
            await client.request("POST", url, [], b"one")
            await asyncio.sleep(0.6)
            body = (await client.request("POST", url, [], b"two"))[2]
            await client.aclose()
            return body

        assert asyncio.run(run()) == b"two"


# --- httpx on the warp transports -----------------------------------------------------------------------


def test_httpx_client_on_warp_transport_keeps_hooks_and_auth(uvi: UvicornThread) -> None:
    def add_header(request: httpx.Request) -> None:
        request.headers["X-From-Hook"] = "hooked"

    with httpx.Client(
        transport=WarpTransport(), event_hooks={"request": [add_header]}, auth=("user", "pw")
    ) as client:
        response = client.post(uvi.url + "/headers", content=b"abc", headers={"X-Explicit": "1"})
        assert response.status_code == 200 and response.http_version == "HTTP/1.1"
        seen = response.json()["headers"]
        assert seen["x-from-hook"] == "hooked" and seen["x-explicit"] == "1"
        assert seen["authorization"].startswith("Basic ")
        assert client.get(uvi.url + "/chunked").text == "hello chunked world"
        assert client.get(uvi.url + "/big").content == BIG


def test_httpx_async_client_on_warp_transport(uvi: UvicornThread) -> None:
    async def add_header(request: httpx.Request) -> None:
        request.headers["X-From-Hook"] = "async-hooked"

    transport = AsyncWarpTransport()

    async def run() -> dict:
        async with httpx.AsyncClient(transport=transport, event_hooks={"request": [add_header]}) as client:
            response = await client.post(uvi.url + "/headers", json={"a": 1})
            assert (await client.get(uvi.url + "/big-chunked")).content == BIG
            return response.json()

    seen = asyncio.run(run())
    assert seen["headers"]["x-from-hook"] == "async-hooked"
    assert seen["headers"]["content-type"] == "application/json"
    assert asyncio.run(run())["body"] == seen["body"]


def test_httpx_errors_come_through_the_transports() -> None:
    url = f"http://127.0.0.1:{free_port()}/x"
    with (
        httpx.Client(transport=WarpTransport()) as client,
        pytest.raises(httpx.ConnectError, match=url) as info,
    ):
        client.get(url)
    assert info.value.request.url == url

    async def run() -> None:
        async with httpx.AsyncClient(transport=AsyncWarpTransport()) as client:
            await client.get(url)

    with pytest.raises(httpx.ConnectError, match=url):
        asyncio.run(run())


# --- edge cases, against hand-written servers -----------------------------------------------------------


@CALLS
def test_connections_are_kept_alive(calls: Callable) -> None:
    with ScriptedServer(keep_alive) as server:
        assert calls(server.url, 5) == [(200, b"ok")] * 5
        assert (server.connections, server.requests) == (1, 5)


@CALLS
def test_connection_close_is_honoured(calls: Callable) -> None:
    close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    with ScriptedServer(answer_then_close(close)) as server:
        assert calls(server.url, 3) == [(200, b"ok")] * 3
        assert server.connections == 3


@CALLS
def test_body_until_close(calls: Callable) -> None:
    with ScriptedServer(answer_then_close(b"HTTP/1.0 200 OK\r\n\r\nuntil the end")) as server:
        assert calls(server.url, 2) == [(200, b"until the end")] * 2


@pytest.fixture(params=["sync", "async"])
def get(request: pytest.FixtureRequest) -> Iterator[Callable[[str], bytes]]:
    """``get(url) -> body`` on one long-lived client, so its pool carries over from call to call."""
    if request.param == "sync":
        client = HTTPClient(timeout=5)
        yield lambda url: client.request("GET", url, [], b"")[2]
        client.close()
        return
    loop = asyncio.new_event_loop()
    aclient = AsyncHTTPClient(timeout=5)
    yield lambda url: loop.run_until_complete(aclient.request("GET", url, [], b""))[2]
    loop.run_until_complete(aclient.aclose())
    loop.close()


def test_pooled_connection_closed_by_server_is_replaced(get: Callable[[str], bytes]) -> None:
    # the server answers with keep-alive, then drops the connection while it is idle
    with ScriptedServer(answer_then_close(OK)) as server:
        for _ in range(3):
            server.closed.clear()
            assert get(server.url) == b"ok"
            assert server.closed.wait(5)
            time.sleep(0.05)  # let the FIN arrive
        assert (server.connections, server.requests) == (3, 3)


def test_server_restart_on_the_same_port(get: Callable[[str], bytes]) -> None:
    with ScriptedServer(keep_alive) as first:
        assert get(first.url) == b"ok"
    # the pooled connection now points at a dead server; a new one listens on the same port
    with ScriptedServer(keep_alive, port=first.port) as second:
        assert [get(first.url) for _ in range(3)] == [b"ok"] * 3
    assert (second.connections, second.requests) == (1, 3)


def trickle(conn: socket.socket, server: ScriptedServer) -> None:
    pieces = [
        b"HTTP/1.1 200 O",
        b"K\r\nTransfer-Encoding: ch",
        b"unked\r",
        b"\n\r\n",
        b"4",
        b"\r\nab",
        b"cd\r",
        b"\n1",
        b"0\r\n0123456789ABCDEF",
        b"\r\n0\r\n",
        b"\r\n",
    ]
    while server.next_request(conn):
        for piece in pieces:
            conn.sendall(piece)
            time.sleep(0.01)


@CALLS
def test_partial_reads(calls: Callable) -> None:
    with ScriptedServer(trickle) as server:
        assert calls(server.url, 2) == [(200, b"abcd0123456789ABCDEF")] * 2
        assert server.connections == 1


def silent(conn: socket.socket, server: ScriptedServer) -> None:
    server.next_request(conn)
    conn.recv(1)  # wait for the client to give up


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_server_that_never_answers_times_out(kind: str) -> None:
    with ScriptedServer(silent) as server:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout, match=f"no response from {server.url} within 0.3 s"):
            if kind == "sync":
                HTTPClient().request("GET", server.url, [], b"", timeout=0.3)
            else:
                asyncio.run(AsyncHTTPClient().request("GET", server.url, [], b"", timeout=0.3))
        assert time.monotonic() - started < 3


def not_reading(conn: socket.socket, server: ScriptedServer) -> None:
    server.closed.wait(10)


def test_a_server_that_does_not_read_gives_a_write_timeout() -> None:
    body = b"x" * (64 * 2**20)
    with ScriptedServer(not_reading) as server:
        with pytest.raises(httpx.WriteTimeout, match=server.url):
            HTTPClient().request("POST", server.url, [], body, timeout=0.3)

        async def run() -> None:
            await AsyncHTTPClient().request("POST", server.url, [], body, timeout=0.3)

        with pytest.raises(httpx.WriteTimeout, match=server.url):
            asyncio.run(run())
        server.closed.set()


@CALLS
def test_connection_refused_names_the_url(calls: Callable) -> None:
    url = f"http://127.0.0.1:{free_port()}/svc/invoke"
    with pytest.raises(httpx.ConnectError, match=f"^cannot connect to {url}: Connection refused$") as info:
        calls(url, 1)
    assert str(info.value.request.url) == url


def test_pool_timeout_when_every_connection_is_busy() -> None:
    def slow(conn: socket.socket, server: ScriptedServer) -> None:
        while server.next_request(conn):
            time.sleep(0.4)
            conn.sendall(OK)

    with ScriptedServer(slow) as server:

        async def run() -> list:
            client = AsyncHTTPClient(max_connections=1)
            first = asyncio.ensure_future(client.request("GET", server.url, [], b"", timeout=2))
            await asyncio.sleep(0.05)
            with pytest.raises(httpx.PoolTimeout, match=server.url):
                await client.request("GET", server.url, [], b"", timeout=0.1)
            # a waiter that is patient enough gets the connection the first call gives back
            second = await client.request("GET", server.url, [], b"", timeout=2)
            result = [await first, second]
            await client.aclose()
            return result

        assert [body for _s, _h, body in asyncio.run(run())] == [b"ok", b"ok"]
        assert server.connections == 1


def test_each_thread_has_its_own_connection() -> None:
    with ScriptedServer(keep_alive) as server:
        client = HTTPClient()
        barrier = threading.Barrier(2, timeout=5)
        results: list[bytes] = []

        def work() -> None:
            barrier.wait()
            for _ in range(5):
                results.append(client.request("GET", server.url, [], b"")[2])

        threads = [threading.Thread(target=work) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        client.close()
        assert results == [b"ok"] * 10
        assert server.connections == 2


def test_close_closes_pooled_connections_and_the_client_stays_usable() -> None:
    with ScriptedServer(keep_alive) as server:
        client = HTTPClient()
        client.request("GET", server.url, [], b"")
        client.close()
        assert server.closed.wait(5)  # the server saw the client hang up
        assert client.request("GET", server.url, [], b"")[2] == b"ok"
        client.close()
        assert server.connections == 2


def test_bad_requests_and_urls_fail_before_sending() -> None:
    client = HTTPClient()
    with pytest.raises(
        httpx.LocalProtocolError, match="cannot send GET http://127.0.0.1:1/: invalid header name"
    ):
        client.request("GET", "http://127.0.0.1:1/", [("Bad Name", "x")], b"")
    with pytest.raises(httpx.UnsupportedProtocol, match="only http:// and https:// URLs"):
        client.request("GET", "ftp://127.0.0.1/", [], b"")
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        client.request("GET", "http://127.0.0.1:1/", [], b"", timeout=0)


def test_https_to_a_port_nobody_listens_on_is_a_connect_error() -> None:
    """https goes over the same clients (tests/test_tls.py has the real TLS server): refused on connect."""
    url = f"https://127.0.0.1:{free_port()}/"
    with pytest.raises(httpx.ConnectError):
        HTTPClient(timeout=2).request("GET", url, [], b"")

    async def run() -> None:
        client = AsyncHTTPClient(timeout=2)
        try:
            await client.request("GET", url, [], b"")
        finally:
            await client.aclose()

    with pytest.raises(httpx.ConnectError):
        asyncio.run(run())


def test_a_response_that_breaks_http_is_a_remote_protocol_error() -> None:
    with ScriptedServer(answer_then_close(b"SMTP ready\r\n\r\n")) as server:
        with pytest.raises(
            httpx.RemoteProtocolError, match=f"bad response from {server.url}: malformed status line"
        ):
            HTTPClient().request("GET", server.url, [], b"")
    with ScriptedServer(answer_then_close(b"")) as server:
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            HTTPClient().request("GET", server.url, [], b"")


def test_url_path_and_query_are_sent_percent_encoded() -> None:
    request_lines: list[bytes] = []

    def record(conn: socket.socket, server: ScriptedServer) -> None:
        request = read_request(conn)
        if request is not None:
            request_lines.append(request.split(b"\r\n", 1)[0])
            conn.sendall(OK)

    with ScriptedServer(record) as server, HTTPClient() as client:
        client.request("GET", f"http://127.0.0.1:{server.port}/a b/\u00fc?q=x y&r=%41", [], b"")
    assert request_lines == [b"GET /a%20b/%C3%BC?q=x%20y&r=%41 HTTP/1.1"]


class LoopWithoutReaders(asyncio.SelectorEventLoop):
    """Stands in for Windows' proactor loop, which cannot watch a socket."""

    add_reader = asyncio.AbstractEventLoop.add_reader


def test_a_loop_that_cannot_watch_sockets_goes_through_httpx(uvi: UvicornThread) -> None:
    loop = LoopWithoutReaders()
    client = AsyncHTTPClient()
    try:
        status, _, body = loop.run_until_complete(client.request("POST", uvi.url + "/echo", [], b"via httpx"))
        loop.run_until_complete(client.aclose())
    finally:
        loop.close()
    assert (status, body) == (200, b"via httpx")
