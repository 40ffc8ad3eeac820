"""Every setting warpcall reads, in one catalog: configuration keys and environment variables.

:data:`SETTINGS` is the reference. The README's configuration table is rendered from it
(:func:`render_table`; ``tests/test_settings.py`` keeps the two equal and checks that every key the
sources read is listed here and every key listed here is read).

Configuration keys are read through the environment's ``ConfigurationManager``: the sources a module
provides (``YamlConfigurationSource(path)``, ``EnvConfigurationSource()``), later sources overriding
earlier ones. ``EnvConfigurationSource`` loads every variable of the process environment, its name
read as the dotted key with ``/`` standing for ``.`` as well (``http.timeout`` or ``http/timeout`` sets
``http.timeout``; names are case-sensitive). A key marked *per channel* may also be set for one
channel, ``http.<channel>.<rest>`` overriding ``http.<rest>`` (``http.dispatch-json.timeout``).
The environment variables without a key (``WARPCALL_*``) are read from the process environment directly.

At startup (:func:`report_unknown_keys`, run when an environment with warpcall's ``ServiceManager`` has
loaded its configuration) a key under one of warpcall's sections (:data:`SECTIONS`) that the catalog
does not know is logged as a warning on the ``warpcall.config`` logger, naming the key, its source and
the closest known key. This module imports nothing beyond the standard library.
"""

from __future__ import annotations

import logging
import os
import re
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from warpcall.di._bindings import Binding
    from warpcall.di._environment import Environment
    from warpcall.di.configuration import ConfigurationManager, ConfigurationSource

__all__ = [
    "CHANNEL",
    "SECTIONS",
    "SETTINGS",
    "Setting",
    "UnknownKey",
    "find_unknown_keys",
    "known_keys",
    "render_reference",
    "render_table",
    "report_unknown_keys",
]

#: the placeholder of a channel's name in a per-channel key
CHANNEL = "<channel>"

logger = logging.getLogger("warpcall.config")


class _Inherited:
    """The default of a key that falls back to another key's value."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key

    def __repr__(self) -> str:
        return f"the value of {self.key}"


@dataclass(frozen=True)
class Setting:
    """One setting: a configuration key (None for an environment variable read directly), its type,
    default and meaning.

    ``per_channel``: the key (``http.<rest>``) may also be set for one channel as ``http.<channel>.<rest>``.
    ``variable``: the environment variable of a setting without a configuration key. ``default_text``:
    how the default reads in the table when its value alone does not say it.
    """

    key: str | None
    type: str
    default: Any
    description: str
    per_channel: bool = False
    variable: str | None = None
    default_text: str = ""

    @property
    def environment_variable(self) -> str:
        """The environment variable that sets it: the key itself (``/`` may stand for ``.``), or ``variable``
        (read directly; for a setting with a key too, it wins over the key)."""
        if self.key is None:
            assert self.variable is not None
            return self.variable
        return self.key

    def variables_display(self) -> str:
        """The environment variables of the setting as the table shows them."""
        if self.key is not None and self.variable is not None:
            return f"`{self.variable}` (wins), `{self.key}`"
        return f"`{self.environment_variable}`"

    def keys(self) -> tuple[str, ...]:
        """The key and, per channel, its ``http.<channel>.<rest>`` form."""
        if self.key is None:
            return ()
        if self.per_channel:
            return self.key, f"http.{CHANNEL}.{self.key[len('http.'):]}"
        return (self.key,)

    def default_display(self) -> str:
        """The default as the table shows it."""
        if self.default_text:
            return self.default_text
        if isinstance(self.default, _Inherited):
            return f"`{self.default.key}`"
        if self.default is None:
            return "unset"
        if isinstance(self.default, bool):
            return "`true`" if self.default else "`false`"
        return f"`{self.default}`"


def _s(key: str | None, type: str, default: Any, description: str, **options: Any) -> Setting:
    return Setting(key, type, default, description, **options)


#: every setting warpcall reads (the README's configuration reference is rendered from it)
SETTINGS: tuple[Setting, ...] = (
    # --- the server ---------------------------------------------------------------------------------------
    _s("server.expose", "str", None,
       "What the server serves when `FastAPIServer(expose=...)` is not given: `component`, `component:service` "
       "or `component:service:method` patterns (shell wildcards), comma- or space-separated. Unset: everything.",
       default_text="unset (all)"),
    _s("server.tls.cert_file", "str", None,
       "PEM certificate chain: set, the server serves HTTPS (a `tls` argument of `boot` / `FastAPIServer` wins)."),
    _s("server.tls.key_file", "str", None, "PEM private key of the certificate (unset: the key is in `cert_file`)."),
    _s("server.tls.key_password", "str", None, "Password of an encrypted `key_file`."),
    _s("server.tls.ca_file", "str", None,
       "PEM bundle of the CAs that sign client certificates (needed unless `client_cert` is `none`)."),
    _s("server.tls.client_cert", "str", "none",
       "`none` (ask for no client certificate), `optional` (one sent must verify) or `required` (mTLS)."),
    _s("server.metrics.path", "str", "/metrics", "Path of the Prometheus scrape route (when `metrics.enabled`)."),
    _s("server.max_body", "int", 10 * 2**20,
       "Bytes a request body may have on `/invoke`; a larger one is answered 413 "
       "(`FastAPIServer(max_body=...)` wins).", default_text="`10485760` (10 MiB)"),
    _s("server.grace_period", "float", 10.0,
       "Seconds a stopping server lets the calls under way finish before refusing the queued ones "
       "(`FastAPIServer(grace_period=...)` wins)."),
    _s("server.deregister_delay", "float", 0.0,
       "Seconds a stopping server keeps serving after it deregistered, while clients learn of it "
       "(`FastAPIServer(deregister_delay=...)` wins)."),
    _s("server.sync_calls", "str", "adaptive",
       "Where sync implementations run: `adaptive` (on the loop until one takes over `max_loop_time`), "
       "`threadpool` or `inline`."),
    _s("server.include_traceback", "bool", False, "Remote tracebacks in error envelopes (development only)."),
    _s("server.access_log", "bool", False, "uvicorn's access log lines."),
    _s("server.inline_protocol", "bool", True,
       "Answer `/invoke` and warpcall's REST routes in the server's protocol, without the ASGI round."),
    _s("server.limits.max_head_size", "int", 16 * 1024,
       "Bytes of a request head (request line and headers); larger: 431, connection closed. The "
       "`server.limits.*` keys apply when `FastAPIServer(limits=...)` is not given (a `ServerLimits` given wins "
       "whole)."),
    _s("server.limits.max_headers", "int", 100, "Header fields in one request; more: 431, connection closed."),
    _s("server.limits.head_timeout", "float", 10.0,
       "Seconds from a request head's first byte to its last; slower: 408, connection closed."),
    _s("server.limits.idle_timeout", "float", 5.0,
       "Seconds a connection may stay open with no request under way (after a reply, or from its accept); "
       "then it is closed."),
    _s("server.limits.max_connections", "int", 1000,
       "Connections served at once; a request beyond them is answered 503 with `connection: close` "
       "(`none`: no limit)."),
    _s("server.limits.max_workers", "int", 32, "Threads running sync implementations at once (the bulkhead's pool)."),
    _s("server.limits.method_share", "float", 0.5,
       "Fraction (at most 1) of `max_workers` one method may occupy at once (at least one thread)."),
    _s("server.limits.max_queued", "int", 1024,
       "Sync calls accepted but not yet running; beyond it a call is refused at once with 503 "
       "(`OverloadedException`)."),
    _s("server.limits.retry_after", "int", 1, "Whole seconds such a 503 asks the caller to wait (`Retry-After`)."),
    _s("server.limits.max_loop_time", "float", 0.02,
       "Seconds a sync implementation may hold the event loop in `adaptive` mode before its method moves to "
       "the pool."),
    # --- observability ------------------------------------------------------------------------------------
    _s("metrics.enabled", "bool", False,
       "Prometheus metrics of the server (`GET /metrics`) and of the client channels (needs `prometheus-client`)."),
    _s("tracing.enabled", "bool", True,
       "Client spans when an OpenTelemetry tracer provider is configured (false: the channels never trace)."),
    _s("profile.enabled", "bool", False,
       "Record every call's phases in the process profile (`warpcall.profile`)."),
    _s(f"http.{CHANNEL}.profile", "bool", _Inherited("profile.enabled"),
       "Record the phases of one channel's calls."),
    # --- client channels: deadlines, connections ----------------------------------------------------------
    _s("http.timeout", "float", 10.0,
       "Seconds a call may take (connect, send, receive) unless the caller's deadline is shorter.",
       per_channel=True),
    _s("http.keepalive_expiry", "float", 4.0,
       "Seconds a pooled connection may stay idle and still be reused (keep it below the servers' idle timeout).",
       per_channel=True),
    # --- retries ------------------------------------------------------------------------------------------
    _s("http.retry.attempts", "int", 3,
       "Most sends of an idempotent call that may have reached a server (1: no retry).", per_channel=True),
    _s("http.retry.backoff", "float", 0.05,
       "Seconds: the first retry waits up to this, each next one up to twice more (full jitter).", per_channel=True),
    _s("http.retry.max_backoff", "float", 1.0, "Seconds: the longest span a wait is drawn from.", per_channel=True),
    _s("http.retry.budget", "float", 0.2, "Retries may be at most this fraction of the channel's calls.",
       per_channel=True),
    _s("http.retry.budget_reserve", "float", 10, "Retries allowed beyond the fraction (the token bucket's size).",
       per_channel=True),
    _s("http.retry.idempotent", "list[str]", (),
       "`component:service:method` names (fnmatch patterns) that may be sent again after a maybe-sent failure; "
       "a list or a comma-separated string.", per_channel=True, default_text="none"),
    # --- circuit breakers ---------------------------------------------------------------------------------
    _s("http.breaker.enabled", "bool", True, "false: no circuit breaker on the channel.", per_channel=True),
    _s("http.breaker.failures", "int", 5, "Consecutive failures that open an instance's breaker (0: not this way).",
       per_channel=True),
    _s("http.breaker.failure_rate", "float", 0.5,
       "Failure rate over the window that opens it (0: not this way).", per_channel=True),
    _s("http.breaker.window", "float", 10.0, "Seconds of the sliding failure-rate window.", per_channel=True),
    _s("http.breaker.min_calls", "int", 20, "Calls the window needs before its rate counts.", per_channel=True),
    _s("http.breaker.open_for", "float", 5.0, "Seconds an instance is ejected the first time (doubles per failed probe).",
       per_channel=True),
    _s("http.breaker.max_open_for", "float", 60.0, "The longest ejection, in seconds.", per_channel=True),
    # --- bulkhead -----------------------------------------------------------------------------------------
    _s("http.bulkhead.max_in_flight", "int", 0,
       "Calls in flight to the component at once; more wait for a place until their deadline (0: no limit).",
       per_channel=True),
    # --- client TLS ---------------------------------------------------------------------------------------
    _s("http.tls.ca_file", "str", None, "PEM bundle of the CAs trusted for `https://` instances (unset: the system's).",
       per_channel=True),
    _s("http.tls.cert_file", "str", None, "Client certificate chain, for servers that ask for one (mTLS).",
       per_channel=True),
    _s("http.tls.key_file", "str", None, "The client certificate's private key (unset: in `cert_file`).",
       per_channel=True),
    _s("http.tls.verify", "bool", True,
       "false accepts any certificate for any host (tests and trusted networks only; logged as a warning).",
       per_channel=True),
    # --- health -------------------------------------------------------------------------------------------
    _s("health.timeout", "float", 10.0, "Seconds a health check without `fail_if_slower_than` may take."),
    _s("health.loop.max_lag", "float", 2.0,
       "Seconds the serving loop may run a callback late before the process counts as stalled."),
    _s("health.loop.probe_interval", "float", 0.0, "Seconds between two probes of the serving loop (0: `max_lag / 4`, "
       "at most 0.5 s)."),
    # --- registries ---------------------------------------------------------------------------------------
    _s("consul.healthcheck.interval", "str", None, "How often the Consul agent runs an instance's health check "
       "(Go duration; unset: the registry's `check_interval`, `10s`).", default_text="`10s`"),
    _s("consul.healthcheck.timeout", "str", None, "How long one Consul health check may take "
       "(unset: `check_timeout`, `3s`).", default_text="`3s`"),
    _s("consul.healthcheck.deregister", "str", None, "How long a critical instance stays before the agent removes "
       "it (unset: `deregister_critical_after`, `5m`).", default_text="`5m`"),
    _s("registry.namespace", "str", None,
       "The embedded registry's namespace: only clients and servers of one namespace find each other.",
       variable="WARPCALL_REGISTRY_NAMESPACE", default_text="the top-level package of the booted module"),
    _s("registry.embedded.ttl", "float", 5.0,
       "Seconds an embedded-registry entry lives without a heartbeat (a dead process's entry is gone after it)."),
    _s("registry.embedded.poll_interval", "float", 0.5,
       "Seconds between two reads of the embedded registry by a watching client."),
    # --- environment variables read directly --------------------------------------------------------------
    _s(None, "bool", False, "Run the hot modules as plain Python even where they are compiled.",
       variable="WARPCALL_PURE"),
    _s(None, "path", None, "Directory of the embedded registry's SQLite file.", variable="WARPCALL_REGISTRY_DIR",
       default_text="`$XDG_CACHE_HOME/warpcall`, else `~/.cache/warpcall`"),
    _s(None, "str", None, "The registry the `warpcall call`, `services` and `health` commands read when no "
       "`--registry` is given: `embedded[:DIR]`, `consul://HOST:PORT` or `etcd://HOST:PORT[/prefix]`.",
       variable="WARPCALL_REGISTRY", default_text="`embedded`"),
    _s(None, "list[str]", None, "Components (comma-separated, `*`: all) whose `dispatch-protobuf` speaks "
       "aspyx-service's protobuf messages.", variable="WARPCALL_ASPYX_PROTOBUF", default_text="none"),
    # --- the build (setup.py) -----------------------------------------------------------------------------
    _s(None, "bool", False, "Build: install the pure-Python core, compile nothing.",
       variable="WARPCALL_NO_EXTENSIONS"),
    _s(None, "bool", False, "Build: keep debug info and local symbols in the compiled modules.",
       variable="WARPCALL_DEBUG"),
    _s(None, "list[str]", None, "Build: compile only these hot modules (comma-separated short names, e.g. "
       "`selector,proxy`).", variable="WARPCALL_BUILD_ONLY", default_text="all"),
    _s(None, "int", None, "Build: modules compiled at once.", variable="WARPCALL_BUILD_JOBS",
       default_text="the CPU count"),
    _s(None, "path", None, "Build: the cache of compiled modules shared by builds of the same sources "
       "(`0` or `off`: no cache).", variable="WARPCALL_BUILD_CACHE",
       default_text="`$XDG_CACHE_HOME/warpcall/build`, else `~/.cache/warpcall/build`"),
)

#: warpcall's top-level configuration sections: an unknown key under one of them is reported at startup
SECTIONS: frozenset[str] = frozenset(s.key.split(".", 1)[0] for s in SETTINGS if s.key is not None)


def known_keys() -> tuple[str, ...]:
    """Every configuration key of the catalog, per-channel keys with the ``<channel>`` placeholder."""
    return tuple(key for setting in SETTINGS for key in setting.keys())


# --- the README table -----------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


#: the sentence above the README's table: where the values come from
SOURCES_SENTENCE = (
    "Values come from the configuration sources: those the booted module provides (`YamlConfigurationSource(path)` "
    "files, `EnvConfigurationSource()` for the process environment, whose variable `http.timeout` or "
    "`http/timeout` sets the key `http.timeout`, names case-sensitive) and, under `warpcall serve`, its "
    "`--config` file and then the process environment; a later source overrides an earlier one, else the "
    "default below applies; a key *per channel* may also be set for one channel as "
    "`http.<channel>.<rest>`, which overrides `http.<rest>` there; the settings without a key are environment "
    "variables read directly, and an unknown key under `server.`, `http.`, `health.`, ... is logged as a "
    "warning at startup (logger `warpcall.config`)."
)


def render_reference() -> str:
    """What the README holds between its ``config-table`` markers: the sentence on sources, then the table."""
    return f"\n{SOURCES_SENTENCE}\n\n{render_table()}"


def render_table() -> str:
    """The configuration reference as a Markdown table, one row per setting."""
    lines = [
        "| Configuration key | Environment variable | Type | Default | Meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for setting in SETTINGS:
        if setting.key is None:
            key = "—"
        else:
            key = f"`{setting.key}`"
            if setting.per_channel:
                key += f" (per channel: `{setting.keys()[1]}`)"
        lines.append(
            "| " + " | ".join(_cell(part) for part in (
                key, setting.variables_display(), setting.type, setting.default_display(), setting.description
            )) + " |"
        )
    return "\n".join(lines) + "\n"


# --- unknown keys ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnknownKey:
    """A configuration key under warpcall's sections that no setting has: where it came from, what is closest."""

    key: str
    source: str
    closest: str | None

    def message(self) -> str:
        """The warning's text."""
        hint = f"did you mean {self.closest!r}?" if self.closest else "no known key is close"
        return (
            f"unknown configuration key {self.key!r} (from {self.source}): warpcall reads no such key; {hint} "
            "(every key: the README's configuration reference, warpcall.settings.SETTINGS)"
        )


def _leaves(data: Mapping[Any, Any], prefix: str = "") -> Iterator[str]:
    """The dotted keys of the values in ``data`` (a nested mapping); an empty section yields nothing."""
    for name, value in data.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping):
            yield from _leaves(value, key + ".")
        else:
            yield key


_patterns: list[tuple[str, re.Pattern[str]]] | None = None


def _compiled_patterns() -> list[tuple[str, re.Pattern[str]]]:
    global _patterns
    if _patterns is None:
        # a channel's name is one segment, and not one of the words that follow ``http.`` in a shared key
        # (``http.retry.attempts`` is the shared key, not ``timeout`` of a channel called "retry")
        reserved = sorted({key.split(".")[1] for key in known_keys() if key.startswith("http.") and CHANNEL not in key})
        channel = "(?!(?:" + "|".join(map(re.escape, reserved)) + r")(?:\.|$))[^.]+"
        _patterns = [
            (key, re.compile("^" + re.escape(key).replace(re.escape(CHANNEL), channel) + "$")) for key in known_keys()
        ]
    return _patterns


def _is_known(key: str) -> bool:
    return any(pattern.match(key) for _, pattern in _compiled_patterns())


def _closest(key: str) -> str | None:
    import difflib

    candidates = [known for known in known_keys() if CHANNEL not in known]
    parts = key.split(".")
    if len(parts) > 2 and parts[0] == "http":
        # a per-channel key: offer the channel's own keys, with its name in
        candidates += [known.replace(CHANNEL, parts[1]) for known in known_keys() if CHANNEL in known]
    found = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    return found[0] if found else None


def _describe(source: Any, key: str) -> str:
    from warpcall.di.configuration import EnvConfigurationSource

    file = getattr(source, "file", None)
    if file is not None:
        return f"the configuration file {file}"
    if isinstance(source, EnvConfigurationSource):
        names = [name for name in os.environ if name.replace("/", ".") == key]
        return f"the environment variable {names[0] if names else key}"
    return type(source).__name__


def find_unknown_keys(loaded: Iterable[tuple[Any, Mapping[Any, Any]]]) -> list[UnknownKey]:
    """The keys under :data:`SECTIONS` that no setting has, in what each source loaded (``(source, data)`` pairs)."""
    found: list[UnknownKey] = []
    for source, data in loaded:
        for section in sorted(SECTIONS):
            value = data.get(section)
            if value is None:
                continue
            keys = _leaves(value, section + ".") if isinstance(value, Mapping) else iter((section,))
            for key in keys:
                if not _is_known(key):
                    found.append(UnknownKey(key, _describe(source, key), _closest(key)))
    return found


#: managers already checked, with how many of their sources were (a manager shared by child environments, or
#: given a source later, is not reported twice)
_checked: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def report_unknown_keys(environment: Environment, bindings: list[Binding]) -> None:
    """An environment build check: warn about each configuration key under warpcall's sections that no setting
    has. Runs once the environment's configuration is loaded, for environments with warpcall's ``ServiceManager``;
    costs nothing per call."""
    from warpcall.di.configuration import ConfigurationManager
    from warpcall.manager import ServiceManager

    if not environment.has_provider(ConfigurationManager) or not environment.has_provider(ServiceManager):
        return
    manager: ConfigurationManager = environment.get(ConfigurationManager)
    loaded: list[tuple[ConfigurationSource, dict[str, Any]]] = getattr(manager, "loaded", [])
    start = _checked.get(manager, 0)
    if start >= len(loaded):
        return
    _checked[manager] = len(loaded)
    for unknown in find_unknown_keys(loaded[start:]):
        logger.warning("%s", unknown.message())


def install() -> None:
    """Make :func:`report_unknown_keys` one of the checks every environment build runs (once)."""
    from warpcall.di import _environment

    if report_unknown_keys not in _environment.build_checks:
        _environment.build_checks.append(report_unknown_keys)
