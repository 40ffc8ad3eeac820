"""``scripts/netns_cluster.py`` loaded as the module ``netns_cluster`` (scripts/ is no package), for the cluster tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "netns_cluster.py"


def _load_script() -> ModuleType:
    loaded = sys.modules.get("netns_cluster")
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location("netns_cluster", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["netns_cluster"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


netns_cluster = _load_script()
