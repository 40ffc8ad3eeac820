"""The README's health checks (``cache``, ``fail_if_slower_than``) and an overridden ``get_health``, served
by a real server on 127.0.0.1 and read with raw GET requests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import ModuleType

import pytest
from readme_support import get, port_of, running, stop

import rawhttp


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[ModuleType]:
    with running("readme_health.app", tmp_path_factory.mktemp("registry")) as module:
        yield module


def health(app: ModuleType, path: str = "/health") -> tuple[int, dict[str, dict[str, str]] | str]:
    status, body = get(port_of(app.environment), path)
    reply = json.loads(body)
    return status, {"status": reply["status"], **{check["name"]: check for check in reply["checks"]}}


def test_all_checks_pass(app) -> None:
    status, reply = health(app)
    assert status == 200
    assert reply["status"] == "OK"
    assert reply["check_performance"]["status"] == "OK"
    assert reply["check"]["status"] == "OK"


def test_a_cached_check_keeps_its_result_for_cache_seconds(app) -> None:
    health(app)  # ran (or is cached) OK
    app.STATE["ok"] = False
    try:
        status, reply = health(app)
        # cache=10: the failure is not seen for 10 s after the OK run
        assert (status, reply["check"]["status"]) == (200, "OK")
    finally:
        app.STATE["ok"] = True


def test_cache_expires_after_the_given_seconds(app) -> None:
    runs = app.STATE["short_runs"]
    health(app)
    first = runs[-1]
    count = len(runs)
    health(app)
    assert len(runs) == count  # within 0.5 s of its run (the answer came at once): cached
    # the next run comes once 0.5 s have passed since the cached one began, not before
    rawhttp.wait_until(lambda: health(app) and len(runs) > count, timeout=3.0, what="the short check to run again")
    assert runs[-1] - first >= 0.5


def test_a_check_slower_than_fail_if_slower_than_is_an_error(app) -> None:
    app.STATE["slow_for"] = 1.3
    try:
        status, reply = health(app)
        assert status == 503
        assert reply["status"] == "ERROR"
        assert reply["check_performance"]["status"] == "ERROR"
        assert reply["check"]["status"] == "OK"
    finally:
        app.STATE["slow_for"] = 0.0
    # the slow run still finishing is joined, then checks are fast again
    rawhttp.wait_until(lambda: health(app)[0] == 200, timeout=3.0, what="the performance check to pass again")


def test_an_overridden_get_health_is_what_the_endpoint_serves(app) -> None:
    app.STATE["ok"] = False  # were the checks run, "check" would be ERROR once its cache expired
    try:
        status, reply = health(app, "/other-health")
        assert (status, reply) == (200, {"status": "OK"})  # HealthCheckManager.Health(HealthStatus.OK): no checks
    finally:
        app.STATE["ok"] = True


def test_destroy_stops_the_server(app) -> None:
    stop(app)
