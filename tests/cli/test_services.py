# ruff: noqa: F811 - the fixtures imported from cli_support are parameters of the tests
"""``warpcall services`` and the route it reads, ``GET /warpcall/services``: real servers on 127.0.0.1, the
embedded registry (private per test), the Consul emulator and a real etcd, tokens and the expose allow-list."""

from __future__ import annotations

import json
import os
import shutil
import sys

import httpx
import pytest
from cli_support import (  # noqa: F401 - fixtures
    HERE,
    boot,
    closed_port,
    ghost,
    registry_dir,
    run_cli,
    run_process,
    server,
    silent,
    token,
)

from rawhttp import wait_until
from warpcall.cli import _common as codes

sys.path.insert(0, str(HERE.parent / "registry"))  # the Consul emulator and the etcd runner of the registry tests


def one_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1, text
    return lines[0]


def methods_of(description: dict) -> dict[str, dict]:
    return {
        method["qualified"]: method
        for component in description["components"]
        for service in component["services"]
        for method in service["methods"]
    }


# --- the route ---------------------------------------------------------------------------------------

def test_the_route_describes_signatures_defaults_schemas_and_routes(server):
    answer = httpx.get(server.url + "/warpcall/services", timeout=5)
    assert answer.status_code == 200
    description = answer.json()
    assert description["server"] == server.url and description["restricted"] is False
    components = {component["name"]: component for component in description["components"]}
    assert set(components) == {"shapes", "vault"}
    shapes = components["shapes"]
    assert shapes["health"] == "/health"
    assert {(a["channel"], a["url"]) for a in shapes["addresses"]} == {
        (channel, server.url) for channel in ("dispatch-json", "dispatch-msgpack", "rest")
    }
    methods = methods_of(description)
    add = methods["shapes:geometry:add"]
    assert add["parameters"] == [
        {"name": "a", "type": "int", "required": True, "schema": {"type": "integer"}},
        {"name": "b", "type": "int", "required": False, "default": 1, "schema": {"type": "integer"}},
    ]
    assert (add["returns"], add["async"], add["rest"]) == ("int", False, None)
    mirror = methods["shapes:geometry:mirror"]
    assert mirror["doc"] == "Swap x and y."
    assert mirror["parameters"][0]["schema"]["properties"] == {
        "x": {"title": "X", "type": "integer"}, "y": {"title": "Y", "type": "integer"}
    }
    assert methods["shapes:geometry:scale"]["returns"] == "dict[str, list[Point]]"
    assert methods["shapes:geometry:slow"]["async"] is True
    assert methods["shapes:greeter:shift"]["rest"] == {
        "method": "POST", "path": "/api/shift", "parameters": {"point": "body", "by": "query"}
    }
    # not in the OpenAPI document: it is no route of the application's API
    assert "/warpcall/services" not in httpx.get(server.url + "/openapi.json", timeout=5).json()["paths"]


@pytest.mark.parametrize("setting", ["CLIAPP_MIDDLEWARE", "CLIAPP_ASGI"])
def test_the_route_is_the_same_on_every_server_path(boot, setting):
    plain, other = boot(), boot(**{setting: "1"})
    for headers in ({}, {"authorization": "Bearer not-a-jwt"}):
        first = httpx.get(plain.url + "/warpcall/services", headers=headers, timeout=5)
        second = httpx.get(other.url + "/warpcall/services", headers=headers, timeout=5)
        assert (first.status_code, second.status_code) == (200, 200)
        assert json.dumps(first.json()["components"]).replace(plain.url, "URL") == json.dumps(
            second.json()["components"]).replace(other.url, "URL")
    # the calls themselves still go their own way on each
    answer = httpx.post(other.url + "/invoke", json={"method": "shapes:geometry:add", "args": [1, 2]}, timeout=5)
    assert answer.json() == {"result": 3, "exception": None}


def test_the_route_shows_only_what_is_exposed(boot):
    served = boot(CLIAPP_EXPOSE="shapes:geometry:add, vault")
    methods = methods_of(httpx.get(served.url + "/warpcall/services", timeout=5).json())
    assert set(methods) == {"shapes:geometry:add", "vault:vault:secret", "vault:vault:ping"}


def test_the_route_shows_only_what_the_token_may_call(boot):
    served = boot(CLIAPP_JWT="1")
    url = served.url + "/warpcall/services"
    anonymous = httpx.get(url, timeout=5).json()
    assert set(methods_of(anonymous)) == {"vault:vault:ping"}  # @public only
    assert anonymous["restricted"] is True
    user = httpx.get(url, headers={"authorization": f"Bearer {token('user')}"}, timeout=5).json()
    assert "vault:vault:secret" not in methods_of(user) and "shapes:geometry:add" in methods_of(user)
    assert user["restricted"] is True
    admin = httpx.get(url, headers={"authorization": f"Bearer {token('admin')}"}, timeout=5).json()
    assert "vault:vault:secret" in methods_of(admin) and admin["restricted"] is False


def test_the_route_answers_401_when_a_token_would_show_something(boot):
    served = boot(CLIAPP_JWT="1", CLIAPP_EXPOSE="shapes")  # nothing public is served
    answer = httpx.get(served.url + "/warpcall/services", timeout=5)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert answer.json()["exception"]["type"] == "MissingTokenException"
    expired = httpx.get(served.url + "/warpcall/services", timeout=5,
                        headers={"authorization": f"Bearer {token('admin', expires_in=-60)}"})
    assert expired.status_code == 401 and expired.json()["exception"]["type"] == "TokenExpiredException"


# --- the command -------------------------------------------------------------------------------------

def test_the_listing_for_a_reader(server, capsys):
    result = run_cli(capsys, "services")
    assert (result.status, result.err) == (0, "")
    out = result.out
    assert "component shapes  (namespace cliapp)  health /health" in out
    assert f"    {server.url}  [dispatch-json, dispatch-msgpack, rest]" in out
    assert "  service geometry  (cliapp.GeometryService)" in out
    assert "    add(a: int, b: int = 1) -> int" in out
    assert '    scale(points: list[Point], factor: float = 2.0, label: str = "scaled") -> dict[str, list[Point]]' in out
    assert "    async slow(seconds: float) -> str" in out
    assert "    hello(name: str, polite: bool = false) -> str    [GET /api/hello/{name}]" in out
    assert "component vault  (namespace cliapp)  health /vault-health" in out


def test_json_for_tools(boot, capsys):
    first, second = boot(), boot()
    result = run_cli(capsys, "services", "shapes", "--json")
    assert result.status == 0
    (component,) = result.json()["components"]
    assert (component["name"], component["namespace"], component["health"]) == ("shapes", "cliapp", "/health")
    urls = [state["url"] for instance in component["instances"] for state in instance["urls"]]
    assert sorted(urls) == sorted([first.url, second.url])
    assert all(state["status"] == "ok" for instance in component["instances"] for state in instance["urls"])
    services = {service["name"]: service for service in component["services"]}
    assert [m["name"] for m in services["geometry"]["methods"]] == ["mirror", "add", "scale", "fail", "slow"]


def test_url_lists_one_server_without_a_registry(server, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("WARPCALL_REGISTRY_DIR", str(tmp_path / "none"))
    result = run_cli(capsys, "services", "vault", "--url", server.url, "--json")
    assert result.status == 0
    (component,) = result.json()["components"]
    assert component["name"] == "vault"
    assert [m["name"] for s in component["services"] for m in s["methods"]] == ["secret", "ping"]
    result = run_cli(capsys, "services", "nothing", "--url", server.url)
    assert result.status == codes.NOT_FOUND and "serves none of nothing" in one_line(result.err)


def test_an_empty_registry_and_an_unknown_component(registry_dir, capsys):
    result = run_cli(capsys, "services")
    assert result.status == codes.NOT_FOUND
    assert one_line(result.err).startswith("warpcall services: no live instance of any component in the embedded")


def test_a_dead_instance_is_shown_beside_a_live_one(registry_dir, ghost, boot, capsys):
    dead = ghost("shapes")
    boot()
    result = run_cli(capsys, "services", "shapes")
    assert result.status == 0
    assert f"    {dead}  [dispatch-json]  UNREACHABLE: warpcall" not in result.out
    assert f"    {dead}  [dispatch-json]  UNREACHABLE: cannot reach {dead}/warpcall/services: connection refused" in (
        result.out
    )
    assert "add(a: int, b: int = 1) -> int" in result.out  # from the live one


def test_only_dead_instances_is_unreachable(registry_dir, ghost, capsys):
    ghost("shapes")
    result = run_cli(capsys, "services")
    assert result.status == codes.UNREACHABLE and "connection refused" in one_line(result.err)


def test_a_server_that_never_answers_times_out(registry_dir, silent, capsys):
    result = run_cli(capsys, "services", "--url", silent.url, "--timeout", "0.3")
    assert result.status == codes.TIMEOUT and "did not answer within 0.3 s" in one_line(result.err)


def test_tokens(boot, capsys):
    boot(CLIAPP_JWT="1", CLIAPP_EXPOSE="shapes")
    result = run_cli(capsys, "services")
    assert result.status == codes.REFUSED and "MissingTokenException" in one_line(result.err)
    result = run_cli(capsys, "services", "--token", token("user"), "--json")
    assert result.status == 0 and "shapes:geometry:add" in result.out


def test_the_listing_says_when_methods_are_hidden_from_the_token(boot, capsys):
    served = boot(CLIAPP_JWT="1")
    result = run_cli(capsys, "services", "vault")
    assert result.status == 0
    assert f"    {served.url}  [dispatch-json]  (some methods are hidden from this token)" in result.out
    assert "ping() -> str" in result.out and "secret()" not in result.out
    result = run_cli(capsys, "services", "vault", "--token", token("admin"))
    assert "hidden" not in result.out and "secret() -> str" in result.out


def test_a_server_without_the_route(registry_dir, capsys):
    from fastapi import FastAPI

    from rawhttp import UvicornReference  # a bare uvicorn + FastAPI app: no warpcall route at all

    with UvicornReference(FastAPI()) as reference:
        result = run_cli(capsys, "services", "--url", f"http://127.0.0.1:{reference.port}")
    assert result.status == codes.UNKNOWN and "does not describe its services" in one_line(result.err)


@pytest.fixture
def consul():
    from consul_emulator import ConsulEmulator

    emulator = ConsulEmulator(reap_interval=0.2, deregister_minimum=0.0).start()
    yield emulator
    emulator.stop()


def test_consul(consul, boot, capsys):
    registry = f"consul://{consul.address}"
    served = boot(CLIAPP_REGISTRY=registry)

    def listed() -> set[str]:  # a component is listed once its instance's first health check passed
        result = run_cli(capsys, "services", "--registry", registry, "--json")
        return {c["name"] for c in result.json()["components"]} if result.status == 0 else set()

    # both, and no more: Consul's own service is no component (each check passes on its own schedule,
    # so the first answer may list one of the two)
    wait_until(lambda: listed() == {"shapes", "vault"}, 10, "both components passing in Consul")
    result = run_cli(capsys, "services", "--registry", registry, "--json")
    components = {c["name"]: c for c in result.json()["components"]}
    assert set(components) == {"shapes", "vault"}
    assert components["vault"]["health"] == "/vault-health"
    call = run_cli(capsys, "call", "shapes:geometry:add", "5", "--registry", registry)
    assert (call.status, call.json()) == (0, 6)
    health = run_cli(capsys, "health", "vault", "--registry", registry)
    assert health.status == 0 and f"{served.url}/vault-health  OK" in health.out


@pytest.mark.skipif(shutil.which("etcd") is None and os.environ.get("CI", "").lower() != "true",
                    reason="the etcd binary is missing: apt-get install etcd-server")
def test_etcd(boot, capsys, tmp_path):
    from registry_support import EtcdServer

    etcd = EtcdServer(tmp_path / "etcd").start()
    try:
        served = boot(CLIAPP_REGISTRY="etcd://" + etcd.endpoint.removeprefix("http://"))
        registry = "etcd://" + etcd.endpoint.removeprefix("http://")
        result = run_cli(capsys, "services", "--registry", registry, "--json")
        assert result.status == 0
        assert {c["name"] for c in result.json()["components"]} == {"shapes", "vault"}
        call = run_cli(capsys, "call", "shapes:geometry:mirror", '{"x": 0, "y": 9}', "--registry", registry)
        assert call.json() == {"x": 9, "y": 0}
        health = run_cli(capsys, "health", "shapes", "--registry", registry)
        assert health.status == 0 and f"{served.url}/health  OK" in health.out
        # another prefix holds nothing
        assert run_cli(capsys, "services", "--registry", registry + "/elsewhere/").status == codes.NOT_FOUND
    finally:
        etcd.stop()


def test_end_to_end_as_a_process(server):
    result = run_process("services", "--json")
    assert (result.status, result.err) == (0, "")
    assert {c["name"] for c in json.loads(result.out)["components"]} == {"shapes", "vault"}
    result = run_process("services", "--timeout", "0")
    assert result.status == codes.USAGE and "positive number of seconds" in result.err
