"""For the cluster tests: ``scripts/netns_cluster.py`` loaded as the module ``netns_cluster`` (scripts/ is no
package), and what decides whether they run.

Skipped, with the reason, where network namespaces cannot be made (not Linux, not root, no ``ip``,
``ip netns add`` refused, as in an unprivileged container); ``WARPCALL_REQUIRE_NETNS=1`` turns that
skip into a failure, for a CI machine that must run them. A missing etcd binary skips them too,
except under ``CI=true``, where it fails (as the registry tests do).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from platforms import etcd_required

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "netns_cluster.py"


#: why the cluster cannot be loaded here ('' when it can)
MISSING = "" if SCRIPT.is_file() else f"{SCRIPT} is not here (a copy of tests/ without scripts/)"


def _load_script() -> ModuleType | None:
    loaded = sys.modules.get("netns_cluster")
    if loaded is not None:
        return loaded
    if MISSING:
        return None
    spec = importlib.util.spec_from_file_location("netns_cluster", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["netns_cluster"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


netns_cluster: Any = _load_script()


def require_namespaces() -> None:
    """Skip (or fail, under WARPCALL_REQUIRE_NETNS=1) unless network namespaces can be made here."""
    if netns_cluster is None:
        pytest.skip(MISSING)
    try:
        netns_cluster.check_namespaces()
    except netns_cluster.Unavailable as exc:
        if os.environ.get("WARPCALL_REQUIRE_NETNS", "") not in ("", "0"):
            pytest.fail(f"WARPCALL_REQUIRE_NETNS is set but {exc}")
        pytest.skip(str(exc))


def require_cluster() -> None:
    """Skip (or fail) unless namespaces can be made and etcd is installed."""
    require_namespaces()
    try:
        netns_cluster.etcd_binary()
    except netns_cluster.Unavailable as exc:
        if etcd_required():
            pytest.fail(str(exc))
        pytest.skip(str(exc))
