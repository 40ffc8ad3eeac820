"""schemathesis against the OpenAPI document of warpcall's REST routes, over real HTTP (issue 14, point 7).

Two real servers on 127.0.0.1 serve the same ~20 ``@rest`` routes (every HTTP method; path, query and body
parameters; dataclass and pydantic bodies; str, int, float, bool, list, Optional and enum types; sync and
async implementations) beside a few plain FastAPI routes of the user's: one with the REST fast path on, one
whose app has a pass-through middleware (FastAPI answers everything). schemathesis reads the first one's
``/openapi.json`` and generates valid and invalid requests for every operation; each goes to both servers.

Asserted for every case: no 5xx on warpcall's routes, the fast path answers exactly what FastAPI answers
(status and body), and schemathesis' checks find no schema contradiction except the ones FastAPI itself
makes on any route, plain ones included: :data:`FASTAPI_OWN` lists them with the reason, and
:func:`test_the_listed_contradictions_are_fastapis_own` shows each on a plain route under a bare uvicorn.

The default run is bounded and reproducible (``derandomize``: the same cases every run, about a minute
on 2 CPUs). The long run: ``WARPCALL_FUZZ_REST_EXAMPLES=200 python -m pytest tests/fuzz/test_rest_schemathesis.py``
(examples per operation and generation mode; 200 gives about 10,000 cases per server).
"""

from __future__ import annotations

import os
from abc import abstractmethod
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Body as FastAPIBody
from fastapi import FastAPI, Request
from pydantic import BaseModel

from rawhttp import Reader, UvicornReference, connect, request
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

schemathesis = pytest.importorskip("schemathesis")  # the test extra has it; CI installs it
hypothesis = pytest.importorskip("hypothesis")
FailureGroup = pytest.importorskip("schemathesis.core.failures").FailureGroup

pytestmark = pytest.mark.fuzz

#: examples per operation and generation mode (positive and negative)
EXAMPLES = int(os.environ.get("WARPCALL_FUZZ_REST_EXAMPLES", "25"))


class Size(Enum):
    SMALL = "small"
    LARGE = "large"


@dataclass
class Box:
    label: str
    weight: float
    count: int = 1
    fragile: bool = False
    tags: list[str] = field(default_factory=list)
    size: Size = Size.SMALL
    note: str | None = None


class Owner(BaseModel):
    name: str
    age: int
    score: float = 0.0
    nick: str | None = None
    roles: list[str] = []


@service(name="fuzzed")
@rest("/fz")
class FuzzedService(Service):
    @get("/boxes/{box_id}")
    @abstractmethod
    def read(self, box_id: int, verbose: bool = False) -> Box: ...

    @get("/boxes")
    @abstractmethod
    def search(self, label: str, tags: list[str], limit: QueryParam(int, default=5), size: Size | None = None) -> list[str]: ...

    @post("/boxes", status_code=201)
    @abstractmethod
    def create(self, box: Box, by: str) -> Box: ...

    @put("/boxes/{box_id}")
    @abstractmethod
    def replace(self, box_id: int, box: Box) -> Box: ...

    @patch("/boxes/{box_id}/label")
    @abstractmethod
    def relabel(self, box_id: int, label: Body(str)) -> str: ...

    @delete("/boxes/{box_id}")
    @abstractmethod
    def remove(self, box_id: int) -> bool: ...

    @delete("/boxes", status_code=204)
    @abstractmethod
    def clear(self) -> None: ...

    @post("/owners")
    @abstractmethod
    async def register(self, owner: Owner) -> Owner: ...

    @put("/owners/{name}")
    @abstractmethod
    async def rename(self, name: str, owner: Owner, keep: bool = True) -> Owner: ...

    @get("/owners/{name}/score")
    @abstractmethod
    async def score(self, name: str, factor: float = 1.0) -> float: ...

    @get("/numbers")
    @abstractmethod
    def numbers(self, values: list[int], scale: float | None = None) -> list[float]: ...

    @get("/flags/{flag}")
    @abstractmethod
    def flag(self, flag: bool, times: int = 1) -> list[bool]: ...

    @get("/sizes/{size}")
    @abstractmethod
    def size(self, size: Size) -> Size: ...

    @post("/echo/text")
    @abstractmethod
    def echo_text(self, text: Body(str), upper: bool = False) -> str: ...

    @post("/echo/int")
    @abstractmethod
    async def echo_int(self, value: Body(int)) -> int: ...

    @post("/echo/floats")
    @abstractmethod
    def echo_floats(self, values: Body(list[float])) -> list[float]: ...

    @patch("/owners/{name}/roles")
    @abstractmethod
    def add_roles(self, name: str, roles: Body(list[str])) -> list[str]: ...

    @get("/files/{path:path}")
    @abstractmethod
    def file(self, path: str) -> str: ...

    @get("/optional")
    @abstractmethod
    async def optional(self, text: str | None = None, count: int | None = None) -> dict[str, str]: ...

    @post("/optional-box")
    @abstractmethod
    def optional_box(self, box: Body(Box | None, default=None)) -> str: ...


@component(name="fuzzed-component", services=[FuzzedService])
class FuzzedComponent(Component):
    pass


@implementation()
class FuzzedServiceImpl(FuzzedService):
    def read(self, box_id: int, verbose: bool = False) -> Box:
        return Box(f"box{box_id}", 1.5, tags=["verbose"] if verbose else [])

    def search(self, label: str, tags: list[str], limit: int = 5, size: Size | None = None) -> list[str]:
        return [f"{label}:{tag}:{size}" for tag in tags][: max(limit, 0)]

    def create(self, box: Box, by: str) -> Box:
        return Box(box.label, box.weight, box.count, box.fragile, [*box.tags, by], box.size, box.note)

    def replace(self, box_id: int, box: Box) -> Box:
        return box

    def relabel(self, box_id: int, label: str) -> str:
        return f"{box_id}:{label}"

    def remove(self, box_id: int) -> bool:
        return box_id % 2 == 0

    def clear(self) -> None:
        return None

    async def register(self, owner: Owner) -> Owner:
        return owner

    async def rename(self, name: str, owner: Owner, keep: bool = True) -> Owner:
        return owner.model_copy(update={"nick": name if keep else None})

    async def score(self, name: str, factor: float = 1.0) -> float:
        return factor  # an echo: finite in, finite out

    def numbers(self, values: list[int], scale: float | None = None) -> list[float]:
        return [float(len(values))] if scale is None else [scale]

    def flag(self, flag: bool, times: int = 1) -> list[bool]:
        return [flag] * min(max(times, 0), 10)

    def size(self, size: Size) -> Size:
        return size

    def echo_text(self, text: str, upper: bool = False) -> str:
        return text.upper() if upper else text

    async def echo_int(self, value: int) -> int:
        return value

    def echo_floats(self, values: list[float]) -> list[float]:
        return values

    def add_roles(self, name: str, roles: list[str]) -> list[str]:
        return [name, *roles]

    def file(self, path: str) -> str:
        return path

    async def optional(self, text: str | None = None, count: int | None = None) -> dict[str, str]:
        return {"text": str(text), "count": str(count)}

    def optional_box(self, box: Box | None = None) -> str:
        return "none" if box is None else box.label


@implementation()
class FuzzedComponentImpl(AbstractComponent, FuzzedComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("rest", f"http://127.0.0.1:{port}")]


def plain_routes(app: FastAPI) -> FastAPI:
    """Plain FastAPI routes of the user's, of the same shapes: what FastAPI itself does on the same input."""

    @app.post("/plain/owners")
    def plain_register(owner: Owner) -> Owner:
        return owner

    @app.get("/plain/boxes/{box_id}")
    def plain_read(box_id: int, verbose: bool = False) -> str:
        return f"{box_id}:{verbose}"

    @app.post("/plain/echo/text")
    def plain_echo(text: Annotated[str, FastAPIBody()]) -> str:
        return text

    @app.post("/plain/echo/floats")
    def plain_floats(values: Annotated[list[float], FastAPIBody()]) -> list[float]:
        return values

    return app


def plain_app() -> FastAPI:
    return plain_routes(FastAPI(title="fuzzed"))


def app_with_middleware() -> FastAPI:
    app = plain_routes(FastAPI(title="fuzzed"))

    @app.middleware("http")
    async def passing(request: Request, call_next: Any) -> Any:
        return await call_next(request)

    return app


def make_module(app_factory: Any) -> type:
    @module(imports=[ServiceModule])
    class FuzzedModule:
        @create()
        def create_registry(self) -> ComponentRegistry:
            return LocalComponentRegistry()

        @create()
        def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
            return FastAPIServer(app_factory(), manager, registry)

    return FuzzedModule


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[FastAPIServer, FastAPIServer]]:
    booted = []
    try:
        for factory in (plain_app, app_with_middleware):
            booted.append(FastAPIServer.boot(make_module(factory), host="127.0.0.1", port=0))
        yield booted[0].get(FastAPIServer), booted[1].get(FastAPIServer)
    finally:
        for environment in booted:
            environment.destroy()


#: schema contradictions FastAPI makes on every route, its plain ones included, by schemathesis' failure
#: title, with the reason: warpcall's routes may show them (they answer as FastAPI does), and nothing else
FASTAPI_OWN = {
    "Undocumented status code": "FastAPI's 400 for a JSON body it cannot decode (not UTF-8), its 404 when a "
    "path parameter holds an encoded '/' (no route matches) and its 405 for another method: the document "
    "lists only the success status and 422",
    "Schema-valid request rejected": "the schema admits path parameters no route matches (an encoded '/'): "
    "FastAPI's 404",
    "Schema-violating request accepted": "pydantic's lax mode (FastAPI's validation) coerces what the schema "
    "does not admit, e.g. a boolean for a float (1.0), '1' or 'yes' for a boolean, 2.0 for an integer",
}

#: the only replies an undocumented status or a rejected valid request may carry: FastAPI's own
FASTAPI_REPLIES = {
    (400, b'{"detail":"There was an error parsing the body"}'),
    (404, b'{"detail":"Not Found"}'),
    (405, b'{"detail":"Method Not Allowed"}'),
}


def _examples() -> Any:
    return hypothesis.settings(
        max_examples=EXAMPLES,
        derandomize=True,  # the same cases on every run
        database=None,
        deadline=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],  # no shrinking: every case is recorded
        suppress_health_check=list(hypothesis.HealthCheck),
    )


def run_operation(operation: Any, mode: Any, fast: str, reference: str, record: Any) -> None:
    strategy = operation.as_strategy(generation_mode=mode)

    @_examples()
    @hypothesis.given(case=strategy)
    def exercise(case: Any) -> None:
        response = case.call(base_url=fast, timeout=10)
        theirs = case.call(base_url=reference, timeout=10)
        try:
            case.validate_response(response)
            failures: list[Any] = []
        except FailureGroup as group:
            failures = list(group.exceptions)
        record(case, response, theirs, failures)

    try:
        exercise()
    except hypothesis.errors.Unsatisfiable:
        # nothing to make invalid (no parameter, no body): only the negative mode may find no case
        if mode.is_positive:
            raise


def test_the_openapi_document_fuzzed(servers):
    fast, reference = servers
    schema = schemathesis.openapi.from_url(f"{fast.url}/openapi.json")
    cases = 0
    server_errors: list[str] = []
    differences: list[str] = []
    contradictions: Counter[tuple[str, str]] = Counter()
    examples: dict[tuple[str, str], str] = {}
    not_fastapis: list[str] = []

    def record(case: Any, mine: Any, theirs: Any, failures: list[Any]) -> None:
        nonlocal cases
        cases += 1
        label = f"{case.method} {case.formatted_path}"
        warpcall_route = case.path.startswith("/fz/")
        if mine.status_code >= 500 and warpcall_route:
            server_errors.append(f"{label}: {mine.status_code} {mine.content[:200]!r}")
        if (mine.status_code, mine.content) != (theirs.status_code, theirs.content):
            differences.append(f"{label}: fast path {mine.status_code} {mine.content[:120]!r}, "
                               f"FastAPI {theirs.status_code} {theirs.content[:120]!r}")
        for failure in failures:
            key = ("warpcall" if warpcall_route else "plain", failure.title)
            contradictions[key] += 1
            example = f"{label} -> {mine.status_code} {mine.content[:100]!r}: {str(failure.message)[:200]}"
            examples.setdefault(key, example)
            if (warpcall_route and failure.title in ("Undocumented status code", "Schema-valid request rejected")
                    and (mine.status_code, mine.content) not in FASTAPI_REPLIES):
                not_fastapis.append(example)

    served = fast.rest_fast_path.served
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len([op for op in operations if op.path.startswith("/fz/")]) == 20
    for operation in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            run_operation(operation, mode, fast.url, reference.url, record)

    assert not server_errors, "\n".join(server_errors[:20])
    assert not differences, "\n".join(differences[:20])
    unexplained = {key: examples[key] for key in contradictions if key[0] == "warpcall" and key[1] not in FASTAPI_OWN}
    assert not unexplained, "\n\n".join(f"{key}: {example}" for key, example in unexplained.items())
    assert not not_fastapis, "\n\n".join(not_fastapis[:10])
    assert cases >= len(operations) * 2  # every operation ran, in both modes
    assert fast.rest_fast_path.served > served  # and the fast path answered the valid ones
    print(f"\n{cases} cases per server; contradictions: {dict(contradictions)}")


# ---------------------------------------------------------------- the listed contradictions are FastAPI's


# (what, method, plain route's path, warpcall route's path, body, FastAPI's status, documented)
FASTAPI_CASES = [
    ("a JSON body that is not UTF-8", "POST", "/plain/owners", "/fz/owners", b'{"name": "\xff", "age": 1}', 400, False),
    ("an encoded '/' in a path parameter", "GET", "/plain/boxes/1%2F2", "/fz/boxes/1%2F2", b"", 404, False),
    ("another method", "PATCH", "/plain/boxes/1", "/fz/boxes/1", b"", 405, False),
    ("a boolean for a float", "POST", "/plain/echo/floats", "/fz/echo/floats", b"[true, 2]", 200, True),
]


@pytest.mark.parametrize(("what", "method", "plain", "mine", "body", "status", "documented"), FASTAPI_CASES,
                         ids=[case[0] for case in FASTAPI_CASES])
def test_the_listed_contradictions_are_fastapis_own(servers, what, method, plain, mine, body, status, documented):
    fast, reference = servers
    with UvicornReference(plain_routes(FastAPI())) as bare:
        with connect(bare.port) as sock:
            sock.sendall(request(plain, body, "application/json", method=method))
            theirs = Reader(sock).response()
    assert int(theirs[0].split()[1]) == status  # FastAPI itself, on a plain route under a bare uvicorn
    for server in (fast, reference):
        with connect(server.port) as sock:
            sock.sendall(request(mine, body, "application/json", method=method))
            answer = Reader(sock).response()
        assert int(answer[0].split()[1]) == status
        assert answer[2] == theirs[2]
    if documented:
        return
    with httpx.Client(timeout=5) as client:
        document = client.get(f"{fast.url}/openapi.json").json()
    for path in document["paths"].values():  # no route documents these statuses: they contradict it
        for operation in path.values():
            assert str(status) not in operation["responses"]
