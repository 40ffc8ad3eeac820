"""HTTPS end to end (issue 15, TLS): FastAPIServer serving TLS, every channel calling it on the compiled transport.

Certificates come from ``trustme`` (a throwaway CA per test module). The servers are real
FastAPIServers (uvicorn, asyncio's SSL transport under warpcall's inline protocol) on 127.0.0.1;
the clients are ServiceManager proxies on every channel, sync and async, configured through the
``http.tls.*`` keys. A raw TLS server (``ScriptedServer`` + ``ssl``) counts handshakes where uvicorn
cannot (a refused handshake never reaches its protocol). Run on the compiled build and under
``WARPCALL_PURE=1``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import sys
from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from fastapi import FastAPI

from rawhttp import wait_until
from test_transport_http import ScriptedServer
from warpcall import (
    AbstractComponent,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    LocalComponentRegistry,
    Service,
    ServiceCommunicationException,
    ServiceManager,
    ServiceModule,
    component,
    get,
    health,
    idempotent,
    implementation,
    post,
    rest,
    service,
)
from warpcall.channels.transport import AsyncHTTPClient, ClientTLS, HTTPClient
from warpcall.di import ConfigurationException, Environment, create, module
from warpcall.di.configuration import ConfigurationSource
from warpcall.exceptions import DeadlineExceeded, ServiceException
from warpcall.server.tls import ServerTLS
from warpcall.service import component_descriptor

TIMEOUT = 5.0
CHANNELS = ["dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest"]


# --- the service, on every channel ------------------------------------------------------------------------


@dataclass
class Parcel:
    label: str
    payload: str


@service(name="vault")
@rest("/api/vault")
class VaultService(Service):
    @get("/echo/{text}")
    @abstractmethod
    def echo(self, text: str) -> str: ...

    @post("/parcels")
    @abstractmethod
    def store(self, parcel: Parcel) -> Parcel: ...

    @get("/echo-async/{text}")
    @abstractmethod
    async def echo_async(self, text: str) -> str: ...

    @post("/parcels-async")
    @abstractmethod
    async def store_async(self, parcel: Parcel) -> Parcel: ...

    @get("/again/{text}")
    @idempotent
    @abstractmethod
    def again(self, text: str) -> str: ...


@component(name="vault-component", services=[VaultService])
class VaultComponent(Component):
    pass


@implementation()
class VaultServiceImpl(VaultService):
    def echo(self, text: str) -> str:
        return f"echo {text}"

    def store(self, parcel: Parcel) -> Parcel:
        return Parcel(parcel.label + "!", parcel.payload[::-1])

    async def echo_async(self, text: str) -> str:
        return f"echo {text}"

    async def store_async(self, parcel: Parcel) -> Parcel:
        return Parcel(parcel.label + "!", parcel.payload[::-1])

    def again(self, text: str) -> str:
        return text


@implementation()
@health("/vault/health")
class VaultComponentImpl(AbstractComponent, VaultComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        # written for plain http, as a README component is: a server serving TLS registers them as https://
        return [
            *(ChannelAddress(name, f"http://127.0.0.1:{port}") for name in CHANNELS),
            ChannelAddress("mirror", "http://127.0.0.1:1"),  # not this server's port: left as it is
        ]


class Values(ConfigurationSource):
    """Configuration values given as a dict (the keys a YAML file would hold)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def load(self) -> dict[str, Any]:
        return self.values


# --- certificates ----------------------------------------------------------------------------------------


@dataclass
class Pki:
    ca: str  # the CA that signed the servers' certificates
    other_ca: str  # a CA that signed nothing here
    server: str  # certificate chain and key for 127.0.0.1
    server_cert: str  # the same, certificate and key apart
    server_key: str
    wrong_host: str  # signed by ``ca``, for another host name
    client_ca: str  # the CA of the client certificates an mTLS server accepts
    client: str  # a client certificate (chain and key) signed by ``client_ca``
    client_cert: str
    client_key: str
    stranger: str  # a client certificate signed by ``other_ca``


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    ca, other_ca, client_ca = trustme.CA(), trustme.CA(), trustme.CA()

    def write(name: str, blob: trustme.Blob) -> str:
        path = root / name
        blob.write_to_path(str(path))
        return str(path)

    server = ca.issue_cert("127.0.0.1")
    client = client_ca.issue_cert("client.example")
    return Pki(
        ca=write("ca.pem", ca.cert_pem),
        other_ca=write("other-ca.pem", other_ca.cert_pem),
        server=write("server.pem", server.private_key_and_cert_chain_pem),
        server_cert=write("server-cert.pem", server.cert_chain_pems[0]),
        server_key=write("server-key.pem", server.private_key_pem),
        wrong_host=write("wrong-host.pem", ca.issue_cert("other.example").private_key_and_cert_chain_pem),
        client_ca=write("client-ca.pem", client_ca.cert_pem),
        client=write("client.pem", client.private_key_and_cert_chain_pem),
        client_cert=write("client-cert.pem", client.cert_chain_pems[0]),
        client_key=write("client-key.pem", client.private_key_pem),
        stranger=write("stranger.pem", other_ca.issue_cert("stranger.example").private_key_and_cert_chain_pem),
    )


# --- servers and clients ---------------------------------------------------------------------------------

#: the connections each server's protocol made (after the handshake), by the server's port
ACCEPTED: dict[int, int] = {}


def counting(server: FastAPIServer) -> FastAPIServer:
    """``server`` with its protocol class counting the connections it serves (ACCEPTED[port])."""
    base: Any = server.protocol_class
    assert base is not None, "uvicorn runs httptools here: the inline protocol serves"

    class Counting(base):  # type: ignore[misc, valid-type]
        def connection_made(self, transport: Any) -> None:
            port = transport.get_extra_info("sockname")[1]
            ACCEPTED[port] = ACCEPTED.get(port, 0) + 1
            super().connection_made(transport)

    server.protocol_class = Counting
    return server


def server_module(config: dict[str, Any], tls: ServerTLS | None = None) -> type:
    """A module serving the vault component (and calling it: its channels read ``config``)."""

    @module(imports=[ServiceModule])
    class ServerModule:
        @create()
        def create_registry(self) -> ComponentRegistry:
            return LocalComponentRegistry()

        @create()
        def create_configuration(self) -> Values:
            return Values(config)

        @create()
        def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
            return counting(FastAPIServer(FastAPI(), manager, registry, tls=tls))

    return ServerModule


def client_module(urls: list[str], config: dict[str, Any]) -> type:
    """A module calling the vault component at ``urls`` (on every channel), configured by ``config``."""

    @module(imports=[ServiceModule])
    class ClientModule:
        @create()
        def create_registry(self) -> ComponentRegistry:
            registry = LocalComponentRegistry()
            registry.register(
                component_descriptor(VaultComponent),
                [ChannelAddress(channel, url) for channel in CHANNELS for url in urls],
            )
            return registry

        @create()
        def create_configuration(self) -> Values:
            return Values(config)

    return ClientModule


class Client:
    """An environment calling the vault; closed by the test's end."""

    def __init__(self, urls: list[str], config: dict[str, Any]) -> None:
        self.environment = Environment(client_module(urls, config))
        self.manager = self.environment.get(ServiceManager)

    def vault(self, channel: str) -> Any:
        return self.manager.get_service(VaultService, channel)

    def close(self) -> None:
        self.environment.destroy()


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        client.close()


def tls_config(**keys: Any) -> dict[str, Any]:
    return {"http": {"timeout": TIMEOUT, "tls": keys}}


@pytest.fixture(scope="module")
def served(pki: Pki) -> Iterator[Environment]:
    """A server booted with ``tls=`` (certificate and key in one file), calling itself with the CA configured."""
    environment = FastAPIServer.boot(
        server_module(tls_config(ca_file=pki.ca)), host="127.0.0.1", port=0, tls=ServerTLS(pki.server)
    )
    yield environment
    environment.destroy()


@pytest.fixture(scope="module")
def server(served: Environment) -> FastAPIServer:
    return served.get(FastAPIServer)


@pytest.fixture(scope="module")
def mtls(pki: Pki) -> Iterator[FastAPIServer]:
    """A server requiring client certificates signed by ``client_ca``, configured by the ``server.tls.*`` keys."""
    config = {
        "server": {
            "tls": {
                "cert_file": pki.server_cert,
                "key_file": pki.server_key,
                "ca_file": pki.client_ca,
                "client_cert": "required",
            }
        }
    }
    environment = FastAPIServer.boot(server_module(config), host="127.0.0.1", port=0)
    yield environment.get(FastAPIServer)
    environment.destroy()


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 30))


PARCEL = Parcel("box", "abc" * 40_000)  # 120 kB: a body of several TLS records each way


# --- every channel, sync and async, over https --------------------------------------------------------------


def test_the_server_serves_https_and_registers_https_addresses(server: FastAPIServer, served: Environment) -> None:
    assert server.url == f"https://127.0.0.1:{server.port}"
    registry = served.get(ComponentRegistry)
    addresses = registry.get_addresses(component_descriptor(VaultComponent))
    assert {instances.channel: instances.urls for instances in addresses} == {
        **{channel: [server.url] for channel in CHANNELS},
        "mirror": ["http://127.0.0.1:1"],
    }


@pytest.mark.parametrize("channel", CHANNELS)
def test_every_channel_calls_https_sync_and_async(server: FastAPIServer, served: Environment, channel: str) -> None:
    vault = served.get(ServiceManager).get_service(VaultService, channel)
    stats = server.protocol_class.stats  # type: ignore[union-attr]
    inline_before = stats.served
    assert vault.echo("tea") == "echo tea"
    assert vault.store(PARCEL) == Parcel("box!", PARCEL.payload[::-1])

    async def calls() -> tuple[str, Parcel]:
        return await vault.echo_async("cup"), await vault.store_async(PARCEL)

    assert run(calls()) == ("echo cup", Parcel("box!", PARCEL.payload[::-1]))
    # the small calls answered by the server's inline protocol under TLS too, as over plain http (not through
    # the ASGI app); the 120 kB bodies take the ASGI path on both
    assert stats.served == inline_before + 2


def test_the_channels_use_the_compiled_transport_not_httpx(server: FastAPIServer, served: Environment) -> None:
    """httpx is what the client fell back to for https: its transports must not be made for a call."""
    made: list[str] = []
    originals = httpx.HTTPTransport.__init__, httpx.AsyncHTTPTransport.__init__

    def spy(kind: str, original: Any) -> Any:
        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            made.append(kind)
            original(self, *args, **kwargs)

        return init

    httpx.HTTPTransport.__init__ = spy("sync", originals[0])  # type: ignore[method-assign]
    httpx.AsyncHTTPTransport.__init__ = spy("async", originals[1])  # type: ignore[method-assign]
    try:
        client = Client([server.url], tls_config(ca_file=server_ca(served)))
        try:
            for channel in CHANNELS:
                vault = client.vault(channel)
                assert vault.echo("x") == "echo x"
                assert run(vault.echo_async("y")) == "echo y"
        finally:
            client.close()
    finally:
        httpx.HTTPTransport.__init__, httpx.AsyncHTTPTransport.__init__ = originals  # type: ignore[method-assign]
    assert made == []


def server_ca(served: Environment) -> str:
    from warpcall.di.configuration import ConfigurationManager

    return str(served.get(ConfigurationManager).get("http.tls.ca_file", str))


# --- verification: the CA, the host name, verify=False ----------------------------------------------------


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_server_whose_ca_is_not_trusted_is_refused(
    server: FastAPIServer, pki: Pki, clients: list[Client], channel: str
) -> None:
    clients.append(client := Client([server.url], tls_config(ca_file=pki.other_ca)))
    vault = client.vault(channel)
    with pytest.raises(ServiceCommunicationException, match="TLS certificate verification failed") as info:
        vault.echo("x")
    assert server.url in str(info.value)
    with pytest.raises(ServiceCommunicationException, match="TLS certificate verification failed"):
        run(vault.echo_async("x"))


def test_the_system_store_does_not_trust_a_private_ca(server: FastAPIServer, clients: list[Client]) -> None:
    clients.append(client := Client([server.url], tls_config()))  # no ca_file: verified all the same
    with pytest.raises(ServiceCommunicationException, match="unable to get local issuer certificate"):
        client.vault("dispatch-json").echo("x")


def test_a_certificate_for_another_host_is_refused(pki: Pki, clients: list[Client]) -> None:
    environment = FastAPIServer.boot(
        server_module({}), host="127.0.0.1", port=0, tls=ServerTLS(pki.wrong_host)
    )
    try:
        url = environment.get(FastAPIServer).url
        clients.append(client := Client([url], tls_config(ca_file=pki.ca)))
        for channel in ("dispatch-json", "rest"):
            vault = client.vault(channel)
            with pytest.raises(ServiceCommunicationException, match="address mismatch, certificate is not valid for .127.0.0.1"):
                vault.echo("x")
            with pytest.raises(ServiceCommunicationException, match="address mismatch, certificate is not valid for .127.0.0.1"):
                run(vault.echo_async("x"))
        # verify=False: any certificate for any host (and a warning in the log)
        clients.append(lax := Client([url], tls_config(verify=False)))
        for channel in CHANNELS:
            assert lax.vault(channel).echo("x") == "echo x"
            assert run(lax.vault(channel).echo_async("y")) == "echo y"
    finally:
        environment.destroy()


def test_verify_false_must_be_said_and_is_logged(
    server: FastAPIServer, pki: Pki, clients: list[Client], caplog: pytest.LogCaptureFixture
) -> None:
    # a CA bundle that cannot be loaded fails the channel's setup, naming the file and the key
    clients.append(client := Client([server.url], tls_config(verify="false", ca_file="/nonexistent/ignored.pem")))
    with pytest.raises(ConfigurationException, match="cannot load the CA bundle '/nonexistent/ignored.pem'"):
        client.vault("dispatch-json")
    with caplog.at_level("WARNING", logger="warpcall.channels"):
        # a CA that did not sign the server's certificate: served all the same, since verification is off
        clients.append(lax := Client([server.url], tls_config(verify="off", ca_file=pki.other_ca)))
        assert lax.vault("dispatch-msgpack").echo("z") == "echo z"
    assert any("verification is off" in record.getMessage() for record in caplog.records)
    assert ClientTLS(verify=False).context().verify_mode == ssl.CERT_NONE
    assert ClientTLS().context().verify_mode == ssl.CERT_REQUIRED
    assert ClientTLS().context().check_hostname


def test_a_channel_key_overrides_the_global_one(server: FastAPIServer, pki: Pki, clients: list[Client]) -> None:
    config = tls_config(ca_file=pki.other_ca)
    config["http"]["dispatch-msgpack"] = {"tls": {"ca_file": pki.ca}}
    clients.append(client := Client([server.url], config))
    assert client.vault("dispatch-msgpack").echo("x") == "echo x"
    with pytest.raises(ServiceCommunicationException, match="TLS certificate verification failed"):
        client.vault("dispatch-json").echo("x")


def test_one_ssl_context_per_configuration() -> None:
    first, second = ClientTLS(verify=False), ClientTLS(verify=False)
    assert first.context() is second.context()
    assert ClientTLS().context() is not first.context()
    with pytest.raises(ConfigurationException, match="key_file .* without cert_file"):
        ClientTLS(key_file="key.pem")


# --- a refused handshake: clear, failed over, never retried ------------------------------------------------


def handshake_counter(pki: Pki) -> Any:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server)

    def handshake(conn: socket.socket, server: ScriptedServer) -> None:
        server.requests += 1  # a handshake begun
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.recv(65536)

    return handshake


def test_a_refused_handshake_is_not_retried_even_for_an_idempotent_method(
    pki: Pki, clients: list[Client]
) -> None:
    with ScriptedServer(handshake_counter(pki)) as first, ScriptedServer(handshake_counter(pki)) as second:
        urls = [f"https://127.0.0.1:{first.port}", f"https://127.0.0.1:{second.port}"]
        clients.append(client := Client(urls, tls_config(ca_file=pki.other_ca)))
        for channel in ("dispatch-json", "rest"):
            vault = client.vault(channel)
            with pytest.raises(ServiceCommunicationException) as info:
                vault.again("x")  # idempotent: a maybe-sent failure would be retried with backoff
            assert not isinstance(info.value, DeadlineExceeded)
            message = str(info.value)
            assert "reached none of the 2 instances" in message, message
            assert message.count("TLS certificate verification failed") == 2, message
            with pytest.raises(ServiceCommunicationException, match="reached none of the 2 instances"):
                run(vault.echo_async("x"))
        # each instance tried once per call: failed over, not retried
        wait_until(lambda: first.requests + second.requests == 8, TIMEOUT, "the handshakes to be counted")
        assert (first.requests, second.requests) == (4, 4)


def test_a_handshake_slower_than_the_deadline_is_a_connect_timeout() -> None:
    """A server that accepts and never answers the ClientHello: the handshake ends with the connect timeout."""

    def silent(conn: socket.socket, server: ScriptedServer) -> None:
        server.requests += 1
        conn.recv(65536)  # the ClientHello, never answered
        server.closed.wait(TIMEOUT)

    with ScriptedServer(silent) as hung:
        url = f"https://127.0.0.1:{hung.port}/x"
        with pytest.raises(httpx.ConnectTimeout, match="cannot connect to .* within 0.3 s"):
            HTTPClient(timeout=0.3).request("GET", url, [], b"")

        async def call() -> None:
            client = AsyncHTTPClient(timeout=0.3)
            try:
                await client.request("GET", url, [], b"")
            finally:
                await client.aclose()

        with pytest.raises(httpx.ConnectTimeout, match="cannot connect to .* within 0.3 s"):
            run(call())


def test_a_plain_http_server_called_with_https_says_so(clients: list[Client]) -> None:
    def plain(conn: socket.socket, server: ScriptedServer) -> None:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")

    with ScriptedServer(plain) as server:
        with pytest.raises(httpx.ConnectError, match="TLS error: .*WRONG_VERSION_NUMBER.*plain http server"):
            HTTPClient(timeout=TIMEOUT).request("GET", f"https://127.0.0.1:{server.port}/x", [], b"")


# --- mTLS ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["dispatch-json", "rest"])
def test_mtls_refuses_a_client_without_a_certificate(
    mtls: FastAPIServer, pki: Pki, clients: list[Client], channel: str
) -> None:
    clients.append(client := Client([mtls.url], tls_config(ca_file=pki.ca)))
    vault = client.vault(channel)
    with pytest.raises(ServiceCommunicationException, match="certificate") as info:
        vault.echo("x")
    assert "TLS" in str(info.value)
    with pytest.raises(ServiceCommunicationException, match="TLS.*certificate"):
        run(vault.echo_async("x"))
    # a certificate from a CA the server does not trust is refused too
    clients.append(stranger := Client([mtls.url], tls_config(ca_file=pki.ca, cert_file=pki.stranger)))
    with pytest.raises(ServiceCommunicationException, match="TLS.*certificate"):
        stranger.vault(channel).echo("x")


@pytest.mark.parametrize("channel", CHANNELS)
def test_mtls_serves_a_client_with_a_certificate(
    mtls: FastAPIServer, pki: Pki, clients: list[Client], channel: str
) -> None:
    clients.append(client := Client([mtls.url], tls_config(ca_file=pki.ca, cert_file=pki.client)))
    vault = client.vault(channel)
    assert vault.echo("x") == "echo x"
    assert run(vault.store_async(PARCEL)) == Parcel("box!", PARCEL.payload[::-1])
    # the certificate and key in two files
    clients.append(apart := Client(
        [mtls.url], tls_config(ca_file=pki.ca, cert_file=pki.client_cert, key_file=pki.client_key)
    ))
    assert apart.vault(channel).echo("y") == "echo y"


# --- keep-alive over TLS ----------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["dispatch-json", "dispatch-protobuf", "rest"])
def test_connections_are_reused_over_tls(
    server: FastAPIServer, pki: Pki, clients: list[Client], channel: str
) -> None:
    clients.append(client := Client([server.url], tls_config(ca_file=pki.ca)))
    vault = client.vault(channel)
    before = ACCEPTED.get(server.port, 0)
    for i in range(20):
        assert vault.echo(str(i)) == f"echo {i}"
    assert ACCEPTED[server.port] == before + 1  # one handshake, one connection, twenty calls

    async def calls() -> None:
        for i in range(20):
            assert await vault.echo_async(str(i)) == f"echo {i}"

    run(calls())
    assert ACCEPTED[server.port] == before + 2  # the event loop's own connection, reused as well


# --- the health route and registered addresses ------------------------------------------------------------


def test_registered_addresses_and_health_use_https(server: FastAPIServer, served: Environment, pki: Pki) -> None:
    hosted = served.get(ServiceManager).hosted_components()
    assert [str(a) for a in hosted[0].addresses] == [
        *(f"{channel}({server.url})" for channel in CHANNELS),
        "mirror(http://127.0.0.1:1)",
    ]
    with httpx.Client(verify=ssl.create_default_context(cafile=pki.ca), timeout=TIMEOUT) as http:
        answer = http.get(server.url + "/vault/health")
    assert answer.status_code == 200 and answer.json()["status"] == "OK"
    with pytest.raises(httpx.RemoteProtocolError):  # plain http is not served on a TLS port
        httpx.get(server.url.replace("https://", "http://") + "/vault/health", timeout=TIMEOUT)


# --- the server's settings --------------------------------------------------------------------------------


def test_server_tls_settings_are_checked(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(ServiceException, match="client_cert must be one of none, optional, required"):
        ServerTLS(pki.server, client_cert="sometimes")
    with pytest.raises(ServiceException, match="needs ca_file"):
        ServerTLS(pki.server, client_cert="required")
    missing = str(tmp_path / "missing.pem")
    with pytest.raises(ServiceException, match=f"cannot load the server certificate '{missing}'"):
        FastAPIServer.boot(server_module({}), host="127.0.0.1", port=0, tls=ServerTLS(missing))
    assert "secret" not in repr(ServerTLS(pki.server, key_password="secret"))


# --- the early answer during an upload, over https (httpx's async transport lost it: tests/test_client_hardening)


UPLOAD = b"u" * (8 * 2**20)
EARLY_413 = b"HTTP/1.1 413 Content Too Large\r\ncontent-length: 9\r\nconnection: close\r\n\r\ntoo large"


def answer_early_over_tls(pki: Pki, close: bool) -> Any:
    """Read the request head, answer 413, then close with the upload unread (``close``: the kernel resets the
    connection, the client's sending fails) or stop reading (the client's sending times out)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server)

    def answer(conn: socket.socket, server: ScriptedServer) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as uvicorn's: no answer held back by Nagle
        tls = context.wrap_socket(conn, server_side=True)
        data = b""
        for _ in range(1000):
            if b"\r\n\r\n" in data:
                break
            chunk = tls.recv(65536)
            if not chunk:
                return
            data += chunk
        server.requests += 1
        tls.sendall(EARLY_413)
        if close:
            tls.close()
        else:
            server.closed.wait(TIMEOUT)  # set by the first handler to end: the next connection's, or the test's end

    return answer


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_an_early_answer_during_an_https_upload_is_returned(pki: Pki, kind: str) -> None:
    """A server answering 413 on the head and closing: that answer, over https as over http (httpx's async
    transport, which https used to go to, loses it: the xfail in tests/test_client_hardening.py)."""
    tls = ClientTLS(ca_file=pki.ca)
    with ScriptedServer(answer_early_over_tls(pki, close=True)) as server:
        url = f"https://127.0.0.1:{server.port}/x"

        async def call() -> tuple[int, list[tuple[str, str]], bytes]:
            client = AsyncHTTPClient(timeout=TIMEOUT, tls=tls)
            try:
                return await client.request("POST", url, [], UPLOAD)
            finally:
                await client.aclose()

        for _ in range(3):
            if kind == "sync":
                status, _, body = HTTPClient(timeout=TIMEOUT, tls=tls).request("POST", url, [], UPLOAD)
            else:
                status, _, body = run(call())
            assert (status, body) == (413, b"too large")
        assert server.connections == 3  # the connection of an interrupted upload is never reused


def test_an_early_answer_from_an_https_server_that_stops_reading_is_returned_sync(pki: Pki) -> None:
    """The sync client writes, then reads: a server that answered and stopped reading has its answer
    returned when the send times out (here after 0.5 s)."""
    with ScriptedServer(answer_early_over_tls(pki, close=False)) as server:
        client = HTTPClient(timeout=0.5, tls=ClientTLS(ca_file=pki.ca))
        try:
            status, _, body = client.request("POST", f"https://127.0.0.1:{server.port}/x", [], UPLOAD)
        finally:
            client.close()
        assert (status, body) == (413, b"too large")


def test_the_ssl_module_is_loaded_by_https_only() -> None:
    """A plain-http process never imports ssl for its calls (sync: import time is part of the cost)."""
    import subprocess

    code = (
        "import sys\n"
        "from warpcall.channels._http_sync import HTTPClient\n"
        "HTTPClient(timeout=1)\n"
        "print('ssl' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"
