"""Channel behaviour mutation testing found unchecked (mutation/, area ``channels``)."""

from __future__ import annotations

import time

from warpcall.channels._http_common import _deadline_headers


def test_a_passed_deadline_is_sent_as_zero_milliseconds_left() -> None:
    assert _deadline_headers([("accept", "*/*")], time.monotonic() - 1.0) == [
        ("accept", "*/*"),
        ("x-rpc-timeout", "0"),
    ]
    assert _deadline_headers([], time.monotonic() - 0.0005) == [("x-rpc-timeout", "0")]


def test_the_time_left_is_sent_in_whole_milliseconds_unless_a_header_is_there() -> None:
    ((name, value),) = _deadline_headers([], time.monotonic() + 2.0)
    assert name == "x-rpc-timeout" and 1000 < int(value) <= 2000
    given = [(b"X-RPC-Timeout", b"250")]
    assert _deadline_headers(given, time.monotonic() + 2.0) is given
