"""Channel behaviour mutation testing found unchecked (mutation/, area ``channels``).

What the HTTP clients share (``_http_common``): the ``x-rpc-timeout`` figure, which timeout messages name the
deadline, how a URL becomes an address and a Host header, the URL cache's bound, ``keepalive_expiry``'s check,
how ``ClientTLS`` reads its settings and builds its context, how refused certificates and TLS errors are
reported (and told from a refused connection), the default body limit and the httpx fallback's, httpx's
per-request write timeout. The sync client (``_http_sync``): a connection busy during ``close()``, connecting
and the TLS handshake within the deadline and the connect timeout, HEAD through the transport, an early answer
read within the read timeout and under a deadline.

Real servers on 127.0.0.1 (``ScriptedServer``, TLS with a throwaway ``trustme`` CA), the module's clock frozen
for the exact figures. The driver selects tests per module by name (mutation/areas.toml): tests of the sync
client say ``sync`` and never ``async``; the async client's tests are in ``test_channels_async_mutants.py``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
import trustme

from rawhttp import wait_until
from test_client_hardening import REFUSAL, UPLOAD, answer_early_and_close
from test_transport_http import OK, LoopWithoutReaders, ScriptedServer, keep_alive
from warpcall.channels import _http_common
from warpcall.channels._http_common import (
    DEFAULT_TLS,
    ClientTLS,
    _connect_error,
    _connect_timeout,
    _deadline_headers,
    _read_timeout,
    _target,
    _write_timeout,
)
from warpcall.channels._http_errors import ResponseTooLargeError
from warpcall.channels._httpx_transport import WarpTransport
from warpcall.channels.transport import AsyncHTTPClient, HTTPClient
from warpcall.di import ConfigurationException
from warpcall.resilience.deadline import deadline, deadline_at
from warpcall.resilience.failures import HandshakeRefused


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> float:
    """The module's clock stands still at 1000.0 (exact figures, no race with the real one)."""
    monkeypatch.setattr(_http_common, "time", types.SimpleNamespace(monotonic=lambda: 1000.0))
    return 1000.0


# --- x-rpc-timeout ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "sent"), [(-1.0, "0"), (-0.0005, "0"), (0.0, "0"), (0.0005, "0"), (2.0, "2000"), (0.25, "250")]
)
def test_the_time_left_is_sent_in_whole_milliseconds_never_below_zero(
    now: float, left: float, sent: str
) -> None:
    assert _deadline_headers([("accept", "*/*")], now + left) == [("accept", "*/*"), ("x-rpc-timeout", sent)]


def test_a_timeout_header_already_there_is_kept(now: float) -> None:
    given = [(b"X-RPC-Timeout", b"250")]
    assert _deadline_headers(given, now + 2.0) is given


# --- which timeout message names the deadline -------------------------------------------------------------

BUILDERS = [
    pytest.param(
        _read_timeout,
        "no whole response from {url} before the call's deadline",
        "no response from {url} within 2.0 s (read timeout)",
        id="read",
    ),
    pytest.param(
        _write_timeout,
        "sending the request to {url} did not end before the call's deadline",
        "sending the request to {url} took over 2.0 s (write timeout)",
        id="write",
    ),
    pytest.param(
        _connect_timeout,
        "cannot connect to {url} before the call's deadline",
        "cannot connect to {url} within 2.0 s (connect timeout)",
        id="connect",
    ),
]


@pytest.mark.parametrize(("build", "past", "within"), BUILDERS)
@pytest.mark.parametrize(
    ("left", "passed"),
    # the deadline counts as passed within 5 ms of it (the OS's timer tick); no deadline (0) never passes
    [(-1.0, True), (0.0, True), (0.004, True), (0.006, False), (0.5, False), (None, False)],
)
def test_a_timeout_names_the_deadline_only_once_it_has_passed(
    now: float, build: Callable[..., Exception], past: str, within: str, left: float | None, passed: bool
) -> None:
    url = "http://127.0.0.1:1/x"
    error = build(url, 2.0, 0.0 if left is None else now + left)
    assert str(error) == (past if passed else within).format(url=url)


# --- URLs and settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "tls", "host", "port", "host_header"),
    [
        ("http://example.com/a", False, "example.com", 80, "example.com"),
        ("https://example.com/a", True, "example.com", 443, "example.com"),
        ("http://example.com:80/a", False, "example.com", 80, "example.com"),
        ("https://example.com:443/a", True, "example.com", 443, "example.com"),
        ("http://example.com:443/a", False, "example.com", 443, "example.com:443"),
        ("https://example.com:80/a", True, "example.com", 80, "example.com:80"),
        ("http://127.0.0.1:8080/a", False, "127.0.0.1", 8080, "127.0.0.1:8080"),
        ("http://[::1]/a", False, "::1", 80, "[::1]"),
        ("https://[::1]:8443/a", True, "::1", 8443, "[::1]:8443"),
    ],
)
def test_a_url_gives_the_address_to_connect_to_and_the_host_header(
    url: str, tls: bool, host: str, port: int, host_header: str
) -> None:
    # a default port (80, 443) cannot be served by a test: the parsed target is where it shows
    target = _target(url)
    assert (target.tls, target.host, target.port, target.host_header) == (tls, host, port, host_header)


@pytest.mark.parametrize("client", [HTTPClient, AsyncHTTPClient], ids=["blocking", "asyncio"])
def test_the_keepalive_expiry_must_be_a_number_of_seconds_at_least_zero(client: type) -> None:
    assert [client(keepalive_expiry=given).keepalive_expiry for given in (0, 2.5)] == [0.0, 2.5]
    for wrong in (-1, -0.5, True, "4", None, float("nan")):
        with pytest.raises(ValueError, match="keepalive_expiry must be a number of seconds >= 0"):
            client(keepalive_expiry=wrong)


# --- the URL cache ----------------------------------------------------------------------------------------


def test_the_url_cache_keeps_4096_urls_then_starts_over() -> None:
    # the cache's bound shows nowhere but in the cache: the one way to see it
    _http_common._TARGETS.clear()
    try:
        first = _target("http://127.0.0.1:1/0")
        for n in range(1, 4096):
            _target(f"http://127.0.0.1:1/{n}")
        assert len(_http_common._TARGETS) == 4096
        assert _target("http://127.0.0.1:1/0") is first  # still cached: parsed once
        _target("http://127.0.0.1:1/4096")  # one more: the cache starts over with it
        assert list(_http_common._TARGETS) == ["http://127.0.0.1:1/4096"]
    finally:
        _http_common._TARGETS.clear()


# --- ClientTLS --------------------------------------------------------------------------------------------


@dataclass
class Pki:
    ca: str  # the CA that signed ``server``
    server: str  # certificate chain and key for 127.0.0.1


def make_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throwaway CA and a certificate it signed for 127.0.0.1, as PEM files."""
    root = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(root / "ca.pem"))
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(root / "server.pem"))
    return Pki(ca=str(root / "ca.pem"), server=str(root / "server.pem"))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory)


def tls_keep_alive(pki: Pki, pause: float = 0.0) -> Callable[[socket.socket, ScriptedServer], None]:
    """A ScriptedServer handler: TLS with ``pki.server`` (its handshake ``pause`` seconds slow), then ``ok`` to each
    request on the connection."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server)

    def handler(conn: socket.socket, server: ScriptedServer) -> None:
        time.sleep(pause)
        with context.wrap_socket(conn, server_side=True) as tls:
            keep_alive(tls, server)

    return handler


def settings(values: dict[str, object]) -> Callable[[str, type, object], object]:
    """``get(key, type, default)`` over ``values``, as ``ConfigurationManager.get`` reads a configuration."""
    return lambda key, _kind, default: values.get(key, default)


def test_configured_tls_reads_the_global_keys_and_the_channel_keys_over_them(pki: Pki) -> None:
    tls = ClientTLS.configured(settings({"http.tls.verify": False}), "orders")
    assert tls is not DEFAULT_TLS and tls.key == (None, None, None, False)
    tls = ClientTLS.configured(
        settings({"http.tls.verify": False, "http.orders.tls.ca_file": pki.ca}), "orders"
    )
    assert tls.key == (pki.ca, None, None, False)
    # the channel's key set back to the default: the default settings, shared
    assert (
        ClientTLS.configured(settings({"http.tls.verify": False, "http.orders.tls.verify": True}), "orders")
        is DEFAULT_TLS
    )


def test_certificates_and_host_names_are_checked_unless_verify_is_false() -> None:
    checked = ClientTLS().context()
    assert (checked.verify_mode, checked.check_hostname) == (ssl.CERT_REQUIRED, True)
    unchecked = ClientTLS(verify=False).context()
    assert (unchecked.verify_mode, unchecked.check_hostname) == (ssl.CERT_NONE, False)
    # made once per settings, shared by equal ones
    assert ClientTLS().context() is checked and ClientTLS(verify=False).context() is unchecked


@pytest.mark.parametrize("ca_file", ["/nonexistent/ca.pem", "ca\x00.pem"], ids=["missing", "not-a-path"])
def test_a_ca_bundle_that_cannot_be_loaded_is_a_configuration_error(ca_file: str) -> None:
    with pytest.raises(ConfigurationException, match="cannot load the CA bundle .* \\(http.tls.ca_file\\)"):
        ClientTLS(ca_file=ca_file).context()


def test_an_untrusted_certificate_is_refused_saying_its_verification_failed(pki: Pki) -> None:
    with ScriptedServer(tls_keep_alive(pki)) as server:
        url = f"https://127.0.0.1:{server.port}/x"
        # the system's store does not know the test CA
        with pytest.raises(
            httpx.ConnectError,
            match=f"^cannot connect to {url}: TLS certificate verification "
            "failed: unable to get local issuer certificate$",
        ) as info:
            HTTPClient(timeout=5).request("GET", url, [], b"")
        assert isinstance(
            info.value, HandshakeRefused
        )  # the same server would refuse again: not retried there
        with HTTPClient(timeout=5, tls=ClientTLS(ca_file=pki.ca)) as client:
            assert client.request("GET", url, [], b"")[::2] == (200, b"ok")


def test_sync_the_tls_handshake_has_what_connecting_left_of_the_connect_timeout(pki: Pki) -> None:
    # a handshake 50 ms slow: well within the 2 s connecting leaves it, whatever connecting took
    with ScriptedServer(tls_keep_alive(pki, pause=0.05)) as server:
        with HTTPClient(timeout=2.0, tls=ClientTLS(ca_file=pki.ca)) as client:
            assert client.request("GET", f"https://127.0.0.1:{server.port}/x", [], b"")[::2] == (200, b"ok")


def test_https_to_a_plain_http_server_is_a_tls_error_saying_so() -> None:
    def plain(conn: socket.socket, server: ScriptedServer) -> None:
        conn.recv(65536)  # the ClientHello, answered in plain HTTP
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    with ScriptedServer(plain) as server:
        url = f"https://127.0.0.1:{server.port}/x"
        # OpenSSL's own words, then the hint
        with pytest.raises(
            httpx.ConnectError,
            match=rf"^cannot connect to {url}: TLS error: \[SSL: WRONG_VERSION_NUMBER\] wrong version number "
            r"\(_ssl\.c:\d+\) \(is it a plain http server\?\)$",
        ):
            HTTPClient(timeout=5).request("GET", url, [], b"")


def ssl_error(*args: object) -> ssl.SSLError:
    """An ``ssl.SSLError`` as ``_ssl`` raises one OpenSSL gave no library or reason code for (both None)."""
    error = ssl.SSLError(*args)
    error.library = error.reason = None
    return error


def test_a_tls_error_without_a_reason_code_is_reported_in_its_own_words() -> None:
    # the message is the error's text (OpenSSL's words), never "None"
    url = "https://127.0.0.1:1/x"
    refused = _connect_error(url, ssl_error(8, "EOF occurred in violation of protocol (_ssl.c:2427)"))
    assert isinstance(refused, HandshakeRefused)
    assert (
        str(refused)
        == f"cannot connect to {url}: TLS error: EOF occurred in violation of protocol (_ssl.c:2427)"
    )


def test_a_refused_connection_is_not_a_refused_handshake() -> None:
    with socket.socket() as bound:  # bound, not listening: a connect is refused
        bound.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{bound.getsockname()[1]}/x"
        with pytest.raises(
            httpx.ConnectError, match=f"^cannot connect to {url}: Connection refused$"
        ) as info:
            HTTPClient(timeout=5).request("GET", url, [], b"")
    # a server not up yet may be up at the next try: not one that refuses for good
    assert not isinstance(info.value, HandshakeRefused)


# --- the body limit of the httpx fallback ----------------------------------------------------------------


def test_the_body_limit_holds_on_a_loop_that_cannot_watch_sockets() -> None:
    # one read of the body goes past the limit (the fallback checks the total after each read)
    big = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 1000

    def answer(conn: socket.socket, server: ScriptedServer) -> None:
        while server.next_request(conn):
            conn.sendall(big)

    loop = LoopWithoutReaders()
    client = AsyncHTTPClient(timeout=5, max_body=10)
    try:
        with ScriptedServer(answer) as server:
            with pytest.raises(ResponseTooLargeError, match="exceeds the limit of 10 bytes"):
                loop.run_until_complete(client.request("GET", server.url, [], b""))
            loop.run_until_complete(client.aclose())
    finally:
        loop.close()


def answering(response: bytes) -> Callable[[socket.socket, ScriptedServer], None]:
    """A ScriptedServer handler: ``response`` to each request on the connection."""

    def handler(conn: socket.socket, server: ScriptedServer) -> None:
        while server.next_request(conn):
            conn.sendall(response)

    return handler


def call(kind: str, method: str, url: str, **client_args: object) -> tuple[int, bytes]:
    """One call on a new client of ``kind`` (sync, async), closed after."""
    if kind == "sync":
        with HTTPClient(**client_args) as client:  # type: ignore[arg-type]
            return client.request(method, url, [], b"")[::2]

    async def run() -> tuple[int, bytes]:
        async with AsyncHTTPClient(**client_args) as client:  # type: ignore[arg-type]
            return (await client.request(method, url, [], b""))[::2]

    return asyncio.run(run())


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_the_default_body_limit_is_64_mib(kind: str) -> None:
    over_half = 32 * 2**20 + 1
    with ScriptedServer(
        answering(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % over_half + b"b" * over_half)
    ) as server:
        assert call(kind, "GET", server.url, timeout=5) == (200, b"b" * over_half)
    # refused from its announced length, before the body comes
    over = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (64 * 2**20 + 1)
    with ScriptedServer(answering(over)) as server:
        with pytest.raises(ResponseTooLargeError, match="exceeds the limit of 67108864 bytes"):
            call(kind, "GET", server.url, timeout=5)


# --- per-request timeouts through the transports ------------------------------------------------------------


def not_reading(conn: socket.socket, server: ScriptedServer) -> None:
    server.closed.wait(10)  # set by the test once done: until then nothing is read


def test_a_write_timeout_given_per_request_bounds_the_upload() -> None:
    with ScriptedServer(not_reading) as server:
        # the client's own timeout is long: only the request's 0.3 s can end the upload this soon
        with httpx.Client(transport=WarpTransport(timeout=4.0)) as client:
            started = time.monotonic()
            with pytest.raises(httpx.WriteTimeout, match="took over 0.3 s \\(write timeout\\)"):
                client.post(server.url, content=b"x" * (64 * 2**20), timeout=httpx.Timeout(4.0, write=0.3))
            assert time.monotonic() - started < 3.0
        server.closed.set()


# --- the sync client ------------------------------------------------------------------------------------


def test_sync_a_connection_busy_during_close_is_closed_after_its_call() -> None:
    answer = threading.Event()

    def held(conn: socket.socket, server: ScriptedServer) -> None:
        while server.next_request(conn):
            answer.wait(5)  # the first answer waits for the test's close()
            conn.sendall(OK)

    with ScriptedServer(held) as server:
        client = HTTPClient(timeout=5)
        results: list[tuple[int, bytes]] = []

        def calls() -> None:  # one thread: its pool is the one close() must reach
            results.extend(client.request("GET", server.url, [], b"")[::2] for _ in range(2))

        worker = threading.Thread(target=calls)
        worker.start()
        wait_until(lambda: server.requests == 1, what="the first call to reach the server")
        client.close()
        answer.set()
        worker.join(10)
        client.close()
        assert results == [(200, b"ok")] * 2
        # the connection the close() found busy was not pooled again: the second call opened its own
        assert server.connections == 2


# --- the sync client: connecting within the deadline -------------------------------------------------------


@contextmanager
def backlogged_listener() -> Iterator[str]:
    """The URL of a listener on 127.0.0.1 that never accepts, its backlog full: a connect there never completes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port), timeout=5)  # takes the one queued place
    try:
        yield f"http://127.0.0.1:{port}/x"
    finally:
        filler.close()
        listener.close()


@pytest.fixture
def backlogged() -> Iterator[str]:
    with backlogged_listener() as url:
        yield url


def test_sync_a_call_with_time_left_before_its_deadline_is_served() -> None:
    with ScriptedServer(keep_alive) as server, httpx.Client(transport=WarpTransport(timeout=4.0)) as client:
        with deadline(0.8):  # under a second left: still enough to connect
            assert [client.get(server.url).status_code for _ in range(2)] == [200, 200]
        assert server.connections == 1


def test_sync_a_deadline_already_passed_is_a_connect_timeout_without_connecting() -> None:
    with ScriptedServer(keep_alive) as server, httpx.Client(transport=WarpTransport(timeout=4.0)) as client:
        with (
            deadline_at(time.monotonic() - 0.5),
            pytest.raises(httpx.ConnectTimeout, match="before the call's deadline"),
        ):
            client.get(server.url)
    assert server.connections == 0


def test_sync_head_through_the_transport_reads_no_body() -> None:
    # the answer announces the length a GET would have, and sends no body: a HEAD's answer ends with its head
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
    with (
        ScriptedServer(answering(head)) as server,
        httpx.Client(transport=WarpTransport(timeout=2.0)) as client,
    ):
        assert [(r.status_code, r.content) for r in (client.head(server.url) for _ in range(2))] == [
            (200, b"")
        ] * 2
        assert server.connections == 1


def test_sync_an_early_answer_is_returned_under_a_deadline() -> None:
    with (
        ScriptedServer(answer_early_and_close) as server,
        httpx.Client(transport=WarpTransport(timeout=4.0)) as client,
    ):
        with deadline(3.0):
            response = client.post(server.url, content=UPLOAD)
        assert (response.status_code, response.content) == (413, REFUSAL)


class AnswerInTwoParts:
    """A ScriptedServer handler: reads a request's head, stops reading, answers 413 in two parts ``gap`` seconds
    apart (the connection left open)."""

    def __init__(self, gap: float) -> None:
        self.gap = gap

    def __call__(self, conn: socket.socket, server: ScriptedServer) -> None:
        if self.answer(conn):
            server.closed.wait(10)  # set by the test once done: the upload is never read

    def answer(self, conn: socket.socket) -> bool:
        """Read the head, answer in two parts; False when the peer went away first."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return False
            data += chunk
        conn.sendall(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 7\r\n\r\nref")
        time.sleep(self.gap)
        conn.sendall(b"used")
        return True


def test_sync_an_early_answer_after_a_write_timeout_is_read_within_the_read_timeout() -> None:
    # the upload stalls (0.3 s write timeout) while half an answer is there; its rest comes 1.2 s after the head:
    # within the 4 s read timeout the answer's reading has, not within the write timeout
    with (
        ScriptedServer(AnswerInTwoParts(1.2)) as server,
        httpx.Client(transport=WarpTransport(timeout=4.0)) as client,
    ):
        response = client.post(server.url, content=UPLOAD * 4, timeout=httpx.Timeout(4.0, write=0.3))
        assert (response.status_code, response.content) == (413, b"refused")
        server.closed.set()


def test_sync_connecting_ends_at_the_deadline_before_the_connect_timeout(backlogged: str) -> None:
    with httpx.Client(transport=WarpTransport(timeout=4.0)) as client, deadline(0.3):
        started = time.monotonic()
        with pytest.raises(httpx.ConnectTimeout, match="before the call's deadline"):
            client.get(backlogged)
        assert time.monotonic() - started < 2.0
