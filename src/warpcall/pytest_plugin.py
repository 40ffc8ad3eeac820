"""warpcall's pytest plugin (registered through the ``pytest11`` entry point): fixtures for benchmarks.

Boot your server module in a child process on 127.0.0.1 and call it through warpcall's own proxies::

    import pytest
    from myapp.api import MyService

    pytestmark = pytest.mark.warpcall_server("myapp.server:ServerModule")

    @pytest.mark.parametrize("channel", ["dispatch-json", "dispatch-msgpack", "rest"])
    def test_bench(benchmark, warpcall_service, channel):
        benchmark(warpcall_service(MyService, channel).method, arg)

Which module to serve (the first that is set wins):

1. the ``warpcall_server_module`` fixture (a ``"pkg.module:Module"`` string): override it in a
   ``conftest.py``, or parametrize it to compare modules or releases side by side, one child each:
   ``@pytest.mark.parametrize("warpcall_server_module", ["v1.server:Module", "v2.server:Module"])``;
2. the marker ``@pytest.mark.warpcall_server("pkg.module:Module")`` on the test, its class or module;
3. the command line ``--warpcall-server pkg.module:Module``;
4. the ini option ``warpcall_server = pkg.module:Module`` (``pytest.ini``, ``[tool.pytest.ini_options]``).

The module is a warpcall ``@module`` that ``FastAPIServer.boot`` can serve (it provides a
``FastAPIServer``); ``pkg.module`` alone names a module holding exactly one ``@module`` class. It is
imported in the child with the test session's ``sys.path`` (your rootdir, ``pythonpath`` ini entries).
Each module is booted once per session (on first use, waiting at most ``warpcall_ready_timeout``
seconds, default 30, for it to serve) and stopped when the session ends: SIGTERM, then SIGKILL after
10 s.

Fixtures:

- ``warpcall_service``: ``warpcall_service(ServiceType, channel="")`` -> the ``ServiceManager`` proxy of
  ``ServiceType`` on ``channel`` at the child server.
- ``warpcall_remote``: the ``RemoteServices`` behind it (``.get``, ``.manager``, ``.url``).
- ``warpcall_server_url``: the child server's URL.
- ``warpcall_profile``: a ``warpcall.profile(process=True)`` active for the whole test.

Phase breakdown in pytest-benchmark's results: when a test uses ``benchmark`` and ``warpcall_service``,
right after ``benchmark(...)`` (or ``benchmark.pedantic(...)`` without ``setup``) returns, the plugin
calls the benchmarked function again ``warpcall_profile_calls`` times (ini, default 200; 0 turns this off) inside ``warpcall.profile()``:
the summary (per method and channel, p50/p90/p99/max/mean of the total and of every client and server
phase, in nanoseconds) goes to ``benchmark.extra_info["warpcall"]``, so it is in ``--benchmark-json``
and saved runs. The benchmark's own figures are measured without profiling. A test that also uses
``warpcall_profile`` profiles the benchmarked calls themselves instead (no extra calls): the figures
then include profiling's cost.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from warpcall.observe.child import ChildServer, RemoteServices
    from warpcall.observe.profile import profile as Profile

MARKER = "warpcall_server"
DEFAULT_PROFILE_CALLS = 200
DEFAULT_READY_TIMEOUT = 30.0
#: the key of the phase breakdown in ``benchmark.extra_info``
EXTRA_INFO_KEY = "warpcall"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("warpcall", "warpcall benchmark fixtures")
    group.addoption(
        "--warpcall-server",
        dest="warpcall_server",
        default=None,
        metavar="MODULE",
        help="pkg.module[:Module] the warpcall_service fixture serves in a child process",
    )
    parser.addini("warpcall_server", "pkg.module[:Module] the warpcall_service fixture serves", default="")
    parser.addini(
        "warpcall_profile_calls",
        f"profiled calls after a benchmark, for its phase breakdown in extra_info (default {DEFAULT_PROFILE_CALLS}; 0: off)",
        default=str(DEFAULT_PROFILE_CALLS),
    )
    parser.addini(
        "warpcall_ready_timeout",
        f"seconds a child server may take to serve (default {DEFAULT_READY_TIMEOUT:g})",
        default=str(DEFAULT_READY_TIMEOUT),
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(module): the pkg.module[:Module] warpcall_service serves in a child process"
    )


class _Servers:
    """The session's child servers and their clients, one per module, stopped at the session's end."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.children: dict[str, ChildServer] = {}
        self.remotes: dict[str, RemoteServices] = {}
        self.failed: dict[str, str] = {}

    def url(self, spec: str) -> str:
        from warpcall.observe.child import ChildServer, ChildServerError

        if spec in self.failed:  # one failed start is reported by every test that needs it, not retried
            raise RuntimeError(self.failed[spec])
        child = self.children.get(spec)
        if child is None:
            path = [str(self.config.rootpath), *(p for p in sys.path if p and os.path.isdir(p))]
            child = ChildServer.for_module(spec, cwd=str(self.config.rootpath), extra_path=path)
            try:
                child.start(float(self.config.getini("warpcall_ready_timeout")))
            except ChildServerError as exc:
                self.failed[spec] = f"warpcall_server {spec!r} did not start: {exc}"
                raise RuntimeError(self.failed[spec]) from None
            self.children[spec] = child
        return child.url

    def remote(self, spec: str) -> RemoteServices:
        from warpcall.observe.child import RemoteServices

        remote = self.remotes.get(spec)
        if remote is None:
            remote = self.remotes[spec] = RemoteServices(self.url(spec))
        return remote

    def close(self) -> None:
        for remote in self.remotes.values():
            remote.close()
        for child in self.children.values():
            child.stop()
        self.remotes.clear()
        self.children.clear()


@pytest.fixture(scope="session")
def _warpcall_servers(pytestconfig: pytest.Config) -> Iterator[_Servers]:
    servers = _Servers(pytestconfig)
    yield servers
    servers.close()


@pytest.fixture
def warpcall_server_module(request: pytest.FixtureRequest) -> str:
    """``pkg.module[:Module]`` to serve: the marker, else ``--warpcall-server``, else the ``warpcall_server`` ini."""
    marker = request.node.get_closest_marker(MARKER)
    if marker is not None:
        if len(marker.args) != 1 or not isinstance(marker.args[0], str):
            raise pytest.UsageError(f'@pytest.mark.{MARKER} takes one "pkg.module:Module" string')
        return str(marker.args[0])
    spec = request.config.getoption("warpcall_server") or request.config.getini("warpcall_server")
    if not spec:
        raise pytest.UsageError(
            f"which module should warpcall_service serve? Set @pytest.mark.{MARKER}('pkg.module:Module'), "
            "--warpcall-server pkg.module:Module, the warpcall_server ini option, or override the "
            "warpcall_server_module fixture"
        )
    return str(spec)


@pytest.fixture
def warpcall_server_url(_warpcall_servers: _Servers, warpcall_server_module: str) -> str:
    """The URL of the child process serving ``warpcall_server_module`` (booted once per session)."""
    return _warpcall_servers.url(warpcall_server_module)


@pytest.fixture
def warpcall_remote(_warpcall_servers: _Servers, warpcall_server_module: str) -> RemoteServices:
    """Proxies to the child server: ``.get(ServiceType, channel)``, ``.manager``, ``.url``."""
    return _warpcall_servers.remote(warpcall_server_module)


@pytest.fixture
def warpcall_profile(request: pytest.FixtureRequest) -> Iterator[Profile]:
    """A ``warpcall.profile(process=True)`` active during the test; with ``benchmark``, its summary goes to
    ``benchmark.extra_info["warpcall"]`` (the benchmarked calls themselves, profiled)."""
    from warpcall.observe.profile import profile

    collected = profile(process=True)
    with collected:
        yield collected
    benchmark = _benchmark_of(request)
    if benchmark is not None and collected.records:
        benchmark.extra_info[EXTRA_INFO_KEY] = {"mode": "during", **collected.summary().to_dict()}


@pytest.fixture
def warpcall_service(request: pytest.FixtureRequest, warpcall_remote: RemoteServices) -> Callable[..., Any]:
    """``warpcall_service(ServiceType, channel="")``: the proxy of ``ServiceType`` on ``channel`` at the child server."""
    benchmark = _benchmark_of(request)
    calls = int(request.config.getini("warpcall_profile_calls"))
    if benchmark is not None and calls > 0 and "warpcall_profile" not in request.fixturenames:

        def profile_after(function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            summary = _profile_calls(function, args, kwargs, calls)
            benchmark.extra_info[EXTRA_INFO_KEY] = {"mode": "after", "profiled_calls": calls, **summary}

        _after_benchmark(benchmark, profile_after)
    return warpcall_remote.get


def _benchmark_of(request: pytest.FixtureRequest) -> Any:
    if "benchmark" not in request.fixturenames:
        return None
    try:
        return request.getfixturevalue("benchmark")
    except pytest.FixtureLookupError:  # pytest-benchmark is not installed
        return None


def _after_benchmark(
    benchmark: Any, then: Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any]], None]
) -> None:
    # pytest-benchmark runs benchmark(...) through _raw and benchmark.pedantic(...) through _raw_pedantic
    # (instance methods in every release from 3.x to 5.x). Wrapping them on this one fixture object runs
    # ``then`` with what was benchmarked right after the benchmark returns: still inside the test, while
    # what the function needs (an event loop the test closes at its end) is alive; the measurement
    # itself is untouched.
    raw = getattr(benchmark, "_raw", None)
    if callable(raw):

        def raw_then(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            result = raw(function, *args, **kwargs)
            then(function, args, kwargs)
            return result

        benchmark._raw = raw_then
    pedantic = getattr(benchmark, "_raw_pedantic", None)
    if callable(pedantic):

        def pedantic_then(
            target: Callable[..., Any], args: Any = (), kwargs: Any = None, setup: Any = None, **rest: Any
        ) -> Any:
            result = pedantic(target, args=args, kwargs=kwargs, setup=setup, **rest)
            if setup is None:  # with setup, the arguments come from it, call by call: nothing to repeat
                then(target, tuple(args), dict(kwargs or {}))
            return result

        benchmark._raw_pedantic = pedantic_then


def _profile_calls(
    function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], calls: int
) -> dict[str, Any]:
    from warpcall.observe.profile import profile

    with profile() as collected:
        first = function(*args, **kwargs)
        if inspect.isawaitable(first):  # an async proxy method, benchmarked as it is (a coroutine per call)

            async def run() -> None:
                await first
                for _ in range(calls - 1):
                    await function(*args, **kwargs)

            asyncio.run(run())
        else:
            for _ in range(calls - 1):
                function(*args, **kwargs)
    return collected.summary().to_dict()
