"""Rolling upgrades: a client and a server one interface version apart keep working (issue 15).

``upgrade_v1.py`` and ``upgrade_v2.py`` declare the same component, service, methods, dataclass, model
and enum names in two shapes: version 2 adds a parameter with a default (``greet``'s ``punctuation``),
removes a field from the middle of a dataclass and of a pydantic model and adds one with a default
(``Item.note`` -> ``Item.quantity``, ``Profile.nickname`` -> ``Profile.level``), and adds an enum value
(``Color.BLUE``). Each version is served by a real uvicorn in a child process on 127.0.0.1 and called
from the other version in this process, on every channel (dispatch-json, dispatch-msgpack,
dispatch-protobuf, rest), sync and async, both ways: old client -> new server, new client -> old server.

What is compatible and what is refused (the rules, as ``warpcall.wire.numbers`` and the README state them):

- a parameter added with a default: an old client's call takes the new server's default; a new client does
  not send a last argument left at its default, so an old server takes the call; a value other than the
  default reaches an old server only to be refused (422 ``InvalidArgumentsException``) on the dispatch
  channels; REST ignores a query parameter the old route does not declare, as FastAPI does;
- a field added with a default: the old side ignores it; the new side reads its default when the old side
  does not send it (on protobuf too: a scalar with a default is written even when zero, so absent means
  "not in the writer's version");
- a field removed: the new side ignores it; the old side reads its own default (so a field is removed only
  once it has one); on protobuf the fields after it keep their numbers with ``FieldNumber``;
- an enum value added: an old server refuses it as an argument (422 ``InvalidArgumentsException`` naming the
  parameter and the value), an old client refuses it in a result (``MarshalException`` naming the type and
  the value); values both versions have travel as before.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
import upgrade_v1 as v1
import upgrade_v2 as v2

from warpcall import (
    ChannelAddress,
    ComponentRegistry,
    InvalidArgumentsException,
    MarshalException,
    ServiceManager,
)
from warpcall.di import Environment
from warpcall.service import component_descriptor, service_descriptor
from warpcall.wire import PROTOBUF, FieldNumber, codec_of
from warpcall.wire.protobuf_codec import ProtobufMethodCodec

HERE = Path(__file__).parent
CHANNELS = v1.CHANNELS
DISPATCH = ["dispatch-json", "dispatch-msgpack", "dispatch-protobuf"]


def _process_support() -> Any:
    """tests/registry/process_support.py (child processes, always stopped), loaded by path: it is no package."""
    spec = importlib.util.spec_from_file_location("upgrade_process_support", HERE.parent / "registry" / "process_support.py")
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, str]]:
    """The URL of a server of each version, each a child process serving every channel on 127.0.0.1."""
    children = _process_support().Children(tmp_path_factory.mktemp("upgrade-servers"))
    try:
        yield {
            1: children.start(HERE / "upgrade_server.py", "v1", {}),
            2: children.start(HERE / "upgrade_server.py", "v2", {}),
        }
    finally:
        children.stop()


@pytest.fixture(scope="module")
def managers(servers: dict[int, str]) -> Iterator[dict[int, ServiceManager]]:
    """A client environment of each version, its registry pointing the component at the OTHER version's server."""
    environments: list[Environment] = []
    found: dict[int, ServiceManager] = {}
    try:
        for version, target in ((v1, 2), (v2, 1)):
            environment = Environment(version.ClientModule)
            environments.append(environment)
            environment.get(ComponentRegistry).register(
                component_descriptor(version.ShopComponent),
                [ChannelAddress(channel, servers[target]) for channel in CHANNELS],
            )
            found[version.VERSION] = environment.get(ServiceManager)
        yield found
    finally:
        for environment in environments:
            environment.destroy()


def old_client(managers: dict[int, ServiceManager], channel: str) -> Any:
    """A version-1 proxy calling the version-2 server."""
    return managers[1].get_service(v1.Shop, channel)


def new_client(managers: dict[int, ServiceManager], channel: str) -> Any:
    """A version-2 proxy calling the version-1 server."""
    return managers[2].get_service(v2.Shop, channel)


def both(shop: Any, method: str, *args: Any) -> list[Any]:
    """The results of ``method`` and of ``method_async`` with the same arguments."""
    sync = getattr(shop, method)(*args)
    awaited = asyncio.run(getattr(shop, method + "_async")(*args))
    return [sync, awaited]


def both_raise(shop: Any, method: str, *args: Any) -> list[BaseException]:
    """What ``method`` and ``method_async`` raise with the same arguments (each must raise)."""
    raised: list[BaseException] = []
    calls: list[Callable[[], Any]] = [
        lambda: getattr(shop, method)(*args),
        lambda: asyncio.run(getattr(shop, method + "_async")(*args)),
    ]
    for call in calls:
        try:
            outcome = call()
        except Exception as exc:  # noqa: BLE001 - the caller asserts the type
            raised.append(exc)
        else:
            pytest.fail(f"{method}{args} returned {outcome!r} instead of raising")
    return raised


# ---------------------------------------------------------------- a parameter added with a default


@pytest.mark.parametrize("channel", CHANNELS)
def test_old_client_calls_a_method_that_gained_a_parameter(managers: dict[int, ServiceManager], channel: str) -> None:
    # the v1 client sends one argument; the v2 server applies its default to the other
    assert both(old_client(managers, channel), "greet", "ann") == ["hello ann from v2!"] * 2


@pytest.mark.parametrize("channel", CHANNELS)
def test_new_client_calls_an_old_server_leaving_the_new_parameter_alone(
    managers: dict[int, ServiceManager], channel: str
) -> None:
    shop = new_client(managers, channel)
    assert both(shop, "greet", "ann") == ["hello ann from v1"] * 2
    assert both(shop, "greet", "ann", "!") == ["hello ann from v1"] * 2  # the default itself, passed: not sent


@pytest.mark.parametrize("channel", DISPATCH)
def test_new_parameter_with_another_value_is_refused_by_an_old_server(
    managers: dict[int, ServiceManager], channel: str
) -> None:
    # the old server cannot honour it: refused with 422, never dropped silently
    for error in both_raise(new_client(managers, channel), "greet", "ann", "?"):
        assert type(error) is InvalidArgumentsException, error
        assert "HTTP 422" in str(error) and "shop:shop:greet" in str(error)


def test_rest_ignores_a_query_parameter_the_old_route_does_not_declare(managers: dict[int, ServiceManager]) -> None:
    # REST is FastAPI's: an undeclared query parameter is ignored there (documented; use a dispatch channel or
    # leave a new parameter at its default while old servers run)
    assert both(new_client(managers, "rest"), "greet", "ann", "?") == ["hello ann from v1"] * 2


# ---------------------------------------------------------------- fields added with a default, fields removed


@pytest.mark.parametrize("channel", CHANNELS)
def test_dataclass_fields_old_client_new_server(managers: dict[int, ServiceManager], channel: str) -> None:
    # v2 ignores the removed note, reads its new quantity's default (1, not protobuf's zero); v1 reads its
    # note's default from a v2 reply, which has none
    sent = v1.Item(name="tea", note="hot", price=1.5)
    assert both(old_client(managers, channel), "item", sent) == [v1.Item(name="TEA quantity=1", note="", price=3.0)] * 2


@pytest.mark.parametrize("channel", CHANNELS)
def test_dataclass_fields_new_client_old_server(managers: dict[int, ServiceManager], channel: str) -> None:
    # v1 ignores quantity and reads its note's default; v2 reads quantity's default from the v1 reply
    sent = v2.Item(name="tea", price=1.5, quantity=5)
    assert both(new_client(managers, channel), "item", sent) == [v2.Item(name="TEA note=''", price=3.0, quantity=1)] * 2


@pytest.mark.parametrize("channel", CHANNELS)
def test_pydantic_fields_old_client_new_server(managers: dict[int, ServiceManager], channel: str) -> None:
    sent = v1.Profile(name="ann", nickname="a", age=30)
    assert both(old_client(managers, channel), "profile", sent) == [v1.Profile(name="ANN level=1", nickname="", age=31)] * 2


@pytest.mark.parametrize("channel", CHANNELS)
def test_pydantic_fields_new_client_old_server(managers: dict[int, ServiceManager], channel: str) -> None:
    sent = v2.Profile(name="ann", age=30, level=7)
    assert both(new_client(managers, channel), "profile", sent) == [v2.Profile(name="ANN nickname=''", age=31, level=1)] * 2


# ---------------------------------------------------------------- an enum value added


@pytest.mark.parametrize("channel", CHANNELS)
def test_enum_values_both_versions_have_travel(managers: dict[int, ServiceManager], channel: str) -> None:
    assert both(old_client(managers, channel), "paint", v1.Color.GREEN) == ["painted green by v2"] * 2
    assert both(old_client(managers, channel), "favourite", "old") == [v1.Color.GREEN] * 2
    assert both(new_client(managers, channel), "paint", v2.Color.RED) == ["painted red by v1"] * 2
    assert both(new_client(managers, channel), "favourite", "new") == [v2.Color.GREEN] * 2


@pytest.mark.parametrize("channel", CHANNELS)
def test_old_server_refuses_a_new_enum_value_naming_the_parameter(
    managers: dict[int, ServiceManager], channel: str
) -> None:
    for error in both_raise(new_client(managers, channel), "paint", v2.Color.BLUE):
        assert type(error) is InvalidArgumentsException, error
        assert "HTTP 422" in str(error) and "color" in str(error) and "blue" in str(error), error
        if channel != "rest":  # FastAPI words its own 422 (it names the query parameter and the input)
            assert "parameter 'color'" in str(error) and "Color" in str(error), error


@pytest.mark.parametrize("channel", CHANNELS)
def test_old_client_refuses_a_new_enum_value_in_a_result(managers: dict[int, ServiceManager], channel: str) -> None:
    for error in both_raise(old_client(managers, channel), "favourite", "new"):
        assert type(error) is MarshalException, error
        assert "Color" in str(error) and "'blue'" in str(error), error
    # a refused result leaves the channel working
    assert both(old_client(managers, channel), "favourite", "old") == [v1.Color.GREEN] * 2


# ---------------------------------------------------------------- the old server's replies, on the wire


def _post(url: str, content_type: str, body: bytes, method: str = "") -> httpx.Response:
    headers = {"content-type": content_type}
    if method:
        headers["x-rpc-method"] = method
    with httpx.Client(timeout=10) as client:
        return client.post(url + "/invoke", content=body, headers=headers)


def test_old_server_answers_an_unknown_enum_value_with_422_on_json(servers: dict[int, str]) -> None:
    reply = _post(servers[1], "application/json", b'{"method": "shop:shop:paint", "args": ["blue"]}')
    assert reply.status_code == 422
    exception = reply.json()["exception"]
    assert exception["type"] == "InvalidArgumentsException"
    assert exception["message"].startswith("shop:shop:paint: parameter 'color': ")
    assert "'blue'" in exception["message"] and "'red', 'green'" in exception["message"]


def test_old_server_answers_an_unknown_enum_value_or_parameter_with_422_on_protobuf(servers: dict[int, str]) -> None:
    paint = codec_of(service_descriptor(v2.Shop).methods["paint"])
    reply = _post(servers[1], PROTOBUF, paint.encode_request([v2.Color.BLUE]), "shop:shop:paint")
    assert reply.status_code == 422
    exception = reply.json()["exception"]  # protobuf has no error message: the refusal comes as JSON
    assert exception["type"] == "InvalidArgumentsException"
    assert "parameter 'color'" in exception["message"] and "'blue'" in exception["message"]

    greet = codec_of(service_descriptor(v2.Shop).methods["greet"])
    reply = _post(servers[1], PROTOBUF, greet.encode_request(["ann", "?"]), "shop:shop:greet")
    assert reply.status_code == 422
    assert reply.json()["exception"]["type"] == "InvalidArgumentsException"
    assert "field number 2," in reply.json()["exception"]["message"]


# ---------------------------------------------------------------- protobuf field numbers


def _numbers(version: Any, method: str, parameter: str) -> dict[str, int]:
    codec = codec_of(service_descriptor(version.Shop).methods[method])
    message = codec.request_type.DESCRIPTOR.fields_by_name[parameter].message_type
    return {field.name: field.number for field in message.fields}


def test_protobuf_field_numbers_survive_a_removed_field() -> None:
    # declaration order, as aspyx-service numbers them; FieldNumber keeps the number of the field after a gap
    assert _numbers(v1, "item", "item") == {"name": 1, "note": 2, "price": 3}
    assert _numbers(v2, "item", "item") == {"name": 1, "price": 3, "quantity": 4}
    assert _numbers(v1, "profile", "profile") == {"name": 1, "nickname": 2, "age": 3}
    assert _numbers(v2, "profile", "profile") == {"name": 1, "age": 3, "level": 4}


def test_field_numbers_are_checked() -> None:
    for bad in (0, -1, 19000, 19999, 2**29, True, 1.0):
        with pytest.raises(ValueError, match="protobuf field number"):
            FieldNumber(bad)  # type: ignore[arg-type]
    assert FieldNumber(19001 - 2) == FieldNumber(18999)
    assert repr(FieldNumber(7)) == "FieldNumber(7)"


@dataclass
class _Old:
    name: str


@dataclass
class _New:
    name: str
    count: int = 5  # a default other than protobuf's zero
    ratio: float = 0.0  # a default equal to it


@dataclass
class _Clash:
    a: int
    b: Annotated[int, FieldNumber(1)] = 0


def test_protobuf_tells_a_zero_from_a_field_the_writer_lacks() -> None:
    old = ProtobufMethodCodec("t:t:f", ["x"], [_Old], None)
    new = ProtobufMethodCodec("t:t:f", ["x"], [_New], None)
    # absent (the older writer has no such field): the reader's default
    assert new.decode_request(old.encode_request([_Old("a")])) == [_New("a", 5, 0.0)]
    # a zero the newer writer sends is a zero, not the default: the field is written even when zero
    assert new.decode_request(new.encode_request([_New("a", 0, 0.0)])) == [_New("a", 0, 0.0)]
    assert old.decode_request(new.encode_request([_New("a", 0, 1.5)])) == [_Old("a")]


def test_duplicate_field_numbers_are_refused_by_name() -> None:
    with pytest.raises(MarshalException, match=r"fields 'a' and 'b' both have the protobuf field number 1"):
        ProtobufMethodCodec("t:t:clash", ["x"], [_Clash], None)
