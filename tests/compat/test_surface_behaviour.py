"""What the names added for aspyx-service's surface do (``test_surface.py`` checks that they exist).

The generators are checked against a real ``FastAPIServer`` on 127.0.0.1 (its served
``/openapi.json``), the protobuf messages against the codec the dispatch-protobuf channel
uses, the envelope models against the bytes warpcall's dispatch-json channel sends.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Optional

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from warpcall import (
    AbstractComponent,
    Body,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    LocalComponentRegistry,
    QueryParam,
    Service,
    ServiceManager,
    ServiceModule,
    component,
    get,
    implementation,
    post,
    rest,
    service,
)
from warpcall.channels import DispatchMsgpackChannel, DispatchMSPackChannel, Request, Response
from warpcall.core.envelope import encode_request_json, encode_response_json
from warpcall.di import (
    AbstractCallableProcessor,
    DIRuntimeException,
    Environment,
    Lifecycle,
    LifecycleCallable,
    create,
    injectable,
    module,
)
from warpcall.di.aop import Invocation, advice, around
from warpcall.generator import JSONSchemaGenerator, OpenAPIGenerator
from warpcall.protobuf import ProtobufDumper, ProtobufManager, defaults_dict, get_inner_type
from warpcall.server import join_paths, parse_google_docstring
from warpcall.service import BaseDescriptor, component_descriptor, component_services, to_snake_case


@dataclass
class Part:
    name: str
    sizes: list[int] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    note: Optional[str] = None


class Stock(BaseModel):
    count: int
    where: str = "shelf"


@rest("/shop")
@service(name="parts", description="the parts")
class PartService(Service):
    """Parts of the shop."""

    @get("/parts/{name}")
    @abstractmethod
    def find(self, name: str, limit: int = 3) -> list[Part]:
        """Find parts.

        Args:
            name: what to look for
            limit: how many at most
        """

    @post("/parts")
    @abstractmethod
    def add(self, part: Body(Part), dry: QueryParam(bool, default=False)) -> Optional[Stock]: ...


@service(name="audit")
class AuditService(Service):
    @abstractmethod
    def record(self, text: str) -> str: ...


@component(name="shop", services=[PartService])
class ShopComponent(Component):
    pass


@component(name="audit-log", services=[AuditService])
class AuditComponent(Component):
    pass


@implementation()
class PartServiceImpl(PartService):
    def find(self, name: str, limit: int = 3) -> list[Part]:
        return [Part(name)][:limit]

    def add(self, part: Body(Part), dry: QueryParam(bool, default=False)) -> Optional[Stock]:
        return None if dry else Stock(count=1)


@implementation()
class AuditServiceImpl(AuditService):
    def record(self, text: str) -> str:
        return text


@implementation()
class ShopComponentImpl(AbstractComponent, ShopComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("rest", f"http://127.0.0.1:{port}")]


@implementation()
class AuditComponentImpl(AbstractComponent, AuditComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://127.0.0.1:{port}")]


#: calls seen by the advice on the audit component's services
ADVISED: list[str] = []


@advice
class AuditAdvice:
    @around(component_services(AuditComponent))
    def around_audit(self, invocation: Invocation) -> Any:
        ADVISED.append(invocation.func.__name__)
        return invocation.proceed()


# a decorator of our own, run by a processor of our own (AbstractCallableProcessor)

def tagged(tag: str) -> Any:
    def decorate(func: Any) -> Any:
        from warpcall.di import Decorators

        Decorators.add(func, tagged, tag)
        return func

    return decorate


class TaggedCallable(LifecycleCallable):
    """Calls @tagged methods with their tag."""

    def __init__(self) -> None:
        super().__init__(tagged, Lifecycle.ON_INIT)

    def args(self, decorator: Any, method: Any, environment: Environment) -> list[Any]:
        return [decorator.args[0]]


@injectable()
class TaggedProcessor(AbstractCallableProcessor):
    def __init__(self) -> None:
        super().__init__(Lifecycle.ON_INIT)
        self.register(TaggedCallable())


@injectable()
class Tagged:
    def __init__(self) -> None:
        self.tags: list[str] = []

    @tagged("blue")
    def receive(self, tag: str) -> None:
        self.tags.append(tag)


@module(imports=[ServiceModule])
class ShopModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry)


@pytest.fixture(scope="module")
def environment() -> Iterator[Environment]:
    environment = FastAPIServer.boot(ShopModule, host="127.0.0.1", port=0)
    yield environment
    environment.destroy()


@pytest.fixture(scope="module")
def manager(environment: Environment) -> ServiceManager:
    return environment.get(ServiceManager)


@pytest.fixture(scope="module")
def served_openapi(environment: Environment) -> dict[str, Any]:
    response = httpx.get(f"{environment.get(FastAPIServer).url}/openapi.json", timeout=5)
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


# ---------------------------------------------------------------- warpcall.service


def test_to_snake_case_is_aspyx_services():
    assert to_snake_case("OrderService") == "order-service"
    assert to_snake_case("orderService") == "order-service"
    assert to_snake_case("ABC") == "a-b-c"
    assert to_snake_case("plain") == "plain"


def test_get_descriptor_returns_the_declarations(manager: ServiceManager):
    part = ServiceManager.get_descriptor(PartService)
    shop = manager.get_descriptor(ShopComponent)
    assert isinstance(part, BaseDescriptor) and isinstance(shop, BaseDescriptor)
    assert (part.name, part.description, part.is_component()) == ("parts", "the parts", False)
    assert part.get_component_descriptor() is shop is component_descriptor(ShopComponent)
    assert shop.is_component() and shop.get_component_descriptor() is shop
    assert ServiceManager.get_descriptor(PartServiceImpl) is None  # an implementation declares nothing
    assert ServiceManager.get_descriptor(int) is None


def test_component_services_advises_exactly_the_components_services(manager: ServiceManager):
    ADVISED.clear()
    parts = manager.get_service(PartService, "local")
    audit = manager.get_service(AuditService, "local")
    assert parts.find("bolt") == [Part("bolt")]
    assert audit.record("x") == "x"
    assert ADVISED == ["record"]


# ---------------------------------------------------------------- warpcall.di


def test_abstract_callable_processor_runs_its_callables(environment: Environment):
    assert environment.get(Tagged).tags == ["blue"]  # once: the environment itself does not know @tagged


def test_abstract_callable_processor_refuses_async_methods():
    class Async:
        @tagged("red")
        async def receive(self, tag: str) -> None: ...

    processor = TaggedProcessor()
    with pytest.raises(DIRuntimeException, match="receive is async"):
        processor.process_lifecycle(Lifecycle.ON_INIT, Async(), None)  # type: ignore[arg-type]
    # other phases leave the instance alone
    assert processor.process_lifecycle(Lifecycle.ON_RUNNING, Async(), None) is not None  # type: ignore[arg-type]


# ---------------------------------------------------------------- warpcall.channels


def test_dispatch_mspack_channel_is_the_msgpack_channel():
    assert DispatchMSPackChannel is DispatchMsgpackChannel


def test_envelope_models_read_warpcall_dispatch_bodies():
    request = Request.model_validate_json(encode_request_json("shop:parts:find", ["bolt", 2]))
    assert (request.method, request.args) == ("shop:parts:find", ("bolt", 2))
    failed = Response.model_validate_json(encode_response_json(None, {"type": "KeyError", "message": "x"}))
    assert failed.result is None and failed.exception == {"type": "KeyError", "message": "x"}
    assert Response.model_validate_json(encode_response_json([1, 2])).result == [1, 2]


# ---------------------------------------------------------------- warpcall.server helpers


def test_join_paths_joins_as_the_routes_do(served_openapi: dict[str, Any]):
    assert join_paths("/shop", "parts/{name}") == "/shop/parts/{name}"
    assert join_paths("/shop/", "/parts") == "/shop/parts"
    assert join_paths("", "parts") == "/parts"
    assert join_paths("/shop", "/parts/{name}") in served_openapi["paths"]


def test_parse_google_docstring():
    parsed = parse_google_docstring(
        """Find parts.

        Longer text.

        Args:
            name (str): what to look for,
                over two lines
            limit: how many

        Returns:
            list[Part]: the parts found
        """
    )
    assert parsed["summary"] == "Find parts."
    assert parsed["args"] == {"name": "what to look for, over two lines", "limit": "how many"}
    assert parsed["returns"] == "the parts found"
    assert isinstance(parsed["description"], str) and parsed["description"].startswith("Find parts.\n\nLonger text.")
    assert parse_google_docstring(None) == {"summary": None, "description": None, "args": {}, "returns": None}


# ---------------------------------------------------------------- warpcall.generator


def test_openapi_generator_writes_what_the_server_serves(manager: ServiceManager, served_openapi: dict[str, Any]):
    generated = OpenAPIGenerator(manager).generate().model_dump(mode="json", by_alias=True, exclude_none=True)
    assert set(generated["paths"]) == {"/shop/parts/{name}", "/shop/parts"}
    for path, operations in generated["paths"].items():
        assert operations == served_openapi["paths"][path]
    for name in ("Part", "Stock"):
        assert generated["components"]["schemas"][name] == served_openapi["components"]["schemas"][name]


def test_openapi_generator_for_components_not_hosted_here():
    generated = OpenAPIGenerator(None, components=[AuditComponent, ShopComponent]).generate()
    assert generated.paths is not None and set(generated.paths) == {"/shop/parts/{name}", "/shop/parts"}
    assert '"/shop/parts/{name}"' in OpenAPIGenerator(None, components=[ShopComponent]).to_json()


def test_json_schema_generator_describes_the_hosted_services(manager: ServiceManager):
    document = JSONSchemaGenerator(manager).generate()
    assert set(document["services"]) == {"parts", "audit"}
    parts = document["services"]["parts"]
    assert (parts["name"], parts["type"], parts["description"]) == ("parts", "PartService", "Parts of the shop.")
    find = parts["methods"]["find"]
    assert find["description"].startswith("Find parts.")
    assert find["parameters"] == {
        "type": "object",
        "properties": {"name": {"type": "string"}, "limit": {"type": "integer"}},
        "required": ["name"],
    }
    assert find["returns"] == {"type": "array", "items": {"$ref": "#/$defs/Part"}}
    add = parts["methods"]["add"]
    assert add["parameters"]["required"] == ["part"]  # dry has its default in the QueryParam marker
    assert add["parameters"]["properties"]["part"] == {"$ref": "#/$defs/Part"}
    assert add["returns"] == {"anyOf": [{"$ref": "#/$defs/Stock"}, {"type": "null"}]}
    assert document["services"]["audit"]["methods"]["record"]["returns"] == {"type": "string"}
    assert set(document["$defs"]) == {"Part", "Stock"}
    assert document["$defs"]["Stock"]["required"] == ["count"]


# ---------------------------------------------------------------- warpcall.protobuf


def test_protobuf_manager_is_provided_and_builds_the_channels_messages(environment: Environment):
    manager = environment.get(ProtobufManager)
    manager.prepare(ShopComponent)
    codec = manager.codec(PartService, PartService.find)
    request = manager.get_request_message(PartService, PartService.find)(name="bolt", limit=2)
    assert codec.decode_request(request.SerializeToString()) == ["bolt", 2]
    response = manager.get_response_message(PartService, "find")()
    response.ParseFromString(codec.encode_response([Part("nut", [1, 2], {"a": 1})]))
    assert response.HasField("result")
    with pytest.raises(Exception, match="no service method 'missing'"):
        manager.codec(PartService, "missing")


def test_protobuf_report_is_proto_source_of_the_messages(environment: Environment):
    manager = environment.get(ProtobufManager)
    manager.prepare_component(component_descriptor(ShopComponent))
    report = manager.report()
    assert report.count('syntax = "proto3";') == 2  # one file per method
    assert "package warpcall.m.shop.parts.find;" in report
    lines = [line.strip() for line in report.splitlines()]
    assert "message Part {" in lines
    assert "string name = 1;" in lines
    assert "repeated sint64 sizes = 2;" in lines
    assert "map<string, sint64> labels = 3;" in lines
    assert "optional string note = 4;" in lines
    assert "optional sint64 limit = 2;" in lines or "sint64 limit = 2;" in lines


def test_protobuf_dumper_writes_services_and_enums():
    from google.protobuf import descriptor_pb2

    fd = descriptor_pb2.FileDescriptorProto(name="x.proto", package="x", syntax="proto3")
    color = fd.enum_type.add(name="Color")
    color.value.add(name="RED", number=0)
    message = fd.message_type.add(name="Ping")
    message.field.add(name="color", number=1, type=14, type_name=".x.Color", label=1)
    rpc = fd.service.add(name="Pinger").method.add(name="Ping", input_type=".x.Ping", output_type=".x.Ping")
    rpc.server_streaming = True
    text = ProtobufDumper.dump_proto(fd)
    assert text.splitlines() == [
        'syntax = "proto3";', "", "package x;", "",
        "enum Color {", "  RED = 0;", "}", "",
        "message Ping {", "  .x.Color color = 1;", "}", "",
        "service Pinger {", "  rpc Ping (.x.Ping) returns (stream .x.Ping);", "}",
    ]


def test_get_inner_type_and_defaults_dict():
    assert get_inner_type(list[Part]) is Part
    assert get_inner_type(Optional[Part]) is Part
    assert get_inner_type(Part) is Part
    assert get_inner_type(Optional[int | str]) == Optional[int | str]  # not a plain Optional[X]

    class Model(BaseModel):
        required: int
        plain: str = "x"
        made: list[int] = field(default_factory=list)  # type: ignore[assignment]
        nothing: Optional[int] = None

    assert defaults_dict(Stock) == {"where": "shelf"}
    assert defaults_dict(Model)["plain"] == "x" and defaults_dict(Model)["nothing"] is None
    assert "required" not in defaults_dict(Model)


def test_async_get_health_of_abstract_component_still_works(manager: ServiceManager):
    """AbstractComponent kept aspyx's async get_health while the surface grew (a subclass may await it)."""
    hosted = {h.name: h.instance for h in manager.hosted_components()}
    assert asyncio.run(hosted["shop"].get_health()).status.name == "OK"
