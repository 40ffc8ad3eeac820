"""The dispatch envelope, on both cores: wire format, validation, old peers."""

from __future__ import annotations

import json
import os

import msgpack
import pytest

from warpcall.exceptions import MalformedRequestException, ProtocolException


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
