"""The dispatch envelope, on both cores: wire format, validation, old peers."""

from __future__ import annotations

import json
import os

import msgpack
import pytest

from warpcall.core.marshal_plan import NonFiniteFloat
from warpcall.exceptions import MalformedRequestException, MarshalException, ProtocolException


def test_json_request_is_the_aspyx_wire_format(core):
    body = core.envelope.encode_request_json("shop:cart:add", [1, "two", {"x": None}])
    assert json.loads(body) == {"method": "shop:cart:add", "args": [1, "two", {"x": None}]}
    assert core.envelope.decode_request_json(body) == ("shop:cart:add", [1, "two", {"x": None}])


def test_json_keeps_unicode(core):
    body = core.envelope.encode_request_json("a:b:c", ["grüße ✓"])
    assert "grüße ✓".encode() in body
    assert core.envelope.decode_request_json(body)[1] == ["grüße ✓"]


def test_msgpack_request_roundtrip_with_bytes(core):
    body = core.envelope.encode_request_msgpack("a:b:c", [b"\x00\x01", 2.5])
    assert msgpack.unpackb(body) == {"method": "a:b:c", "args": [b"\x00\x01", 2.5]}
    assert core.envelope.decode_request_msgpack(body) == ("a:b:c", [b"\x00\x01", 2.5])


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_response_roundtrip(core, fmt):
    encode = getattr(core.envelope, f"encode_response_{fmt}")
    decode = getattr(core.envelope, f"decode_response_{fmt}")
    assert decode(encode({"a": [1, 2]})) == ({"a": [1, 2]}, None)
    failure = {"type": "ValueError", "message": "bad"}
    assert decode(encode(None, failure)) == (None, failure)


def test_old_peer_string_exception_is_accepted(core):
    body = json.dumps({"result": None, "exception": "boom"}).encode()
    assert core.envelope.decode_response_json(body) == (None, {"type": "", "message": "boom"})


def test_extra_keys_are_ignored(core):
    body = json.dumps({"method": "a:b:c", "args": [], "trace": "x"}).encode()
    assert core.envelope.decode_request_json(body) == ("a:b:c", [])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "request body is not valid JSON"),
        (b"\xff\xfe", "request body is not valid JSON"),
        (b"[1, 2]", "request envelope must be an object with 'method' and 'args', got list"),
        (b'{"args": []}', "request envelope has no 'method'"),
        (b'{"method": 3, "args": []}', "'method' must be a string 'component:service:method', got int"),
        (b'{"method": "a:b", "args": []}', "'method' must look like 'component:service:method', got 'a:b'"),
        (b'{"method": "a::c", "args": []}', "'method' must look like 'component:service:method', got 'a::c'"),
        (b'{"method": "a:b:c", "args": {"x": 1}}', "request 'args' must be a list, got dict"),
    ],
)
def test_malformed_json_requests_name_the_problem(core, body, message):
    with pytest.raises(MalformedRequestException) as info:
        core.envelope.decode_request_json(body)
    assert str(info.value).startswith(message)
    assert info.value.status == 400


def test_malformed_msgpack_request(core):
    with pytest.raises(MalformedRequestException, match="request body is not valid msgpack"):
        core.envelope.decode_request_msgpack(b"\xc1")
    with pytest.raises(MalformedRequestException, match="got int"):
        core.envelope.decode_request_msgpack(msgpack.packb(7))


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_malformed_response_is_a_protocol_error(core, fmt):
    decode = getattr(core.envelope, f"decode_response_{fmt}")
    with pytest.raises(ProtocolException, match="response"):
        decode(b"\xc1{")
    body = json.dumps([1]).encode() if fmt == "json" else msgpack.packb([1])
    with pytest.raises(ProtocolException, match="response envelope must be an object"):
        decode(body)


def test_split_method(core):
    assert core.envelope.split_method("shop:cart:add") == ("shop", "cart", "add")
    with pytest.raises(MalformedRequestException):
        core.envelope.split_method("shop:cart:add:extra")


def test_json_integers_beyond_64_bits_roundtrip(core):
    body = core.envelope.encode_request_json("a:b:c", [2**70, -(2**65)])
    assert core.envelope.decode_request_json(body) == ("a:b:c", [2**70, -(2**65)])


def test_json_non_string_keys_are_written_as_strings(core):
    body = core.envelope.encode_response_json({1: "one", "two": 2})
    assert json.loads(body) == {"result": {"1": "one", "two": 2}, "exception": None}


def test_json_both_builds_write_the_same_bytes(core):
    from warpcall._compiled import load_pure

    reference = load_pure("warpcall.core.envelope")

    value = [{"text": "grüße", "n": 1, "f": 0.1, "none": None, "flag": True, "list": [1, [2, []]]}]
    assert core.envelope.encode_request_json("a:b:c", value) == reference.encode_request_json("a:b:c", value)


def test_json_without_orjson_gives_the_same_bytes(core):
    """Where orjson cannot be installed the stdlib writes the same envelope."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "class NoOrjson:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'orjson':\n"
        "            raise ModuleNotFoundError('no orjson here', name='orjson')\n"
        "sys.meta_path.insert(0, NoOrjson())\n"
        "from warpcall.core import envelope\n"
        "body = envelope.encode_request_json('a:b:c', [{'text': 'grüße', 'n': 2**70, 'f': 0.5, 'x': None}])\n"
        "sys.stdout.write(body.decode())\n"
        "assert envelope.decode_request_json(body)[1][0]['n'] == 2**70\n"
        "assert 'orjson' not in sys.modules\n"
    )
    env = dict(os.environ, WARPCALL_PURE="0" if core.native else "1")
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True, env=env
    )
    expected = core.envelope.encode_request_json("a:b:c", [{"text": "grüße", "n": 2**70, "f": 0.5, "x": None}])
    assert result.stdout.encode() == expected


def test_msgpack_encoding_survives_a_failure_and_threads(core):
    # the encoder keeps one packer per thread: a failed pack must leave it clean, and threads their own
    import threading

    import msgpack

    with pytest.raises(TypeError):
        core.envelope.encode_response_msgpack({"half": [1, 2, object()]})
    assert msgpack.unpackb(core.envelope.encode_response_msgpack("ok"), raw=False) == {"result": "ok", "exception": None}
    errors: list[str] = []

    def encode(n: int) -> None:
        for i in range(300):
            value = {"thread": n, "i": i, "text": "x" * (i % 50)}
            decoded = msgpack.unpackb(core.envelope.encode_request_msgpack("c:s:m", [value]), raw=False)
            if decoded != {"method": "c:s:m", "args": [value]}:
                errors.append(f"thread {n} call {i}: {decoded!r}")

    threads = [threading.Thread(target=encode, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []


# ---------------------------------------------------------------- values at the edges (issue 14, point 7)


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize("n", [2**64, 2**64 + 1, -(2**63) - 1, 2**200, -(10**400)])
def test_big_integers_json(core, n):
    body = core.envelope.encode_request_json("a:b:c", [n])
    assert body == b'{"method":"a:b:c","args":[%d]}' % n
    assert core.envelope.decode_request_json_exact(body) == ("a:b:c", [n])
    assert core.envelope.decode_response_json_exact(core.envelope.encode_response_json([n])) == ([n], None)
    # the fast reader may round them (orjson reads them as floats): the caller is told to read again
    assert core.envelope.may_round_integers(body)
    fast = core.envelope.decode_request_json(body)[1][0]
    assert fast == n or (type(fast) is float and fast == float(n))


def test_integers_within_64_bits_are_never_sent_to_the_exact_reader(core):
    for n in (2**64 - 1, -(2**63), 10**18):
        body = core.envelope.encode_request_json("a:b:c", [n])
        assert core.envelope.decode_request_json(body) == ("a:b:c", [n])
    assert not core.envelope.may_round_integers(b'{"method":"a:b:c","args":[123456789012345678, 1.5e300]}')


@pytest.mark.parametrize("n", [2**64, -(2**63) - 1, 2**300, -(2**300), 2**64 - 1, -(2**63), 0, -1])
def test_big_integers_msgpack(core, n):
    body = core.envelope.encode_request_msgpack("a:b:c", [n, [n], {"k": n}])
    assert core.envelope.decode_request_msgpack(body) == ("a:b:c", [n, [n], {"k": n}])
    assert core.envelope.decode_response_msgpack(core.envelope.encode_response_msgpack(n)) == (n, None)


def test_msgpack_big_integer_extension_is_documented_and_other_extensions_pass(core):
    body = core.envelope.encode_request_msgpack("a:b:c", [2**64])
    assert body.endswith(b"\xc7\x09" + bytes([core.envelope.BIG_INT_EXT]) + (2**64).to_bytes(9, "big", signed=True))
    other = msgpack.packb({"method": "a:b:c", "args": [msgpack.ExtType(42, b"x")]})
    assert core.envelope.decode_request_msgpack(other) == ("a:b:c", [msgpack.ExtType(42, b"x")])


def test_json_writers_refuse_marked_inf_and_nan_by_place(core):
    marked = core.marshal.plan_for(float).dump(float("nan"))
    with pytest.raises(MarshalException, match=r"^cannot be written as JSON: \['args'\]\[1\]\['x'\]: nan, which JSON"):
        core.envelope.encode_request_json("a:b:c", [1, {"x": marked}])
    with pytest.raises(MarshalException, match=r"\['result'\]\[0\]: -inf, which JSON cannot carry"):
        core.envelope.encode_response_json([core.marshal.plan_for(float).dump(float("-inf"))])
    # msgpack carries them
    inf = core.marshal.plan_for(float).dump(float("inf"))
    assert core.envelope.decode_response_msgpack(core.envelope.encode_response_msgpack([inf])) == ([float("inf")], None)


def test_json_reads_nan_and_infinity_that_other_peers_write(core):
    _, args = core.envelope.decode_request_json(b'{"method":"a:b:c","args":[NaN,Infinity,-Infinity]}')
    assert str(args) == "[nan, inf, -inf]"


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_no_writer_sends_a_lone_surrogate(core, fmt):
    encode_request = getattr(core.envelope, f"encode_request_{fmt}")
    encode_response = getattr(core.envelope, f"encode_response_{fmt}")
    with pytest.raises(MarshalException, match=r"\['args'\]\[0\]\['k'\]\[1\]: a string holding the lone surrogate "
                                               r"'\\ud800' at index 2, which is not Unicode text"):
        encode_request("a:b:c", [{"k": ["ok", "ab\ud800"]}])
    with pytest.raises(MarshalException, match=r"\['result'\] key '\\udc00': a string holding the lone surrogate"):
        encode_response({"\udc00": 1})


@pytest.mark.parametrize("body", [
    b'{"method":"a:b:c","args":["\\ud800"]}',
    b'{"method":"a:b:c","args":["x\\udfff"]}',
    b'{"method":"a:b:c","args":[{"\\ud800":1}]}',
    b'{"method":"a:b:c","args":["\\ud800", NaN]}',  # NaN: read by the stdlib, which must refuse it too
])
def test_json_bodies_holding_a_lone_surrogate_are_refused(core, body):
    with pytest.raises(MalformedRequestException, match="lone surrogate"):
        core.envelope.decode_request_json(body)
    with pytest.raises(ProtocolException, match="lone surrogate"):
        core.envelope.decode_response_json(body.replace(b'"method":"a:b:c","args"', b'"result"'))


def test_a_surrogate_pair_is_text(core):
    assert core.envelope.decode_request_json(b'{"method":"a:b:c","args":["\\ud83d\\ude00"]}')[1] == ["\U0001f600"]


def test_json_nesting_limit(core):
    limit = core.envelope.MAX_DEPTH
    assert limit == 1024
    at_limit = b'{"method":"a:b:c","args":[' + b"[" * (limit - 2) + b"]" * (limit - 2) + b"]}"
    assert core.envelope.decode_request_json(at_limit)[0] == "a:b:c"
    for extra in (b"", b"NaN"):  # orjson's reading, and the stdlib's (which reads NaN)
        for depth in (limit - 1, 5000):
            body = b'{"method":"a:b:c","args":[' + b"[" * depth + extra + b"]" * depth + b"]}"
            with pytest.raises(MalformedRequestException, match=f"nests deeper than {limit} arrays and objects"):
                core.envelope.decode_request_json(body)
            with pytest.raises(ProtocolException, match=f"nests deeper than {limit}"):
                core.envelope.decode_response_json(body.replace(b'"method":"a:b:c","args"', b'"result"'))


def test_msgpack_nesting_limit(core):
    head = b"\x82\xa6method\xa5a:b:c\xa4args\x91"
    assert core.envelope.decode_request_msgpack(head + b"\x91" * 1021 + b"\x90")[0] == "a:b:c"
    with pytest.raises(MalformedRequestException, match="nests deeper than 1024 arrays and maps"):
        core.envelope.decode_request_msgpack(head + b"\x91" * 1022 + b"\x90")
    with pytest.raises(ProtocolException, match="nests deeper than 1024"):
        core.envelope.decode_response_msgpack(b"\x82\xa6result" + b"\x91" * 2000 + b"\x90\xa9exception\xc0")


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_writers_refuse_values_nested_beyond_the_limit(core, fmt):
    encode = getattr(core.envelope, f"encode_request_{fmt}")
    with pytest.raises(MarshalException, match=f"cannot be written as {'JSON' if fmt == 'json' else 'msgpack'}: "):
        encode("a:b:c", [_nested(3000)])


def _wrap(depth: int, inner: object) -> object:
    for _ in range(depth):
        inner = [inner]
    return inner


def test_json_writers_nest_up_to_the_limit_past_orjson_and_the_stdlibs_recursion(core):
    # orjson writes 255 levels, the stdlib as deep as Python recurses: the writer goes on, up to MAX_DEPTH
    env = core.envelope
    limit = env.MAX_DEPTH
    for depth in (300, limit - 3, limit - 2):  # the request envelope and its args array count
        body = env.encode_request_json("a:b:c", [_nested(depth)])
        assert body == b'{"method":"a:b:c","args":[' + b"[" * depth + b"]" * depth + b"]}"
        assert env.decode_request_json(body)[0] == "a:b:c"
    body = env.encode_response_json(_nested(limit - 1))
    assert body == b'{"result":' + b"[" * (limit - 1) + b"]" * (limit - 1) + b',"exception":null}'
    with pytest.raises(MarshalException, match=rf"^cannot be written as JSON: \['args'\]\[0\].*: nests deeper than {limit}"):
        env.encode_request_json("a:b:c", [_nested(limit - 1)])
    with pytest.raises(MarshalException, match=rf"^cannot be written as JSON: \['result'\].*: nests deeper than {limit}"):
        env.encode_response_json(_nested(limit))
    # what the deep writer writes is what the stdlib writes: keys, numbers, big ints, escapes
    leaf = {"k": [None, True, False, 1.5, -0.0, 2**70, 'q"\\\n\u00e9\U0001f600'], 3: {}, 2.5: (), None: 1, True: 0}
    text = env.encode_response_json(_wrap(900, leaf)).decode()
    expected = json.dumps(leaf, ensure_ascii=False, separators=(",", ":"))
    assert text == '{"result":' + "[" * 900 + expected + "]" * 900 + ',"exception":null}'
    assert env._write_deep({"result": _wrap(900, leaf), "exception": None}) == text  # the deep writer itself
    assert '"q\\"\\\\\\n' in expected and str(2**70) in expected  # escapes and the big integer, as the stdlib writes them


@pytest.mark.parametrize(("inner", "problem"), [
    (NonFiniteFloat(float("inf")), "inf, which JSON cannot carry"),
    ("\ud800", "lone surrogate"),
    (object(), "TypeError"),
])
def test_the_deep_json_writer_refuses_what_the_others_refuse(core, inner, problem):
    with pytest.raises(MarshalException, match=f"^cannot be written as JSON: .*{problem}"):
        core.envelope.encode_response_json(_wrap(1000, inner))


def test_an_unknown_type_is_refused_by_name(core):
    with pytest.raises(MarshalException, match="cannot be written as JSON: TypeError"):
        core.envelope.encode_request_json("a:b:c", [object()])
    with pytest.raises(MarshalException, match="cannot be written as msgpack: TypeError"):
        core.envelope.encode_request_msgpack("a:b:c", [object()])
