"""The configuration reference (``warpcall.settings``) against the sources, the README, and a real boot.

- Every configuration key the code reads (found by walking ``src/warpcall`` with ``ast``: the keys given to
  ``inject_value``, ``config``, ``requires_configuration*``, a configuration's ``get`` / ``get_raw`` /
  ``has`` and the ``get(key, type, default)`` getters passed around) is in the catalog, and every catalog
  key is read somewhere; keys built in a loop (``http.breaker.<field>``, ...) are read by running their
  readers with a recording getter. Defaults the code states are the catalog's.
- Every ``WARPCALL_*`` environment variable read by ``src/warpcall`` or ``setup.py`` is in the catalog.
- The README's table is the catalog's rendering.
- An unknown key under warpcall's sections, from a YAML file or from an environment variable, is logged at
  boot on ``warpcall.config``, naming the key, the source and the closest known key.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import logging
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from warpcall import (
    ComponentRegistry,
    FastAPIServer,
    LocalComponentRegistry,
    ServiceManager,
    ServiceModule,
    settings,
)
from warpcall.di import create, module
from warpcall.di.configuration import EnvConfigurationSource, YamlConfigurationSource
from warpcall.settings import CHANNEL, SETTINGS, known_keys

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "warpcall"

#: functions whose first argument is a configuration key
KEY_FIRST = {"inject_value", "requires_configuration", "requires_configuration_value", "get_raw"}
#: expressions formatted into a key that stand for a channel's name
CHANNEL_NAMES = {"channel", "name", "self.name"}
TYPE_NAMES = {"str", "int", "float", "bool", "object", "kind"}


@dataclass(frozen=True)
class Read:
    """One configuration read in the sources: the key (``<channel>`` for a channel's name, ``*`` for another
    computed segment), where, and the default expression it gives (None: none given)."""

    key: str
    where: str
    module: str
    default: ast.expr | None
    type: str | None


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(SRC.parent).with_suffix("").parts).removesuffix(".__init__")


def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "text"`` assignments."""
    found: dict[str, str] = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        value = getattr(node, "value", None)
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            for target in targets:
                if isinstance(target, ast.Name):
                    found[target.id] = value.value
    return found


def _key_text(node: ast.expr, constants: dict[str, str]) -> str | None:
    """The key an argument spells: a literal, a module constant, or an f-string with placeholders."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            else:
                assert isinstance(value, ast.FormattedValue)
                parts.append(CHANNEL if ast.unparse(value.value) in CHANNEL_NAMES else "*")
        return "".join(parts)
    return None


def _is_config_get(call: ast.Call) -> bool:
    """``configuration.get(key, ...)``, or a getter passed in (``get(key, type, default)`` / ``get(key)``)."""
    func = call.func
    if isinstance(func, ast.Name):
        return func.id == "get"
    if isinstance(func, ast.Attribute) and func.attr in ("get", "has"):
        receiver = ast.unparse(func.value).lower()
        if "config" in receiver or "manager" in receiver:
            return True
        return func.attr == "get" and len(call.args) >= 2 and ast.unparse(call.args[1]) in TYPE_NAMES
    return False


def configuration_reads() -> list[Read]:
    reads: list[Read] = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = _constants(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            key_arg: ast.expr | None = None
            default: ast.expr | None = None
            kind: str | None = None
            if name in KEY_FIRST or _is_config_get(node):
                key_arg = node.args[0]
                if name == "inject_value":
                    default = next((k.value for k in node.keywords if k.arg == "default"), None)
                    if default is None and len(node.args) > 1:
                        default = node.args[1]
                elif name in ("get", "get_raw"):
                    if len(node.args) > 1 and name == "get":
                        kind = ast.unparse(node.args[1])
                    default = node.args[-1] if len(node.args) == (3 if name == "get" else 2) else None
            elif name == "config" and len(node.args) >= 2:
                key_arg, kind = node.args[1], ast.unparse(node.args[0])
                default = node.args[2] if len(node.args) > 2 else None
            if key_arg is None:
                continue
            key = _key_text(key_arg, constants)
            if key is None or "." not in key:
                continue  # a variable naming the key (``get(key, object)`` inside a reader): its caller is found
            if key.split(".", 1)[0] in ("sys", "os"):
                continue
            reads.append(Read(key, f"{path.relative_to(ROOT)}:{node.lineno}", _module_name(path), default, kind))
    return reads


def _matches(read_key: str, catalog_key: str) -> bool:
    pattern = "^" + re.escape(read_key).replace(re.escape("*"), "[^.]+") + "$"
    return re.match(pattern, catalog_key) is not None


# --- the keys the loops read: their readers run with a getter that records each key and default --------------


class _Recorder:
    def __init__(self) -> None:
        self.read: dict[str, Any] = {}

    def get(self, key: str, kind: Any = None, default: Any = None) -> Any:
        self.read.setdefault(key, default)
        return default


def recorded_family_reads() -> dict[str, dict[str, Any]]:
    """By wildcard family: the keys (and defaults) the family's reader asks for, run for real."""
    from warpcall.channels._http_common import ClientTLS
    from warpcall.resilience.breaker import BreakerSettings
    from warpcall.resilience.retry import RetryPolicy

    breaker = _Recorder()
    BreakerSettings.from_configuration(breaker, CHANNEL)  # type: ignore[arg-type]  # duck-typed getter
    retry = _Recorder()
    RetryPolicy.configured(lambda key: retry.get(key), CHANNEL)
    defaults = {p.name: p.default for p in inspect.signature(RetryPolicy).parameters.values()}
    retry.read = {key: defaults[key.rsplit(".", 1)[1]] for key in retry.read}  # get(key) gives no default
    tls = _Recorder()
    ClientTLS.configured(tls.get, CHANNEL)
    return {"breaker": breaker.read, "retry": retry.read, "tls": tls.read}


#: the wildcard reads the walk finds, each with the family whose reader is run above
WILDCARD_FAMILIES = {
    "http.breaker.*": "breaker", f"http.{CHANNEL}.breaker.*": "breaker",
    "http.retry.*": "retry", f"http.{CHANNEL}.retry.*": "retry",
    "http.tls.*": "tls", f"http.{CHANNEL}.tls.*": "tls",
}


def _catalog_default(key: str) -> Any:
    for setting in SETTINGS:
        if key in setting.keys():
            return setting.default
    raise KeyError(key)


def test_the_walk_finds_the_known_readers():
    # the walk itself must see what it is meant to see, or the checks below pass on nothing
    found = {read.key for read in configuration_reads()}
    for expected in ("http.timeout", f"http.{CHANNEL}.timeout", "server.expose", "server.tls.cert_file",
                     "health.loop.max_lag", "consul.healthcheck.interval", "metrics.enabled", f"http.{CHANNEL}.profile",
                     "http.breaker.*", f"http.{CHANNEL}.retry.*", "http.bulkhead.max_in_flight"):
        assert expected in found, expected


def test_every_key_read_is_documented():
    undocumented = []
    known = set(known_keys())
    for read in configuration_reads():
        if "*" in read.key:
            if read.key not in WILDCARD_FAMILIES:
                undocumented.append(f"{read.where}: {read.key} (a computed key: add its reader to WILDCARD_FAMILIES)")
            elif not any(_matches(read.key, key) for key in known):
                undocumented.append(f"{read.where}: {read.key}")
        elif read.key not in known:
            undocumented.append(f"{read.where}: {read.key}")
    assert not undocumented, "configuration keys read but missing from warpcall.settings.SETTINGS:\n" + "\n".join(
        undocumented
    )


def test_the_computed_keys_are_exactly_the_documented_ones():
    families = recorded_family_reads()
    for pattern, family in WILDCARD_FAMILIES.items():
        recorded = {key for key in families[family] if _matches(pattern, key)}
        documented = {key for key in known_keys() if _matches(pattern, key)}
        assert recorded == documented, pattern
        assert recorded, pattern


def test_every_documented_key_is_read():
    reads = configuration_reads()
    literal = {read.key for read in reads if "*" not in read.key}
    computed = {key for family in recorded_family_reads().values() for key in family}
    unread = [key for key in known_keys() if key not in literal and key not in computed]
    assert not unread, f"documented in warpcall.settings but read nowhere: {unread}"


def test_documented_defaults_are_the_code_defaults():
    checked = 0
    for read in configuration_reads():
        if read.default is None or "*" in read.key:
            continue
        try:
            value = eval(compile(ast.Expression(read.default), read.where, "eval"), vars(importlib.import_module(read.module)))  # noqa: S307
        except (NameError, AttributeError):
            continue  # a value of the call's own (the global key's, for a channel's): the catalog says which
        assert value == _catalog_default(read.key), f"{read.where}: {read.key} defaults to {value!r} in the code"
        if read.type in ("str", "int", "float", "bool"):
            documented = next(s.type for s in SETTINGS if read.key in s.keys())
            assert documented == read.type, f"{read.where}: {read.key} is read as {read.type}"
        checked += 1
    for family in recorded_family_reads().values():
        for key, value in family.items():
            assert value == _catalog_default(key), key
            checked += 1
    assert checked >= 30


def test_breaker_and_retry_defaults_match_the_catalog():
    from warpcall.resilience.breaker import BreakerSettings

    for field in fields(BreakerSettings):
        assert _catalog_default(f"http.breaker.{field.name}") == field.default


# --- environment variables ---------------------------------------------------------------------------------


def _environment_reads(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    constants = _constants(tree)
    names: set[str] = set()
    for node in ast.walk(tree):
        target: ast.expr | None = None
        if isinstance(node, ast.Call) and node.args:
            func = ast.unparse(node.func)
            if func in ("os.environ.get", "os.getenv", "environ.get"):
                target = node.args[0]
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) in ("os.environ", "environ"):
            target = node.slice
        elif isinstance(node, ast.Compare) and any(ast.unparse(c) == "os.environ" for c in node.comparators):
            target = node.left
        if target is not None:
            name = _key_text(target, constants)
            if name and name.startswith("WARPCALL_"):
                names.add(name)
    return names


def test_every_environment_variable_read_is_documented():
    read: set[str] = set()
    for path in [*sorted(SRC.rglob("*.py")), ROOT / "setup.py"]:
        read |= _environment_reads(path)
    assert {"WARPCALL_PURE", "WARPCALL_NO_EXTENSIONS"} <= read  # the walk sees the readers
    documented = {s.variable for s in SETTINGS if s.variable is not None}
    assert read == documented


def test_environment_variable_of_a_key_sets_the_key(monkeypatch):
    # the column says a key's environment variable is its own name (``/`` for ``.`` too): as the source reads it
    from warpcall.di.configuration import EnvConfigurationSource

    monkeypatch.setenv("http.timeout", "2.5")
    monkeypatch.setenv("http/dispatch-json/timeout", "0.5")
    loaded = EnvConfigurationSource().load()
    assert loaded["http"]["timeout"] == "2.5"
    assert loaded["http"]["dispatch-json"]["timeout"] == "0.5"
    for setting in SETTINGS:
        if setting.key is not None:
            assert setting.environment_variable == setting.key


# --- the README ---------------------------------------------------------------------------------------------


def test_readme_table_is_the_rendered_catalog():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    begin, end = "<!-- config-table:begin -->", "<!-- config-table:end -->"
    assert text.count(begin) == 1 and text.count(end) == 1
    block = text.split(begin, 1)[1].split(end, 1)[0]
    assert block == settings.render_reference(), (
        "README.md's configuration table is not warpcall.settings' rendering; regenerate it with "
        "python -c 'import warpcall.settings as s; print(s.render_reference())'"
    )
    rows = [line for line in settings.render_table().splitlines() if line.startswith("| `") or line.startswith("| —")]
    assert len(rows) == len(SETTINGS)


# --- unknown keys at boot -------------------------------------------------------------------------------------

CONFIG_FILE: list[Path] = []


@module(imports=[ServiceModule])
class ConfiguredServer:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_file(self) -> YamlConfigurationSource:
        return YamlConfigurationSource(str(CONFIG_FILE[0]))

    @create()
    def create_environment(self) -> EnvConfigurationSource:
        return EnvConfigurationSource()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(FastAPI(), manager, registry)


def _boot(tmp_path: Path, yaml_text: str, caplog: pytest.LogCaptureFixture) -> list[str]:
    config = tmp_path / "app.yaml"
    config.write_text(yaml_text, encoding="utf-8")
    CONFIG_FILE[:] = [config]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="warpcall.config"):
        environment = FastAPIServer.boot(ConfiguredServer, host="127.0.0.1", port=0)
    try:
        server = environment.get(FastAPIServer)
        assert server.thread is not None and server.thread.is_alive()  # it booted and serves
    finally:
        environment.destroy()
    return [r.getMessage() for r in caplog.records if r.name == "warpcall.config"]


def test_unknown_keys_from_a_file_and_the_environment_are_reported_at_boot(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("http.dispatch-json.retry.attemps", "2")  # misspelt, for one channel
    monkeypatch.setenv("health/timout", "3")  # misspelt, slash form
    monkeypatch.setenv("http.dispatch-json.timeout", "1.5")  # known: a channel's own key
    messages = _boot(
        tmp_path,
        "http:\n  timout: 3\n  timeout: 2\n  breaker:\n    failures: 3\n    windw: 4\n"
        "server:\n  tls:\n    cert: x.pem\nmyapp:\n  anything: 1\nmetrics:\n  enabled: false\n",
        caplog,
    )
    file = f"the configuration file {tmp_path / 'app.yaml'}"
    expected = {
        "http.timout": (file, "http.timeout"),
        "http.breaker.windw": (file, "http.breaker.window"),
        "server.tls.cert": (file, "server.tls.cert_file"),
        "http.dispatch-json.retry.attemps": (
            "the environment variable http.dispatch-json.retry.attemps", "http.dispatch-json.retry.attempts"
        ),
        "health.timout": ("the environment variable health/timout", "health.timeout"),
    }
    assert len(messages) == len(expected), messages
    for key, (source, closest) in expected.items():
        matching = [m for m in messages if f"unknown configuration key {key!r}" in m]
        assert len(matching) == 1, (key, messages)
        assert f"(from {source})" in matching[0]
        assert f"did you mean {closest!r}?" in matching[0]


def test_known_keys_boot_without_a_warning(tmp_path, caplog):
    messages = _boot(
        tmp_path,
        "http:\n  timeout: 2\n  rest:\n    timeout: 1\n    breaker:\n      enabled: false\n"
        "  retry:\n    idempotent: [a:b:c]\nhealth:\n  loop:\n    max_lag: 3\nserver:\n  expose: '*'\n"
        "consul:\n  healthcheck:\n    interval: 5s\nother:\n  key: 1\n",
        caplog,
    )
    assert messages == []


def test_a_key_nothing_is_close_to_says_so():
    (unknown,) = settings.find_unknown_keys([(object(), {"tracing": {"zzzzzzzzzzzzzzzzzz": 1}})])
    assert unknown.key == "tracing.zzzzzzzzzzzzzzzzzz" and unknown.closest is None
    assert "no known key is close" in unknown.message()


def test_a_reserved_word_is_not_a_channel_name():
    # ``http.retry.timeout`` is not the ``timeout`` of a channel named "retry": it is reported
    (unknown,) = settings.find_unknown_keys([(object(), {"http": {"retry": {"timeout": 1}}})])
    assert unknown.key == "http.retry.timeout"
    # a scalar where warpcall has a section is reported too
    (unknown,) = settings.find_unknown_keys([(object(), {"server": {"tls": "on"}})])
    assert unknown.key == "server.tls"


def test_defaults_held_by_the_instances_are_the_catalogs():
    # read with the instance's current value as default (``get(key, float, self.ttl)``): compared here instead
    from warpcall.registry import consul, embedded

    assert _catalog_default("registry.embedded.ttl") == embedded.DEFAULT_TTL
    assert _catalog_default("registry.embedded.poll_interval") == embedded.DEFAULT_POLL_INTERVAL
    parameters = inspect.signature(consul.ConsulComponentRegistry).parameters
    for key, parameter in (("interval", "check_interval"), ("timeout", "check_timeout"),
                           ("deregister", "deregister_critical_after")):
        (setting,) = [s for s in SETTINGS if s.key == f"consul.healthcheck.{key}"]
        assert setting.default_display() == f"`{parameters[parameter].default}`"
