"""Values on REST routes (issue 14, point 7): what JSON cannot carry is refused with a clear error, on both
sides; big integers travel; FastAPI's validation replies that fail with a plain-text 500 are 422 on
warpcall's routes (and only there); duplicate Content-Type headers are read as FastAPI reads them.

Every server case runs against three real servers on 127.0.0.1 serving the same service: the REST fast path
answered by the server's own protocol, the fast path behind uvicorn's protocol (``inline_protocol=False``),
and FastAPI answering everything (an app with a pass-through middleware). Where the point is "as FastAPI
does", the same request goes to the same route written as a plain FastAPI route under a bare uvicorn
(:class:`rawhttp.UvicornReference`).
"""

from __future__ import annotations

import asyncio
import math
from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import Body as FastAPIBody
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
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
    MarshalException,
    RemoteServiceException,
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
from warpcall.di import create, module
from warpcall.routes import may_hold_float


class Reading(BaseModel):
    value: int
    note: str = ""


@dataclass
class Tally:
    count: int
    label: str


FLOATS = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan, "one": 1.5}
CALLS: list[str] = []  # the implementation's calls, in order: a refused call never shows up here


@service(name="values")
@rest("/values")
class ValuesService(Service):
    @get("/ratio/{kind}")
    @abstractmethod
    def ratio(self, kind: str) -> float: ...

    @get("/series/{kind}")
    @abstractmethod
    async def series(self, kind: str) -> list[float]: ...

    @get("/named")
    @abstractmethod
    def named(self) -> dict[str, float]: ...

    @post("/scale")
    @abstractmethod
    def scale(self, factor: Body(float)) -> str: ...

    @get("/scale")
    @abstractmethod
    def scale_query(self, factor: float) -> str: ...

    @post("/count")
    @abstractmethod
    def count(self, value: Body(int)) -> int: ...

    @get("/count")
    @abstractmethod
    def count_query(self, value: int) -> int: ...

    @post("/tally")
    @abstractmethod
    async def tally(self, tally: Tally) -> Tally: ...

    @post("/reading")
    @abstractmethod
    def reading(self, reading: Reading) -> Reading: ...

    @post("/text")
    @abstractmethod
    def text(self, value: Body(str)) -> str: ...

    @get("/surrogate")
    @abstractmethod
    def surrogate(self) -> str: ...


@component(name="values-component", services=[ValuesService])
class ValuesComponent(Component):
    pass


@implementation()
class ValuesServiceImpl(ValuesService):
    def ratio(self, kind: str) -> float:
        CALLS.append(f"ratio {kind}")
        return FLOATS[kind]

    async def series(self, kind: str) -> list[float]:
        return [0.5, FLOATS[kind]]

    def named(self) -> dict[str, float]:
        return {"NaN": 1.0, "-Infinity": 2.0}  # the tokens inside strings are fine

    def scale(self, factor: float) -> str:
        CALLS.append(f"scale {factor!r}")
        return repr(factor)

    def scale_query(self, factor: float) -> str:
        return repr(factor)

    def count(self, value: int) -> int:
        return value

    def count_query(self, value: int) -> int:
        return value

    async def tally(self, tally: Tally) -> Tally:
        return Tally(tally.count + 1, tally.label)

    def reading(self, reading: Reading) -> Reading:
        return reading

    def text(self, value: str) -> str:
        CALLS.append("text")
        return value

    def surrogate(self) -> str:
        return "lone \ud800"


@implementation()
class ValuesComponentImpl(AbstractComponent, ValuesComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("rest", f"http://127.0.0.1:{port}")]


def user_routes(app: FastAPI) -> FastAPI:
    """A route of the user's beside warpcall's: FastAPI's behaviour must stay FastAPI's on it."""

    @app.post("/user/reading")
    def user_reading(reading: Reading) -> Reading:
        return reading

    return app


def plain_app() -> FastAPI:
    return user_routes(FastAPI())


def app_with_middleware() -> FastAPI:
    app = user_routes(FastAPI())

    @app.middleware("http")
    async def passing(request: Request, call_next: Any) -> Any:
        return await call_next(request)

    return app


def make_module(app_factory: Any, inline: bool = True) -> type:
    @module(imports=[ServiceModule])
    class ValuesModule:
        @create()
        def create_registry(self) -> ComponentRegistry:
            return LocalComponentRegistry()

        @create()
        def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
            return FastAPIServer(app_factory(), manager, registry, inline_protocol=inline)

    return ValuesModule


# (id, app factory, inline protocol, whether the REST fast path answers valid requests)
SETUPS = [
    ("fast-inline", plain_app, True, True),
    ("fast-asgi", plain_app, False, True),
    ("fastapi", app_with_middleware, True, False),
]


@pytest.fixture(scope="module")
def environments() -> Iterator[dict[str, Any]]:
    booted: dict[str, Any] = {}
    try:
        for name, factory, inline, _ in SETUPS:
            booted[name] = FastAPIServer.boot(make_module(factory, inline), host="127.0.0.1", port=0)
        yield booted
    finally:
        for environment in booted.values():
            environment.destroy()


@pytest.fixture(params=[setup[0] for setup in SETUPS])
def setup(request: pytest.FixtureRequest, environments: dict[str, Any]) -> tuple[FastAPIServer, Any, bool]:
    """(server, the rest proxy of its environment, whether the fast path answers valid requests)."""
    environment = environments[request.param]
    fast = next(s[3] for s in SETUPS if s[0] == request.param)
    return environment.get(FastAPIServer), environment.get(ServiceManager).get_service(ValuesService, "rest"), fast


def reference_app() -> FastAPI:
    """The same routes as plain FastAPI routes, for a bare uvicorn: what FastAPI itself does."""
    app = FastAPI()

    @app.post("/values/reading")
    def reading(reading: Reading) -> Reading:
        return reading

    @app.post("/values/text")
    def text(value: str = FastAPIBody()) -> str:
        return value

    @app.post("/values/count")
    def count(value: int = FastAPIBody()) -> int:
        return value

    return app


@pytest.fixture(scope="module")
def reference() -> Iterator[UvicornReference]:
    with UvicornReference(reference_app()) as served:
        yield served


def exchange(port: int, data: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    """Send ``data`` on a fresh connection; the reply's status, headers and body."""
    with connect(port) as sock:
        sock.sendall(data)
        status, headers, body = Reader(sock).response()
    return int(status.split()[1]), headers, body


def comparable(headers: dict[bytes, bytes]) -> dict[bytes, bytes]:
    return {name: value for name, value in headers.items() if name not in (b"date", b"server")}


# ---------------------------------------------------------------- non-finite floats


@pytest.mark.parametrize("kind", ["inf", "-inf", "nan"])
def test_a_non_finite_float_result_is_a_500_naming_the_method(setup, kind):
    server, _, fast = setup
    served = server.rest_fast_path.served
    for path, method in ((f"/values/ratio/{kind}", "values:ratio"), (f"/values/series/{kind}", "values:series")):
        status, headers, body = exchange(server.port, request(path, b"", None, method="GET"))
        assert status == 500
        assert headers[b"content-type"] == b"application/json"
        reply = httpx.Response(500, content=body).json()
        assert reply["type"] == "MarshalException"
        assert method in reply["detail"] and "non-finite float" in reply["detail"]
    assert server.rest_fast_path.served == served + (2 if fast else 0)


def test_finite_floats_and_the_tokens_inside_strings_pass(setup):
    server, values, _ = setup
    assert values.ratio("one") == 1.5
    assert values.named() == {"NaN": 1.0, "-Infinity": 2.0}


@pytest.mark.parametrize("kind", ["inf", "nan"])
def test_the_client_raises_the_servers_refusal(setup, kind):
    _, values, _ = setup
    with pytest.raises(RemoteServiceException) as caught:
        values.ratio(kind)
    assert caught.value.remote_type == "MarshalException"
    assert "values:ratio" in str(caught.value) and "non-finite float" in str(caught.value)


@pytest.mark.parametrize("factor", [math.inf, -math.inf, math.nan])
def test_a_client_refuses_a_non_finite_float_in_a_json_body_before_sending(setup, factor):
    _, values, _ = setup
    before = list(CALLS)
    with pytest.raises(MarshalException, match=r"values:scale: argument 'factor' holds a non-finite float"):
        values.scale(factor)
    assert CALLS == before  # nothing was sent, nothing ran
    assert values.scale(0.25) == "0.25"


@pytest.mark.parametrize("factor", [math.inf, -math.inf])
def test_a_query_parameter_carries_a_non_finite_float(setup, factor):
    # a query string is not JSON: "inf" is what FastAPI (pydantic) reads back as the float
    _, values, _ = setup
    assert values.scale_query(factor) == repr(factor)


def test_which_types_may_hold_a_float():
    assert not any(map(may_hold_float, (int, str, bool, bytes, Tally, list[int], dict[str, Tally], int | None)))
    assert all(map(may_hold_float, (float, Any, list, list[float], Reading | float, dict[str, float])))
    assert not may_hold_float(Reading) and may_hold_float(dict[str, Any])


# ---------------------------------------------------------------- big integers


@pytest.mark.parametrize("value", [2**64, 2**70 + 1, -(2**80) - 3, 10**30 + 7])
def test_big_integers_travel_exactly(setup, value):
    _, values, _ = setup
    assert values.count(value) == value
    assert values.count_query(value) == value
    assert asyncio.run(values.tally(Tally(value, "x"))) == Tally(value + 1, "x")


def test_a_big_integer_in_a_raw_body_is_read_exactly(setup, reference):
    server, _, fast = setup
    body = b"123456789012345678901234567890"
    served = server.rest_fast_path.served
    mine = exchange(server.port, request("/values/count", body))
    theirs = exchange(reference.port, request("/values/count", body))
    assert mine[0] == theirs[0] == 200 and mine[2] == theirs[2] == body
    assert server.rest_fast_path.served == served + (1 if fast else 0)  # the fast path read it, not FastAPI


# ---------------------------------------------------------------- surrogates and bytes that are not UTF-8


def test_a_lone_surrogate_in_a_result_is_a_500_naming_the_method(setup):
    server, values, _ = setup
    status, headers, body = exchange(server.port, request("/values/surrogate", b"", None, method="GET"))
    assert status == 500 and headers[b"content-type"] == b"application/json"
    reply = httpx.Response(500, content=body).json()
    assert reply["type"] == "MarshalException" and "values:surrogate" in reply["detail"]
    with pytest.raises(RemoteServiceException, match="values:surrogate"):
        values.surrogate()


def test_a_client_refuses_a_lone_surrogate_before_sending(setup):
    _, values, _ = setup
    before = list(CALLS)
    with pytest.raises(MarshalException, match=r"values:text: argument 'value'"):
        values.text("lone \ud800")
    with pytest.raises(MarshalException, match=r"values:ratio: argument 'kind'"):
        values.ratio("\udc00")
    assert CALLS == before


# (what, path, body, content type, FastAPI's own status on a plain route, warpcall's status)
BAD_INPUT = [
    ("NaN for an int", "/values/reading", b'{"value": NaN}', "application/json", 500, 422),
    ("Infinity for an int", "/values/reading", b'{"value": Infinity}', "application/json", 500, 422),
    ("1e400 for an int", "/values/reading", b'{"value": 1e400}', "application/json", 500, 422),
    ("NaN for a str", "/values/text", b"NaN", "application/json", 500, 422),
    ("a lone surrogate in a model", "/values/reading", b'{"value": 1, "note": "\\ud800"}', "application/json", 500, 422),
    ("a lone surrogate for a str", "/values/text", b'"a\\udfff"', "application/json", 500, 422),
    ("bytes not UTF-8 as text/plain", "/values/reading", b'{"value": "\xff"}', "text/plain", 500, 422),
    ("bytes not UTF-8, no content type", "/values/text", b"\xff\xfe", None, 500, 422),
    # FastAPI's own 4xx replies: warpcall's routes answer the same, byte for byte
    ("bytes not UTF-8 in JSON", "/values/reading", b'{"value": "\xff"}', "application/json", 400, 400),
    ("a string for an int", "/values/reading", b'{"value": "many"}', "application/json", 422, 422),
    ("JSON cut short", "/values/reading", b'{"value": 1', "application/json", 422, 422),
    ("an escape cut short", "/values/text", b'"\\ud800', "application/json", 422, 422),
    ("no body", "/values/count", b"", "application/json", 422, 422),
]


@pytest.mark.parametrize(("what", "path", "body", "ctype", "fastapi_status", "status"), BAD_INPUT,
                         ids=[case[0] for case in BAD_INPUT])
def test_bad_input_is_a_4xx_where_fastapi_answers_500(setup, reference, what, path, body, ctype, fastapi_status,
                                                      status):
    server, _, _ = setup
    before = list(CALLS)
    theirs = exchange(reference.port, request(path, body, ctype))
    mine = exchange(server.port, request(path, body, ctype))
    assert theirs[0] == fastapi_status  # what FastAPI itself does with the same route
    assert mine[0] == status
    assert CALLS == before  # no bad input reached the implementation
    if fastapi_status < 500:
        assert (mine[2], comparable(mine[1])) == (theirs[2], comparable(theirs[1]))
        return
    reply = httpx.Response(422, content=mine[2]).json()
    assert mine[1][b"content-type"] == b"application/json"
    # FastAPI's reply, with the input spelled as the caller sent it
    error = reply["detail"][0]
    assert set(error) >= {"type", "loc", "msg", "input"} and error["loc"][0] == "body"


def test_the_422_spells_the_input_as_sent(setup):
    server, _, _ = setup
    cases = [
        (b'{"value": NaN}', "application/json", "NaN"),
        (b'{"value": -Infinity}', "application/json", "-Infinity"),
        (b'\xff{"value": 1}', "text/plain", "\\xff{\"value\": 1}"),
    ]
    for body, ctype, shown in cases:
        status, _, reply = exchange(server.port, request("/values/reading", body, ctype))
        assert status == 422
        assert httpx.Response(422, content=reply).json()["detail"][0]["input"] == shown


def test_a_lone_surrogate_escape_is_refused_as_invalid_json(setup):
    server, _, _ = setup
    before = list(CALLS)
    for body in (b'"a\\ud800"', b'"\\udc00"', b'"\\ud800\\u0041"'):
        status, _, reply = exchange(server.port, request("/values/text", body))
        assert status == 422
        error = httpx.Response(422, content=reply).json()["detail"][0]
        assert error["type"] == "json_invalid" and error["loc"] == ["body"]
        assert "lone surrogate" in error["ctx"]["error"]
    assert CALLS == before
    # a pair is text, and a backslash before "u" is no escape
    for body, text in ((b'"\\ud83d\\ude00"', "\U0001f600"), (b'"\\\\ud800"', "\\ud800")):
        status, _, reply = exchange(server.port, request("/values/text", body))
        assert (status, httpx.Response(200, content=reply).json()) == (200, text)
    # another content type: FastAPI validates the raw text, no escape is read
    status, _, reply = exchange(server.port, request("/values/text", b'"\\ud800"', "text/plain"))
    assert (status, reply) == (200, b'"\\"\\\\ud800\\""')


def test_the_users_own_routes_keep_fastapis_behaviour(setup, reference):
    server, _, _ = setup
    nan = request("/user/reading", b'{"value": NaN}')
    assert exchange(server.port, nan)[0] == 500  # FastAPI's own handler, untouched
    good = request("/user/reading", b'{"value": 3}')
    assert exchange(server.port, good)[2] == b'{"value":3,"note":""}'


def test_the_fast_path_stays_on(setup):
    server, values, fast = setup
    served = server.rest_fast_path.served
    assert values.reading(Reading(value=4)) == Reading(value=4)
    assert server.rest_fast_path.served == served + (1 if fast else 0)


def app_with_validation_handler() -> FastAPI:
    app = FastAPI()

    @app.exception_handler(RequestValidationError)
    async def mine(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"mine": len(exc.errors())}, status_code=400)

    return app


def test_an_apps_own_validation_handler_answers_warpcalls_routes_too():
    environment = FastAPIServer.boot(make_module(app_with_validation_handler), host="127.0.0.1", port=0)
    try:
        server = environment.get(FastAPIServer)
        status, _, body = exchange(server.port, request("/values/reading", b'{"value": NaN}'))
        assert (status, body) == (400, b'{"mine":1}')
    finally:
        environment.destroy()


# ---------------------------------------------------------------- duplicate Content-Type and Content-Length


DUPLICATES = [
    ("json then text", "content-type: application/json\r\ncontent-type: text/plain\r\n"),
    ("text then json", "content-type: text/plain\r\ncontent-type: application/json\r\n"),
    ("json twice", "content-type: application/json\r\ncontent-type: application/json\r\n"),
    ("json then garbage", "content-type: application/json\r\ncontent-type: \x01\r\n"),
    ("json then empty", "content-type: application/json\r\ncontent-type:\r\n"),
]


@pytest.mark.parametrize(("what", "headers"), DUPLICATES, ids=[case[0] for case in DUPLICATES])
def test_duplicate_content_types_are_read_as_fastapi_reads_them(setup, reference, what, headers):
    server, _, _ = setup
    for body in (b'{"value": 5}', b'{"value": "x"}'):
        data = request("/values/reading", body, None, extra=headers)
        mine, theirs = exchange(server.port, data), exchange(reference.port, data)
        assert (mine[0], mine[2], comparable(mine[1])) == (theirs[0], theirs[2], comparable(theirs[1]))


LENGTHS = [
    ("the same twice", "content-length: 12\r\n", 12),
    ("differing", "content-length: 13\r\n", 12),
    ("signed", "content-length: +12\r\n", None),
]


@pytest.mark.parametrize(("what", "second", "length"), LENGTHS, ids=[case[0] for case in LENGTHS])
def test_duplicate_content_lengths_are_llhttps_to_judge(setup, reference, what, second, length):
    server, _, _ = setup
    body = b'{"value": 5}'
    head = "POST /values/reading HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
    if length is not None:
        head += f"content-length: {length}\r\n"
    data = (head + second + "\r\n").encode("latin-1") + body
    mine, theirs = exchange(server.port, data), exchange(reference.port, data)
    assert (mine[0], mine[2], comparable(mine[1])) == (theirs[0], theirs[2], comparable(theirs[1]))
