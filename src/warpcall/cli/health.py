"""``warpcall health``: each health check's status, details and duration, of one server or every instance of a component."""

from __future__ import annotations

import argparse
from typing import Any

HELP = "show each health check's status, details and duration for a URL or every instance of a component"
DESCRIPTION = """Ask health endpoints and show each check's status, details and duration.

TARGET is a URL or a component name. A URL with a path is asked as it is (http://host:8000/health);
a bare server URL is asked for the health paths of the components it serves (GET /warpcall/services),
/health when it describes none. A component name asks every instance the registry lists
(--registry, embedded by default) on the component's health path.

Exit status: 0 every instance healthy (OK or WARNING), 1 one is not (503, ERROR, DRAINING),
2 bad command line, 5 no instance found, 6 unreachable, 7 timeout; with several instances, the
status of the first one that is not healthy.

examples:
  warpcall health http://127.0.0.1:8000/health
  warpcall health http://127.0.0.1:8000
  warpcall health shapes --namespace myapp
  warpcall health shapes --registry consul://127.0.0.1:8500 --json
"""

#: the health path asked when nothing says which
DEFAULT_HEALTH_PATH = "/health"
HEALTHY = ("OK", "WARNING")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``warpcall health``."""
    from warpcall.cli._common import add_registry_arguments

    parser.add_argument("target", metavar="URL|COMPONENT", help="a server or health URL, or a component name")
    parser.add_argument("--json", action="store_true", help="print one JSON document for tools")
    add_registry_arguments(parser)


def run(options: argparse.Namespace) -> int:
    """Ask and show; the exit status."""
    from warpcall.cli._common import CommandError, fail

    try:
        return _run(options)
    except CommandError as error:
        return fail("health", error)


def _targets(options: argparse.Namespace, http: Any) -> list[tuple[str, str]]:
    """``(component or '', health URL)`` pairs to ask."""
    from urllib.parse import urlsplit

    from warpcall.cli._common import (
        UNKNOWN,
        CommandError,
        check_url,
        describe_server,
        no_instance,
        read_registry,
    )

    target = options.target
    if "://" in target or options.url is not None:
        url = check_url(options.url or target, "URL" if options.url is None else "--url")
        if urlsplit(url).path not in ("", "/"):
            return [("", url)]
        try:
            paths = [(c["name"], c.get("health") or "") for c in describe_server(http, url)[0]]
        except CommandError as error:
            if error.status != UNKNOWN:
                raise
            paths = []  # not described (older server, switched off): the usual path
        found = [(name, url + path) for name, path in paths if path]
        return found or [("", url + DEFAULT_HEALTH_PATH)]
    registry = read_registry(options, target)
    instances = registry.of(target)
    if not instances:
        raise no_instance(registry, target)
    pairs: list[tuple[str, str]] = []
    for instance in instances:
        for base in instance.urls():
            path = instance.health
            if not path:
                try:
                    described = describe_server(http, base)[0]
                    path = next((c.get("health") or "" for c in described if c.get("name") == target), "")
                except CommandError:
                    path = ""  # its health endpoint is asked anyway: that answer (or silence) is the verdict
            pair = (target, base + (path or DEFAULT_HEALTH_PATH))
            if pair not in pairs:
                pairs.append(pair)
    return pairs


def check(http: Any, url: str) -> dict[str, Any]:
    """One health endpoint's answer: ``status``, ``checks`` and ``exit`` (0 healthy), or ``error``."""
    from warpcall.cli._common import FAILED, SERVER, CommandError, fetch

    try:
        answer = fetch(http, "GET", url)
    except CommandError as error:
        return {"url": url, "status": "UNREACHABLE", "error": str(error), "checks": [], "exit": error.status}
    try:
        body = answer.json()
        status = str(body["status"])
        checks = list(body.get("checks") or [])
    except (ValueError, KeyError, TypeError):
        text = " ".join(answer.text.split())[:200]
        return {"url": url, "status": "UNKNOWN", "http": answer.status_code, "checks": [], "exit": SERVER,
                "error": f"{url} answered {answer.status_code} with no health report: {text!r}"}
    healthy = answer.status_code == 200 and status in HEALTHY
    return {"url": url, "status": status, "http": answer.status_code, "checks": checks, "exit": 0 if healthy else FAILED}


def _run(options: argparse.Namespace) -> int:
    from warpcall.cli._common import client, print_json

    with client(options) as http:
        pairs = _targets(options, http)
        reports = [{"component": component, **check(http, url)} for component, url in pairs]
    if options.json:
        print_json({"instances": reports})
    else:
        print(render(reports), end="")
    return next((report["exit"] for report in reports if report["exit"]), 0)


def render(reports: list[dict[str, Any]]) -> str:
    """The reports for a reader: one line per instance, one per check under it."""
    lines = []
    for report in reports:
        head = f"{report['url']}  {report['status']}"
        if report.get("component"):
            head = f"{report['component']}  {head}"
        if report.get("http") not in (None, 200):
            head += f"  (HTTP {report['http']})"
        if report.get("error"):
            head += f"  {report['error']}"
        lines.append(head)
        checks = report["checks"]
        width = max((len(str(c.get("name", ""))) for c in checks), default=0)
        for item in checks:
            duration = item.get("duration")
            took = f"{duration * 1000:8.1f} ms" if isinstance(duration, (int, float)) else " " * 11
            details = f"  {item['details']}" if item.get("details") else ""
            lines.append(f"  {str(item.get('name', '')):<{width}}  {str(item.get('status', '')):<8} {took}{details}")
    return "\n".join(lines) + "\n"
