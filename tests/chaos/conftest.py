"""Chaos tests: real server processes signalled under load."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # registered here too, so the directory runs on its own with -p no:warnings or without pyproject's marker
    config.addinivalue_line("markers", "chaos: real processes killed, stopped or restarted under load")
