"""Behaviour of the compiled core that mutation testing found unchecked (mutation/, area ``core``).

Each test pins down one promise a sampled mutant broke while every other test still passed.
"""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

CoreImpl = Any  # the ``core`` fixture of conftest.py: one build of the compiled modules


# --- envelope ------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [0, 2, 5, 127])
def test_msgpack_ext_hook_decodes_only_its_own_extension_code(core: CoreImpl, code: int) -> None:
    # another writer's extension types pass through untouched; only BIG_INT_EXT is an integer
    assert core.envelope.BIG_INT_EXT not in (0, 2, 5, 127)
    packed = msgpack.packb(msgpack.ExtType(code, b"\x01\x02"))
    assert msgpack.unpackb(packed, ext_hook=core.envelope.msgpack_ext_hook) == msgpack.ExtType(
        code, b"\x01\x02"
    )


def test_msgpack_ext_hook_round_trips_integers_beyond_64_bits(core: CoreImpl) -> None:
    for value in (2**64, -(2**70) - 3, 2**200 + 1):
        packed = msgpack.packb(value, default=core.envelope.msgpack_default)
        assert msgpack.unpackb(packed, ext_hook=core.envelope.msgpack_ext_hook) == value


# --- response parser -----------------------------------------------------------------------------

CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n"


def _trailers(count: int, length: int) -> bytes:
    """``count`` trailer lines of ``length`` bytes each (CRLF included), then the final CRLF."""
    line = b"X-T: " + b"a" * (length - 7) + b"\r\n"
    assert len(line) == length
    return line * count + b"\r\n"


def test_trailers_within_the_head_budget_are_skipped(core: CoreImpl) -> None:
    # 8 lines of 8,000 bytes: 64,000 bytes, within the 65,536 bytes of extensions and trailers
    parser = core.transport.ResponseParser()
    assert parser.feed(CHUNKED_HEAD + _trailers(8, 8000))
    assert (parser.status, parser.body) == (200, b"hi")


def test_trailers_beyond_the_head_budget_are_refused(core: CoreImpl) -> None:
    # 9 lines of 8,000 bytes (each under MAX_LINE, fewer than MAX_HEADERS) add up to 72,000 bytes
    assert 9 * 8000 > core.transport.MAX_HEAD and 8000 < core.transport.MAX_LINE
    parser = core.transport.ResponseParser()
    with pytest.raises(core.transport.ResponseTooLarge, match="chunk extensions and trailers"):
        parser.feed(CHUNKED_HEAD + _trailers(9, 8000))


def test_trailers_count_against_the_budget_fed_line_by_line(core: CoreImpl) -> None:
    parser = core.transport.ResponseParser()
    assert not parser.feed(CHUNKED_HEAD)
    line = _trailers(1, 8000)[:-2]
    with pytest.raises(core.transport.ResponseTooLarge, match="chunk extensions and trailers"):
        for _ in range(9):
            assert not parser.feed(line)


def test_a_complete_response_stays_complete_when_the_stream_ends(core: CoreImpl) -> None:
    parser = core.transport.ResponseParser()
    assert parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert parser.feed(b"")  # the end of the stream after a whole response: still complete
    assert (parser.status, parser.body, parser.complete) == (200, b"ok", True)
