"""``warpcall call``: call a service method from a shell, with JSON arguments, and print the result as JSON."""

from __future__ import annotations

import argparse
from typing import Any

HELP = "call component:service:method with JSON arguments and print the result as JSON"
DESCRIPTION = """Call one method of a running component and print its result as JSON on stdout.

Each ARG is one JSON value, in the method's parameter order; NAME=JSON passes a parameter by name
(the server's description of the method places it). The instance is found in the registry
(--registry, embedded by default), or called directly with --url. Channels: dispatch-json (the
default), dispatch-msgpack, and rest for methods with a REST route (their route, as the server
describes it). No Python class of the service is needed.

Errors are one line on stderr. Exit status: 0 success, 1 the method raised (its type and message),
2 bad command line or argument that is not JSON, 3 arguments refused by the server (400/413/422),
4 unknown service or method, 5 no instance found, 6 connection refused or reset, 7 timeout,
8 token refused (401/403), 9 other server error.

examples:
  warpcall call shapes:geometry:mirror '{"x": 1, "y": 2}'
  warpcall call shop:cart:add '"book"' 2
  warpcall call shop:cart:add item='"book"' quantity=2 --channel dispatch-msgpack
  warpcall call shop:cart:total --url http://127.0.0.1:8000 --token "$TOKEN" --timeout 2
  warpcall call shop:cart:total --registry consul://127.0.0.1:8500
  warpcall call shop:cart:total --namespace myapp --channel rest
"""

#: the channels the command speaks, in the order it prefers them when --channel is not given
CHANNELS = ("dispatch-json", "dispatch-msgpack", "rest")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``warpcall call``."""
    from warpcall.cli._common import add_registry_arguments

    target = parser.add_argument("target", metavar="component:service:method", help="the method to call")
    target.completer = _complete_target  # type: ignore[attr-defined]  # read by argcomplete
    parser.add_argument("args", metavar="ARG", nargs="*", help="a JSON value, or NAME=JSON for a keyword argument")
    parser.add_argument(
        "--channel", choices=CHANNELS, default=None,
        help="how to call (default: dispatch-json when the component offers it, else the first it offers)",
    )
    add_registry_arguments(parser)


def run(options: argparse.Namespace) -> int:
    """Make the call; the exit status (see the module's ``DESCRIPTION``)."""
    from warpcall.cli._common import CommandError, fail

    try:
        return _run(options)
    except CommandError as error:
        return fail("call", error)


def parse_target(target: str) -> tuple[str, str, str]:
    """``(component, service, method)`` of ``component:service:method``; CommandError(USAGE) otherwise."""
    from warpcall.cli._common import USAGE, CommandError

    parts = target.split(":")
    if len(parts) != 3 or not all(part.strip() for part in parts) or target != target.strip():
        raise CommandError(USAGE, f"{target!r} is not component:service:method (three names, two colons)")
    return parts[0], parts[1], parts[2]


def parse_arguments(texts: list[str]) -> tuple[list[Any], dict[str, Any]]:
    """The positional and keyword arguments: each text a JSON value, or ``NAME=JSON``."""
    import json
    import re

    from warpcall.cli._common import USAGE, CommandError

    positional: list[Any] = []
    keywords: dict[str, Any] = {}
    for index, text in enumerate(texts, 1):
        # a JSON value never starts with NAME= (strings start with a quote), so the forms cannot be confused
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", text, re.DOTALL)
        name, value = (match.group(1), match.group(2)) if match else (None, text)
        try:
            decoded = json.loads(value)
            json.dumps(decoded, allow_nan=False)  # 1e400, NaN, Infinity: no JSON the server reads
        except ValueError as exc:
            where = f"argument {name!r}" if name else f"argument {index}"
            hint = "; a string needs JSON quotes, e.g. '\"text\"'" if value and value[0] not in "[{\"-0123456789" else ""
            raise CommandError(USAGE, f"{where} is not JSON ({exc}): {value!r}{hint}") from None
        if name is None:
            if keywords:
                raise CommandError(USAGE, f"argument {index} comes after a NAME=JSON argument; put positional ones first")
            positional.append(decoded)
        elif name in keywords:
            raise CommandError(USAGE, f"argument {name!r} is given twice")
        else:
            keywords[name] = decoded
    return positional, keywords


def place_keywords(method: dict[str, Any], positional: list[Any], keywords: dict[str, Any]) -> list[Any]:
    """The positional argument list of a call with ``keywords``, from the method's description (defaults fill gaps)."""
    from warpcall.cli._common import USAGE, CommandError, signature

    params = method.get("parameters", [])
    names = [param["name"] for param in params]
    if len(positional) > len(names):
        raise CommandError(USAGE, f"{method['qualified']} takes {len(names)} argument(s), {len(positional)} given: "
                           f"{signature(method)}")
    for name in keywords:
        if name not in names:
            raise CommandError(USAGE, f"{method['qualified']} has no parameter {name!r}: {signature(method)}")
        if names.index(name) < len(positional):
            raise CommandError(USAGE, f"parameter {name!r} is given by position and by name")
    last = max((names.index(name) for name in keywords), default=len(positional) - 1)
    args = list(positional)
    for index in range(len(positional), last + 1):
        param = params[index]
        if param["name"] in keywords:
            args.append(keywords[param["name"]])
        elif not param.get("required", True) and "default" in param:
            args.append(param["default"])  # as the server described it; the server checks it like any value
        else:
            raise CommandError(USAGE, f"{method['qualified']}: parameter {param['name']!r} is missing: "
                               f"{signature(method)}")
    return args


def _run(options: argparse.Namespace) -> int:
    from warpcall.cli._common import (
        NOT_FOUND,
        REFUSED,
        UNKNOWN,
        UNREACHABLE,
        CommandError,
        check_url,
        client,
        describe_server,
        find_method,
        no_instance,
        print_json,
        read_registry,
    )

    component, _, _ = parse_target(options.target)
    qualified = options.target
    positional, keywords = parse_arguments(options.args)
    if options.url is not None:
        bases = [check_url(options.url)]
        channel = options.channel or CHANNELS[0]
    else:
        registry = read_registry(options, component)
        instances = registry.of(component)
        if not instances:
            raise no_instance(registry, component)
        namespaces = sorted({i.namespace or "''" for i in instances if i.namespace is not None})
        if registry.namespace is None and len(namespaces) > 1:
            raise CommandError(
                NOT_FOUND, f"component {component!r} is registered in several namespaces ({', '.join(namespaces)}) "
                "of the embedded registry; choose one with --namespace",
            )
        offered = list(dict.fromkeys(name for instance in instances for name in instance.channels()))
        channel = options.channel or next((name for name in CHANNELS if name in offered), "")
        if channel not in offered:
            wanted = f"the {channel} channel" if channel else f"any channel this command speaks ({', '.join(CHANNELS)})"
            raise CommandError(
                NOT_FOUND, f"component {component!r} does not offer {wanted} in {registry.label}; "
                f"it offers {', '.join(offered) or 'none'}",
            )
        bases = list(dict.fromkeys(url for instance in instances for url in instance.urls(channel)))
    unreached: list[CommandError] = []
    with client(options) as http:
        for base in bases:  # the next instance only when this one could not be reached: nothing was sent
            try:
                method = None
                if keywords or channel == "rest":
                    described, restricted = describe_server(http, base)
                    method = find_method(described, qualified)
                    if method is None:
                        if restricted:
                            raise CommandError(
                                REFUSED, f"{base} does not describe {qualified} to this token, and hides some methods "
                                "from it: the token may not call it (--token)",
                            )
                        raise CommandError(UNKNOWN, f"{base} does not serve {qualified}")
                args = place_keywords(method, positional, keywords) if method is not None else positional
                result = _call(http, base, channel, qualified, args, method, options.timeout)
            except CommandError as error:
                if not error.unsent:  # a call that may have reached the method is never made twice
                    raise
                unreached.append(error)
                continue
            print_json(result)
            return 0
    if len(unreached) == 1:
        raise unreached[0]
    raise CommandError(
        UNREACHABLE, f"none of the {len(unreached)} instances of {component!r} could be reached: "
        + "; ".join(str(error) for error in unreached),
    )


def _call(
    http: Any, base: str, channel: str, qualified: str, args: list[Any], method: dict[str, Any] | None, timeout: float
) -> Any:
    """One call on ``channel``; the result, or CommandError."""
    import json

    from warpcall.cli._common import FAILED, SERVER, USAGE, CommandError, error_of, fetch

    # the server starts no work past the caller's deadline (and answers 504 at it)
    headers = {"x-rpc-timeout": str(max(1, int(timeout * 1000)))}
    if channel == "rest":
        assert method is not None
        return _call_rest(http, base, method, args, headers)
    url = base + "/invoke"
    if channel == "dispatch-msgpack":
        import msgpack

        try:
            body = msgpack.packb({"method": qualified, "args": args}, use_bin_type=True)
        except (OverflowError, ValueError, TypeError) as exc:
            raise CommandError(USAGE, f"the arguments cannot travel as msgpack: {exc}") from None
        headers["content-type"] = "application/msgpack"
    else:
        body = json.dumps({"method": qualified, "args": args}, ensure_ascii=False).encode()
        headers["content-type"] = "application/json"
    answer = fetch(http, "POST", url, content=body, headers=headers)
    if answer.status_code != 200:
        raise error_of(answer, url)
    try:
        if channel == "dispatch-msgpack":
            import msgpack

            reply = msgpack.unpackb(answer.content, raw=False, strict_map_key=False)
        else:
            reply = answer.json()
        exception, result = reply.get("exception"), reply.get("result")
    except Exception as exc:  # noqa: BLE001 - whatever the body is, it is no envelope
        raise CommandError(SERVER, f"{url} answered 200 with a body that is not a {channel} envelope") from exc
    if exception:
        kind = exception.get("type", "Exception") if isinstance(exception, dict) else "Exception"
        message = exception.get("message", "") if isinstance(exception, dict) else str(exception)
        raise CommandError(FAILED, f"{qualified} raised {kind}: {message}")
    return result


def _call_rest(http: Any, base: str, method: dict[str, Any], args: list[Any], headers: dict[str, str]) -> Any:
    """The call on the method's REST route: path parameters in the path, query parameters in the query,
    the body as JSON, as the server describes the route."""
    import json
    from urllib.parse import quote

    from warpcall.cli._common import SERVER, UNKNOWN, CommandError, error_of, fetch

    route = method.get("rest")
    if not route:
        raise CommandError(UNKNOWN, f"{method['qualified']} has no REST route; use a dispatch channel")
    path = route["path"]
    query: list[tuple[str, str]] = []
    body: Any = None
    has_body = False
    for param, value in zip(method["parameters"], args):
        name, kind = param["name"], route["parameters"].get(param["name"], "query")
        if kind == "path":
            text = value if isinstance(value, str) else json.dumps(value)
            path = path.replace("{" + name + ":path}", quote(text, safe="/")).replace("{" + name + "}", quote(text, safe=""))
        elif kind == "body":
            body, has_body = value, True
        elif value is not None:
            for item in value if isinstance(value, list) else [value]:
                query.append((name, item if isinstance(item, str) else json.dumps(item)))
    url = base + path
    kwargs: dict[str, Any] = {"params": query, "headers": headers}
    if has_body:
        kwargs["content"] = json.dumps(body, ensure_ascii=False).encode()
        headers["content-type"] = "application/json"
    answer = fetch(http, route["method"], url, **kwargs)
    if answer.status_code >= 400:
        raise error_of(answer, url)
    if not answer.content:
        return None
    try:
        return answer.json()
    except ValueError as exc:
        raise CommandError(SERVER, f"{url} answered {answer.status_code} with a body that is not JSON") from exc


def _complete_target(prefix: str, parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    """Completion of ``component:service:method`` (argcomplete): the methods the reachable servers describe."""
    import httpx

    from warpcall.cli._common import CommandError, check_url, describe_server, read_registry

    parsed_args.timeout = min(getattr(parsed_args, "timeout", 1.0) or 1.0, 1.0)  # completion must not hang the shell
    names: set[str] = set()
    try:
        if getattr(parsed_args, "url", None):
            bases = [check_url(parsed_args.url)]
        else:
            registry = read_registry(parsed_args)
            bases = list(dict.fromkeys(url for instance in registry.instances for url in instance.urls()))
        with httpx.Client(timeout=parsed_args.timeout) as http:
            for base in bases[:5]:  # a shell waits for this: a few servers, each within a second
                try:
                    for component in describe_server(http, base)[0]:
                        for service in component.get("services", ()):
                            names.update(method["qualified"] for method in service.get("methods", ()))
                except CommandError:
                    continue
    except CommandError:
        return []
    return sorted(name for name in names if name.startswith(prefix))
