"""The rest channel against a real uvicorn server on 127.0.0.1: calls, errors, OpenAPI, interop with plain HTTP."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from abc import abstractmethod
from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from warpcall import (
    AbstractComponent,
    AuthorizationException,
    Body,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    InvalidArgumentsException,
    LocalComponentRegistry,
    MarshalException,
    PathParam,
    QueryParam,
    RemoteServiceException,
    RestChannel,
    Service,
    ServiceCommunicationException,
    ServiceException,
    ServiceManager,
    ServiceModule,
    UnknownMethodException,
    component,
    delete,
    get,
    implementation,
    patch,
    post,
    put,
    rest,
    service,
)
from warpcall.di import create, module
from warpcall.service import component_descriptor


class Color(Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Item:
    name: str
    price: float
    tags: list[str] = field(default_factory=list)
    color: Color = Color.RED


class Owner(BaseModel):
    name: str
    vip: bool = False


class OutOfStock(RuntimeError):
    pass


ITEM_EXAMPLE = {"name": "lamp", "price": 12.5, "tags": ["home"], "color": "blue"}


@service(name="catalog")
@rest("/api/catalog")
class CatalogService(Service):
    @get("/items/{item_id}", summary="Read an item", tags=["items"], response_description="The item")
    @abstractmethod
    def read(self, item_id: int, verbose: bool = False) -> Item:
        """Read one item.

        Returns the item with its tags.
        """

    @get("/search")
    @abstractmethod
    def search(
        self,
        q: str,
        tags: list[str],
        limit: QueryParam(int, description="max results", example=5, default=10),
    ) -> list[Item]: ...

    @post("/items", status_code=201, tags=["items"])
    @abstractmethod
    def create(self, item: Item, owner: str) -> Item: ...

    @put("/items/{item_id}")
    @abstractmethod
    def replace(
        self, item_id: int, item: Body(Item, description="the new item", example=ITEM_EXAMPLE)
    ) -> Item: ...

    @patch("/items/{item_id}/owner")
    @abstractmethod
    def set_owner(
        self, item_id: PathParam(int, description="the item's id", example=7), owner: Owner
    ) -> Owner: ...

    @delete("/items/{item_id}", deprecated=True, description="Remove an item for good")
    @abstractmethod
    def remove(self, item_id: int) -> bool: ...

    @delete("/items", status_code=204)
    @abstractmethod
    def clear(self) -> None: ...

    @get("/names/{name}")
    @abstractmethod
    def echo_name(self, name: str, color: Color, day: date | None = None) -> str: ...

    @get("/files/{path:path}")
    @abstractmethod
    def file(self, path: str) -> str: ...

    @post("/notes")
    @abstractmethod
    def note(self, text: Body(str), times: int = 1) -> str: ...

    @get("/maybe")
    @abstractmethod
    def maybe(self, value: int | None = None) -> int | None: ...

    @post("/fail")
    @abstractmethod
    def fail(self, kind: str) -> str: ...

    @get("/broken")
    @abstractmethod
    def broken(self) -> int: ...

    @get("/slow")
    @abstractmethod
    def slow(self, seconds: float) -> float: ...

    @get("/where")
    @abstractmethod
    def where(self, seconds: float) -> str: ...

    @get("/async/items/{item_id}")
    @abstractmethod
    async def read_async(self, item_id: int, verbose: bool = False) -> Item: ...

    @post("/async/items")
    @abstractmethod
    async def create_async(self, item: Item, owner: str) -> Item: ...

    @post("/async/fail")
    @abstractmethod
    async def fail_async(self, kind: str) -> str: ...

    @abstractmethod
    def undeclared(self) -> str: ...


@component(name="store", services=[CatalogService])
class StoreComponent(Component):
    pass


THREADS: list[str] = []


@implementation()
class CatalogServiceImpl(CatalogService):
    def read(self, item_id: int, verbose: bool = False) -> Item:
        return Item(f"item-{item_id}", 1.5 * item_id, ["verbose"] if verbose else [])

    def search(self, q: str, tags: list[str], limit: int = 10) -> list[Item]:
        return [Item(f"{q}-{n}", float(n), list(tags)) for n in range(limit)]

    def create(self, item: Item, owner: str) -> Item:
        assert isinstance(item, Item) and isinstance(item.color, Color)
        return Item(item.name, item.price, [*item.tags, f"owner:{owner}"], item.color)

    def replace(self, item_id: int, item: Item) -> Item:
        return Item(f"{item.name}#{item_id}", item.price, item.tags, item.color)

    def set_owner(self, item_id: int, owner: Owner) -> Owner:
        assert isinstance(owner, Owner)
        return Owner(name=f"{owner.name}@{item_id}", vip=not owner.vip)

    def remove(self, item_id: int) -> bool:
        return item_id > 0

    def clear(self) -> None:
        return None

    def echo_name(self, name: str, color: Color, day: date | None = None) -> str:
        assert isinstance(color, Color)
        return f"{name}|{color.value}|{day.isoformat() if day else '-'}"

    def file(self, path: str) -> str:
        return f"<{path}>"

    def note(self, text: str, times: int = 1) -> str:
        return text * times

    def maybe(self, value: int | None = None) -> int | None:
        return None if value is None else value * 2

    def fail(self, kind: str) -> str:
        if kind == "http":
            raise HTTPException(status_code=418, detail="short and stout")
        if kind == "denied":
            raise AuthorizationException("members only")
        if kind == "invalid":
            raise InvalidArgumentsException("kind must be known")
        raise OutOfStock(f"no {kind} left")

    def broken(self) -> int:
        return "not an int"  # type: ignore[return-value]

    def slow(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    def where(self, seconds: float) -> str:
        time.sleep(seconds)
        return threading.current_thread().name

    async def read_async(self, item_id: int, verbose: bool = False) -> Item:
        THREADS.append(threading.current_thread().name)
        await asyncio.sleep(0)
        return self.read(item_id, verbose)

    async def create_async(self, item: Item, owner: str) -> Item:
        return self.create(item, owner)

    async def fail_async(self, kind: str) -> str:
        return self.fail(kind)

    def undeclared(self) -> str:
        return "only over dispatch"


@implementation()
class StoreComponentImpl(AbstractComponent, StoreComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress(name, f"http://127.0.0.1:{port}") for name in ("rest", "dispatch-json")]


# an existing FastAPI route, written without warpcall, and a @rest service of the same shape that calls it


class Profile(BaseModel):
    id: int
    name: str
    greeting: str


class NewProfile(BaseModel):
    name: str


def make_app() -> FastAPI:
    app = FastAPI(title="store")

    @app.get("/legacy/profiles/{profile_id}")
    def legacy_read(profile_id: int, greeting: str = "hi") -> Profile:
        if profile_id == 0:
            raise HTTPException(status_code=404, detail="no profile 0")
        return Profile(id=profile_id, name=f"user{profile_id}", greeting=greeting)

    @app.post("/legacy/profiles", status_code=201)
    async def legacy_create(profile: NewProfile, greeting: str = "hello") -> Profile:
        return Profile(id=99, name=profile.name, greeting=greeting)

    return app


@service(name="profiles")
@rest("/legacy")
class ProfileService(Service):
    @get("/profiles/{profile_id}")
    @abstractmethod
    def read(self, profile_id: int, greeting: str = "hi") -> Profile: ...

    @post("/profiles")
    @abstractmethod
    async def create(self, profile: NewProfile, greeting: str) -> Profile: ...


@component(name="legacy", services=[ProfileService])
class LegacyComponent(Component):
    pass


@module(imports=[ServiceModule])
class RestModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(make_app(), manager, registry)


@pytest.fixture(scope="module")
def environment():
    environment = FastAPIServer.boot(RestModule, host="127.0.0.1", port=0)
    yield environment
    environment.destroy()


@pytest.fixture(scope="module")
def server(environment) -> FastAPIServer:
    return environment.get(FastAPIServer)


@pytest.fixture(scope="module")
def catalog(environment) -> CatalogService:
    return environment.get(ServiceManager).get_service(CatalogService, "rest")


@pytest.fixture(scope="module")
def openapi(server) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/openapi.json", timeout=5)
    assert response.status_code == 200
    return response.json()


# calling through the rest channel


def test_the_proxy_goes_through_the_rest_channel(environment, catalog):
    manager = environment.get(ServiceManager)
    assert isinstance(manager._channels[("store", "rest")], RestChannel)
    assert isinstance(catalog, CatalogService)


def test_get_with_path_and_query_parameters(catalog):
    assert catalog.read(4) == Item("item-4", 6.0, [])
    assert catalog.read(4, verbose=True) == Item("item-4", 6.0, ["verbose"])
    assert catalog.read(item_id=2, verbose=False).price == 3.0


def test_query_lists_and_marked_query_parameters(catalog):
    found = catalog.search("lamp", ["a b", "c&d=e"], 2)
    assert found == [Item("lamp-0", 0.0, ["a b", "c&d=e"]), Item("lamp-1", 1.0, ["a b", "c&d=e"])]
    assert catalog.search("x", [], 0) == []


def test_post_body_inferred_from_the_dataclass_and_declared_status(catalog):
    created = catalog.create(Item("lamp", 12.5, ["home"], Color.BLUE), "ada")
    assert created == Item("lamp", 12.5, ["home", "owner:ada"], Color.BLUE)
    assert isinstance(created.color, Color)


def test_put_with_marked_body_patch_with_pydantic_body_and_delete(catalog):
    assert catalog.replace(3, Item("desk", 99.0)) == Item("desk#3", 99.0, [], Color.RED)
    assert catalog.set_owner(5, Owner(name="bob")) == Owner(name="bob@5", vip=True)
    assert catalog.remove(1) is True
    assert catalog.remove(-1) is False
    assert catalog.clear() is None


def test_path_values_are_escaped_and_scalars_spelled_for_urls(catalog):
    assert catalog.echo_name("a b?c#d%e&f", Color.BLUE) == "a b?c#d%e&f|blue|-"
    assert catalog.echo_name("ünï", Color.RED, date(2026, 11, 23)) == "ünï|red|2026-11-23"
    # one segment cannot carry a '/' (the server decodes the path before routing): refused before sending
    with pytest.raises(
        MarshalException, match=r"argument 'name': 'a/b' cannot be a path segment.*\{name:path\}"
    ):
        catalog.echo_name("a/b", Color.RED)
    with pytest.raises(MarshalException, match="argument 'name': '' cannot be a path segment"):
        catalog.echo_name("", Color.RED)
    assert catalog.file("docs/a b/ü.txt") == "<docs/a b/ü.txt>"


def test_str_body_and_optional_values(catalog):
    assert catalog.note("ab", 3) == "ababab"
    assert catalog.note('{"not": "json"}') == '{"not": "json"}'
    assert catalog.maybe() is None
    assert catalog.maybe(None) is None
    assert catalog.maybe(0) == 0
    assert catalog.maybe(21) == 42


def test_async_methods_run_on_the_loop(catalog):
    async def main() -> tuple[Item, Item]:
        return await catalog.read_async(6, True), await catalog.create_async(Item("cup", 2.0), "eve")

    THREADS.clear()
    assert asyncio.run(main()) == (Item("item-6", 9.0, ["verbose"]), Item("cup", 2.0, ["owner:eve"]))
    # a second event loop: the pooled connections of the first are not reused
    assert asyncio.run(main())[0].name == "item-6"
    assert THREADS and all(name.startswith("warpcall-uvicorn") for name in THREADS)


def test_sync_implementations_run_in_the_threadpool_as_fastapi_runs_def_endpoints(catalog):
    assert catalog.where(0.0).startswith("warpcall-sync")
    assert catalog.where(0.0).startswith("warpcall-sync")


def test_a_method_without_route_is_not_callable_over_rest_but_over_dispatch(environment, catalog):
    with pytest.raises(ServiceException, match="store:catalog:undeclared has no @get/@post"):
        catalog.undeclared()
    dispatch = environment.get(ServiceManager).get_service(CatalogService, "dispatch-json")
    assert dispatch.undeclared() == "only over dispatch"
    assert dispatch.read(2) == Item("item-2", 3.0, [])


# errors


def test_implementation_exception_is_a_remote_service_exception(catalog):
    with pytest.raises(RemoteServiceException) as info:
        catalog.fail("lamps")
    assert info.value.remote_type == "OutOfStock"
    assert info.value.remote_message == "no lamps left"
    assert "store:catalog:fail" in str(info.value)
    with pytest.raises(RemoteServiceException, match="no cups left"):
        asyncio.run(catalog.fail_async("cups"))


def test_warpcall_errors_keep_their_type_and_status(server, catalog):
    with pytest.raises(AuthorizationException, match=r"HTTP 403\): members only"):
        catalog.fail("denied")
    with pytest.raises(InvalidArgumentsException, match="kind must be known"):
        catalog.fail("invalid")
    response = httpx.post(f"{server.url}/api/catalog/fail", params={"kind": "denied"}, timeout=5)
    assert response.status_code == 403
    assert response.json() == {"detail": "members only", "type": "AuthorizationException"}


def test_http_exception_passes_through_with_its_status(server, catalog):
    response = httpx.post(f"{server.url}/api/catalog/fail", params={"kind": "http"}, timeout=5)
    assert response.status_code == 418
    assert response.json() == {"detail": "short and stout"}
    with pytest.raises(ServiceException, match=r"HTTP 418\): short and stout") as info:
        catalog.fail("http")
    assert type(info.value) is ServiceException


def test_a_result_that_does_not_fit_is_the_servers_fault(server, catalog):
    response = httpx.get(f"{server.url}/api/catalog/broken", timeout=5)
    assert response.status_code == 500
    assert response.json()["type"] == "MarshalException"
    with pytest.raises(RemoteServiceException) as info:
        catalog.broken()
    assert info.value.remote_type == "MarshalException"


def test_fastapi_validates_input(server):
    response = httpx.get(f"{server.url}/api/catalog/items/seven", timeout=5)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "item_id"]
    response = httpx.post(
        f"{server.url}/api/catalog/items", params={"owner": "x"}, json={"name": "x"}, timeout=5
    )
    assert response.status_code == 422
    assert ["body", "price"] in [error["loc"] for error in response.json()["detail"]]
    response = httpx.get(f"{server.url}/api/catalog/names/x", params={"color": "green"}, timeout=5)
    assert response.status_code == 422


def test_arguments_that_do_not_fit_fail_before_sending(catalog):
    with pytest.raises(
        MarshalException, match=r"store:catalog:read: argument 'item_id': .*expected int, got str"
    ):
        catalog.read("seven")  # type: ignore[arg-type]
    with pytest.raises(MarshalException, match=r"store:catalog:create: argument 'item'"):
        catalog.create("not an item", "x")  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_and_timeouts_are_communication_errors(environment, catalog):
    channel = environment.get(ServiceManager)._channels[("store", "rest")]
    dead = f"http://127.0.0.1:{free_port()}"
    original = list(channel.selector.urls)
    channel.selector.set_urls([dead])
    try:
        with pytest.raises(ServiceCommunicationException, match=dead):
            catalog.read(1)
        with pytest.raises(ServiceCommunicationException, match=dead):
            asyncio.run(catalog.read_async(1))
    finally:
        channel.selector.set_urls(original)
    timeout = channel.timeout
    channel.timeout = 0.2
    try:
        started = time.monotonic()
        with pytest.raises(ServiceCommunicationException, match="Timeout"):
            catalog.slow(2.0)
        assert time.monotonic() - started < 1.5
    finally:
        channel.timeout = timeout
    assert catalog.slow(0.0) == 0.0


# the OpenAPI document


def test_openapi_lists_every_route_with_its_method(openapi):
    paths = openapi["paths"]
    assert set(paths["/api/catalog/items/{item_id}"]) == {"get", "put", "delete"}
    assert set(paths["/api/catalog/items"]) == {"post", "delete"}
    assert set(paths["/api/catalog/items/{item_id}/owner"]) == {"patch"}
    assert "/api/catalog/async/items/{item_id}" in paths
    assert "/invoke" not in paths
    assert not any("undeclared" in path for path in paths)


def test_openapi_parameters(openapi):
    read = openapi["paths"]["/api/catalog/items/{item_id}"]["get"]
    parameters = {p["name"]: p for p in read["parameters"]}
    assert parameters["item_id"]["in"] == "path" and parameters["item_id"]["required"] is True
    assert parameters["item_id"]["schema"]["type"] == "integer"
    assert parameters["verbose"]["in"] == "query" and parameters["verbose"]["required"] is False
    assert parameters["verbose"]["schema"] == {"type": "boolean", "default": False, "title": "Verbose"}

    search = {p["name"]: p for p in openapi["paths"]["/api/catalog/search"]["get"]["parameters"]}
    assert search["tags"]["schema"]["type"] == "array" and search["tags"]["schema"]["items"] == {
        "type": "string"
    }
    assert search["limit"]["description"] == "max results"
    assert search["limit"]["schema"]["default"] == 10 and search["limit"]["required"] is False
    assert search["limit"]["schema"]["examples"] == [5]

    owner = openapi["paths"]["/api/catalog/items/{item_id}/owner"]["patch"]
    item_id = owner["parameters"][0]
    assert (item_id["name"], item_id["in"], item_id["description"]) == ("item_id", "path", "the item's id")

    names = {p["name"]: p for p in openapi["paths"]["/api/catalog/names/{name}"]["get"]["parameters"]}
    assert names["color"]["schema"] == {"$ref": "#/components/schemas/Color"}
    assert openapi["components"]["schemas"]["Color"]["enum"] == ["red", "blue"]


def test_openapi_request_bodies(openapi):
    create = openapi["paths"]["/api/catalog/items"]["post"]
    assert create["requestBody"]["required"] is True
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Item"
    }
    assert [p["name"] for p in create["parameters"]] == ["owner"]
    replace = openapi["paths"]["/api/catalog/items/{item_id}"]["put"]["requestBody"]["content"][
        "application/json"
    ]
    assert replace["schema"]["description"] == "the new item"
    assert replace["schema"]["examples"] == [ITEM_EXAMPLE]
    owner = openapi["paths"]["/api/catalog/items/{item_id}/owner"]["patch"]["requestBody"]
    assert owner["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Owner"}
    note = openapi["paths"]["/api/catalog/notes"]["post"]["requestBody"]["content"]["application/json"]
    assert note["schema"]["type"] == "string"
    item = openapi["components"]["schemas"]["Item"]
    assert set(item["properties"]) == {"name", "price", "tags", "color"}
    assert set(item["required"]) == {"name", "price"}


def test_openapi_responses_and_metadata(openapi):
    read = openapi["paths"]["/api/catalog/items/{item_id}"]["get"]
    assert read["summary"] == "Read an item"
    assert (
        read["description"].startswith("Read one item.")
        and "Returns the item with its tags." in read["description"]
    )
    assert read["tags"] == ["items"]
    ok = read["responses"]["200"]
    assert ok["description"] == "The item"
    assert ok["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Item"}
    assert "422" in read["responses"]

    create = openapi["paths"]["/api/catalog/items"]["post"]
    assert "201" in create["responses"] and "200" not in create["responses"]
    remove = openapi["paths"]["/api/catalog/items/{item_id}"]["delete"]
    assert remove["deprecated"] is True
    assert remove["description"] == "Remove an item for good"
    assert remove["tags"] == ["CatalogService"]
    assert remove["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "boolean"
    search = openapi["paths"]["/api/catalog/search"]["get"]["responses"]["200"]["content"]["application/json"]
    assert search["schema"]["type"] == "array"
    assert search["schema"]["items"] == {"$ref": "#/components/schemas/Item"}
    clear = openapi["paths"]["/api/catalog/items"]["delete"]
    assert "204" in clear["responses"]


def test_docs_render(server):
    response = httpx.get(f"{server.url}/docs", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in response.text and "/openapi.json" in response.text


# interop: plain HTTP calls the warpcall route; a warpcall @rest service calls a plain FastAPI route


def test_plain_httpx_calls_the_routes_as_documented(server, openapi):
    base = server.url
    path = next(p for p in openapi["paths"] if p.endswith("/items/{item_id}"))
    response = httpx.get(base + path.format(item_id=7), params={"verbose": "true"}, timeout=5)
    assert response.status_code == 200
    assert response.json() == {"name": "item-7", "price": 10.5, "tags": ["verbose"], "color": "red"}
    response = httpx.post(f"{base}/api/catalog/items", params={"owner": "cy"}, json=ITEM_EXAMPLE, timeout=5)
    assert response.status_code == 201
    assert response.json()["tags"] == ["home", "owner:cy"]
    response = httpx.put(f"{base}/api/catalog/items/2", json=ITEM_EXAMPLE, timeout=5)
    assert response.json()["name"] == "lamp#2"
    response = httpx.patch(f"{base}/api/catalog/items/2/owner", json={"name": "di"}, timeout=5)
    assert response.json() == {"name": "di@2", "vip": True}
    response = httpx.delete(f"{base}/api/catalog/items/3", timeout=5)
    assert response.json() is True
    response = httpx.delete(f"{base}/api/catalog/items", timeout=5)
    assert response.status_code == 204 and response.content == b""
    # a query parameter's documented default applies when a plain caller leaves it out
    response = httpx.get(f"{base}/api/catalog/search", params={"q": "z", "tags": ["t"]}, timeout=5)
    assert len(response.json()) == 10


@pytest.fixture(scope="module")
def profiles(environment, server) -> ProfileService:
    registry = environment.get(ComponentRegistry)
    registry.register(component_descriptor(LegacyComponent), [ChannelAddress("rest", server.url)])
    return environment.get(ServiceManager).get_service(ProfileService, "rest")


def test_a_rest_service_calls_an_existing_fastapi_route(profiles):
    assert profiles.read(5) == Profile(id=5, name="user5", greeting="hi")
    assert profiles.read(6, "hey") == Profile(id=6, name="user6", greeting="hey")
    assert asyncio.run(profiles.create(NewProfile(name="zoe"), "yo")) == Profile(
        id=99, name="zoe", greeting="yo"
    )
    with pytest.raises(ServiceException, match=r"HTTP 404\): no profile 0"):
        profiles.read(0)


def test_a_route_the_server_does_not_have_is_an_unknown_method(environment, server):
    @service(name="ghost")
    @rest("/ghost")
    class GhostService(Service):
        @get("/nothing/{n}")
        @abstractmethod
        def nothing(self, n: int) -> int: ...

    @component(name="ghost-town", services=[GhostService])
    class GhostComponent(Component):
        pass

    environment.get(ComponentRegistry).register(
        component_descriptor(GhostComponent), [ChannelAddress("rest", server.url)]
    )
    ghost = environment.get(ServiceManager).get_service(GhostService, "rest")
    with pytest.raises(UnknownMethodException, match=r"ghost-town:ghost:nothing \(HTTP 404\): Not Found"):
        ghost.nothing(1)


def test_redirects_are_not_followed(environment, server):
    @service(name="slashed")
    @rest("/api/catalog")
    class SlashedService(Service):
        @get("/search/")
        @abstractmethod
        def search(self, q: str) -> list[Item]: ...

    @component(name="slashed-town", services=[SlashedService])
    class SlashedComponent(Component):
        pass

    environment.get(ComponentRegistry).register(
        component_descriptor(SlashedComponent), [ChannelAddress("rest", server.url)]
    )
    slashed = environment.get(ServiceManager).get_service(SlashedService, "rest")
    # FastAPI redirects /search/ to /search; the channel reports it instead of guessing
    with pytest.raises(
        ServiceException, match=r"slashed-town:slashed:search with HTTP 307 .*follows no redirects"
    ):
        slashed.search("x")


def test_a_channel_with_an_httpx_client_of_its_own_sends_the_same_requests(server):
    """A subclass replacing the client factory makes the channel send through real httpx clients."""
    seen: list[str] = []

    class RecordingChannel(RestChannel):
        def make_client(self) -> httpx.Client:
            return httpx.Client(
                timeout=5, event_hooks={"request": [lambda r: seen.append(f"{r.method} {r.url}")]}
            )

        def make_async_client(self) -> httpx.AsyncClient:
            async def hook(request: httpx.Request) -> None:
                seen.append(f"{request.method} {request.url}")

            return httpx.AsyncClient(timeout=5, event_hooks={"request": [hook]})

    channel = RecordingChannel()
    channel.setup(component_descriptor(StoreComponent), None)
    channel.customize()
    channel.selector.set_urls([server.url])
    from warpcall.core import proxy as core_proxy

    proxy = core_proxy.make_proxy(CatalogService, channel)
    try:
        assert proxy.echo_name("a b", Color.BLUE) == "a b|blue|-"
        assert asyncio.run(proxy.create_async(Item("x", 1.0), "o")).tags == ["owner:o"]
        assert proxy.clear() is None
        with pytest.raises(RemoteServiceException, match="no x left"):
            proxy.fail("x")
    finally:
        channel.close()
    assert seen[0] == f"GET {server.url}/api/catalog/names/a%20b?color=blue"
    assert seen[1] == f"POST {server.url}/api/catalog/async/items?owner=o"
    assert seen[2] == f"DELETE {server.url}/api/catalog/items"
