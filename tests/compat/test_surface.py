"""aspyx-service 0.11.6's public surface exists in warpcall, with the same signatures.

aspyx-service runs in its own venv (``tests/aspyx_venv.py``): ``aspyx_surface_probe.py``
lists there the public names of every ``aspyx_service`` module (the package walked,
``generator/*`` included) and of ``aspyx.di``, ``aspyx.di.aop``,
``aspyx.di.configuration`` and ``aspyx.reflection``, and the signatures of the
decorators and of the methods of the classes users subclass. This process finds
each name under the matching warpcall module (``aspyx_service.X`` -> ``warpcall.X``,
``aspyx.di*`` -> ``warpcall.di*``, ``aspyx.reflection`` -> ``warpcall.reflection``) and
compares the signatures (parameter names, kinds and defaults; annotations aside).

Without network (the venv cannot be built) the tests skip saying why; with
``CI=true`` they fail instead.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aspyx_surface_probe import member

from aspyx_venv import PROBE_TIMEOUT, ensure_aspyx_python, isolated_env

PROBE = Path(__file__).with_name("aspyx_surface_probe.py")

#: every module the probe lists and the warpcall module its names must be found in
MODULES = {
    "aspyx_service": "warpcall",
    "aspyx_service.authorization": "warpcall.authorization",
    "aspyx_service.channels": "warpcall.channels",
    "aspyx_service.generator": "warpcall.generator",
    "aspyx_service.generator.json_schema_generator": "warpcall.generator.json_schema_generator",
    "aspyx_service.generator.openapi_generator": "warpcall.generator.openapi_generator",
    "aspyx_service.healthcheck": "warpcall.healthcheck",
    "aspyx_service.protobuf": "warpcall.protobuf",
    "aspyx_service.registries": "warpcall.registries",
    "aspyx_service.restchannel": "warpcall.restchannel",
    "aspyx_service.server": "warpcall.server",
    "aspyx_service.service": "warpcall.service",
    "aspyx_service.session": "warpcall.session",
    "aspyx.di": "warpcall.di",
    "aspyx.di.aop": "warpcall.di.aop",
    "aspyx.di.configuration": "warpcall.di.configuration",
    "aspyx.reflection": "warpcall.reflection",
}

#: names of aspyx's surface deliberately absent from warpcall, each with the reason
LEFT_OUT: dict[tuple[str, str], str] = {
    **{
        (module, "T"): "a TypeVar aspyx uses in its own annotations, not API"
        for module in (
            "aspyx_service.generator.openapi_generator",
            "aspyx_service.restchannel",
            "aspyx_service.service",
            "aspyx_service.session",
        )
    },
    # aspyx-service's internals of ServiceManager, which warpcall's manager does differently: no user code
    # subclasses, builds or receives them (each is named "internal" in aspyx or used only inside service.py)
    ("aspyx_service.service", "ChannelFactory"): (
        "aspyx's 'internal factory for channels' (its docstring); warpcall's ServiceManager creates channels from "
        "the @channel classes the environment provides (ServiceManager.channel_type)"
    ),
    ("aspyx_service.service", "LocalChannel"): (
        "aspyx routes local calls through a 'local' channel; warpcall's get_service returns the implementation "
        "itself for the local case (a plain call, advice woven in), and reserves the name 'local'"
    ),
    ("aspyx_service.service", "ServiceInstanceProvider"): (
        "aspyx's DI provider behind get_service for service types; warpcall hands out proxies through "
        "ServiceManager.get_service and @inject_service only"
    ),
    ("aspyx_service.service", "ServiceLifecycleCallable"): (
        "aspyx's LifecycleCallable running @inject_service setters; warpcall runs them from a PostProcessor "
        "(warpcall.manager.InjectServiceProcessor), same decorator and semantics"
    ),
    ("aspyx_service.service", "TypeAndChannel"): (
        "the key of aspyx ServiceManager's proxy cache; warpcall's manager keys its caches with tuples"
    ),
}

#: decorators (and decorator-like factories) whose signatures must match: aspyx path -> warpcall path
DECORATORS = {
    f"aspyx_service.{module}:{name}": f"warpcall.{module}:{name}"
    for module, names in {
        "service": (
            "service", "component", "implementation", "health", "inject_service", "channel", "component_services",
        ),
        "healthcheck": ("health_check", "health_checks"),
        "restchannel": ("rest", "get", "post", "put", "delete", "patch", "Body", "QueryParam", "PathParam"),
    }.items()
    for name in names
} | {
    f"aspyx.{module}:{name}": f"warpcall.{module}:{name}"
    for module, names in {
        "di": (
            "module", "injectable", "factory", "inject", "create", "order", "on_init", "on_running", "on_destroy",
            "inject_environment", "conditional", "requires_class", "requires_feature", "requires_configuration",
            "requires_configuration_value",
        ),
        "di.aop": ("advice", "around", "before", "after", "error", "methods", "classes"),
        "di.configuration": ("inject_value", "config"),
    }.items()
    for name in names
}

#: the classes users subclass: __init__ and every public method must have aspyx's signature
CLASSES = {
    "aspyx_service.service:Channel": "warpcall.service:Channel",
    "aspyx_service.channels:HTTPXChannel": "warpcall.channels:HTTPXChannel",
    "aspyx_service.service:ComponentRegistry": "warpcall.service:ComponentRegistry",
    "aspyx_service.service:AbstractComponent": "warpcall.service:AbstractComponent",
    "aspyx_service.healthcheck:HealthCheckManager.Result": "warpcall.healthcheck:HealthCheckManager.Result",
    "aspyx_service.authorization:AuthorizationManager.AuthorizationFactory":
        "warpcall.authorization:AuthorizationManager.AuthorizationFactory",
    "aspyx_service.session:SessionManager.Storage": "warpcall.session:SessionManager.Storage",
}


@pytest.fixture(scope="module")
def surface() -> dict[str, Any]:
    """The probe's report, run once by aspyx-service's interpreter."""
    python = ensure_aspyx_python()
    request = json.dumps({"callables": sorted(DECORATORS), "classes": sorted(CLASSES)})
    try:
        done = subprocess.run(
            [str(python), str(PROBE), request], env=isolated_env(), stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=PROBE_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the surface probe did not finish within {PROBE_TIMEOUT:.0f} s")
    lines = [line for line in done.stdout.splitlines() if line.startswith("SURFACE ")]
    if done.returncode != 0 or not lines:
        pytest.fail(f"the surface probe failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr[-4000:]}")
    report: dict[str, Any] = json.loads(lines[-1][len("SURFACE "):])
    return report


def resolve(path: str) -> Any:
    """The object named ``module:qualname`` in this process."""
    module_name, _, qualname = path.partition(":")
    value: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        value = getattr(value, part)
    return value


def normalized(signature: Any) -> Any:
    """A probe signature with object addresses out of default reprs (``<X object at 0x..>``)."""
    if isinstance(signature, str):
        return signature
    return [[name, kind, None if default is None else re.sub(r" at 0x[0-9a-fA-F]+", "", default)]
            for name, kind, default in signature]


def warpcall_signature(func: Any) -> Any:
    from aspyx_surface_probe import signature

    return normalized(signature(func))


def test_every_aspyx_module_is_mapped(surface: dict[str, Any]) -> None:
    """The probe walked the whole package: a module aspyx adds in a new version shows up here."""
    assert set(surface["names"]) == set(MODULES)


def test_left_out_names_are_still_aspyx_names(surface: dict[str, Any]) -> None:
    """The left-out list names only what aspyx really has (a stale entry would hide nothing, yet mislead)."""
    stale = [key for key in LEFT_OUT if key[1] not in surface["names"].get(key[0], [])]
    assert not stale


@pytest.mark.parametrize("aspyx_module", sorted(MODULES))
def test_public_names_exist(surface: dict[str, Any], aspyx_module: str) -> None:
    """Each public name of the aspyx module is found under the matching warpcall module."""
    target = MODULES[aspyx_module]
    try:
        module = importlib.import_module(target)
    except ImportError as exc:
        pytest.fail(f"{target} (for {aspyx_module}) does not import: {exc!r}")
    missing = []
    for name in surface["names"][aspyx_module]:
        if (aspyx_module, name) in LEFT_OUT:
            continue
        try:
            getattr(module, name)
        except AttributeError:
            missing.append(name)
        except ImportError as exc:  # a lazy export whose module is missing
            missing.append(f"{name} ({exc!r})")
    assert not missing, f"{target} lacks {missing} of {aspyx_module}"


#: aspyx defaults warpcall spells differently with the same meaning, each with the reason
EQUIVALENT_DEFAULTS = {
    # component(services=[]): warpcall avoids a mutable default; None means the same empty list
    ("[]", "None"),
    # HTTPXChannel.request(timeout=...): warpcall's stand-in for httpx.USE_CLIENT_DEFAULT, so that the module
    # loads without httpx; request() passes it on to httpx as httpx.USE_CLIENT_DEFAULT (and accepts that too)
    ("<httpx._client.UseClientDefault object>", "USE_CLIENT_DEFAULT"),
}


def compatible(aspyx: list[list[Any]], ours: list[list[Any]], *, callers_only: bool) -> bool:
    """Same parameters: names, kinds and defaults, positional ones in the same order.

    Keyword-only parameters match by name (their order means nothing to a caller). With ``callers_only``
    (decorators: code calls them, never overrides them) warpcall may also give a default where aspyx has
    none and add parameters of its own with defaults: every call written for aspyx still works.
    """
    def split(params: list[list[Any]]) -> tuple[list[list[Any]], dict[str, list[Any]]]:
        return [p for p in params if p[1] != "KEYWORD_ONLY"], {p[0]: p for p in params if p[1] == "KEYWORD_ONLY"}

    def same(want: list[Any], got: list[Any]) -> bool:
        if want[:2] != got[:2]:
            return False
        if want[2] == got[2] or (want[2], got[2]) in EQUIVALENT_DEFAULTS:
            return True
        return callers_only and want[2] is None and got[2] is not None

    want_positional, want_keywords = split(aspyx)
    got_positional, got_keywords = split(ours)
    extra = got_positional[len(want_positional):] + [p for name, p in got_keywords.items() if name not in want_keywords]
    if len(got_positional) < len(want_positional) or not want_keywords.keys() <= got_keywords.keys():
        return False
    if not all(same(w, g) for w, g in zip(want_positional, got_positional)):
        return False
    if not all(same(w, got_keywords[name]) for name, w in want_keywords.items()):
        return False
    if not callers_only:
        return not extra
    return all(default is not None or kind in ("VAR_POSITIONAL", "VAR_KEYWORD") for _, kind, default in extra)


@pytest.mark.parametrize("aspyx_path", sorted(DECORATORS))
def test_decorator_signature(surface: dict[str, Any], aspyx_path: str) -> None:
    """A decorator takes the arguments aspyx's does (warpcall may add optional ones after them)."""
    expected = normalized(surface["callables"][aspyx_path])
    assert not isinstance(expected, str), expected
    target = DECORATORS[aspyx_path]
    try:
        ours = warpcall_signature(resolve(target))
    except (ImportError, AttributeError) as exc:
        pytest.fail(f"{target} is missing: {exc!r}")
    assert compatible(expected, ours, callers_only=True), f"{target}{ours} != {aspyx_path}{expected}"


@pytest.mark.parametrize("aspyx_path", sorted(CLASSES))
def test_subclassed_class_methods(surface: dict[str, Any], aspyx_path: str) -> None:
    """``__init__`` and each public method have aspyx's parameters and are the same kind
    (plain, async, class or static method): a subclass written for aspyx overrides them unchanged."""
    target = CLASSES[aspyx_path]
    try:
        cls = resolve(target)
    except (ImportError, AttributeError) as exc:
        pytest.fail(f"{target} is missing: {exc!r}")
    mismatches = []
    for name, expected in surface["classes"][aspyx_path].items():
        found = member(cls, name)
        if found is None:
            mismatches.append(f"{name}: missing")
            continue
        want, got = normalized(expected["signature"]), normalized(found["signature"])
        if expected["kind"] != found["kind"]:
            mismatches.append(f"{name}: {found['kind']}, aspyx has {expected['kind']}")
        elif isinstance(want, str) or isinstance(got, str) or not compatible(want, got, callers_only=False):
            mismatches.append(f"{name}{got} != aspyx {name}{want}")
    assert not mismatches, f"{target}:\n" + "\n".join(mismatches)


def test_submodule_imports_of_the_issue() -> None:
    """The imports the issue names as failing now work and give the objects the top level exports."""
    import warpcall
    from warpcall.service import LocalComponentRegistry, channel

    assert channel is warpcall.channel
    assert LocalComponentRegistry is warpcall.LocalComponentRegistry
