"""Channel behaviour mutation testing found unchecked (mutation/, area ``channels``)."""

from __future__ import annotations

import types

import pytest

from warpcall.channels import _http_common
from warpcall.channels._http_common import _deadline_headers


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> float:
    """The module's clock stands still at 1000.0 (exact figures, no race with the real one)."""
    monkeypatch.setattr(_http_common, "time", types.SimpleNamespace(monotonic=lambda: 1000.0))
    return 1000.0


@pytest.mark.parametrize(
    ("left", "sent"), [(-1.0, "0"), (-0.0005, "0"), (0.0, "0"), (0.0005, "0"), (2.0, "2000"), (0.25, "250")]
)
def test_the_time_left_is_sent_in_whole_milliseconds_never_below_zero(
    now: float, left: float, sent: str
) -> None:
    assert _deadline_headers([("accept", "*/*")], now + left) == [("accept", "*/*"), ("x-rpc-timeout", sent)]


def test_a_timeout_header_already_there_is_kept(now: float) -> None:
    given = [(b"X-RPC-Timeout", b"250")]
    assert _deadline_headers(given, now + 2.0) is given
