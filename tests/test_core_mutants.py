"""Behaviour of the compiled core that mutation testing found unchecked (mutation/, area ``core``).

Each test pins down one promise a sampled mutant broke while every other test still passed.
"""

from __future__ import annotations

import dataclasses
import socket
from decimal import Decimal
from typing import Annotated, Any

import msgpack
import pytest
from pydantic import BaseModel

from warpcall.core.marshal_plan import (
    NonFiniteFloat,
    mark_non_finite_deep,
    may_take_rounded_integers,
    nesting_failure,
)
from warpcall.exceptions import MarshalException

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


@pytest.mark.parametrize(("last", "fits"), [(1535, True), (1536, True), (1537, False)])
def test_trailers_fill_the_budget_to_the_byte(core: CoreImpl, last: int, fits: bool) -> None:
    # 8 lines of 8,000 bytes and one of ``last`` bytes (CRLF included): 65,536 bytes is the whole budget
    trailers = _trailers(8, 8000)[:-2] + _trailers(1, last)
    parser = core.transport.ResponseParser()
    if fits:
        assert parser.feed(CHUNKED_HEAD + trailers)
        assert parser.body == b"hi"
    else:
        with pytest.raises(core.transport.ResponseTooLarge, match="chunk extensions and trailers"):
            parser.feed(CHUNKED_HEAD + trailers)


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


# --- marshal -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 1, 0.0, 1.0, "", None])
def test_a_bool_plan_refuses_values_equal_to_a_bool(core: CoreImpl, value: object) -> None:
    # 0 == False and 1.0 == True, yet neither is a bool: both directions refuse them
    plan = core.marshal.plan_for(bool)
    with pytest.raises(MarshalException, match=r"^bool: expected bool, got "):
        plan.load(value)
    with pytest.raises(MarshalException, match=r"^bool: expected bool, got "):
        plan.dump(value)
    assert plan.load(False) is False and plan.dump(True) is True


# --- request writer ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "framed"),
    [
        ("POST", True),
        ("PUT", True),
        ("PATCH", True),
        ("GET", False),
        ("DELETE", False),
        ("HEAD", False),
        ("OPTIONS", False),
        ("TRACE", False),
        ("QUERY", False),
    ],
)
def test_only_methods_with_a_body_announce_an_empty_one(core: CoreImpl, method: str, framed: bool) -> None:
    out = core.transport.build_request(method, "/", "h", [], b"")
    assert (b"Content-Length: 0\r\n" in out) is framed
    assert out.startswith(method.encode() + b" / HTTP/1.1\r\nHost: h\r\n")


# --- response head -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status_line",
    [b"HTTP/1-1 200 OK", b"HTTP/1,0 200 OK", b"HTTP/2.1 200 OK", b"HTTP-1.1 200 OK", b"HTTP/1.2 200 OK"],
)
def test_a_status_line_with_a_malformed_version_is_refused(core: CoreImpl, status_line: bytes) -> None:
    parser = core.transport.ResponseParser()
    with pytest.raises(ValueError, match="malformed status line"):
        parser.feed(status_line + b"\r\nContent-Length: 0\r\n\r\n")


# the last comma at even and at odd offsets of the message (a scan that skips one byte is seen)
@pytest.mark.parametrize(
    "codings",
    [
        b"gzip, chunked",
        b"gz,chunked",
        b"x, y,  chunked",
        b"deflate ,chunked",
        b"gzip , chunked",
        b"x,chunked",
    ],
)
def test_chunked_as_the_last_transfer_coding_frames_the_body(core: CoreImpl, codings: bytes) -> None:
    parser = core.transport.ResponseParser()
    assert parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: " + codings + b"\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    assert (parser.body, parser.keep_alive) == (b"abc", True)


@pytest.mark.parametrize("codings", [b"chunked, gzip", b"chunked,x", b"chunked , identity"])
def test_chunked_before_another_coding_leaves_the_body_to_the_close(core: CoreImpl, codings: bytes) -> None:
    # the last coding is not chunked: the body runs until the server closes (RFC 9112, 6.3)
    parser = core.transport.ResponseParser()
    assert not parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: " + codings + b"\r\n\r\n3\r\nabc\r\n")
    assert parser.feed(b"")
    assert (parser.body, parser.keep_alive) == (b"3\r\nabc\r\n", False)


@pytest.mark.parametrize("token", [b"close\x0b", b"close\x01", b"\x0bclose", b"keep-alive\x0c, close\x1f"])
def test_a_connection_token_with_control_characters_is_no_close(core: CoreImpl, token: bytes) -> None:
    # only spaces and tabs surround a token; "close" followed by another byte is another token
    parser = core.transport.ResponseParser()
    assert parser.feed(b"HTTP/1.1 200 OK\r\nConnection: " + token + b"\r\nContent-Length: 0\r\n\r\n")
    assert parser.keep_alive is True


def test_a_connection_token_between_spaces_and_tabs_is_close(core: CoreImpl) -> None:
    parser = core.transport.ResponseParser()
    assert parser.feed(
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive , \t close \t\r\nContent-Length: 0\r\n\r\n"
    )
    assert parser.keep_alive is False


# --- connection ----------------------------------------------------------------------------------


def test_a_deadline_shorter_than_the_timeout_bounds_the_wait(core: CoreImpl) -> None:
    left, right = socket.socketpair()
    try:
        connection = core.transport.Connection(left)
        connection.set_timeout(30.0)
        connection.send(b"x", deadline=core.transport.deadline_after(5.0))
        assert right.recv(1) == b"x"
        # the socket's timeout was cut to the time left before the deadline, not left at 30 s
        assert 0.0 < connection.timeout <= 5.0
    finally:
        left.close()
        right.close()


def test_a_deadline_longer_than_the_timeout_keeps_the_timeout(core: CoreImpl) -> None:
    left, right = socket.socketpair()
    try:
        connection = core.transport.Connection(left)
        connection.set_timeout(2.0)
        connection.send(b"x", deadline=core.transport.deadline_after(60.0))
        assert right.recv(1) == b"x"
        assert connection.timeout == 2.0
    finally:
        left.close()
        right.close()


def test_a_failing_dict_value_names_its_key_when_dumped_and_loaded(core: CoreImpl) -> None:
    plan = core.marshal.plan_for(dict[str, int])
    with pytest.raises(MarshalException, match=r"^dict\[str, int\]\['a'\]: expected int, got str$"):
        plan.dump({"a": "x"})
    with pytest.raises(MarshalException, match=r"^dict\[str, int\]\['b'\]: expected int, got str$"):
        plan.load({"a": 1, "b": "x"})


def test_annotated_decides_rounding_by_its_type_not_its_metadata(core: CoreImpl) -> None:
    assert may_take_rounded_integers(Annotated[Decimal, "metadata"]) is True
    assert may_take_rounded_integers(Annotated[int, Decimal]) is False


def test_a_header_name_with_a_non_ascii_byte_is_a_malformed_line(core: CoreImpl) -> None:
    for byte in (b"\x80", b"\xfe", b"\xff"):
        parser = core.transport.ResponseParser()
        with pytest.raises(ValueError, match="malformed header line"):
            parser.feed(b"HTTP/1.1 200 OK\r\nX" + byte + b": 1\r\nContent-Length: 0\r\n\r\n")


@pytest.mark.parametrize(
    "status_line",
    [b"HTTP/1.1 2x0 OK", b"HTTP/1.1 x00 OK", b"HTTP/1.1 20x OK", b"HTTP/1.1 2:0 OK", b"HTTP/1.1 2/0 OK"],
)
def test_a_status_code_with_a_non_digit_is_refused(core: CoreImpl, status_line: bytes) -> None:
    parser = core.transport.ResponseParser()
    with pytest.raises(ValueError, match="malformed status line"):
        parser.feed(status_line + b"\r\nContent-Length: 0\r\n\r\n")


@pytest.mark.parametrize("length", [99, 100, 101, 300])
def test_an_error_quotes_at_most_100_bytes_of_the_line(core: CoreImpl, length: int) -> None:
    line = b"Bad Name" + b"x" * (length - 8)
    parser = core.transport.ResponseParser()
    with pytest.raises(ValueError, match="malformed header line") as caught:
        parser.feed(b"HTTP/1.1 200 OK\r\n" + line + b"\r\nContent-Length: 0\r\n\r\n")
    assert str(caught.value) == f"malformed header line {line[:100]!r}"


# --- invoke head ---------------------------------------------------------------------------------


def _invoke_head(length: bytes, body: bytes = b"[1]") -> bytes:
    return (
        b"POST /invoke HTTP/1.1\r\ncontent-type: application/json\r\ncontent-length: "
        + length
        + b"\r\n\r\n"
        + body
    )


@pytest.mark.parametrize("length", [b"/3", b"3/", b"0/3", b":3", b"3:", b"1/", b"0:"])
def test_an_invoke_head_with_a_non_digit_length_goes_to_the_full_parser(
    core: CoreImpl, length: bytes
) -> None:
    # bodies as long as the length would read were "/" (47) or ":" (58) a digit worth -1 or 10
    assert core.invokehead.parse(_invoke_head(b"3"), 1 << 20) is not None
    for body in (b"[1]", b"[1,2,3,4]", b"[1,2,3,45]"):
        assert core.invokehead.parse(_invoke_head(length, body), 1 << 20) is None


# --- sequences and error values ------------------------------------------------------------------


def test_a_tuple_plan_takes_lists_and_tuples_both_ways(core: CoreImpl) -> None:
    plan = core.marshal.plan_for(tuple[int, str])
    assert plan.dump([1, "a"]) == plan.dump((1, "a"))
    assert plan.load([1, "a"]) == (1, "a") and plan.load((1, "a")) == (1, "a")
    for bad in ({1, "a"}, {"a": 1}, "1a"):
        with pytest.raises(MarshalException, match=r"^tuple\[int, str\]: expected "):
            plan.dump(bad)
        with pytest.raises(MarshalException, match=r"^tuple\[int, str\]: expected a list, got "):
            plan.load(bad)


def test_a_long_value_in_an_error_path_is_cut_to_60_characters(core: CoreImpl) -> None:
    key = "k" * 100
    plan = core.marshal.plan_for(dict[str, int])
    with pytest.raises(MarshalException) as caught:
        plan.dump({key: "x"})
    shown = repr(key)[:57] + "..."
    assert str(caught.value) == f"dict[str, int][{shown}]: expected int, got str"
    with pytest.raises(MarshalException) as caught:
        plan.dump({"k" * 58: "x"})  # a repr of exactly 60 characters is shown whole
    assert str(caught.value) == f"dict[str, int][{'k' * 58!r}]: expected int, got str"


# --- binding -------------------------------------------------------------------------------------


class _Defaults:
    def call(self, a: int, b: int = 1, c: int = 2, d: int = 3) -> int:
        return a + b + c + d


@pytest.mark.parametrize(
    ("args", "bound"),
    [((0,), (0, 1, 2, 3)), ((0, 5), (0, 5, 2, 3)), ((0, 5, 6), (0, 5, 6, 3)), ((0, 5, 6, 7), (0, 5, 6, 7))],
)
def test_bind_fills_the_defaults_after_any_number_of_positional_arguments(
    core: CoreImpl, args: tuple, bound: tuple
) -> None:
    desc = core.proxy.MethodDescriptor.from_function(_Defaults.call)
    assert desc.bind(args, None) == bound


# --- keep-alive and head limits ------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [b"timeout=5", b"max=100,\ttimeout=5", b"max=100, timeout=5", b"max=100,\t timeout = 5", b"\ttimeout=5"],
)
def test_the_keep_alive_timeout_is_found_among_parameters_and_blanks(core: CoreImpl, value: bytes) -> None:
    parser = core.transport.ResponseParser()
    assert parser.feed(b"HTTP/1.1 200 OK\r\nKeep-Alive: " + value + b"\r\nContent-Length: 0\r\n\r\n")
    assert parser.keep_alive_timeout == 5.0


def test_a_head_may_take_exactly_max_head_bytes(core: CoreImpl) -> None:
    start = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
    filler = b"X: " + b"a" * (core.transport.MAX_HEAD - len(start) - 7) + b"\r\n"
    head = start + filler + b"\r\n"
    assert len(head) == core.transport.MAX_HEAD
    parser = core.transport.ResponseParser()
    assert not parser.feed(head[:-1])  # all but the last byte: the end may still come
    assert parser.feed(head[-1:] + b"ok")
    assert parser.body == b"ok"


def test_a_head_without_its_end_at_max_head_bytes_is_refused_at_once(core: CoreImpl) -> None:
    start = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
    data = start + b"X: " + b"a" * (core.transport.MAX_HEAD - len(start) - 3)
    assert len(data) == core.transport.MAX_HEAD and b"\r\n\r\n" not in data
    parser = core.transport.ResponseParser()
    with pytest.raises(core.transport.ResponseTooLarge, match="response head is larger than"):
        parser.feed(data)


def test_an_invoke_request_whose_body_is_longer_than_its_head_is_recognised(core: CoreImpl) -> None:
    body = b"[" + b"1," * 300 + b"1]"
    data = _invoke_head(str(len(body)).encode(), body)
    parsed = core.invokehead.parse(data, 1 << 20)
    assert parsed is not None and parsed[2] == len(data) - len(body)
    assert core.invokehead.parse(data + b"x", 1 << 20) is None  # one byte more than announced


@pytest.mark.parametrize(("first", "second"), [(b"0", b"5"), (b"5", b"0"), (b"1", b"2")])
def test_conflicting_content_lengths_are_refused(core: CoreImpl, first: bytes, second: bytes) -> None:
    parser = core.transport.ResponseParser()
    with pytest.raises(ValueError, match="conflicting Content-Length headers"):
        parser.feed(
            b"HTTP/1.1 200 OK\r\nContent-Length: " + first + b"\r\nContent-Length: " + second + b"\r\n\r\n"
        )


def test_a_repeated_equal_content_length_is_accepted(core: CoreImpl) -> None:
    parser = core.transport.ResponseParser()
    assert parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n")
    assert parser.body == b""


class _Model(BaseModel):
    a: int
    b: int
    c: int


@pytest.mark.parametrize(
    ("data", "more"),
    [
        ({"a": "x", "b": 1, "c": 1}, ""),
        ({"a": "x", "b": "y", "c": 1}, " (and 1 more errors)"),
        ({"a": "x", "b": "y", "c": "z"}, " (and 2 more errors)"),
    ],
)
def test_a_pydantic_failure_counts_the_other_errors(core: CoreImpl, data: dict, more: str) -> None:
    with pytest.raises(MarshalException) as caught:
        core.marshal.plan_for(_Model).load(data)
    assert str(caught.value).endswith("got str" + more)


@dataclasses.dataclass
class _OnlyInitVar:
    factor: dataclasses.InitVar[int] = 2

    def __post_init__(self, factor: int) -> None:
        self.value = factor * 2


def test_a_dataclass_of_init_vars_alone_is_built_through_its_init(core: CoreImpl) -> None:
    loaded = core.marshal.plan_for(_OnlyInitVar).load({})
    assert type(loaded) is _OnlyInitVar and loaded.value == 4


def test_marking_non_finite_floats_copies_only_what_holds_one() -> None:
    untouched = {"a": [1, 2], "b": None, "c": {"d": "x"}, "e": (1.5, "y")}
    assert mark_non_finite_deep(untouched) is untouched
    holder = {"keep": [1], "nan": [1, float("nan")]}
    marked = mark_non_finite_deep(holder)
    assert marked is not holder and marked["keep"] is holder["keep"]
    assert isinstance(marked["nan"][1], NonFiniteFloat)


def _cycle(length: int) -> dict:
    """Dicts nested ``length`` deep under keys k0, k1, ...; the innermost holds the outermost."""
    root: dict = {}
    node = root
    for i in range(length - 1):
        node[f"k{i}"] = {}
        node = node[f"k{i}"]
    node[f"k{length - 1}"] = root
    return root


@pytest.mark.parametrize(
    ("length", "path"),
    [
        (12, "".join(f"['k{i}']" for i in range(12))),
        (13, "['k0']['k1']['k2']['k3']['k4']['k5']...(3 more)...['k9']['k10']['k11']['k12']"),
        (16, "['k0']['k1']['k2']['k3']['k4']['k5']...(6 more)...['k12']['k13']['k14']['k15']"),
    ],
)
def test_a_long_path_to_a_cycle_is_cut_in_its_middle(length: int, path: str) -> None:
    assert nesting_failure("v", _cycle(length)) == (
        f"v{path}: the value contains itself (it is the dict at v), which cannot be marshalled"
    )
