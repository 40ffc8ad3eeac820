# ruff: noqa: F811 - the fixtures imported from cli_support are parameters of the tests
"""``warpcall health URL|COMPONENT``: real servers on 127.0.0.1 and their health routes, the embedded registry
private per test, unhealthy, draining, dead and silent instances."""

from __future__ import annotations

import json

import httpx
from cli_support import (  # noqa: F401 - fixtures
    boot,
    closed_port,
    ghost,
    registry_dir,
    run_cli,
    run_process,
    server,
    silent,
)

from warpcall.cli import _common as codes


def one_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_a_health_url_shows_every_check(server, capsys):
    result = run_cli(capsys, "health", server.url + "/health")
    assert (result.status, result.err) == (0, "")
    lines = result.out.splitlines()
    assert lines[0] == f"{server.url}/health  OK"
    checks = {line.split()[0]: line for line in lines[1:]}
    assert set(checks) == {"store", "disk", "event-loop"}
    assert checks["store"].split()[1] == "OK" and checks["store"].endswith("store says ok")
    assert checks["store"].split()[3] == "ms"  # each check's duration


def test_json_has_status_details_and_duration_as_the_server_reports_them(server, capsys):
    result = run_cli(capsys, "health", server.url + "/health", "--json")
    (report,) = result.json()["instances"]
    served = httpx.get(server.url + "/health", timeout=5).json()
    assert (report["status"], report["http"], report["exit"]) == ("OK", 200, 0)
    assert [c["name"] for c in report["checks"]] == [c["name"] for c in served["checks"]]
    store = next(c for c in report["checks"] if c["name"] == "store")
    assert store["details"] == "store says ok" and isinstance(store["duration"], float)


def test_a_server_url_asks_each_components_health_path(server, capsys):
    result = run_cli(capsys, "health", server.url, "--json")
    assert result.status == 0
    reports = {report["component"]: report["url"] for report in result.json()["instances"]}
    assert reports == {"shapes": server.url + "/health", "vault": server.url + "/vault-health"}


def test_a_component_asks_every_instance_in_the_registry(boot, capsys):
    first, second = boot(), boot()
    result = run_cli(capsys, "health", "shapes")
    assert result.status == 0
    assert f"shapes  {first.url}/health  OK" in result.out and f"shapes  {second.url}/health  OK" in result.out


def test_warning_is_healthy_error_is_not(boot, capsys, monkeypatch):
    served = boot(CLIAPP_HEALTH="WARNING")
    result = run_cli(capsys, "health", "shapes")
    assert result.status == 0 and f"{served.url}/health  WARNING" in result.out
    assert "store says warning" in result.out
    monkeypatch.setenv("CLIAPP_HEALTH", "ERROR")  # read by the check on each run
    result = run_cli(capsys, "health", "shapes")
    assert result.status == codes.FAILED
    assert f"{served.url}/health  ERROR  (HTTP 503)" in result.out
    assert "store says error" in result.out


def test_a_dead_instance_of_two_fails_the_component(boot, ghost, capsys):
    boot()
    dead = ghost("shapes")
    result = run_cli(capsys, "health", "shapes", "--json")
    assert result.status == codes.UNREACHABLE
    states = {report["url"]: report["status"] for report in result.json()["instances"]}
    assert states[dead + "/health"] == "UNREACHABLE"
    assert sorted(states.values()) == ["OK", "UNREACHABLE"]


def test_a_draining_server_is_not_healthy(boot, capsys):
    served = boot()
    served.draining = True  # what a stopping server answers while it drains
    result = run_cli(capsys, "health", served.url + "/health")
    assert result.status == codes.FAILED and "DRAINING  (HTTP 503)" in result.out


def test_unreachable_and_silent_servers(registry_dir, silent, capsys):
    url = f"http://127.0.0.1:{closed_port()}/health"
    result = run_cli(capsys, "health", url)
    assert result.status == codes.UNREACHABLE
    assert f"{url}  UNREACHABLE  cannot reach {url}: connection refused" in result.out
    result = run_cli(capsys, "health", silent.url + "/health", "--timeout", "0.3")
    assert result.status == codes.TIMEOUT and "did not answer within 0.3 s" in result.out


def test_no_instance_and_bad_targets(registry_dir, capsys):
    result = run_cli(capsys, "health", "shapes")
    assert result.status == codes.NOT_FOUND
    assert "no live instance of component 'shapes'" in one_line(result.err)
    result = run_cli(capsys, "health", "ftp://127.0.0.1/health")
    assert result.status == codes.USAGE and "is not an http:// or https:// URL" in one_line(result.err)


def test_not_a_health_report(server, capsys):
    result = run_cli(capsys, "health", server.url + "/openapi.json")
    assert result.status == codes.SERVER and "no health report" in result.out


def test_end_to_end_as_a_process(server):
    result = run_process("health", "vault", "--json")
    assert (result.status, result.err) == (0, "")
    (report,) = json.loads(result.out)["instances"]
    assert report["url"] == server.url + "/vault-health" and report["status"] == "OK"
