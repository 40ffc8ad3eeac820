"""The client side of channels as aspyx-service 0.11.6 has it, against real uvicorn servers on 127.0.0.1.

- ``HTTPXChannel.request`` / ``request_async`` with aspyx's signature, answering an ``httpx.Response`` and
  raising aspyx's exception types; a subclass overriding them is called for every remote call;
- custom httpx clients get the request's headers as a mutable mapping (the seed README's intercepting
  client does ``headers = kwargs.pop("headers", {})`` then ``headers["Authorization"] = ...``);
- ``TokenContext``'s access token travels as ``Authorization: Bearer <token>`` on every channel, sync and
  async, on the compiled transport and on httpx clients; never two Authorization headers;
- 401 and 403 answers raise ``MissingTokenException`` / ``InvalidTokenException`` /
  ``TokenExpiredException`` / ``AuthorizationException`` on every channel, and count neither as instance
  failures (circuit breakers) nor as reasons to send the call again.
"""

from __future__ import annotations

import asyncio
import inspect
from abc import abstractmethod
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from rawhttp import UvicornReference
from warpcall import (
    AbstractComponent,
    AuthorizationException,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    InvalidTokenException,
    LocalComponentRegistry,
    MissingTokenException,
    RemoteServiceException,
    Service,
    ServiceCommunicationException,
    ServiceManager,
    ServiceModule,
    TokenException,
    TokenExpiredException,
    component,
    get,
    implementation,
    rest,
    service,
)
from warpcall.channels.base import channel
from warpcall.channels.dispatch import DispatchJSONChannel, DispatchMsgpackChannel
from warpcall.channels.http import USE_CLIENT_DEFAULT, HTTPXChannel, RequestHeaders
from warpcall.channels.rest import RestChannel
from warpcall.context import TokenContext
from warpcall.di import create, module
from warpcall.service import component_descriptor

TIMEOUT = 10.0
BUILTIN = ["dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest"]
# the httpx client path (a subclass made the client) and a subclass's own request / request_async
CUSTOM = ["json-httpx", "json-own-request", "rest-own-request"]
README = ["msgpack-readme", "rest-readme"]  # the README's intercepting client, sync and async
ALL = BUILTIN + CUSTOM + README + ["aspyx-style", "client-auth"]

#: the raw header lists of the requests the echo server received (names lowercase, bytes decoded)
SEEN: list[list[tuple[str, str]]] = []
#: (channel name, sync/async) of every call that went through an overriding request / request_async
OWN_REQUESTS: list[tuple[str, str]] = []


# --- services ----------------------------------------------------------------------------------------------


@service(name="echo")
@rest("/api/echo")
class EchoService(Service):
    @get("/hello/{name}")
    @abstractmethod
    def hello(self, name: str) -> str: ...

    @get("/hello-async/{name}")
    @abstractmethod
    async def hello_async(self, name: str) -> str: ...

    @get("/fail/{name}")
    @abstractmethod
    def fail(self, name: str) -> str: ...


@service(name="guarded")
@rest("/api/guarded")
class GuardedService(Service):
    @get("/hello/{name}")
    @abstractmethod
    def hello(self, name: str) -> str: ...

    @get("/hello-async/{name}")
    @abstractmethod
    async def hello_async(self, name: str) -> str: ...


@component(name="compat", services=[EchoService])
class CompatComponent(Component):
    pass


@component(name="guard", services=[GuardedService])
class GuardComponent(Component):
    pass


@implementation()
class EchoServiceImpl(EchoService):
    def hello(self, name: str) -> str:
        return f"hello {name}"

    async def hello_async(self, name: str) -> str:
        return f"hello {name}"

    def fail(self, name: str) -> str:
        raise ValueError(f"no {name} here")


@implementation()
class GuardedServiceImpl(GuardedService):
    def hello(self, name: str) -> str:  # never reached: the guard's addresses are the guard server's
        return name

    async def hello_async(self, name: str) -> str:
        return name


@implementation()
class CompatComponentImpl(AbstractComponent, CompatComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress(name, f"http://127.0.0.1:{port}") for name in ALL]


GUARD_URL: list[str] = []  # the guard server's URL, known before the environment starts


@implementation()
class GuardComponentImpl(AbstractComponent, GuardComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        # the guard component's calls go to the guard server, which refuses them all (401 / 403)
        return [ChannelAddress(name, GUARD_URL[0]) for name in ALL]


# --- custom channels ----------------------------------------------------------------------------------------


@channel("json-httpx")
class JSONOverHttpx(DispatchJSONChannel):
    """A subclass making the clients: calls go through httpx (with warpcall's transport under it)."""

    def make_client(self) -> httpx.Client:
        return super().make_client()

    def make_async_client(self) -> httpx.AsyncClient:
        return super().make_async_client()


class OwnRequest:
    """A subclass overriding request / request_async as aspyx-service's users do (aspyx's signature)."""

    name: str

    def request(
        self,
        http_method: str,
        url: str,
        json: Any | None = None,
        params: Any | None = None,
        headers: Any | None = None,
        timeout: Any = USE_CLIENT_DEFAULT,
        content: Any | None = None,
    ) -> httpx.Response:
        OWN_REQUESTS.append((self.name, "sync"))
        response: httpx.Response = super().request(  # type: ignore[misc]
            http_method, url, json=json, params=params, headers=headers, timeout=timeout, content=content
        )
        return response

    async def request_async(
        self,
        http_method: str,
        url: str,
        json: Any | None = None,
        params: Any | None = None,
        headers: Any | None = None,
        timeout: Any = USE_CLIENT_DEFAULT,
        content: Any | None = None,
    ) -> httpx.Response:
        OWN_REQUESTS.append((self.name, "async"))
        response: httpx.Response = await super().request_async(  # type: ignore[misc]
            http_method, url, json=json, params=params, headers=headers, timeout=timeout, content=content
        )
        return response


@channel("json-own-request")
class JSONOwnRequest(OwnRequest, DispatchJSONChannel):
    pass


@channel("rest-own-request")
class RestOwnRequest(OwnRequest, RestChannel):
    pass


@channel("client-auth")
class ClientWithAuthorization(DispatchJSONChannel):
    """A client whose default headers carry an Authorization of their own (as tests/service's advice does)."""

    def make_client(self) -> httpx.Client:
        client = super().make_client()
        client.headers["Authorization"] = "Basic c3lzOnB3"
        return client

    def make_async_client(self) -> httpx.AsyncClient:
        client = super().make_async_client()
        client.headers["Authorization"] = "Basic YXN5bmM6cHc="
        return client


@channel("aspyx-style")
class AspyxStyleChannel(HTTPXChannel):
    """A channel written as aspyx-service's own dispatch-json channel is: the public request, serialize_args,
    get_deserializer and service_names (the envelope the dispatch endpoint speaks)."""

    def invoke(self, invocation: Any) -> Any:
        service_name = self.service_names[invocation.type]
        assert self.component_descriptor is not None
        request = {
            "method": f"{self.component_descriptor.name}:{service_name}:{invocation.method.__name__}",
            "args": self.serialize_args(invocation),
        }
        http_result = self.request("post", f"{self.get_url()}/invoke", json=request, timeout=self.timeout)
        result = http_result.json()
        if result["exception"] is not None:
            raise RemoteServiceException(f"server side exception {result['exception']}")
        return self.get_deserializer(invocation.type, invocation.method)(result["result"])

    async def invoke_async(self, invocation: Any) -> Any:
        service_name = self.service_names[invocation.type]
        assert self.component_descriptor is not None
        request = {
            "method": f"{self.component_descriptor.name}:{service_name}:{invocation.method.__name__}",
            "args": self.serialize_args(invocation),
        }
        data = await self.request_async("post", f"{self.get_url()}/invoke", json=request, timeout=self.timeout)
        result = data.json()
        if result["exception"] is not None:
            raise RemoteServiceException(f"server side exception {result['exception']}")
        return self.get_deserializer(invocation.type, invocation.method)(result["result"])


# the seed README's intercepting client ("Intercepting calls"), as written there, and its async twin


class InterceptingClient(httpx.Client):
    # constructor

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.token_provider = lambda: "from-interceptor"  # README: `...`
        super().__init__(*args, **kwargs)

    # override

    def request(self, method, url, *args, **kwargs):  # type: ignore[no-untyped-def]
        headers = kwargs.pop("headers", {})
        headers["Authorization"] = f"Bearer {self.token_provider()}"
        kwargs["headers"] = headers

        return super().request(method, url, *args, **kwargs)


class AsyncInterceptingClient(httpx.AsyncClient):
    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.token_provider = lambda: "from-async-interceptor"
        super().__init__(*args, **kwargs)

    async def request(self, method, url, *args, **kwargs):  # type: ignore[no-untyped-def]
        headers = kwargs.pop("headers", {})
        headers["Authorization"] = f"Bearer {self.token_provider()}"
        kwargs["headers"] = headers

        return await super().request(method, url, *args, **kwargs)


@channel("msgpack-readme")
class MsgpackReadme(DispatchMsgpackChannel):
    def make_client(self) -> httpx.Client:
        return InterceptingClient(timeout=TIMEOUT)

    def make_async_client(self) -> httpx.AsyncClient:
        return AsyncInterceptingClient(timeout=TIMEOUT)


@channel("rest-readme")
class RestReadme(RestChannel):
    def make_client(self) -> httpx.Client:
        return InterceptingClient(timeout=TIMEOUT)

    def make_async_client(self) -> httpx.AsyncClient:
        return AsyncInterceptingClient(timeout=TIMEOUT)


# --- servers --------------------------------------------------------------------------------------------------


def make_echo_app() -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def record(request: Request, call_next: Any) -> Any:
        SEEN.append([(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.raw])
        return await call_next(request)

    return app


#: what the guard server answers, by the bearer token it gets (no token: a challenge without an error code)
CHALLENGES: dict[str | None, tuple[int, str]] = {
    None: (401, 'Bearer realm="guard"'),  # RFC 6750 3.1: no credentials, no error code
    "absent": (401, 'Bearer error="invalid_token", error_description="missing token"'),  # aspyx's reading
    "old": (401, 'Bearer realm="guard", error="invalid_token", error_description="The access token expired"'),
    "forged": (401, 'Bearer error="invalid_token", error_description="signature verification failed"'),
    "reader": (403, 'Bearer error="insufficient_scope", error_description="needs the writer role"'),
}
EXPECTED: dict[str | None, type[Exception]] = {
    None: MissingTokenException,
    "absent": MissingTokenException,
    "old": TokenExpiredException,
    "forged": InvalidTokenException,
    "reader": AuthorizationException,
}
GUARD_SEEN: list[str] = []


def make_guard_app() -> FastAPI:
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def guard(request: Request, path: str) -> JSONResponse:
        GUARD_SEEN.append(path)
        authorization = request.headers.get("authorization")
        token = authorization.removeprefix("Bearer ") if authorization else None
        status, challenge = CHALLENGES[token]
        detail = "Not authenticated" if status == 401 else "Forbidden"
        return JSONResponse({"detail": detail}, status_code=status, headers={"WWW-Authenticate": challenge})

    return app


@module(imports=[ServiceModule])
class CompatModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(make_echo_app(), manager, registry)


@pytest.fixture(scope="module")
def guard():
    with UvicornReference(make_guard_app()) as server:
        GUARD_URL[:] = [f"http://127.0.0.1:{server.port}"]
        yield GUARD_URL[0]


@pytest.fixture(scope="module")
def manager(guard):
    environment = FastAPIServer.boot(CompatModule, host="127.0.0.1", port=0)
    yield environment.get(ServiceManager)
    environment.destroy()


def call(proxy: Any, mode: str, name: str) -> str:
    if mode == "sync":
        return str(proxy.hello(name))
    return str(asyncio.run(asyncio.wait_for(proxy.hello_async(name), TIMEOUT)))


def authorizations(headers: list[tuple[str, str]]) -> list[str]:
    return [value for name, value in headers if name.lower() == "authorization"]


def channel_of(proxy: Any) -> HTTPXChannel:
    found: HTTPXChannel = proxy._warpcall_channel
    return found


# --- token propagation ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("name", BUILTIN + CUSTOM)
def test_the_callers_token_travels_as_bearer(manager, name, mode):
    proxy = manager.get_service(EchoService, name)
    SEEN.clear()
    with TokenContext.use("token-1"):
        assert call(proxy, mode, "ann") == "hello ann"
    assert call(proxy, mode, "bob") == "hello bob"  # no token set: none sent
    assert [authorizations(headers) for headers in SEEN] == [["Bearer token-1"], []]


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("name", BUILTIN + CUSTOM)
def test_a_token_that_cannot_be_a_header_value_is_refused_before_sending(manager, name, mode):
    proxy = manager.get_service(EchoService, name)
    SEEN.clear()
    with TokenContext.use("abc\r\nX-Injected: 1"):
        with pytest.raises(ServiceCommunicationException) as raised:
            call(proxy, mode, "kim")
    message = str(raised.value)
    assert "authorization" in message.lower() and "CR, LF or NUL" in message
    assert "X-Injected" not in message  # the token is not repeated in the error
    assert SEEN == []  # nothing reached the server


@pytest.mark.parametrize("name", BUILTIN + CUSTOM)
def test_each_thread_and_task_sends_its_own_token(manager, name):
    proxy = manager.get_service(EchoService, name)
    SEEN.clear()

    async def as_user(token: str) -> str:
        TokenContext.set(token)  # in this task's context only
        result: str = await proxy.hello_async(token)
        return result

    async def both() -> list[str]:
        return list(await asyncio.gather(as_user("t-one"), as_user("t-two")))

    assert asyncio.run(asyncio.wait_for(both(), TIMEOUT)) == ["hello t-one", "hello t-two"]
    assert TokenContext.get_access_token() is None  # the tasks' tokens stayed in their contexts
    assert sorted(authorizations(headers)[0] for headers in SEEN) == ["Bearer t-one", "Bearer t-two"]


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("name", README)
def test_the_readme_intercepting_client_gets_a_mapping_and_its_header_wins(manager, name, mode):
    proxy = manager.get_service(EchoService, name)
    SEEN.clear()
    assert call(proxy, mode, "ann") == "hello ann"
    with TokenContext.use("token-2"):
        assert call(proxy, mode, "bob") == "hello bob"
    expected = "Bearer from-interceptor" if mode == "sync" else "Bearer from-async-interceptor"
    # the interceptor's Authorization replaces the channel's, never a second header
    assert [authorizations(headers) for headers in SEEN] == [[expected], [expected]]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_channel_written_as_aspyx_writes_them(manager, mode):
    proxy = manager.get_service(EchoService, "aspyx-style")
    SEEN.clear()
    with TokenContext.use("token-4"):
        assert call(proxy, mode, "ida") == "hello ida"
    assert [authorizations(headers) for headers in SEEN] == [["Bearer token-4"]]
    with pytest.raises(AuthorizationException) as raised:  # a 401 raises out of the public request
        with TokenContext.use("old"):
            call(manager.get_service(GuardedService, "aspyx-style"), mode, "ida")
    assert type(raised.value) is TokenExpiredException


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_clients_own_authorization_wins_over_the_token(manager, mode):
    proxy = manager.get_service(EchoService, "client-auth")
    SEEN.clear()
    with TokenContext.use("token-5"):
        assert call(proxy, mode, "jo") == "hello jo"
    expected = "Basic c3lzOnB3" if mode == "sync" else "Basic YXN5bmM6cHc="
    assert [authorizations(headers) for headers in SEEN] == [[expected]]


def test_an_overriding_request_is_called_for_every_call(manager):
    OWN_REQUESTS.clear()
    for name in ("json-own-request", "rest-own-request"):
        proxy = manager.get_service(EchoService, name)
        for mode in ("sync", "async", "sync"):
            assert call(proxy, mode, "cy") == "hello cy"
    assert OWN_REQUESTS == [
        ("json-own-request", "sync"),
        ("json-own-request", "async"),
        ("json-own-request", "sync"),
        ("rest-own-request", "sync"),
        ("rest-own-request", "async"),
        ("rest-own-request", "sync"),
    ]


@pytest.mark.parametrize("name", ["json-own-request", "rest-own-request", "rest-readme", "json-httpx"])
def test_an_implementation_error_through_custom_requests_keeps_its_type(manager, name):
    # the overriding request raises over the 500 as aspyx does; the channel reads the reply as any other
    proxy = manager.get_service(EchoService, name)
    with pytest.raises(RemoteServiceException) as raised:
        proxy.fail("dee")
    assert raised.value.remote_type == "ValueError"
    assert "no dee here" in str(raised.value)


# --- the public, aspyx-shaped API ----------------------------------------------------------------------------


def test_request_has_aspyx_services_signature():
    for method in (HTTPXChannel.request, HTTPXChannel.request_async):
        parameters = list(inspect.signature(method).parameters.values())
        assert [(p.name, p.kind.name) for p in parameters] == [
            ("self", "POSITIONAL_OR_KEYWORD"),
            ("http_method", "POSITIONAL_OR_KEYWORD"),
            ("url", "POSITIONAL_OR_KEYWORD"),
            ("json", "POSITIONAL_OR_KEYWORD"),
            ("params", "POSITIONAL_OR_KEYWORD"),
            ("headers", "POSITIONAL_OR_KEYWORD"),
            ("timeout", "POSITIONAL_OR_KEYWORD"),
            ("content", "POSITIONAL_OR_KEYWORD"),
        ]
        assert [p.default for p in parameters[3:]] == [None, None, None, USE_CLIENT_DEFAULT, None]


def standalone(url: str, kind: type[HTTPXChannel] = DispatchJSONChannel) -> HTTPXChannel:
    made = kind()
    made.setup(component_descriptor(CompatComponent), None)
    made.selector.set_urls([url])
    made.customize()
    return made


def test_request_answers_an_httpx_response_and_raises_aspyx_exception_types(manager):
    url = channel_of(manager.get_service(EchoService, "rest")).get_url()
    made = standalone(url)
    SEEN.clear()
    response = made.request("get", f"{url}/api/echo/hello/eve")
    assert isinstance(response, httpx.Response) and response.json() == "hello eve"
    caller_headers = {"Authorization": "Basic ZXZlOnB3", "X-Trace": "1"}
    with TokenContext.use("token-3"):
        made.request("get", f"{url}/api/echo/hello/eve")
        made.request("get", f"{url}/api/echo/hello/eve", headers=caller_headers)
    assert caller_headers == {"Authorization": "Basic ZXZlOnB3", "X-Trace": "1"}  # the caller's dict, unchanged
    # the caller's Authorization wins over the token: one header, theirs
    assert [authorizations(headers) for headers in SEEN] == [[], ["Bearer token-3"], ["Basic ZXZlOnB3"]]
    with pytest.raises(RemoteServiceException) as raised:
        made.request("get", f"{url}/api/echo/nowhere")
    assert isinstance(raised.value.__cause__, httpx.HTTPStatusError) and "HTTP 404" in str(raised.value)

    async def asynchronously() -> httpx.Response:
        return await made.request_async("get", f"{url}/api/echo/hello/fay", params={"unused": "1"})

    assert asyncio.run(asyncio.wait_for(asynchronously(), TIMEOUT)).json() == "hello fay"
    made.close()


def test_request_to_a_closed_port_is_a_communication_failure():
    with UvicornReference(FastAPI()) as server:
        url = f"http://127.0.0.1:{server.port}"
    made = standalone(url)
    with pytest.raises(ServiceCommunicationException) as raised:
        made.request("get", f"{url}/x", timeout=2.0)
    assert isinstance(raised.value.__cause__, httpx.ConnectError)

    async def asynchronously() -> httpx.Response:
        return await made.request_async("get", f"{url}/x", timeout=2.0)

    with pytest.raises(ServiceCommunicationException):
        asyncio.run(asyncio.wait_for(asynchronously(), TIMEOUT))


def test_the_clients_are_made_once_and_kept(manager):
    made = standalone("http://127.0.0.1:9")
    assert made.get_client() is made.get_client()

    async def twice() -> bool:
        return made.get_async_client() is made.get_async_client()

    assert asyncio.run(twice())
    made.close()


def test_serializers_as_aspyx_has_them():
    made = standalone("http://127.0.0.1:9")
    descriptor = component_descriptor(CompatComponent)
    assert made.service_names == {EchoService: "echo"}
    assert [s("x") for s in made.get_serializers(EchoService, EchoService.hello)] == ["x"]
    assert made.get_deserializer(EchoService, EchoService.hello)("y") == "y"
    assert descriptor.name == "compat"


def test_request_headers_compare_names_case_insensitively():
    headers = RequestHeaders([("content-type", "application/json"), ("authorization", "Bearer a")])
    headers["Authorization"] = "Bearer b"
    assert list(headers.items()) == [("content-type", "application/json"), ("Authorization", "Bearer b")]
    assert headers["AUTHORIZATION"] == "Bearer b" and "Content-Type" in headers and isinstance(headers, dict)
    headers.update({"Content-Type": "application/msgpack"}, x_more="1")
    assert headers.pop("CONTENT-TYPE") == "application/msgpack" and "content-type" not in headers
    assert headers.setdefault("authorization", "ignored") == "Bearer b"
    assert headers.get("missing", "-") == "-" and headers.copy() == headers


# --- 401 and 403 -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("name", BUILTIN + CUSTOM)
def test_refusals_raise_the_token_and_authorization_exceptions(manager, name, mode):
    proxy = manager.get_service(GuardedService, name)
    for token, expected in EXPECTED.items():
        GUARD_SEEN.clear()
        with TokenContext.use(token) if token else _no_token():
            with pytest.raises(AuthorizationException) as raised:
                call(proxy, mode, "gil")
        assert type(raised.value) is expected, (token, raised.value)
        assert GUARD_URL[0] in str(raised.value)
        assert len(GUARD_SEEN) == 1  # refused is an answer: never sent again
    # a 401 is a token problem (TokenException), a 403 is not
    assert issubclass(TokenExpiredException, TokenException)
    assert not issubclass(AuthorizationException, TokenException)


def test_refusals_are_no_instance_failures(manager):
    proxy = manager.get_service(GuardedService, "dispatch-json")
    breakers = channel_of(proxy).breakers
    assert breakers is not None  # on by default: 5 consecutive failures would eject the instance
    GUARD_SEEN.clear()
    for _ in range(8):  # bounded
        with pytest.raises(MissingTokenException):
            proxy.hello("hal")
    assert len(GUARD_SEEN) == 8 and not breakers.ejected()


def test_the_public_request_maps_refusals_too(guard):
    made = standalone(guard, RestChannel)
    for token, expected in EXPECTED.items():
        with TokenContext.use(token) if token else _no_token():
            with pytest.raises(AuthorizationException) as raised:
                made.request("post", f"{guard}/anything", json={"a": 1})
        assert type(raised.value) is expected
        assert isinstance(raised.value.__cause__, httpx.HTTPStatusError)
    made.close()


class _no_token:
    def __enter__(self) -> None:
        self.mark = TokenContext.access_token.set(None)

    def __exit__(self, *exc_info: object) -> None:
        TokenContext.access_token.reset(self.mark)
