"""REST declarations: how parameters are sorted, and malformed declarations failing at import or startup."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

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
    PathParam,
    QueryParam,
    Service,
    ServiceException,
    ServiceManager,
    ServiceModule,
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
from warpcall.di import Environment, create, module
from warpcall.routes import routes_of


@dataclass
class Point:
    x: int
    y: int


class Label(BaseModel):
    text: str


@rest("/api/shapes/")
class ShapeService(Service):
    @get("/points/{point_id}")
    @abstractmethod
    def read(self, point_id: int, scale: float = 1.0) -> Point:
        """Read a point.

        Scaled on request.
        """

    @post("points", summary="Add a point", tags=["points"], status_code=201)
    @abstractmethod
    def add(self, owner: str, point: Point) -> Point: ...

    @put("/points/{point_id}", description="Replace a point", deprecated=True)
    @abstractmethod
    def replace(
        self, point_id: PathParam(int, description="which"), point: Body(Point, example={"x": 1, "y": 2})
    ) -> Point: ...

    @patch("/labels")
    @abstractmethod
    def relabel(self, label: Label, tags: QueryParam(list[str], description="tags")) -> Label: ...

    @delete("/points/{point_id}", response_description="gone")
    @abstractmethod
    def remove(self, point_id: int, hard: bool | None = None) -> bool: ...

    @post("/notes")
    @abstractmethod
    def note(self, text: Body(str), count: int) -> str: ...

    @abstractmethod
    def plain(self) -> str: ...


def test_parameters_are_sorted_by_where_they_travel():
    routes = routes_of(ShapeService)
    assert set(routes) == {"read", "add", "replace", "relabel", "remove", "note"}

    read = routes["read"]
    assert (read.http_method, read.path) == ("GET", "/api/shapes/points/{point_id}")
    assert [(p.name, p.kind, p.type, p.required) for p in read.params] == [
        ("point_id", "path", int, True),
        ("scale", "query", float, False),
    ]
    assert read.summary == "Read a point."
    assert "Scaled on request." in read.description

    add = routes["add"]
    assert add.path == "/api/shapes/points"
    # unmarked: the first dataclass or pydantic parameter is the body, the rest are query parameters
    assert [(p.name, p.kind) for p in add.params] == [("owner", "query"), ("point", "body")]
    assert add.status_code == 201 and add.summary == "Add a point" and add.spec.tags == ("points",)

    replace = routes["replace"]
    assert [(p.name, p.kind, p.type) for p in replace.params] == [
        ("point_id", "path", int),
        ("point", "body", Point),
    ]
    assert replace.params[0].description == "which"
    assert replace.params[1].example == {"x": 1, "y": 2}
    assert replace.description == "Replace a point" and replace.spec.deprecated is True

    relabel = routes["relabel"]
    assert [(p.name, p.kind, p.is_list) for p in relabel.params] == [
        ("label", "body", False),
        ("tags", "query", True),
    ]

    remove = routes["remove"]
    assert [(p.name, p.kind, p.default) for p in remove.params] == [
        ("point_id", "path", ...),
        ("hard", "query", None),
    ]
    assert remove.spec.response_description == "gone"

    note = routes["note"]
    assert [(p.name, p.kind, p.type) for p in note.params] == [("text", "body", str), ("count", "query", int)]


def test_prefix_and_path_join_with_one_slash_and_keep_a_trailing_one():
    from warpcall.routes import join_path

    assert join_path("/api/", "/items") == "/api/items"
    assert join_path("api", "items/") == "/api/items/"
    assert join_path("", "") == "/"
    assert join_path("/api", "") == "/api"


def test_unmarked_second_model_is_a_query_parameter_and_is_rejected():
    with pytest.raises(
        ServiceException, match=r"BadAdd\.add: parameter 'label' of type Label cannot be a query"
    ):

        @rest("/bad")
        class BadAdd(Service):
            @post("/x")
            def add(self, point: Point, label: Label) -> Point: ...


def test_routes_are_cached_on_the_method_descriptors():
    from warpcall.core import proxy as core_proxy

    routes = routes_of(ShapeService)
    assert routes_of(ShapeService) is routes
    methods = core_proxy.service_methods(ShapeService)
    assert methods["read"].plans["rest"] is routes["read"]
    assert "rest" not in methods["plain"].plans


@pytest.mark.parametrize(
    ("declare", "message"),
    [
        (
            lambda: get("/points/{point_id}")(lambda self, other: None),
            r"path '/points/\{point_id\}' names \{point_id\} but the method has no parameter 'point_id'",
        ),
        (lambda: get("/points/{point-id}")(lambda self: None), r"placeholder \{point-id\}"),
        (lambda: get("/points/{a}/{a}")(lambda self, a: None), "names a parameter twice"),
        (lambda: get("/points/{a")(lambda self, a: None), "unbalanced brace"),
    ],
)
def test_path_errors_raise_when_the_method_is_decorated(declare, message):
    with pytest.raises(ServiceException, match=message):
        declare()


def test_a_path_parameter_without_argument_names_the_method():
    with pytest.raises(ServiceException, match=r"Broken\.read: path '/p/\{pid\}' names \{pid\}"):

        class Broken(Service):
            @get("/p/{pid}")
            def read(self, id: int) -> int: ...


def test_two_bodies_raise_at_import():
    with pytest.raises(ServiceException, match=r"TwoBodies\.add: 2 parameters are bodies \(\['a', 'b'\]\)"):

        @rest("/two")
        class TwoBodies(Service):
            @post("/x")
            def add(self, a: Body(Point), b: Body(Label)) -> None: ...


def test_a_body_on_get_raises_at_import():
    with pytest.raises(
        ServiceException, match=r"GetBody\.read: a GET request carries no body, but 'point' is one"
    ):

        @rest("/get")
        class GetBody(Service):
            @get("/x")
            def read(self, point: Body(Point)) -> None: ...


def test_an_unmarked_model_on_get_is_not_a_query_parameter():
    with pytest.raises(
        ServiceException, match=r"GetModel\.read: parameter 'point' of type Point cannot be a query"
    ):

        @rest("/get")
        class GetModel(Service):
            @get("/x")
            def read(self, point: Point) -> None: ...


def test_a_path_param_marker_needs_its_placeholder():
    with pytest.raises(
        ServiceException, match=r"Lost\.read: parameter 'pid' is a PathParam but the path '/x' has no"
    ):

        @rest("/lost")
        class Lost(Service):
            @get("/x")
            def read(self, pid: PathParam(int)) -> None: ...


def test_a_path_placeholder_marked_as_query_is_a_conflict():
    with pytest.raises(ServiceException, match=r"Mixed\.read: parameter 'pid' is named in the path"):

        @rest("/mixed")
        class Mixed(Service):
            @get("/x/{pid}")
            def read(self, pid: QueryParam(int)) -> None: ...


def test_a_path_parameter_must_be_a_scalar():
    with pytest.raises(ServiceException, match=r"ListPath\.read: path parameter 'ids' has type list\[int\]"):

        @rest("/lp")
        class ListPath(Service):
            @get("/x/{ids}")
            def read(self, ids: list[int]) -> None: ...


def test_keyword_only_parameters_and_double_decorators_are_rejected():
    with pytest.raises(ServiceException, match="parameter 'b' is keyword-only or variadic"):

        class KwOnly(Service):
            @get("/x")
            def read(self, a: int, *, b: int) -> None: ...

    with pytest.raises(ServiceException, match="two route decorators"):

        class Twice(Service):
            @get("/x")
            @post("/x")
            def read(self) -> None: ...


def test_two_methods_on_one_route_are_rejected():
    with pytest.raises(
        ServiceException, match=r"Dup\.(a|b) and Dup\.(a|b) both declare GET /dup/x/\{(i|j)\}"
    ):

        @rest("/dup")
        class Dup(Service):
            @get("/x/{i}")
            def a(self, i: int) -> None: ...

            @get("/x/{j}")
            def b(self, j: int) -> None: ...


# a hint naming a type defined later: checked when the server or the channel starts, not at import


@service(name="later")
@rest("/later")
class LaterService(Service):
    @post("/x")
    @abstractmethod
    def take(self, item: DefinedLater) -> DefinedLater: ...


@dataclass
class DefinedLater:
    value: int


def test_a_type_defined_later_in_the_module_resolves_on_first_use():
    route = routes_of(LaterService)["take"]
    assert route.body.type is DefinedLater


@service(name="never-defined")
@rest("/never")
class NeverService(Service):
    @post("/x")
    @abstractmethod
    def take(self, item: NeverDefined) -> int: ...  # noqa: F821


@component(name="never-component", services=[NeverService])
class NeverComponent(Component):
    pass


@implementation()
class NeverServiceImpl(NeverService):
    def take(self, item: object) -> int:
        return 0


@implementation()
class NeverComponentImpl(AbstractComponent, NeverComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("rest", f"http://127.0.0.1:{port}")]


@module(imports=[ServiceModule])
class NeverModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry)


def test_an_unresolvable_hint_fails_the_server_at_startup():
    with pytest.raises(
        ServiceException, match=r"NeverService\.take: cannot resolve its type hints.*NeverDefined"
    ):
        FastAPIServer.boot(NeverModule, host="127.0.0.1", port=0)


@service(name="never-remote")
@rest("/never-remote")
class NeverRemoteService(Service):
    @get("/x")
    @abstractmethod
    def read(self, since: NeverDefinedEither) -> int: ...  # noqa: F821


@component(name="never-remote-component", services=[NeverRemoteService])
class NeverRemoteComponent(Component):
    pass


@module(imports=[ServiceModule])
class NeverClientModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()


def test_an_unresolvable_hint_fails_the_channel_when_it_starts():
    environment = Environment(NeverClientModule)
    try:
        manager = environment.get(ServiceManager)
        with pytest.raises(
            ServiceException, match=r"NeverRemoteService\.read: cannot resolve its type hints"
        ):
            manager.get_service(NeverRemoteService, "rest")
    finally:
        environment.destroy()


@pytest.mark.parametrize(
    "value", ["", "plain", "hello world", "a/b/c", "100%", "x+y=z&w", "~_.-", "\t\n\x7f", "é€ / ü", "?#[]@!$'()*,;"]
)
@pytest.mark.parametrize("keep_slash", [False, True])
def test_escape_is_urllib_quote(value, keep_slash):
    from urllib.parse import quote

    from warpcall.channels.rest import escape

    assert escape(value, keep_slash) == quote(value, safe="/" if keep_slash else "")
