"""The client's phase timings over every channel, sync and async, against a real FastAPIServer on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from client_app import CHANNELS, Greeter, client, seen_since, serving
from fastapi import FastAPI, Request, Response

from rawhttp import UvicornReference
from warpcall import FastAPIServer, RemoteServiceException, ServiceCommunicationException, ServiceManager
from warpcall.observe import records
from warpcall.observe.records import CLIENT_PHASES, CallRecord


@pytest.fixture(scope="module")
def environment() -> Iterator[Any]:
    with serving() as environment:
        yield environment


@pytest.fixture(scope="module")
def manager(environment: Any) -> ServiceManager:
    manager: ServiceManager = environment.get(ServiceManager)
    return manager


class Collected:
    """The records of the calls made while it is entered (a context collector of the records contract)."""

    def __init__(self) -> None:
        self.records: list[CallRecord] = []
        self._token: object = None

    def __enter__(self) -> list[CallRecord]:
        self._token = records.push_context_sink(self.records.append)
        return self.records

    def __exit__(self, *exc: object) -> None:
        records.pop_context_sink(self._token)


def check_phases(record: CallRecord) -> None:
    assert list(record.client) == list(CLIENT_PHASES)  # every phase, in the order of the call
    assert all(value >= 0 for value in record.client.values()), record.client
    assert sum(record.client.values()) <= record.total_ns
    assert record.total_ns > 0


def call(proxy: Greeter, asynchronous: bool, name: str) -> str:
    if asynchronous:
        return asyncio.run(proxy.hello_async(name))
    return proxy.hello(name)


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("channel", CHANNELS)
def test_a_profiled_call_records_every_phase_and_the_servers(manager: ServiceManager, environment: Any,
                                                             channel: str, asynchronous: bool) -> None:
    greeter = manager.get_service(Greeter, channel)
    call(greeter, asynchronous, "warm")  # the connection and the plans exist: the record is of a plain call
    before = len(seen_since(0))
    with Collected() as got:
        assert call(greeter, asynchronous, "ada") == "hello ada"
    assert len(got) == 1
    record = got[0]
    check_phases(record)
    method = "hello_async" if asynchronous else "hello"
    assert record.method == f"obs:greeter:{method}"
    assert record.channel == channel
    assert record.url == f"http://127.0.0.1:{environment.get(FastAPIServer).port}"
    assert record.status == 200 and record.error is None
    assert record.client["acquire"] + record.client["send"] + record.client["receive"] > 0  # the wire was timed
    # the request asked for the server's phases, and the server's Server-Timing joined the record
    seen = seen_since(before)
    assert [headers.get("x-rpc-timing") for _path, headers in seen] == ["1"]
    assert "impl" in record.server, record.server  # the phases the server knows on its path (O2: issue #17)
    assert all(value >= 0 for value in record.server.values())


@pytest.mark.parametrize("channel", CHANNELS)
def test_unprofiled_calls_ask_nothing_and_record_nothing(manager: ServiceManager, channel: str) -> None:
    greeter = manager.get_service(Greeter, channel)
    got: list[CallRecord] = []
    token = records.push_context_sink(got.append)
    records.pop_context_sink(token)  # pushed and popped: nothing collects now
    before = len(seen_since(0))
    assert greeter.hello("bob") == "hello bob"
    assert asyncio.run(greeter.hello_async("bob")) == "hello bob"
    assert got == []
    assert [headers.get("x-rpc-timing") for _path, headers in seen_since(before)] == [None, None]


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("channel", CHANNELS)
def test_a_failed_call_is_recorded_with_its_error(manager: ServiceManager, channel: str, asynchronous: bool) -> None:
    greeter = manager.get_service(Greeter, channel)
    with Collected() as got:
        with pytest.raises(RemoteServiceException, match="over the limit"):
            if asynchronous:
                asyncio.run(greeter.pay_async(500.0))
            else:
                greeter.pay(500.0)
    [record] = got
    check_phases(record)
    assert record.error == "RemoteServiceException"
    assert record.status == (500 if channel == "rest" else 200)
    assert "impl" in record.server


def test_an_unreachable_instance_is_recorded_as_a_failure(tmp_path: Any) -> None:
    import socket

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # bound, never listening: connections are refused
        with client(port, tmp_path / "c.yaml") as caller:
            greeter = caller.get_service(Greeter, "dispatch-json")
            with Collected() as got:
                with pytest.raises(ServiceCommunicationException):
                    greeter.hello("nobody")
    [record] = got
    check_phases(record)
    assert record.status == 0 and record.error == "ServiceCommunicationException"
    assert record.server == {}


def test_a_channels_profile_setting_asks_for_its_calls_only(environment: Any, tmp_path: Any) -> None:
    port = int(environment.get(FastAPIServer).port)
    with client(port, tmp_path / "c.yaml", "http:\n  dispatch-msgpack:\n    profile: true\n") as caller:
        before = len(seen_since(0))
        assert caller.get_service(Greeter, "dispatch-msgpack").hello("p") == "hello p"
        assert caller.get_service(Greeter, "dispatch-json").hello("p") == "hello p"
        assert [headers.get("x-rpc-timing") for _path, headers in seen_since(before)] == ["1", None]


def test_profile_enabled_records_every_call_in_the_process_profile(environment: Any, tmp_path: Any) -> None:
    from warpcall.observe.profile import process_profile

    port = int(environment.get(FastAPIServer).port)
    with client(port, tmp_path / "c.yaml", "profile:\n  enabled: true\n") as caller:
        collector = process_profile()
        try:
            already = len(collector.records)
            assert caller.get_service(Greeter, "rest").hello("g") == "hello g"
            assert asyncio.run(caller.get_service(Greeter, "dispatch-protobuf").hello_async("g")) == "hello g"
            mine = collector.records[already:]
            assert [(r.channel, r.method) for r in mine] == [
                ("rest", "obs:greeter:hello"),
                ("dispatch-protobuf", "obs:greeter:hello_async"),
            ]
            for record in mine:
                check_phases(record)
        finally:
            collector.stop()


# --- the join, against a reference app that answers Server-Timing itself --------------------------------------


def timing_app(header: str | None) -> FastAPI:
    """A FastAPI app answering the dispatch-json envelope of hello, with ``header`` as its Server-Timing."""
    app = FastAPI()

    @app.post("/invoke")
    async def invoke(request: Request) -> Response:
        body = await request.json()
        reply = Response(
            content=b'{"result":"hello %s","exception":null}' % body["args"][0].encode(),
            media_type="application/json",
        )
        if header is not None and request.headers.get("x-rpc-timing") == "1":
            reply.headers["server-timing"] = header
        return reply

    return app


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_the_server_timing_header_joins_the_record(tmp_path: Any, asynchronous: bool) -> None:
    header = "head;dur=0.002, body;dur=0.001, decode;dur=0.0125, args;dur=0.003, impl;dur=0.25, encode;dur=0.004"
    with UvicornReference(timing_app(header)) as reference, client(reference.port, tmp_path / "c.yaml") as caller:
        greeter = caller.get_service(Greeter, "dispatch-json")
        with Collected() as got:
            assert call(greeter, asynchronous, "x") == "hello x"
    [record] = got
    check_phases(record)
    assert record.server == {"head": 2000, "body": 1000, "decode": 12500, "args": 3000, "impl": 250000, "encode": 4000}


def test_a_server_without_server_timing_leaves_the_servers_phases_empty(tmp_path: Any) -> None:
    with UvicornReference(timing_app(None)) as reference, client(reference.port, tmp_path / "c.yaml") as caller:
        greeter = caller.get_service(Greeter, "dispatch-json")
        with Collected() as got:
            assert greeter.hello("y") == "hello y"
    [record] = got
    check_phases(record)
    assert record.server == {}


@pytest.mark.parametrize("path, body, content_type", [
    ("/invoke", b'{"method":"obs:greeter:hello","args":["r"]}', "application/json"),
    ("/api/greeter/hello?name=r", b"", None),
])
def test_the_server_answers_server_timing_only_when_asked(environment: Any, path: str, body: bytes,
                                                          content_type: str | None) -> None:
    """On raw sockets: no Server-Timing unless the request carries ``x-rpc-timing: 1`` (nothing leaks)."""
    from rawhttp import Reader, connect, request

    port = environment.get(FastAPIServer).port
    method = "POST" if body else "GET"
    for extra, expected in (("", False), ("x-rpc-timing: 1\r\n", True)):
        with connect(port) as sock:
            sock.sendall(request(path, body, content_type, method=method, extra=extra))
            status, headers, _content = Reader(sock).response()
        assert status.startswith(b"HTTP/1.1 200"), status
        assert (b"server-timing" in headers) is expected, headers
