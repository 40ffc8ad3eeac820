"""Every value a signature admits survives every dispatch channel, or is refused by name (issue 14, point 7).

A real server on 127.0.0.1; round trips through real clients, sync and async, on dispatch-json,
dispatch-msgpack and dispatch-protobuf; the server's side on raw sockets (status and error envelope).
Run on the compiled core and, with ``WARPCALL_PURE=1``, on the plain-Python one.

What the channels do with the rare values:

- integers of any size travel on dispatch-json and dispatch-msgpack; dispatch-protobuf carries ints as
  sint64 and refuses any other by name (inside a field carried as msgpack, such as ``Any``, they travel);
- inf and nan travel on msgpack and protobuf; JSON has no such numbers: both ends refuse to write them;
- a string holding a lone surrogate is not Unicode text: no end writes one, a JSON body holding one is a 400;
- an envelope nests at most 1024 arrays and objects deep (the envelope and, in a request, its args array
  count): a deeper body is a 400, and each end writes every value within the limit (past orjson's 255 levels
  and the stdlib's recursion) and refuses a deeper one by name;
- a value of a recursive dataclass or model nesting deeper than Python's recursion limit, or containing
  itself, is refused by name (the compiled plans used to overflow the C stack);
- a result the server cannot write is a 500 in the channel's own envelope, naming the method.
"""

from __future__ import annotations

import asyncio
import math
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, Optional, Union
from urllib.parse import urlsplit

import msgpack
import orjson
import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from pydantic_core import core_schema

from rawhttp import Reader, connect, request
from warpcall import (
    AbstractComponent,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    LocalComponentRegistry,
    MarshalException,
    RemoteServiceException,
    Service,
    ServiceManager,
    ServiceModule,
    component,
    implementation,
    service,
)
from warpcall.core.envelope import MAX_DEPTH
from warpcall.di import create, module
from warpcall.wire.protobuf_codec import codec_for

CHANNELS = ["dispatch-json", "dispatch-msgpack", "dispatch-protobuf"]
EXACT_INTS = ["dispatch-json", "dispatch-msgpack"]  # protobuf: sint64
CARRY_NON_FINITE = ["dispatch-msgpack", "dispatch-protobuf"]
BIG = [2**64, 2**64 + 1, 2**70 + 3, -(2**63) - 1, -(2**90) - 7, 10**400]


@dataclass
class Chain:
    value: int = 0
    next: Optional[Chain] = None


class Loose(BaseModel, extra="allow"):
    name: str


class Reading:
    """A type only pydantic knows: its TypeAdapter dumps it."""

    def __init__(self, value: Any) -> None:
        self.value = value

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        return core_schema.no_info_plain_validator_function(
            lambda v: v if isinstance(v, Reading) else Reading(v["value"]),
            serialization=core_schema.plain_serializer_function_ser_schema(lambda r: {"value": r.value}),
        )


def chain(depth: int) -> Chain:
    node = Chain(0)
    for index in range(1, depth):
        node = Chain(index, node)
    return node


def looped() -> Chain:
    node = Chain(1, Chain(2))
    assert node.next is not None
    node.next.next = node
    return node


@service(name="values")
class ValueService(Service):
    @abstractmethod
    def next(self, n: int) -> int: ...

    @abstractmethod
    def echo(self, value: Any) -> Any: ...

    @abstractmethod
    def number(self, value: Union[int, float]) -> Union[int, float]: ...

    @abstractmethod
    def ints(self, values: list[int]) -> list[int]: ...

    @abstractmethod
    def real(self, x: float) -> float: ...

    @abstractmethod
    def maybe_real(self, x: Optional[float]) -> Optional[float]: ...

    @abstractmethod
    def text(self, s: str) -> str: ...

    @abstractmethod
    def huge(self) -> int: ...

    @abstractmethod
    def nan(self) -> float: ...

    @abstractmethod
    def surrogate(self) -> str: ...

    @abstractmethod
    def raises_surrogate(self) -> str: ...

    @abstractmethod
    async def next_async(self, n: int) -> int: ...

    @abstractmethod
    async def echo_async(self, value: Any) -> Any: ...

    @abstractmethod
    async def nan_async(self) -> float: ...

    @abstractmethod
    def chain(self, depth: int) -> Chain: ...

    @abstractmethod
    def loop(self) -> Chain: ...

    @abstractmethod
    async def loop_async(self) -> Chain: ...

    @abstractmethod
    def deep(self, depth: int) -> Any: ...

    @abstractmethod
    async def deep_async(self, depth: int) -> Any: ...

    @abstractmethod
    def loose(self, kind: str) -> Loose: ...

    @abstractmethod
    async def loose_async(self, kind: str) -> Loose: ...

    @abstractmethod
    def take_loose(self, model: Loose) -> str: ...

    @abstractmethod
    def reading(self, x: str) -> Reading: ...

    @abstractmethod
    async def reading_async(self, x: str) -> Reading: ...

    @abstractmethod
    def take_reading(self, r: Reading) -> str: ...


@component(name="vals", services=[ValueService])
class ValuesComponent(Component):
    pass


CALLS: list[str] = []
# what loose() puts in its model's extra field (JSON's client would not send inf: the server makes it)
EXTRAS: dict[str, Any] = {"inf": math.inf, "nan": math.nan, "deep": [1.0, {"x": -math.inf}], "fine": 1.5}


@implementation()
class ValueServiceImpl(ValueService):
    def next(self, n: int) -> int:
        CALLS.append("next")
        return n + 1

    def echo(self, value: Any) -> Any:
        CALLS.append("echo")
        return value

    def number(self, value: Union[int, float]) -> Union[int, float]:
        return value

    def ints(self, values: list[int]) -> list[int]:
        return [v * 2 for v in values]

    def real(self, x: float) -> float:
        return x

    def maybe_real(self, x: Optional[float]) -> Optional[float]:
        return x

    def text(self, s: str) -> str:
        CALLS.append("text")
        return s

    def huge(self) -> int:
        return 2**70

    def nan(self) -> float:
        return math.nan

    def surrogate(self) -> str:
        return "half a pair: \ud800"

    def raises_surrogate(self) -> str:
        raise ValueError("bad \udc80 byte")

    async def next_async(self, n: int) -> int:
        return n + 1

    async def echo_async(self, value: Any) -> Any:
        await asyncio.sleep(0)
        return value

    async def nan_async(self) -> float:
        return -math.inf

    def chain(self, depth: int) -> Chain:
        return chain(depth)

    def loop(self) -> Chain:
        CALLS.append("loop")
        return looped()

    async def loop_async(self) -> Chain:
        return looped()

    def deep(self, depth: int) -> Any:
        return nested(depth)

    async def deep_async(self, depth: int) -> Any:
        return nested(depth)

    def loose(self, kind: str) -> Loose:
        return Loose(name="n", extra=EXTRAS[kind])

    async def loose_async(self, kind: str) -> Loose:
        return Loose(name="n", extra=EXTRAS[kind])

    def take_loose(self, model: Loose) -> str:
        CALLS.append("take_loose")
        return model.name

    def reading(self, x: str) -> Reading:
        return Reading([1.0, float(x)])  # JSON's client would not send inf: the server makes it

    async def reading_async(self, x: str) -> Reading:
        return Reading([1.0, float(x)])

    def take_reading(self, r: Reading) -> str:
        CALLS.append("take_reading")
        return repr(r.value)


@implementation()
class ValuesComponentImpl(AbstractComponent, ValuesComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress(name, f"http://127.0.0.1:{port}") for name in CHANNELS]


@module(imports=[ServiceModule])
class ValuesModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry)


@pytest.fixture(scope="module")
def environment():
    environment = FastAPIServer.boot(ValuesModule, host="127.0.0.1", port=0)
    yield environment
    environment.destroy()


@pytest.fixture(scope="module")
def manager(environment) -> ServiceManager:
    return environment.get(ServiceManager)


@pytest.fixture(scope="module")
def port(environment) -> int:
    port = urlsplit(environment.get(FastAPIServer).url).port
    assert port
    return port


def values(manager: ServiceManager, channel: str) -> ValueService:
    return manager.get_service(ValueService, channel)


def post(port: int, body: bytes, content_type: str = "application/json", extra: str = "") -> tuple[int, bytes, bytes]:
    """One raw POST /invoke: (status, content type, body)."""
    with connect(port) as sock:
        sock.sendall(request("/invoke", body, content_type, extra=extra))
        status, headers, payload = Reader(sock).response()
    return int(status.split()[1]), headers[b"content-type"], payload


def envelope(content_type: bytes, payload: bytes) -> dict[str, Any]:
    if content_type == b"application/msgpack":
        return msgpack.unpackb(payload, raw=False)
    assert content_type == b"application/json"
    return orjson.loads(payload)


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def is_nested(value: Any, depth: int) -> bool:
    """``value == nested(depth)`` without recursing (Python's == recurses, and gives out before 1024 levels)."""
    for _ in range(depth - 1):
        if type(value) is not list or len(value) != 1:
            return False
        value = value[0]
    return value == []


# ---------------------------------------------------------------- big integers


@pytest.mark.parametrize("channel", EXACT_INTS)
def test_big_integers_travel_both_ways(manager, channel):
    proxy = values(manager, channel)
    for n in BIG:
        assert proxy.next(n) == n + 1
        assert proxy.echo(n) == n and type(proxy.echo(n)) is int  # Any: never a rounded float
        assert proxy.number(n) == n and type(proxy.number(n)) is int  # int | float: never a rounded float
    assert proxy.ints([1, 2**64, -(2**80)]) == [2, 2**65, -(2**81)]
    tree = {"a": [2**70, {"b": -(2**66)}], "small": 3, "f": 1.5}
    assert proxy.echo(tree) == tree
    assert proxy.huge() == 2**70


@pytest.mark.parametrize("channel", EXACT_INTS)
def test_big_integers_travel_async(manager, channel):
    proxy = values(manager, channel)

    async def main() -> tuple[int, Any]:
        return await proxy.next_async(2**64), await proxy.echo_async([2**70, -(2**70)])

    assert asyncio.run(main()) == (2**64 + 1, [2**70, -(2**70)])


def test_msgpack_carries_64_bit_integers_natively(manager):
    proxy = values(manager, "dispatch-msgpack")
    for n in (2**64 - 2, -(2**63)):
        assert proxy.next(n) == n + 1


def test_protobuf_carries_sint64_and_refuses_other_ints_by_name(manager):
    proxy = values(manager, "dispatch-protobuf")
    assert proxy.next(2**63 - 2) == 2**63 - 1
    assert proxy.next(-(2**63)) == -(2**63) + 1
    with pytest.raises(MarshalException, match=r"vals:values:next: parameter 'n': the integer 18446744073709551616 "
                                               r"is outside sint64 \(-2\*\*63 \.\. 2\*\*63-1\)"):
        proxy.next(2**64)
    with pytest.raises(MarshalException, match=r"parameter 'values'.*outside sint64"):
        proxy.ints([1, 2**63])
    # the server's own result beyond sint64: a 500 naming the method and the rule
    with pytest.raises(RemoteServiceException, match=r"vals:values:huge: result: the integer 1180591620717411303424 "
                                                     r"is outside sint64") as info:
        proxy.huge()
    assert info.value.remote_type == "MarshalException"
    # a value carried as msgpack inside the message (Any) carries any int
    assert proxy.echo({"n": 2**70}) == {"n": 2**70}


def test_a_raw_json_request_with_a_big_integer_is_read_exactly(port):
    for n in (2**64 + 1, 10**400):
        status, kind, payload = post(port, b'{"method":"vals:values:next","args":[%d]}' % n)
        assert (status, kind) == (200, b"application/json")
        assert payload == b'{"result":%d,"exception":null}' % (n + 1)
    status, _, payload = post(port, b'{"method":"vals:values:echo","args":[[18446744073709551617]]}')
    assert (status, payload) == (200, b'{"result":[18446744073709551617],"exception":null}')


def test_an_integer_longer_than_python_reads_is_a_400(port):
    CALLS.clear()
    status, kind, payload = post(port, b'{"method":"vals:values:next","args":[1%s]}' % (b"0" * 5000))
    assert status == 400
    assert envelope(kind, payload)["exception"]["type"] == "MalformedRequestException"
    assert CALLS == []


# ---------------------------------------------------------------- inf and nan


@pytest.mark.parametrize("channel", CARRY_NON_FINITE)
def test_msgpack_and_protobuf_carry_inf_and_nan(manager, channel):
    proxy = values(manager, channel)
    assert proxy.real(math.inf) == math.inf
    assert proxy.real(-math.inf) == -math.inf
    assert math.isnan(proxy.real(math.nan))
    assert math.isnan(proxy.nan())
    assert proxy.maybe_real(math.inf) == math.inf
    assert proxy.echo([1.5, math.inf]) == [1.5, math.inf]
    assert asyncio.run(proxy.nan_async()) == -math.inf


@pytest.mark.parametrize(
    ("call", "where"),
    [
        (lambda p: p.real(math.nan), "argument 'x': nan"),
        (lambda p: p.real(math.inf), "argument 'x': inf"),
        (lambda p: p.maybe_real(-math.inf), "argument 'x': -inf"),
        (lambda p: p.echo({"deep": [1.0, math.nan]}), "argument 'value'['deep'][1]: nan"),
        (lambda p: p.number(math.inf), "argument 'value': inf"),
    ],
)
def test_json_client_refuses_to_send_inf_and_nan_by_name(manager, call, where):
    CALLS.clear()
    with pytest.raises(MarshalException) as info:
        call(values(manager, "dispatch-json"))
    message = str(info.value)
    assert message.startswith("vals:values:")
    assert where in message and "JSON cannot carry" in message
    assert CALLS == []


def test_json_client_refuses_inf_async(manager):
    proxy = values(manager, "dispatch-json")
    with pytest.raises(MarshalException, match=r"argument 'value'\[0\]: inf, which JSON cannot carry"):
        asyncio.run(proxy.echo_async([math.inf]))


def test_json_server_refuses_to_send_inf_and_nan_with_a_500_naming_the_method(manager, port):
    status, kind, payload = post(port, b'{"method":"vals:values:nan","args":[]}')
    assert (status, kind) == (500, b"application/json")
    reply = envelope(kind, payload)
    assert reply["result"] is None
    assert reply["exception"]["type"] == "MarshalException"
    assert reply["exception"]["message"].startswith("vals:values:nan: result: cannot be written as JSON")
    assert "nan, which JSON cannot carry" in reply["exception"]["message"]
    proxy = values(manager, "dispatch-json")
    with pytest.raises(RemoteServiceException, match=r"vals:values:nan: result: .*nan, which JSON cannot carry") as info:
        proxy.nan()
    assert info.value.remote_type == "MarshalException"
    with pytest.raises(RemoteServiceException, match=r"vals:values:nan_async: result: .*-inf, which JSON cannot carry"):
        asyncio.run(proxy.nan_async())


def test_json_nan_and_infinity_from_other_peers_are_read(port):
    # Python's json module writes them by default; the server reads what it is sent, it only never writes them
    status, kind, payload = post(port, b'{"method":"vals:values:maybe_real","args":[NaN]}')
    assert status == 500 and "nan, which JSON cannot carry" in envelope(kind, payload)["exception"]["message"]
    status, kind, payload = post(port, b'{"method":"vals:values:real","args":[1e999]}')
    assert status == 500 and "inf, which JSON cannot carry" in envelope(kind, payload)["exception"]["message"]


# ---------------------------------------------------------------- lone surrogates


@pytest.mark.parametrize("channel", CHANNELS)
def test_no_client_sends_a_lone_surrogate(manager, channel):
    CALLS.clear()
    proxy = values(manager, channel)
    with pytest.raises(MarshalException, match=r"lone surrogate '\\ud800'.*not Unicode text") as info:
        proxy.text("a\ud800")
    assert "'s'" in str(info.value)
    with pytest.raises(MarshalException, match=r"lone surrogate"):
        proxy.echo({"k": ["ok", "\udfff"]})
    with pytest.raises(MarshalException, match=r"lone surrogate"):
        asyncio.run(proxy.echo_async("\ud800"))
    assert CALLS == []
    assert proxy.text("a pair is fine: \U0001f600") == "a pair is fine: \U0001f600"


@pytest.mark.parametrize("body", [
    b'{"method":"vals:values:text","args":["\\ud800"]}',
    b'{"method":"vals:values:text","args":["tail \\udc00"]}',
    b'{"method":"vals:values:echo","args":[{"\\ud800": 1}]}',
    b'{"method":"vals:values:text","args":["\xed\xa0\x80"]}',  # the surrogate as (invalid) UTF-8 bytes
])
def test_a_json_body_holding_a_lone_surrogate_is_a_400(port, body):
    CALLS.clear()
    status, kind, payload = post(port, body)
    assert (status, kind) == (400, b"application/json")
    reply = envelope(kind, payload)
    assert reply["exception"]["type"] == "MalformedRequestException"
    assert CALLS == []
    status, _, payload = post(port, b'{"method":"vals:values:text","args":["\\ud83d\\ude00"]}')
    assert status == 200 and orjson.loads(payload)["result"] == "\U0001f600"


def test_a_msgpack_body_holding_a_lone_surrogate_is_a_400(port):
    CALLS.clear()
    body = b"\x82\xa6method\xb0vals:values:text\xa4args\x91\xa3\xed\xa0\x80"
    status, kind, payload = post(port, body, "application/msgpack")
    assert (status, kind) == (400, b"application/msgpack")
    assert envelope(kind, payload)["exception"]["type"] == "MalformedRequestException"
    assert CALLS == []


@pytest.mark.parametrize("content_type", ["application/json", "application/msgpack"])
def test_a_result_holding_a_lone_surrogate_is_a_500_in_the_channels_envelope(port, content_type):
    body = (b'{"method":"vals:values:surrogate","args":[]}' if content_type == "application/json"
            else msgpack.packb({"method": "vals:values:surrogate", "args": []}))
    status, kind, payload = post(port, body, content_type)
    assert (status, kind) == (500, content_type.encode())
    reply = envelope(kind, payload)
    assert reply["exception"]["type"] == "MarshalException"
    assert reply["exception"]["message"].startswith("vals:values:surrogate: result: ")
    assert "lone surrogate '\\ud800'" in reply["exception"]["message"]


def test_a_protobuf_result_holding_a_lone_surrogate_is_a_500_in_protobuf(port, manager):
    status, kind, payload = post(port, b"", "application/x-protobuf", extra="x-rpc-method: vals:values:surrogate\r\n")
    assert (status, kind) == (500, b"application/x-protobuf")
    result, exception = codec_for("vals:values:surrogate", [], [], str).decode_response(payload)
    assert result is None and exception is not None
    assert exception["type"] == "MarshalException"
    assert exception["message"].startswith("vals:values:surrogate: result: ")
    assert "lone surrogate '\\ud800'" in exception["message"]


@pytest.mark.parametrize("channel", CHANNELS)
def test_clients_see_the_servers_refusal_to_send_a_surrogate(manager, channel):
    with pytest.raises(RemoteServiceException, match=r"vals:values:surrogate: result: .*lone surrogate") as info:
        values(manager, channel).surrogate()
    assert info.value.remote_type == "MarshalException"


@pytest.mark.parametrize("channel", CHANNELS)
def test_an_exception_message_holding_a_surrogate_arrives_escaped(manager, channel):
    with pytest.raises(RemoteServiceException) as info:
        values(manager, channel).raises_surrogate()
    assert info.value.remote_type == "ValueError"
    assert info.value.remote_message == "bad \\udc80 byte"


# ---------------------------------------------------------------- nesting


@pytest.mark.parametrize("channel", CHANNELS)
def test_values_nested_within_reason_travel(manager, channel):
    value = nested(200)
    assert values(manager, channel).echo(value) == value


def test_a_json_body_nested_deeper_than_the_limit_is_a_400(port):
    CALLS.clear()
    for depth in (MAX_DEPTH - 1, 1100, 100_000):  # the envelope and args count: MAX_DEPTH - 1 is one too many
        args = b"[" * depth + b"]" * depth
        status, kind, payload = post(port, b'{"method":"vals:values:echo","args":[%s]}' % args)
        assert (status, kind) == (400, b"application/json"), depth
        reply = envelope(kind, payload)
        assert reply["exception"]["type"] == "MalformedRequestException"
        assert f"nests deeper than {MAX_DEPTH}" in reply["exception"]["message"]
    # the same nesting with a number orjson refuses, so the stdlib reads the body
    args = b"[" * 1100 + b"NaN" + b"]" * 1100
    status, kind, payload = post(port, b'{"method":"vals:values:echo","args":[%s]}' % args)
    assert status == 400 and f"nests deeper than {MAX_DEPTH}" in envelope(kind, payload)["exception"]["message"]
    assert CALLS == []


def test_a_json_body_at_the_limit_is_read(port):
    depth = MAX_DEPTH - 2  # plus the envelope and args
    status, kind, payload = post(port, b'{"method":"vals:values:ints","args":[%s]}' % (b"[" * depth + b"]" * depth))
    # read, then refused as arguments that do not fit list[int]: the limit is the reader's, not a crash
    assert status == 422 and envelope(kind, payload)["exception"]["type"] == "InvalidArgumentsException"


def test_a_msgpack_body_nested_deeper_than_the_limit_is_a_400(port):
    CALLS.clear()
    head = b"\x82\xa6method\xb0vals:values:echo\xa4args\x91"
    status, kind, payload = post(port, head + b"\x91" * 1100 + b"\x90", "application/msgpack")
    assert (status, kind) == (400, b"application/msgpack")
    assert f"nests deeper than {MAX_DEPTH}" in envelope(kind, payload)["exception"]["message"]
    assert CALLS == []


@pytest.mark.parametrize("channel", ["dispatch-json", "dispatch-msgpack"])
def test_a_client_does_not_send_a_value_nested_beyond_the_limit(manager, channel):
    with pytest.raises(MarshalException, match=r"vals:values:echo: .*argument 'value'"):
        values(manager, channel).echo(nested(MAX_DEPTH + 10))


# the envelopes count: a request is {"method", "args": [value]}, so an argument nests at most MAX_DEPTH - 2
# levels; a reply is {"result": value}, so a result nests at most MAX_DEPTH - 1
ARG_DEPTH = MAX_DEPTH - 2
RESULT_DEPTH = MAX_DEPTH - 1


@pytest.mark.parametrize("channel", ["dispatch-json"])
def test_a_client_sends_arguments_as_deep_as_the_server_reads_and_no_deeper(manager, channel):
    # orjson writes 255 levels and the stdlib as deep as Python recurses: past both, up to the limit
    proxy = values(manager, channel)
    for depth in (300, ARG_DEPTH - 1, ARG_DEPTH):
        assert is_nested(proxy.echo(nested(depth)), depth)
        assert is_nested(asyncio.run(proxy.echo_async(nested(depth))), depth)
    with pytest.raises(MarshalException, match=rf"^vals:values:echo: cannot be written as JSON: argument 'value'\[0\].*: nests deeper than {MAX_DEPTH}"):
        proxy.echo(nested(ARG_DEPTH + 1))
    with pytest.raises(MarshalException, match=rf"^vals:values:echo_async: cannot be written as JSON: argument 'value'\[0\].*: nests deeper than {MAX_DEPTH}"):
        asyncio.run(proxy.echo_async(nested(ARG_DEPTH + 1)))


def test_a_raw_request_at_the_argument_limit_is_answered_in_full(port):
    # read at the limit, and the echo (one level less deep in the reply) written back: no 500
    for depth in (ARG_DEPTH - 1, ARG_DEPTH):
        args = b"[" * depth + b"]" * depth
        status, kind, payload = post(port, b'{"method":"vals:values:echo","args":[%s]}' % args)
        assert (status, kind) == (200, b"application/json"), depth
        reply = envelope(kind, payload)
        assert reply["exception"] is None and is_nested(reply["result"], depth)
    depth = ARG_DEPTH + 1
    status, kind, payload = post(port, b'{"method":"vals:values:echo","args":[%s]}' % (b"[" * depth + b"]" * depth))
    assert status == 400 and f"nests deeper than {MAX_DEPTH}" in envelope(kind, payload)["exception"]["message"]


@pytest.mark.parametrize("method", ["deep", "deep_async"])
def test_a_result_is_written_up_to_the_limit_and_a_deeper_one_is_a_500_naming_the_method(port, manager, method):
    for depth in (300, RESULT_DEPTH - 1, RESULT_DEPTH):
        status, kind, payload = post(port, b'{"method":"vals:values:%s","args":[%d]}' % (method.encode(), depth))
        assert (status, kind) == (200, b"application/json"), depth
        assert is_nested(envelope(kind, payload)["result"], depth)
        call = getattr(values(manager, "dispatch-json"), method)
        got = asyncio.run(call(depth)) if method.endswith("_async") else call(depth)
        assert is_nested(got, depth)
    status, kind, payload = post(port, b'{"method":"vals:values:%s","args":[%d]}' % (method.encode(), RESULT_DEPTH + 1))
    assert (status, kind) == (500, b"application/json")
    reply = envelope(kind, payload)
    assert reply["exception"]["type"] == "MarshalException"
    assert reply["exception"]["message"].startswith(f"vals:values:{method}: result: ")
    assert f"nests deeper than {MAX_DEPTH}" in reply["exception"]["message"]


@pytest.mark.parametrize("content_type", ["application/json", "application/msgpack"])
def test_a_recursive_result_too_deep_or_containing_itself_is_a_500_naming_the_method(port, content_type):
    # before the plans' recursion check, both made the compiled server die of a segfault
    def ask(method: str, args: list[Any]) -> tuple[int, bytes, dict[str, Any]]:
        call = {"method": f"vals:values:{method}", "args": args}
        body = orjson.dumps(call) if content_type == "application/json" else msgpack.packb(call)
        status, kind, payload = post(port, body, content_type)
        return status, kind, envelope(kind, payload)

    status, kind, reply = ask("chain", [50])
    assert (status, kind) == (200, content_type.encode()) and reply["result"]["value"] == 49
    for method, args, problem in [
        ("chain", [20000], "Chain: the value nests deeper than the plans recurse (20000 levels"),
        ("loop", [], "Chain.next.next: the value contains itself (it is the Chain at Chain)"),
        ("loop_async", [], "Chain.next.next: the value contains itself"),
    ]:
        status, kind, reply = ask(method, args)
        assert (status, kind) == (500, content_type.encode()), method
        assert reply["exception"]["type"] == "MarshalException"
        assert reply["exception"]["message"].startswith(f"vals:values:{method}: result: {problem}"), reply
    assert ask("next", [1])[2]["result"] == 2  # the server lives on


@pytest.mark.parametrize("channel", CHANNELS)
def test_clients_see_a_cyclic_or_too_deep_result_refused_by_name(manager, channel):
    # (protobuf's codec writes the message itself, and names no path)
    proxy = values(manager, channel)
    with pytest.raises(RemoteServiceException, match=r"vals:values:loop: result: .*contains itself"):
        proxy.loop()
    with pytest.raises(RemoteServiceException, match=r"vals:values:loop_async: result: .*contains itself"):
        asyncio.run(proxy.loop_async())
    with pytest.raises(RemoteServiceException, match=r"vals:values:chain: result: .*nests (deeper than the plans recurse|too deeply)"):
        proxy.chain(20000)


# ---------------------------------------------------------------- inf and nan without a declared float


@pytest.mark.parametrize("extra", ["inf", "nan", "deep"])
def test_json_server_refuses_inf_in_a_models_extra_fields_with_a_500_naming_the_method(manager, port, extra):
    proxy = values(manager, "dispatch-json")
    for call in (lambda: proxy.loose(extra), lambda: asyncio.run(proxy.loose_async(extra))):
        with pytest.raises(RemoteServiceException, match=r"vals:values:loose(_async)?: result: .*JSON cannot carry") as info:
            call()
        assert info.value.remote_type == "MarshalException"
    status, kind, payload = post(port, b'{"method":"vals:values:loose","args":["%s"]}' % extra.encode())
    assert (status, kind) == (500, b"application/json")
    message = envelope(kind, payload)["exception"]["message"]
    assert message.startswith("vals:values:loose: result: ") and "['result']['extra']" in message
    assert proxy.loose("fine").model_extra == {"extra": 1.5}
    # msgpack carries them
    got = values(manager, "dispatch-msgpack").loose("inf")
    assert got.name == "n" and got.model_extra == {"extra": math.inf}


@pytest.mark.parametrize("x", ["inf", "-inf", "nan"])
def test_json_server_refuses_inf_in_what_a_type_adapter_dumps(manager, x):
    # pydantic's adapter wrote inf and nan as None (null) without a word
    proxy = values(manager, "dispatch-json")
    with pytest.raises(RemoteServiceException, match=r"vals:values:reading: result: .*\['result'\]\['value'\]\[1\]: .*JSON cannot carry"):
        proxy.reading(x)
    with pytest.raises(RemoteServiceException, match=r"vals:values:reading_async: result: .*JSON cannot carry"):
        asyncio.run(proxy.reading_async(x))
    assert proxy.reading("2.5").value == [1.0, 2.5]
    got = values(manager, "dispatch-msgpack").reading(x).value[1]
    assert math.isnan(got) if x == "nan" else got == float(x)


def test_json_client_refuses_inf_in_extra_fields_and_adapter_output_by_argument(manager):
    CALLS.clear()
    proxy = values(manager, "dispatch-json")
    with pytest.raises(MarshalException, match=r"^vals:values:take_loose: cannot be written as JSON: argument 'model'\['ratio'\]: inf, which JSON cannot carry"):
        proxy.take_loose(Loose(name="a", ratio=math.inf))
    with pytest.raises(MarshalException, match=r"^vals:values:take_reading: cannot be written as JSON: argument 'r'\['value'\]: nan, which JSON cannot carry"):
        proxy.take_reading(Reading(math.nan))
    assert CALLS == []
    assert proxy.take_loose(Loose(name="a", ratio=1.5)) == "a"
    assert values(manager, "dispatch-msgpack").take_reading(Reading(math.inf)) == "inf"


def test_the_server_still_answers_after_all_of_it(manager):
    assert values(manager, "dispatch-json").next(1) == 2
