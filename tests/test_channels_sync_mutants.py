"""The blocking HTTP client's edges mutation testing found unchecked (mutation/, area ``channels``).

What the sync client (``_http_sync``) does when a new connection is reset before its first write (the error says
no byte went out, so failover may take the call elsewhere), how long it waits for the rest of an answer that came
while an upload stalled (the read timeout, not the write timeout), and that an answer already there when a
long-passed deadline stops the send is still returned. What the clients share (``_http_common``): a TLS error
with neither an OpenSSL code nor an errno is reported in its own words.

Real servers on 127.0.0.1 (``ScriptedServer``). The driver selects tests per module by name
(mutation/areas.toml): tests of the sync client say ``sync`` and never ``async``.
"""

from __future__ import annotations

import select
import socket
import ssl
import struct
import sys
import threading

import httpx
import pytest

from rawhttp import wait_until
from test_channels_mutants import AnswerInTwoParts
from test_transport_http import OK, ScriptedServer
from warpcall.channels import _http_sync
from warpcall.channels._http_common import _connect_error
from warpcall.channels.transport import HTTPClient, WarpTransport
from warpcall.core.transport import Connection
from warpcall.resilience.deadline import deadline_at
from warpcall.resilience.failures import NOT_SENT, classify


def unacknowledged(sock: socket.socket) -> int:
    """Bytes ``sock`` sent that its peer's kernel has not acknowledged yet (Linux's TIOCOUTQ)."""
    import fcntl
    import termios

    return int(struct.unpack("i", fcntl.ioctl(sock, termios.TIOCOUTQ, b"\0\0\0\0"))[0])


# --- a new connection reset before its first write --------------------------------------------------------


class ResetOnceConnected:
    """A ScriptedServer handler: once ``connected`` is set (the client's connect returned: a reset before that would
    fail the connect itself), nothing read, the connection reset (SO_LINGER 0; ScriptedServer closes it)."""

    def __init__(self) -> None:
        self.connected = threading.Event()

    def __call__(self, conn: socket.socket, server: ScriptedServer) -> None:
        if self.connected.wait(5):
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@pytest.mark.skipif(not hasattr(socket, "SO_LINGER"), reason="needs SO_LINGER to reset a connection")
def test_sync_a_new_connection_reset_before_its_first_write_fails_as_not_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handler = ResetOnceConnected()
    opened = _http_sync._open

    def open_then_meet_the_reset(*args: object) -> _http_sync._Conn:
        # the reset has to land between connecting and the first write, a window of microseconds no server can
        # aim at: the new connection is handed on only once the reset is there (internals: the one way)
        conn = opened(*args)  # type: ignore[arg-type]
        handler.connected.set()
        sock = conn.io.sock
        wait_until(lambda: select.select([sock], [], [], 0)[0], what="the reset reaching the client")
        return conn

    monkeypatch.setattr(_http_sync, "_open", open_then_meet_the_reset)
    with ScriptedServer(handler) as server, HTTPClient(timeout=5) as client:
        with pytest.raises(httpx.WriteError, match="failed before any byte went out") as info:
            client.request("POST", server.url, [], b"payload")
    # provably not sent: another instance may take the call
    assert classify(info.value) == NOT_SENT


# --- an early answer after a stalled upload ----------------------------------------------------------------


class AnswerWhileNotReading(AnswerInTwoParts):
    """A ScriptedServer handler: a small receive buffer (an upload stalls at once), reads the request's head only,
    answers 413 in two parts ``gap`` seconds apart, and leaves the connection open until ``done``."""

    def __init__(self, gap: float) -> None:
        super().__init__(gap)
        self.done = threading.Event()

    def __call__(self, conn: socket.socket, server: ScriptedServer) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fixed: no growing window for the upload
        if self.answer(conn):
            self.done.wait(10)


def test_sync_the_rest_of_an_early_answer_is_awaited_for_the_read_timeout_not_the_write_timeout() -> None:
    # the upload stalls within a few tenths of a second (0.1 s write timeout); the answer's rest comes 0.8 s after
    # its head: far past the write timeout, well within the 4 s read timeout its reading has
    handler = AnswerWhileNotReading(0.8)
    with (
        ScriptedServer(handler) as server,
        httpx.Client(transport=WarpTransport(timeout=4.0)) as client,
    ):
        try:
            response = client.post(
                server.url, content=b"u" * (16 * 2**20), timeout=httpx.Timeout(4.0, write=0.1)
            )
        finally:
            handler.done.set()
        assert (response.status_code, response.content) == (413, b"refused")


# --- an answer there when a deadline passed long ago stops the send --------------------------------------------

UNASKED = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 8\r\nConnection: close\r\n\r\ndraining"


class OkThenUnasked:
    """A ScriptedServer handler: ``ok`` to the first request, then, once ``go`` is set, a 503 nobody asked for;
    ``there`` is set once the client's kernel has it."""

    def __init__(self) -> None:
        self.go = threading.Event()
        self.there = threading.Event()

    def __call__(self, conn: socket.socket, server: ScriptedServer) -> None:
        if not server.next_request(conn):
            return
        conn.sendall(OK)
        if not self.go.wait(5):
            return
        conn.sendall(UNASKED)
        wait_until(lambda: unacknowledged(conn) == 0, what="the client's kernel to take the answer")
        self.there.set()
        server.next_request(conn)  # until the client closes it


class LenientConnection(Connection):  # type: ignore[misc]
    """The core's connection with an idle check that always passes."""

    def reusable(self) -> bool:
        return True


@pytest.mark.skipif(sys.platform != "linux", reason="TIOCOUTQ on a socket is Linux's")
def test_sync_an_answer_there_when_a_long_passed_deadline_stops_the_send_is_returned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the idle check would see the answer and drop the connection: let it pass, as when the answer lands just after
    # the check (a window of microseconds, out of a server's aim otherwise)
    monkeypatch.setattr(_http_sync, "Connection", LenientConnection)
    handler = OkThenUnasked()
    with ScriptedServer(handler) as server, httpx.Client(transport=WarpTransport(timeout=4.0)) as client:
        assert client.get(server.url).status_code == 200
        handler.go.set()
        assert handler.there.wait(5)
        # a deadline half a second after the clock's origin: passed long ago, so the send stops before its first
        # byte; the answer already there is the reply all the same, read within a grace past the deadline
        with deadline_at(0.5):
            response = client.get(server.url)
        assert (response.status_code, response.content) == (503, b"draining")
        assert server.connections == 1


# --- a TLS error without codes --------------------------------------------------------------------------------


def test_a_tls_error_with_only_a_message_is_reported_in_its_own_words() -> None:
    # an SSLError with a message alone (no errno, no strerror) and no OpenSSL codes, the attributes _ssl always
    # adds set as it sets them: the message shows its words, never "None"
    error = ssl.SSLError("the peer's record could not be read")
    error.library = error.reason = None
    url = "https://127.0.0.1:1/x"
    message = str(_connect_error(url, error))
    assert message.startswith(f"cannot connect to {url}: TLS error: ")
    assert "the peer's record could not be read" in message and "None" not in message
