"""Generated inputs through every fuzz target, a bounded number per target (the long job is ``python -m fuzz``).

Each test draws from a target's strategy in ``fuzz_targets`` and runs its check, which compares the
compiled and the plain-Python build on the input and asserts the target's properties (see that module).
Derandomized and without an example database, so that a run is the same on every machine;
``WARPCALL_FUZZ_EXAMPLES`` changes the count per target (default 2000).
The ``@example`` inputs are the regressions the fuzzers found, kept whatever the seed draws.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import fuzz_targets as ft
import msgpack
import pytest
from hypothesis import HealthCheck, example, given, settings

from rawhttp import request

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("WARPCALL_FUZZ_EXAMPLES", "2000"))


def bounded(examples: int = EXAMPLES) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


@bounded()
@given(ft.invokehead_inputs())
# uvicorn hands the app a value without llhttp's trailing spaces: so does the recogniser
@example((b"POST /invoke HTTP/1.1\r\ncontent-length: 0\r\ncontent-type:application/json \r\n\r\n", 1 << 20))
def test_request_recogniser(value: tuple[bytes, int]) -> None:
    ft.check_invokehead(*value)


@bounded()
@given(ft.envelope_inputs())
# JSON nested deeper than orjson reads: the stdlib fallback's RecursionError escaped as a crash (a 500)
@example(("json", b"[" * 1100 + b"]" * 1100))
@example(("json", b'{"method":"c:s:m","args":' + b"[" * 3000 + b"]" * 3000 + b"}"))
@example(("msgpack", b"\x91" * 3000 + b"\x00"))
def test_envelope_decoders(value: tuple[str, bytes]) -> None:
    ft.check_envelope(*value)


@bounded()
@given(ft.roundtrip_inputs())
# integers beyond 64 bits: the JSON decoders keep orjson's float (dispatch reads the body again where a type
# wants the int: the server test checks that end to end); msgpack carries them exactly
@example(("fz:fuzz:echo_point", [-(2**63) - 1]))
@example(("fz:fuzz:echo_point", [2**64]))
def test_envelope_roundtrip(value: tuple[str, list[Any]]) -> None:
    ft.check_envelope_roundtrip(*value)


@bounded()
@given(ft.protobuf_inputs())
def test_protobuf_decoding(value: tuple[bool, int, bytes]) -> None:
    ft.check_protobuf(*value)


@bounded()
@given(ft.protobuf_encode_inputs())
def test_protobuf_encoding(value: tuple[int, list[Any]]) -> None:
    ft.check_protobuf_encode(*value)


@bounded()
@given(ft.marshal_inputs())
# Decimal('sNaN') loads; it cannot be compared, which the check (not warpcall) tripped on
@example((ft.MARSHAL_TYPES.index(ft.Decimal), "sNaN"))
def test_argument_loading(value: tuple[int, Any]) -> None:
    ft.check_marshal(*value)


@bounded()
@given(ft.response_inputs())
# bytes after a whole response, in the same piece or the next: the connection is not kept either way
@example((b"HTTP/1.1 204 No Content\r\ntransfer-encoding:\r\ntransfer-encoding: -1\r\n\r\n\x00", [70], False, True,
          64 * 2**20))
def test_response_parser(value: tuple[bytes, list[int], bool, bool, int]) -> None:
    ft.check_response(*value)


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[Any]:
    quiet = logging.getLogger("uvicorn.error")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "Invalid HTTP request received" for half the inputs
    server = ft.start_fuzz_server()
    try:
        yield server
    finally:
        server.environment.destroy()
        quiet.setLevel(level)


@bounded()
@given(data=ft.server_requests())
# a lone surrogate echoed back could not be encoded: a plain-text 500
@example(data=request("/invoke", b'{"method":"fz:fuzz:echo_text","args":["\\ud800"]}'))
# a valid add call to another path is that path's 404, not a call (the check once expected the sum)
@example(data=request("/i1nvoke", b'{"method": "fz:fuzz:add", "args": [2, 1180591620717411303424]}'))
# an integer beyond 64 bits travels exactly, both ways, in JSON and msgpack
@example(data=request("/invoke", b'{"method":"fz:fuzz:add","args":[1180591620717411303424,-1]}'))
@example(data=request("/invoke", msgpack.packb({"method": "fz:fuzz:add", "args": [-(2**63), -1]}),
                      "application/msgpack"))
def test_server_answers_2xx_or_4xx(fuzz_server: Any, data: bytes) -> None:
    ft.check_server(data, port=fuzz_server.port)
