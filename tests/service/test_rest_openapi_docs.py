"""OpenAPI summary and description of REST routes whose implementation is woven by advice.

A route's docs are the declaration's (``description=``, else the declared method's docstring), else the
implementation's docstring. Advice replaces a method on the instance with a wrapper object whose
``__doc__`` is the wrapper class's ("WovenMethod(plan: MethodPlan, instance: object) -> None"): the
implementation's docstring is read from its class, so the wrapper's never reaches the OpenAPI document.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from warpcall import (
    AbstractComponent,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    LocalComponentRegistry,
    Service,
    ServiceManager,
    ServiceModule,
    component,
    get,
    implementation,
    rest,
    service,
)
from warpcall.di import create, module
from warpcall.di.aop import Invocation, advice, around, methods

#: every call the advice saw, by method name: proves the routes are served by woven methods
ADVISED: list[str] = []


@service(name="documented")
@rest("/docs-test")
class DocumentedService(Service):
    @get("/declared/{text}")
    @abstractmethod
    def declared(self, text: str) -> str:
        """Echo the text back.

        Documented on the service only: the implementation has no docstring.
        """

    @get("/both/{text}")
    @abstractmethod
    def both(self, text: str) -> str:
        """The declaration's words.

        They win over the implementation's docstring.
        """

    @get("/own/{text}")
    @abstractmethod
    def own(self, text: str) -> str: ...

    @get("/silent/{text}")
    @abstractmethod
    def silent(self, text: str) -> str: ...

    @get("/async/{text}")
    @abstractmethod
    async def declared_async(self, text: str) -> str:
        """Echo the text back, asynchronously."""


@component(name="docs-component", services=[DocumentedService])
class DocsComponent(Component):
    pass


@implementation()
class DocumentedServiceImpl(DocumentedService):
    def declared(self, text: str) -> str:
        return f"declared {text}"

    def both(self, text: str) -> str:
        """The implementation's words, which the declaration's override."""
        return f"both {text}"

    def own(self, text: str) -> str:
        """Answer with the implementation's own words.

        Only the implementation documents this one.
        """
        return f"own {text}"

    def silent(self, text: str) -> str:
        return f"silent {text}"

    async def declared_async(self, text: str) -> str:
        return f"async {text}"


@implementation()
class DocsComponentImpl(AbstractComponent, DocsComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("rest", f"http://127.0.0.1:{port}")]


@advice
class Recording:
    @around(methods().of_type(DocumentedServiceImpl))
    def record(self, invocation: Invocation) -> Any:
        ADVISED.append(invocation.func.__name__)
        return invocation.proceed()


@module(imports=[ServiceModule])
class DocsModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry)


@pytest.fixture(scope="module")
def server() -> Iterator[FastAPIServer]:
    environment = FastAPIServer.boot(DocsModule, host="127.0.0.1", port=0)
    try:
        yield environment.get(FastAPIServer)
    finally:
        environment.destroy()


@pytest.fixture(scope="module")
def operations(server: FastAPIServer) -> dict[str, dict[str, Any]]:
    response = httpx.get(f"{server.url}/openapi.json", timeout=5)
    assert response.status_code == 200
    paths = response.json()["paths"]
    return {name: paths[f"/docs-test/{name}/{{text}}"]["get"] for name in ("declared", "both", "own", "silent", "async")}


def test_the_routes_are_served_by_woven_methods(server: FastAPIServer) -> None:
    ADVISED.clear()
    with httpx.Client(base_url=server.url, timeout=5) as client:
        for name in ("declared", "both", "own", "silent", "async"):
            response = client.get(f"/docs-test/{name}/x")
            assert (response.status_code, response.json()) == (200, f"{name} x")
    assert sorted(ADVISED) == ["both", "declared", "declared_async", "own", "silent"]


def test_docs_come_from_the_service_declaration_when_the_implementation_has_none(operations) -> None:
    declared = operations["declared"]
    assert declared["summary"] == "Echo the text back."
    assert declared["description"] == (
        "Echo the text back.\n\nDocumented on the service only: the implementation has no docstring."
    )
    assert operations["async"]["summary"] == "Echo the text back, asynchronously."


def test_the_woven_implementations_docstring_when_the_declaration_has_none(operations) -> None:
    own = operations["own"]
    assert own["summary"] == "Answer with the implementation's own words."
    assert own["description"] == "Answer with the implementation's own words.\n\nOnly the implementation documents this one."


def test_the_declarations_docstring_wins_over_the_implementations(operations) -> None:
    both = operations["both"]
    assert both["summary"] == "The declaration's words."
    assert both["description"] == "The declaration's words.\n\nThey win over the implementation's docstring."


def test_no_docstring_anywhere_gives_no_summary_and_never_the_wrappers(operations) -> None:
    silent = operations["silent"]
    assert "description" not in silent
    # FastAPI's own summary when none is given: the route's name (component:service:method) in title case
    assert silent["summary"] == "Docs-Component:Documented:Silent"
    for operation in operations.values():
        assert "WovenMethod" not in operation.get("summary", "") + operation.get("description", "")
        assert "MethodPlan" not in operation.get("summary", "") + operation.get("description", "")
