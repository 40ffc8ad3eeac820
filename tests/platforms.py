"""Which tests need which platform, in one place (used by tests/conftest.py and the etcd fixtures).

Two markers, added at collection by path (so a new test in one of these files is marked too):

- ``linux_only``: needs Linux: ``/proc``, network namespaces, ``SO_REUSEPORT`` balancing, the
  etcd binary from Debian's packages. Deselected on macOS and Windows (pyproject's cibuildwheel
  overrides pass ``-m "not linux_only"``).
- ``posix_only``: needs POSIX process control: SIGKILL/SIGSTOP/SIGCONT sent to a child, process
  groups, ``os.kill(pid, 0)`` as a probe (on Windows it terminates the process). Deselected on Windows.

A file is listed with the reason; a directory covers every file under it.
"""

from __future__ import annotations

import os
import sys

LINUX_ONLY: dict[str, str] = {
    "tests/registry/": "etcd from Debian's packages, /proc, SIGKILL/SIGSTOP of registry peers",
    "tests/chaos/": "etcd, SIGKILL/SIGSTOP of cluster members",
    "tests/cluster/": "network namespaces and veth (iproute2), as root",
    "tests/cli/test_serve_workers.py": "SO_REUSEPORT balancing across workers, /proc",
    "tests/compat/test_rolling_upgrades.py": "/proc (the servers' open files)",
    "tests/service/test_breaker.py": "/proc (a SIGSTOPped instance's state)",
}

POSIX_ONLY: dict[str, str] = {
    "tests/service/test_failover.py": "SIGKILL of an instance",
    "tests/observe/test_profile_child.py": "a child that ignores SIGTERM and is SIGKILLed",
    "tests/cli/test_call.py": "SIGKILL of a process group",
    "tests/cli/test_serve.py": "SIGTERM/SIGINT drains of `warpcall serve`",
    "tests/cli/test_serve_reload.py": "SIGTERM of the reloading supervisor",
    "tests/test_demo.py": "os.kill(pid, 0) probes the demo's child (on Windows it terminates it)",
    "tests/test_demo_concurrent.py": "as tests/test_demo.py",
}


def marker_for(relative_path: str) -> str | None:
    """``linux_only``, ``posix_only`` or None for a test file's path relative to the project root."""
    path = relative_path.replace(os.sep, "/")
    for table, marker in ((LINUX_ONLY, "linux_only"), (POSIX_ONLY, "posix_only")):
        for prefix in table:
            if path == prefix or (prefix.endswith("/") and path.startswith(prefix)):
                return marker
    return None


def etcd_required() -> bool:
    """Whether a missing etcd binary fails the tests that need one instead of skipping them.

    ``WARPCALL_REQUIRE_ETCD`` decides when set (``.ci/run`` sets 1; pyproject's cibuildwheel settings
    set 0: its build containers have no etcd). Otherwise CI=true requires it on Linux only, where the
    package exists (macOS and Windows runners skip, naming the reason).
    """
    explicit = os.environ.get("WARPCALL_REQUIRE_ETCD")
    if explicit is not None:
        return explicit not in ("", "0")
    return os.environ.get("CI", "").lower() == "true" and sys.platform.startswith("linux")
