"""``warpcall services``: the components, services, method signatures, channels and instances that are running."""

from __future__ import annotations

import argparse
from typing import Any

HELP = "list components, services, method signatures, channels and instances from the registry or a server"
DESCRIPTION = """List what is running: each component of the registry (--registry, embedded by default; or
the one server at --url), its instances with their channels and health path, its services and the
signature of every method. The registry knows components and addresses; the signatures come from
the servers themselves (GET /warpcall/services, which shows only what the server exposes and what
the token may call). Human-readable by default, --json for tools.

Exit status: 0 listed, 2 bad command line, 5 no component found, 6 no instance reachable,
7 timeout, 8 token refused.

examples:
  warpcall services
  warpcall services shapes --namespace myapp
  warpcall services --registry etcd://127.0.0.1:2379 --json
  warpcall services --url http://127.0.0.1:8000 --token "$TOKEN"
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``warpcall services``."""
    from warpcall.cli._common import add_registry_arguments

    parser.add_argument("components", metavar="COMPONENT", nargs="*", help="only these components (default: all)")
    parser.add_argument("--json", action="store_true", help="print one JSON document for tools")
    add_registry_arguments(parser)


def run(options: argparse.Namespace) -> int:
    """List; the exit status."""
    from warpcall.cli._common import CommandError, fail

    try:
        return _run(options)
    except CommandError as error:
        return fail("services", error)


def collect(options: argparse.Namespace) -> tuple[list[dict[str, Any]], list[str]]:
    """``(components, problems)``: each component with its instances (each with its state) and services, as
    the first instance that answered describes them; problems are the instances that did not answer."""
    from concurrent.futures import ThreadPoolExecutor

    from warpcall.cli._common import (
        NOT_FOUND,
        CommandError,
        Instance,
        check_url,
        client,
        describe_server,
        read_registry,
    )

    wanted = list(options.components)
    namespace: str | None = None
    if options.url is not None:
        base = check_url(options.url)
        instances: list[Instance] = []
        direct = True
    else:
        registry = read_registry(options, wanted[0] if len(wanted) == 1 else None)
        namespace = registry.namespace
        instances = [i for i in registry.instances if not wanted or i.component in wanted]
        if not instances:
            which = f"component(s) {', '.join(wanted)}" if wanted else "component"
            raise CommandError(NOT_FOUND, f"no live instance of any {which} in {registry.label}")
        direct = False
    bases = [base] if direct else list(dict.fromkeys(url for i in instances for url in i.urls()))
    with client(options) as http, ThreadPoolExecutor(max_workers=min(8, len(bases))) as pool:
        restricted: set[str] = set()  # the servers that hid methods from this token

        def ask(url: str) -> tuple[str, list[dict[str, Any]] | CommandError]:
            try:
                components, hidden = describe_server(http, url)
            except CommandError as error:
                return url, error
            if hidden:
                restricted.add(url)
            return url, components

        answers = dict(pool.map(ask, bases))
    if direct:
        answer = answers[base]
        if isinstance(answer, CommandError):
            raise answer
        for served in answer:
            if not wanted or served["name"] in wanted:
                addresses = [(a["channel"], a["url"]) for a in served.get("addresses", ())]
                instances.append(Instance(served["name"], addresses, None, served.get("health", "")))
        if not instances:
            raise CommandError(NOT_FOUND, f"{base} serves none of {', '.join(wanted)}")
    components: dict[tuple[str, str | None], dict[str, Any]] = {}
    problems: list[str] = []
    for instance in instances:
        key = (instance.component, instance.namespace)
        entry = components.setdefault(key, {
            "name": instance.component, "namespace": instance.namespace, "health": instance.health,
            "instances": [], "services": None,
        })
        states: list[dict[str, Any]] = []
        for url in instance.urls():
            reply = answers.get(url if not direct else base)
            if isinstance(reply, CommandError):
                states.append({"url": url, "status": "error", "error": str(reply), "exit": reply.status})
                continue
            described: dict[str, Any] | None = next(
                (c for c in reply or () if c.get("name") == instance.component), None
            )
            if described is None:
                states.append({"url": url, "status": "error", "exit": NOT_FOUND,
                               "error": f"{url} does not serve {instance.component} (or nothing of it to this token)"})
                continue
            states.append({"url": url, "status": "ok", "restricted": (base if direct else url) in restricted})
            if entry["services"] is None:
                entry["services"] = described.get("services", [])
                entry["health"] = entry["health"] or described.get("health", "")
        entry["instances"].append({
            "channels": [{"channel": name, "url": url} for name, url in instance.addresses],
            "urls": states,
        })
        problems += [str(state["error"]) for state in states if state["status"] != "ok"]
    result = list(components.values())
    for entry in result:
        if entry["services"] is None:
            entry["services"] = []
    if namespace is not None:
        for entry in result:
            entry["namespace"] = namespace
    return result, problems


def _run(options: argparse.Namespace) -> int:
    from warpcall.cli._common import UNREACHABLE, CommandError, print_json

    components, problems = collect(options)
    reached = any(state["status"] == "ok" for c in components for i in c["instances"] for state in i["urls"])
    if not reached:
        # nothing answered: the first instance's own reason decides the status (unreachable, timeout, 401, ...)
        first = next((state for c in components for i in c["instances"] for state in i["urls"]), None)
        status = first["exit"] if first is not None else UNREACHABLE
        raise CommandError(status, first["error"] if first is not None else "no instance answered")
    if options.json:
        print_json({"components": components})
    else:
        print(render(components), end="")
    return 0


def render(components: list[dict[str, Any]]) -> str:
    """The listing for a reader."""
    from warpcall.cli._common import signature

    lines = []
    for component in sorted(components, key=lambda c: (c["name"], c["namespace"] or "")):
        title = f"component {component['name']}"
        if component.get("namespace"):
            title += f"  (namespace {component['namespace']})"
        if component.get("health"):
            title += f"  health {component['health']}"
        lines.append(title)
        lines.append("  instances:")
        for instance in component["instances"]:
            channels = ", ".join(dict.fromkeys(c["channel"] for c in instance["channels"]))
            for state in instance["urls"]:
                tail = "" if state["status"] == "ok" else f"  UNREACHABLE: {state['error']}"
                if state.get("restricted"):
                    tail = "  (some methods are hidden from this token)"
                lines.append(f"    {state['url']}  [{channels}]{tail}")
        for service in component["services"]:
            lines.append(f"  service {service['name']}  ({service.get('type', '')})")
            if service.get("description"):
                lines.append(f"    {service['description']}")
            for method in service.get("methods", ()):
                rest = method.get("rest")
                route = f"    [{rest['method']} {rest['path']}]" if rest else ""
                lines.append(f"    {signature(method)}{route}")
                if method.get("doc"):
                    lines.append(f"        {method['doc']}")
        lines.append("")
    return "\n".join(lines)
