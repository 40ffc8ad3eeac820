"""The REST fast path answers exactly as FastAPI does, and only where FastAPI would route to the same route.

Two real uvicorn servers on 127.0.0.1 serve the same service: one on a plain app (the fast path
answers), one whose app has a pass-through middleware (FastAPI answers everything). Every request
of a battery, valid or not, must get the same status and body from both.
"""

from __future__ import annotations

import contextlib
import contextvars
import socket
import threading
import time
from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
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
    delete,
    get,
    implementation,
    post,
    put,
    rest,
    service,
)
from warpcall.di import create, module


class Shade(Enum):
    LIGHT = "light"
    DARK = "dark"


@dataclass
class Parcel:
    label: str
    weight: float
    tags: list[str] = field(default_factory=list)
    shade: Shade = Shade.LIGHT


class Sender(BaseModel):
    name: str
    priority: int = 0


REQUEST_TAG: contextvars.ContextVar[str] = contextvars.ContextVar("request_tag", default="-")


@service(name="depot")
@rest("/depot")
class DepotService(Service):
    @get("/parcels/{parcel_id}")
    @abstractmethod
    def read(self, parcel_id: int, verbose: bool = False) -> Parcel: ...

    @get("/parcels/special")
    @abstractmethod
    def special(self) -> str: ...

    @get("/find")
    @abstractmethod
    def find(self, label: str, tags: list[str], limit: QueryParam(int, default=3), day: date | None = None) -> list[str]: ...

    @post("/parcels", status_code=201)
    @abstractmethod
    def ship(self, parcel: Parcel, sender: str) -> Parcel: ...

    @put("/senders/{name}")
    @abstractmethod
    def register(self, name: str, sender: Sender) -> Sender: ...

    @post("/notes")
    @abstractmethod
    def note(self, text: Body(str), times: int = 1) -> str: ...

    @delete("/parcels", status_code=204)
    @abstractmethod
    def clear(self) -> None: ...

    @get("/files/{path:path}")
    @abstractmethod
    def file(self, path: str) -> str: ...

    @get("/fail/{kind}")
    @abstractmethod
    def fail(self, kind: str) -> str: ...

    @get("/thread")
    @abstractmethod
    def thread(self) -> str: ...

    @get("/async/parcels/{parcel_id}")
    @abstractmethod
    async def read_async(self, parcel_id: int) -> Parcel: ...

    @get("/shadowed")
    @abstractmethod
    def shadowed(self) -> str: ...

    @get("/by-user/{anything}")
    @abstractmethod
    def by_user(self, anything: str) -> str: ...

    @get("/big")
    @abstractmethod
    def big(self, size: int) -> str: ...

    @get("/slow")
    @abstractmethod
    def slow(self, seconds: float) -> str: ...


@component(name="depot-component", services=[DepotService])
class DepotComponent(Component):
    pass


@implementation()
class DepotServiceImpl(DepotService):
    def read(self, parcel_id: int, verbose: bool = False) -> Parcel:
        return Parcel(f"p{parcel_id}", parcel_id / 2, ["verbose"] if verbose else [])

    def special(self) -> str:
        return "special"

    def find(self, label: str, tags: list[str], limit: int = 3, day: date | None = None) -> list[str]:
        return [f"{label}:{tag}:{day}" for tag in tags][:limit]

    def ship(self, parcel: Parcel, sender: str) -> Parcel:
        assert isinstance(parcel, Parcel) and isinstance(parcel.shade, Shade)
        return Parcel(parcel.label.upper(), parcel.weight * 2, [*parcel.tags, sender], parcel.shade)

    def register(self, name: str, sender: Sender) -> Sender:
        assert isinstance(sender, Sender)
        return Sender(name=f"{name}/{sender.name}", priority=sender.priority + 1)

    def note(self, text: str, times: int = 1) -> str:
        return text * times

    def clear(self) -> None:
        return None

    def file(self, path: str) -> str:
        return f"<{path}>"

    def fail(self, kind: str) -> str:
        if kind == "teapot":
            raise HTTPException(status_code=418, detail={"why": "short and stout"}, headers={"x-pot": "tea"})
        if kind == "gone":
            raise HTTPException(status_code=304)
        raise LookupError(f"no {kind}")

    def thread(self) -> str:
        return f"{threading.current_thread().name}|{REQUEST_TAG.get()}"

    async def read_async(self, parcel_id: int) -> Parcel:
        return self.read(parcel_id)

    def shadowed(self) -> str:
        return "warpcall"

    def by_user(self, anything: str) -> str:
        return f"warpcall:{anything}"

    def big(self, size: int) -> str:
        return "x" * size

    def slow(self, seconds: float) -> str:
        time.sleep(seconds)
        return f"slept {seconds}"


@implementation()
class DepotComponentImpl(AbstractComponent, DepotComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("rest", f"http://127.0.0.1:{port}")]


def user_routes(app: FastAPI) -> FastAPI:
    """Routes the user declared before warpcall mounted its own: they come first, so they win."""

    @app.get("/depot/shadowed")
    def user_shadowed() -> str:
        return "user"

    @app.get("/depot/by-user/{name}")
    def user_by_name(name: str) -> str:
        return f"user:{name}"

    return app


def make_module(app_factory: Any) -> type:
    @module(imports=[ServiceModule])
    class DepotModule:
        @create()
        def create_registry(self) -> ComponentRegistry:
            return LocalComponentRegistry()

        @create()
        def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
            return FastAPIServer(app_factory(), manager, registry)

    return DepotModule


def plain_app() -> FastAPI:
    return user_routes(FastAPI())


def app_with_middleware() -> FastAPI:
    app = user_routes(FastAPI())

    @app.middleware("http")
    async def tag(request: Request, call_next: Any) -> Any:
        return await call_next(request)

    return app


@pytest.fixture(scope="module")
def servers():
    booted = []
    try:
        for factory in (plain_app, app_with_middleware):
            environment = FastAPIServer.boot(make_module(factory), host="127.0.0.1", port=0)
            booted.append(environment)
        fast, reference = (environment.get(FastAPIServer) for environment in booted)
        assert fast.url != reference.url
        yield fast, reference
    finally:
        for environment in booted:
            environment.destroy()


PARCEL = {"label": "box", "weight": 2.5, "tags": ["fragile"], "shade": "dark"}

# (method, path, query, body bytes or None, content type) -- valid and invalid requests alike
REQUESTS: list[tuple[str, str, str, bytes | None, str | None]] = [
    ("GET", "/depot/parcels/7", "", None, None),
    ("GET", "/depot/parcels/7", "verbose=true", None, None),
    ("GET", "/depot/parcels/7", "verbose=yes&verbose=0", None, None),
    ("GET", "/depot/parcels/seven", "", None, None),
    ("GET", "/depot/parcels/7", "verbose=maybe", None, None),
    ("GET", "/depot/parcels/special", "", None, None),
    ("GET", "/depot/parcels/", "", None, None),
    ("HEAD", "/depot/parcels/7", "", None, None),
    ("POST", "/depot/parcels/7", "", None, None),
    ("GET", "/depot/find", "label=a&tags=x&tags=y&tags=z&limit=2", None, None),
    ("GET", "/depot/find", "label=a&tags=x&day=2026-11-24", None, None),
    ("GET", "/depot/find", "label=a", None, None),
    ("GET", "/depot/find", "tags=x", None, None),
    ("GET", "/depot/find", "label=a&limit=lots", None, None),
    ("GET", "/depot/find", "label=a&day=yesterday", None, None),
    ("GET", "/depot/find", "label=&tags=", None, None),
    ("GET", "/depot/find", "label=%E2%82%AC+%26&tags=%2F", None, None),
    ("GET", "/depot/find", "label=a;b&tags=c&&tags=d&limit=1&limit=2", None, None),
    ("GET", "/depot/find", "label=x&tags=y&unknown=z&=q", None, None),
    ("POST", "/depot/parcels", "sender=ann", b'{"label":"box","weight":2.5,"tags":["fragile"],"shade":"dark"}', "application/json"),
    ("POST", "/depot/parcels", "sender=ann", b'{"label":"box","weight":"2.5"}', "application/json"),
    ("POST", "/depot/parcels", "sender=ann", b'{"label":"box"}', "application/json"),
    ("POST", "/depot/parcels", "sender=ann", b'{"label":"box","weight":1,"shade":"plaid"}', "application/json"),
    ("POST", "/depot/parcels", "sender=ann", b'{"label": "box", "weight": ', "application/json"),
    ("POST", "/depot/parcels", "sender=ann", b"[1, 2]", "application/json"),
    ("POST", "/depot/parcels", "sender=ann", b"", "application/json"),
    ("POST", "/depot/parcels", "sender=ann", b'{"label":"box","weight":2.5}', "text/plain"),
    ("POST", "/depot/parcels", "sender=ann", b'{"label":"box","weight":2.5}', "application/json; charset=utf-8"),
    ("POST", "/depot/parcels", "sender=ann", b'{"label":"box","weight":2.5}', None),
    ("POST", "/depot/parcels", "", b'{"label":"box","weight":2.5}', "application/json"),
    ("PUT", "/depot/senders/bob", "", b'{"name":"Bob","priority":"4"}', "application/json"),
    ("PUT", "/depot/senders/bob", "", b'{"priority":4}', "application/json"),
    ("POST", "/depot/notes", "times=3", b'"ab"', "application/json"),
    ("POST", "/depot/notes", "", b"42", "application/json"),
    ("DELETE", "/depot/parcels", "", None, None),
    ("GET", "/depot/files/a/b/c.txt", "", None, None),
    ("GET", "/depot/files/a%20b/%E2%82%AC", "", None, None),
    ("GET", "/depot/fail/teapot", "", None, None),
    ("GET", "/depot/fail/gone", "", None, None),
    ("GET", "/depot/fail/parcel", "", None, None),
    ("GET", "/depot/async/parcels/3", "", None, None),
    ("GET", "/depot/async/parcels/x", "", None, None),
    ("GET", "/depot/shadowed", "", None, None),
    ("GET", "/depot/by-user/zoe", "", None, None),
    ("GET", "/depot/nowhere", "", None, None),
    # more than the socket takes at once: the worker writes a part, the loop the rest
    ("GET", "/depot/big", "size=12000000", None, None),
]


def send(client: httpx.Client, url: str, method: str, path: str, query: str, body: bytes | None, ctype: str | None):
    headers = {"content-type": ctype} if ctype else {}
    target = f"{url}{path}?{query}" if query else url + path
    return client.request(method, target, content=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "query", "body", "ctype"), REQUESTS)
def test_the_fast_path_answers_as_fastapi_does(servers, method, path, query, body, ctype):
    fast, reference = servers
    with httpx.Client(timeout=10) as client:
        mine = send(client, fast.url, method, path, query, body, ctype)
        theirs = send(client, reference.url, method, path, query, body, ctype)
    assert mine.status_code == theirs.status_code
    assert mine.content == theirs.content
    # every header but the date, in order (the fast path writes what FastAPI's response would)
    assert headers_of(mine, fast) == headers_of(theirs, reference)


def headers_of(reply: httpx.Response, server: FastAPIServer) -> list[tuple[bytes, bytes]]:
    """The raw headers without the date; the server's own port (in a redirect's location) made neutral."""
    port = str(server.port).encode()
    return [(name, value.replace(port, b"PORT")) for name, value in reply.headers.raw if name != b"date"]


def test_valid_requests_take_the_fast_path_and_invalid_ones_reach_fastapi(servers):
    fast, reference = servers
    path_of = fast.rest_fast_path
    inline = fast.protocol_class
    with httpx.Client(timeout=10) as client:
        before, inline_before = path_of.served, inline.stats.served
        assert client.get(f"{fast.url}/depot/parcels/7").json()["label"] == "p7"
        assert client.post(f"{fast.url}/depot/parcels?sender=ann", json=PARCEL).status_code == 201
        assert path_of.served == before + 2
        # the server's protocol answered both, without an ASGI task
        assert inline is None or inline.stats.served == inline_before + 2
        assert client.get(f"{fast.url}/depot/parcels/seven").status_code == 422
        assert client.get(f"{fast.url}/depot/shadowed").json() == "user"
        assert client.get(f"{fast.url}/depot/by-user/zoe").json() == "user:zoe"
        assert path_of.served == before + 2
        assert inline is None or inline.stats.served == inline_before + 2
        reference_served = reference.rest_fast_path.served
        assert client.get(f"{reference.url}/depot/parcels/7").status_code == 200
        assert reference.rest_fast_path.served == reference_served  # middleware: FastAPI answers everything


def test_sync_implementations_run_in_the_thread_pool_on_the_fast_path(servers):
    fast, _ = servers
    with httpx.Client(timeout=10) as client:
        name = client.get(f"{fast.url}/depot/thread").json()
    assert name.startswith("warpcall-sync")


def test_routes_added_after_startup_are_respected(servers):
    fast, _ = servers
    app = fast.fast_api

    @app.get("/depot/parcels/{parcel_id}/label")
    def late_label(parcel_id: int) -> str:
        return f"late:{parcel_id}"

    with httpx.Client(timeout=10) as client:
        assert client.get(f"{fast.url}/depot/parcels/5/label").json() == "late:5"
        assert client.get(f"{fast.url}/depot/parcels/5").json()["label"] == "p5"


def app_with_exception_handler() -> FastAPI:
    app = FastAPI()

    @app.exception_handler(HTTPException)
    async def teapot(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"custom": exc.status_code}, status_code=exc.status_code)

    return app


@contextlib.contextmanager
def booted(app_factory: Any) -> Iterator[FastAPIServer]:
    environment = FastAPIServer.boot(make_module(app_factory), host="127.0.0.1", port=0)
    try:
        yield environment.get(FastAPIServer)
    finally:
        environment.destroy()


def test_a_custom_exception_handler_turns_the_fast_path_off():
    with booted(app_with_exception_handler) as server, httpx.Client(timeout=10) as client:
        reply = client.get(f"{server.url}/depot/fail/teapot")
        assert (reply.status_code, reply.json()) == (418, {"custom": 418})
        assert client.get(f"{server.url}/depot/parcels/1").status_code == 200
        assert server.rest_fast_path.served == 0


def test_overlap_check_is_conservative():
    from warpcall.server.rest_fast import _may_overlap

    assert not _may_overlap("/depot/parcels/{id}", "/depot/by-user/{name}")
    assert not _may_overlap("/a/{x}", "/a/{x}/b")
    assert _may_overlap("/depot/by-user/{anything}", "/depot/by-user/{name}")
    assert _may_overlap("/a/{x}/c", "/a/b/{y}")
    assert _may_overlap("/a/{x}", "/{rest:path}")


@pytest.mark.parametrize(
    "query",
    [
        b"",
        b"a=1",
        b"a=1&&b=&c&=x&a=2",
        b"a=%20b+c&d=e%2Bf",
        b"a=1;b=2",
        b"=",
        b"&&",
        b"k=v=w",
        b"caf\xe9=1",
        b"e=%E2%82%AC&bad=%zz%4&cut=%E2%82&p%61ir=%3D%26",
        b"m=hello%20world",
    ],
)
def test_query_pairs_are_what_starlette_reads(query):
    from urllib.parse import parse_qsl

    from warpcall.server.rest_fast import _query_pairs

    assert _query_pairs(query) == parse_qsl(query.decode("latin-1"), keep_blank_values=True)


class TimedRoute(APIRoute):
    """A user's route class: it stamps every response, so FastAPI must serve its routes."""

    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()

        async def stamped(request: Request) -> Any:
            response = await handler(request)
            response.headers["x-stamped"] = "yes"
            return response

        return stamped


def app_with_route_class() -> FastAPI:
    app = FastAPI()
    app.router.route_class = TimedRoute
    return app


def test_a_user_route_class_keeps_its_routes_on_fastapi():
    with booted(app_with_route_class) as server, httpx.Client(timeout=10) as client:
        reply = client.get(f"{server.url}/depot/parcels/4")
        assert reply.status_code == 200 and reply.json()["label"] == "p4"
        assert reply.headers.get("x-stamped") == "yes"
        assert server.rest_fast_path.served == 0


def test_a_caller_that_left_never_gets_its_reply_on_another_connection(servers):
    """A worker writes its reply to a duplicate of its own connection's socket: when the caller hangs up
    mid-call and a new connection takes the freed descriptor, the late reply cannot reach it."""
    fast, _ = servers
    request = b"GET /depot/slow?seconds=0.3 HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"
    with socket.create_connection(("127.0.0.1", fast.port), timeout=5) as leaving:
        leaving.sendall(request)
        time.sleep(0.05)  # the call is under way
    with socket.create_connection(("127.0.0.1", fast.port), timeout=5) as staying:
        time.sleep(0.45)  # the left caller's reply is written meanwhile
        staying.sendall(b"GET /depot/parcels/4 HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        data = b""
        deadline = time.monotonic() + 5
        while b'"p4"' not in data and time.monotonic() < deadline:
            data += staying.recv(65536)
        staying.settimeout(0.2)
        with contextlib.suppress(TimeoutError):
            data += staying.recv(65536)
    assert data.count(b"HTTP/1.1 ") == 1 and b'"p4"' in data and b"slept" not in data
    with httpx.Client(timeout=10) as client:  # and the server goes on
        assert client.get(f"{fast.url}/depot/slow", params={"seconds": 0}).json() == "slept 0.0"


def test_pipelined_rest_requests_are_answered_in_order(servers):
    fast, _ = servers
    paths = ["/depot/parcels/1", "/depot/slow?seconds=0.05", "/depot/big?size=3000000", "/depot/parcels/2"]
    with socket.create_connection(("127.0.0.1", fast.port), timeout=5) as sock:
        sock.sendall(b"".join(b"GET %s HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n" % path.encode() for path in paths))
        data, bodies = b"", []
        deadline = time.monotonic() + 10
        while len(bodies) < len(paths) and time.monotonic() < deadline:
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                start = data.index(b"content-length: ") + 16
                length = int(data[start:data.index(b"\r", start)])
                if len(data) >= end + 4 + length:
                    bodies.append(data[end + 4:end + 4 + length])
                    data = data[end + 4 + length:]
                    continue
            data += sock.recv(1 << 20)
    assert [len(body) for body in bodies][2] == 3_000_002  # the JSON string, quotes included
    assert [body for i, body in enumerate(bodies) if i != 2] == [
        b'{"label":"p1","weight":0.5,"tags":[],"shade":"light"}', b'"slept 0.05"',
        b'{"label":"p2","weight":1.0,"tags":[],"shade":"light"}',
    ]
