"""What ``warpcall call``, ``services`` and ``health`` share: exit statuses, the registry read, HTTP to servers.

Exit statuses (the same meaning in every command):

==  ==========================================================================================
0   success (``health``: every instance healthy)
1   the call failed remotely: the method raised (``call``), an instance is not healthy (``health``)
2   bad command line: unknown option, malformed ``component:service:method``, an argument that is not
    JSON, a keyword the method does not have, a registry address that cannot be read
3   the server refused the arguments (400 malformed, 413 too large, 422 invalid arguments)
4   unknown service or method: the server answered 404 (or does not describe it)
5   no instance found: the registry lists none of the component (or no component at all)
6   unreachable: connection refused or reset, a registry that does not answer
7   timeout (``--timeout`` passed, or the server gave up at the call's deadline: 504)
8   the token was refused (401 or 403)
9   any other server error (500, 503 overloaded, an unreadable reply)
==  ==========================================================================================

Nothing here is imported at the command's start: ``warpcall --help`` loads only the subcommand modules.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:  # imported where used: `warpcall --help` and --version do not load httpx
    import httpx

OK = 0
FAILED = 1
USAGE = 2
ARGUMENTS = 3
UNKNOWN = 4
NOT_FOUND = 5
UNREACHABLE = 6
TIMEOUT = 7
REFUSED = 8
SERVER = 9

#: the route a server describes its services on (warpcall.server.describe.DESCRIBE_PATH, not imported: server code)
DESCRIBE_PATH = "/warpcall/services"
#: the environment variable giving --registry its default
REGISTRY_VARIABLE = "WARPCALL_REGISTRY"
DEFAULT_TIMEOUT = 10.0


class CommandError(Exception):
    """A failure the command reports as one line on stderr, exiting with ``status``."""

    def __init__(self, status: int, message: str, *, unsent: bool = False) -> None:
        super().__init__(message)
        self.status = status
        #: the request never left (the connection was refused): another instance may be asked instead
        self.unsent = unsent


def fail(command: str, error: CommandError) -> int:
    """Print ``error`` as one line on stderr; its exit status."""
    text = " ".join(str(error).split())  # one line, whatever the server's message holds
    print(f"warpcall {command}: {text}", file=sys.stderr)
    return error.status


def print_json(value: Any) -> None:
    """``value`` as indented JSON on stdout (bytes as base64, anything else JSON lacks as text)."""
    print(json.dumps(value, indent=2, ensure_ascii=False, default=_jsonable))


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        import base64

        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


# --- options shared by the commands ---------------------------------------------------------------

def positive_seconds(text: str) -> float:
    """argparse type of ``--timeout``: a number of seconds above zero."""
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: the timeout must be a positive number of seconds")
    return value


def add_registry_arguments(parser: Any) -> None:
    """``--registry``, ``--namespace``, ``--url``, ``--token``, ``--timeout``."""
    parser.add_argument(
        "--registry", metavar="REGISTRY", default=None,
        help=f"where to find instances: 'embedded' (the default; 'embedded:DIR' for another directory), "
        f"'consul://HOST:PORT' or 'etcd://HOST:PORT[/PREFIX/]' (default: ${REGISTRY_VARIABLE}, else embedded)",
    )
    parser.add_argument(
        "--namespace", metavar="NAME", default=None,
        help="the embedded registry's namespace (default: $WARPCALL_REGISTRY_NAMESPACE; without either, "
        "every namespace is searched)",
    )
    parser.add_argument("--url", metavar="URL", default=None, help="ask this server directly, no registry")
    parser.add_argument("--token", metavar="TOKEN", default=None, help="sent as 'Authorization: Bearer TOKEN'")
    parser.add_argument(
        "--timeout", metavar="SECONDS", type=positive_seconds, default=DEFAULT_TIMEOUT,
        help=f"bound on each network exchange (default {DEFAULT_TIMEOUT:g})",
    )


def headers_of(options: Any) -> dict[str, str]:
    """The request headers every command sends: the token, when given."""
    token = options.token
    if token is None:
        return {}
    if any(c in token for c in "\r\n\0") or not token.strip():
        raise CommandError(USAGE, "--token is empty or holds a line break or NUL")
    return {"authorization": f"Bearer {token.strip()}"}


def check_url(url: str, option: str = "--url") -> str:
    """``url`` without a trailing slash when it is an http(s) URL with a host; a usage error otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CommandError(USAGE, f"{option} {url!r} is not an http:// or https:// URL with a host")
    try:
        parts.port  # noqa: B018 - raises for a port that is no number
    except ValueError:
        raise CommandError(USAGE, f"{option} {url!r} has a port that is not a number") from None
    return url.rstrip("/")


# --- the registry ----------------------------------------------------------------------------------

@dataclass
class Instance:
    """One registered instance of a component: its addresses per channel."""

    component: str
    addresses: list[tuple[str, str]] = field(default_factory=list)  # (channel, url)
    namespace: str | None = None
    health: str = ""  # the health path the registry knows (Consul's check), '' when it knows none

    def urls(self, channel: str | None = None) -> list[str]:
        """The instance's distinct base URLs (of ``channel`` only, when given), in registration order."""
        seen: list[str] = []
        for name, url in self.addresses:
            if (channel is None or name == channel) and url.rstrip("/") not in seen:
                seen.append(url.rstrip("/"))
        return seen

    def channels(self) -> list[str]:
        return list(dict.fromkeys(name for name, _ in self.addresses))


@dataclass
class Registry:
    """A registry read by the command: what it is (for messages) and every live instance it lists."""

    label: str
    instances: list[Instance]
    #: the namespace searched, for the embedded registry; None: every namespace
    namespace: str | None = None
    #: the embedded registry's directory; None for the others
    directory: str | None = None

    def of(self, component: str) -> list[Instance]:
        return [instance for instance in self.instances if instance.component == component]

    def components(self) -> list[str]:
        return sorted({instance.component for instance in self.instances})


def read_registry(options: Any, component: str | None = None) -> Registry:
    """The registry named by ``--registry`` (else ``$WARPCALL_REGISTRY``, else the embedded one), read once."""
    spec = options.registry or os.environ.get(REGISTRY_VARIABLE) or "embedded"
    if spec == "embedded" or spec.startswith("embedded:"):
        directory = spec.partition(":")[2] or None
        return _read_embedded(directory, options.namespace)
    if options.namespace is not None:
        raise CommandError(USAGE, "--namespace applies to the embedded registry only")
    parts = urlsplit(spec)
    if parts.scheme in ("consul", "etcd") and parts.hostname:
        try:
            port = parts.port
        except ValueError:
            port = None
            raise CommandError(USAGE, f"--registry {spec!r}: the port is not a number") from None
        if parts.scheme == "consul":
            return _read_consul(f"http://{parts.hostname}:{port or 8500}", options.timeout, component)
        prefix = parts.path if parts.path not in ("", "/") else "/warpcall/"
        return _read_etcd(f"http://{parts.hostname}:{port or 2379}", prefix, options.timeout)
    raise CommandError(
        USAGE, f"--registry {spec!r} is not 'embedded', 'embedded:DIR', 'consul://HOST:PORT' or 'etcd://HOST:PORT'"
    )


def _read_embedded(directory: str | None, namespace: str | None) -> Registry:
    """Every live row of the embedded registry's file (of ``namespace``, else of every namespace).

    Read with SQL of its own rather than through ``EmbeddedComponentRegistry``, which reads one namespace
    and one component at a time, and starts a thread: the command only looks. Rows are live when their
    heartbeat is younger than the TTL (``registry.embedded.ttl`` from the environment, else 5 s), as the
    registry's own readers count them.
    """
    import sqlite3
    from pathlib import Path

    from warpcall.registry import embedded

    if namespace is None:
        namespace = os.environ.get(getattr(embedded, "NAMESPACE_VARIABLE", "WARPCALL_REGISTRY_NAMESPACE")) or None
    path = (Path(directory) if directory else embedded.default_directory()) / embedded.FILE_NAME
    label = f"the embedded registry {path}" + (f" (namespace {namespace!r})" if namespace is not None else "")
    if not path.exists():
        return Registry(label, [], namespace, str(path.parent))
    ttl = _embedded_ttl(float(getattr(embedded, "DEFAULT_TTL", 5.0)))
    try:
        db = sqlite3.connect(path, timeout=5.0, isolation_level=None)
    except sqlite3.Error as exc:
        raise CommandError(UNREACHABLE, f"cannot open {label}: {exc}") from exc
    try:
        db.execute("PRAGMA busy_timeout = 5000")
        columns = {row[1] for row in db.execute("PRAGMA table_info(instances)")}
        if not columns:
            return Registry(label, [], namespace, str(path.parent))
        name_column = "namespace" if "namespace" in columns else "''"
        query = (
            f"SELECT component, addresses, {name_column} FROM instances WHERE heartbeat >= ?"
            + (f" AND {name_column} = ?" if namespace is not None else "")
            + " ORDER BY registered, id"
        )
        parameters: tuple[Any, ...] = (time.time() - ttl,) + ((namespace,) if namespace is not None else ())
        rows = db.execute(query, parameters).fetchall()
    except sqlite3.Error as exc:
        raise CommandError(UNREACHABLE, f"cannot read {label}: {exc}") from exc
    finally:
        db.close()
    instances = []
    for component, payload, row_namespace in rows:
        try:
            addresses = [(str(channel), str(uri)) for channel, uri in json.loads(payload)]
        except (ValueError, TypeError):
            continue  # a row no warpcall wrote: not an instance anyone could call
        instances.append(Instance(component, addresses, row_namespace))
    return Registry(label, instances, namespace, str(path.parent))


def _embedded_ttl(default: float) -> float:
    """The TTL rows are live for: the setting ``registry.embedded.ttl`` from the environment, as servers read it
    (``EnvConfigurationSource``: the key itself, ``/`` standing for ``.``), else the registry's default."""
    text = os.environ.get("registry.embedded.ttl") or os.environ.get("registry/embedded/ttl")
    if not text:
        return default
    try:
        ttl = float(text)
    except ValueError:
        ttl = 0.0
    if not 0 < ttl < float("inf"):
        raise CommandError(USAGE, f"registry.embedded.ttl in the environment is {text!r}, not a positive number")
    return ttl


def _read_consul(base: str, timeout: float, component: str | None) -> Registry:
    """The passing instances of every Consul service carrying warpcall's channels (of ``component`` only, if given)."""
    import httpx

    from warpcall.registry.consul import META_CHANNELS, decode_channels

    label = f"Consul at {base}"
    with httpx.Client(base_url=base, timeout=timeout) as client:
        names = [component] if component is not None else sorted(_get_json(client, "/v1/catalog/services", label))
        instances = []
        for name in names:
            entries = _get_json(client, f"/v1/health/service/{quote(name, safe='')}", label, params={"passing": "1"})
            for entry in sorted(entries or (), key=lambda e: (e.get("Service") or {}).get("ID", "")):
                service = entry.get("Service") or {}
                addresses = decode_channels((service.get("Meta") or {}).get(META_CHANNELS, ""))
                if addresses:  # a service without warpcall's channels is not a component
                    health = ""
                    for check in entry.get("Checks") or ():
                        http = (check.get("Definition") or {}).get("HTTP") or ""
                        if http:
                            health = urlsplit(http).path
                    instances.append(Instance(name, [(a.channel, a.uri) for a in addresses], None, health))
    return Registry(label, instances)


def _read_etcd(base: str, prefix: str, timeout: float) -> Registry:
    """Every instance under ``prefix`` in etcd (the keys ``EtcdComponentRegistry`` writes)."""
    import base64

    import httpx

    from warpcall.registry.etcd import _range_end

    prefix = prefix if prefix.endswith("/") else prefix + "/"
    label = f"etcd at {base} (prefix {prefix})"
    key = prefix.encode()
    body = {"key": base64.b64encode(key).decode(), "range_end": base64.b64encode(_range_end(key)).decode()}
    with httpx.Client(base_url=base, timeout=timeout) as client:
        answer = _request(client, "POST", "/v3/kv/range", label, json=body)
    if answer.status_code != 200:
        raise CommandError(UNREACHABLE, f"{label} answered {answer.status_code} to a range read")
    instances = []
    for kv in answer.json().get("kvs") or ():
        try:
            value = json.loads(base64.b64decode(kv.get("value", "")))
            addresses = [(str(channel), str(uri)) for channel, uri in value["addresses"]]
            instances.append(Instance(str(value["component"]), addresses))
        except (ValueError, TypeError, KeyError):
            continue  # a key under the prefix that no warpcall wrote
    return Registry(label, instances)


def _get_json(client: httpx.Client, path: str, label: str, params: dict[str, str] | None = None) -> Any:
    answer = _request(client, "GET", path, label, params=params)
    if answer.status_code != 200:
        raise CommandError(UNREACHABLE, f"{label} answered {answer.status_code} to GET {path}")
    try:
        return answer.json()
    except ValueError as exc:
        raise CommandError(UNREACHABLE, f"{label} answered GET {path} with something that is not JSON") from exc


def _request(client: httpx.Client, method: str, path: str, label: str, **kwargs: Any) -> httpx.Response:
    """One exchange with a registry; CommandError(TIMEOUT / UNREACHABLE) naming it when it does not happen."""
    import httpx

    try:
        return client.request(method, path, **kwargs)
    except httpx.TimeoutException as exc:
        raise CommandError(TIMEOUT, f"{label} did not answer within {client.timeout.read} s") from exc
    except httpx.HTTPError as exc:
        raise CommandError(UNREACHABLE, f"cannot reach {label}: {describe_error(exc)}") from exc


def no_instance(registry: Registry, component: str) -> CommandError:
    """The error for a component the registry lists no live instance of, naming where else it is."""

    elsewhere = ""
    if registry.namespace is not None:
        others = _namespaces_holding(registry, component)
        if others:
            elsewhere = f"; it is registered in namespace(s) {', '.join(others)}: pass --namespace"
    return CommandError(NOT_FOUND, f"no live instance of component {component!r} in {registry.label}{elsewhere}")


def _namespaces_holding(registry: Registry, component: str) -> list[str]:
    if registry.directory is None:
        return []
    everything = _read_embedded(registry.directory, None)
    return sorted({instance.namespace or "''" for instance in everything.instances if instance.component == component})


# --- HTTP to servers -------------------------------------------------------------------------------

def describe_error(exc: BaseException) -> str:
    """A transport error in a few words: ``connection refused``, ``connection reset``, or its own text."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset"
        cause = cause.__cause__ or cause.__context__
    text = str(exc) or type(exc).__name__
    return "connection refused" if "refused" in text.lower() else text


def client(options: Any) -> httpx.Client:
    """The HTTP client of one command run: every exchange bounded by ``--timeout``, the token sent."""
    import httpx

    return httpx.Client(timeout=httpx.Timeout(options.timeout), headers=headers_of(options), follow_redirects=False)


def fetch(http: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One exchange; CommandError(TIMEOUT / UNREACHABLE) naming the URL when it does not happen."""
    import httpx

    try:
        return http.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise CommandError(TIMEOUT, f"{url} did not answer within {http.timeout.read:g} s (--timeout)") from exc
    except httpx.ConnectError as exc:
        raise CommandError(UNREACHABLE, f"cannot reach {url}: {describe_error(exc)}", unsent=True) from exc
    except httpx.HTTPError as exc:
        raise CommandError(UNREACHABLE, f"cannot reach {url}: {describe_error(exc)}") from exc


def error_of(answer: httpx.Response, url: str) -> CommandError:
    """The CommandError for a server's error reply (a warpcall envelope, a REST ``detail`` or anything else)."""
    status = answer.status_code
    kind, message = _reported(answer)
    code = {
        400: ARGUMENTS, 413: ARGUMENTS, 422: ARGUMENTS, 404: UNKNOWN, 405: UNKNOWN,
        401: REFUSED, 403: REFUSED, 504: TIMEOUT,
    }.get(status, SERVER)
    text = f"{kind}: {message}" if kind else message or answer.reason_phrase
    return CommandError(code, f"{text} (HTTP {status} from {url})")


def _reported(answer: httpx.Response) -> tuple[str, str]:
    """(exception type, message) a reply names: the envelope's ``exception``, a REST reply's ``type``/``detail``."""
    body: Any = None
    content_type = answer.headers.get("content-type", "")
    try:
        if "msgpack" in content_type:
            import msgpack

            body = msgpack.unpackb(answer.content, raw=False)
        else:
            body = answer.json()
    except Exception:  # noqa: BLE001 - not a body we read: its text is the message
        return "", answer.text.strip()[:500]
    if isinstance(body, dict):
        exception = body.get("exception")
        if isinstance(exception, dict):
            return str(exception.get("type", "")), str(exception.get("message", ""))
        detail = body.get("detail")
        if detail is not None:
            if not isinstance(detail, str):
                detail = json.dumps(detail, ensure_ascii=False, default=str)
            return str(body.get("type", "")), detail
    return "", json.dumps(body, ensure_ascii=False, default=str)[:500]


def describe_server(http: httpx.Client, base: str) -> tuple[list[dict[str, Any]], bool]:
    """The components a server describes (``GET /warpcall/services``) and whether it hid methods from the
    token ("restricted"); CommandError when it does not describe them."""
    url = base + DESCRIBE_PATH
    answer = fetch(http, "GET", url)
    if answer.status_code == 404:
        raise CommandError(
            UNKNOWN, f"{base} does not describe its services ({DESCRIBE_PATH} answers 404: not a warpcall server, "
            "or an older one)"
        )
    if answer.status_code != 200:
        raise error_of(answer, url)
    try:
        description = answer.json()
        components = description["components"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CommandError(SERVER, f"{url} answered with something that is not a description") from exc
    if not isinstance(components, list):
        raise CommandError(SERVER, f"{url} answered with something that is not a description")
    return components, bool(description.get("restricted"))


def find_method(components: Iterable[dict[str, Any]], qualified: str) -> dict[str, Any] | None:
    """The description of ``component:service:method`` among ``components``, None when absent."""
    for component in components:
        for service in component.get("services", ()):
            for method in service.get("methods", ()):
                if method.get("qualified") == qualified:
                    return dict(method)
    return None


def signature(method: dict[str, Any]) -> str:
    """``name(a: int, b: str = 'x') -> Point``, from a method's description."""
    params = []
    for param in method.get("parameters", ()):
        text = f"{param['name']}: {param.get('type', 'Any')}"
        if "default" in param:
            text += f" = {json.dumps(param['default'], ensure_ascii=False)}"
        elif "default_repr" in param:
            text += f" = {param['default_repr']}"
        params.append(text)
    prefix = "async " if method.get("async") else ""
    return f"{prefix}{method['name']}({', '.join(params)}) -> {method.get('returns', 'Any')}"
