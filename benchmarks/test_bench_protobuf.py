"""dispatch-protobuf's codec on the workload payload, beside msgpack and JSON of the same data.

Each benchmark is one encode plus one decode of a request carrying one ``Data`` argument.
Run: ``/work/venv/bin/pytest benchmarks/test_bench_protobuf.py --benchmark-only -q``
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import msgpack
import pytest
from workload import DATA, Data

from warpcall.wire.protobuf_codec import ProtobufMethodCodec

TREE = {"method": "bench:svc:data", "args": [dataclasses.asdict(DATA)]}
GROUP = "protobuf-codec"


@pytest.fixture
def bench(benchmark: Any) -> Any:
    benchmark.group = GROUP
    return benchmark


WIRES = [pytest.param(True, id="pbwire"), pytest.param(False, id="protobuf-alone")]


@pytest.mark.parametrize("wire", WIRES)
def test_protobuf_codec_request(bench: Any, wire: bool) -> None:
    """The codec as the channel uses it (with the compiled wire fast path where built), and protobuf alone."""
    codec = ProtobufMethodCodec("bench:svc:data", ["data"], [Data], Data, wire=wire)

    def roundtrip() -> list[Any]:
        return codec.decode_request(codec.encode_request((DATA,)))

    assert bench(roundtrip) == [DATA]


@pytest.mark.parametrize("wire", WIRES)
def test_protobuf_codec_response(bench: Any, wire: bool) -> None:
    codec = ProtobufMethodCodec("bench:svc:data", ["data"], [Data], Data, wire=wire)

    def roundtrip() -> tuple[Any, Any]:
        return codec.decode_response(codec.encode_response(DATA))

    assert bench(roundtrip) == (DATA, None)


def test_msgpack_dict(bench: Any) -> None:
    assert bench(lambda: msgpack.unpackb(msgpack.packb(TREE))) == TREE


def test_json_dict(bench: Any) -> None:
    assert bench(lambda: json.loads(json.dumps(TREE))) == TREE


def test_marshal_msgpack(bench: Any) -> None:
    """What dispatch-msgpack does with the same argument: marshal to a tree, pack, unpack, rebuild."""
    from warpcall.core.marshal import plan_for

    plan = plan_for(Data)

    def roundtrip() -> Any:
        tree = msgpack.unpackb(msgpack.packb({"method": "bench:svc:data", "args": [plan.dump(DATA)]}))
        return plan.load(tree["args"][0])

    assert bench(roundtrip) == DATA


def test_msgspec_msgpack_typed(bench: Any) -> None:
    msgspec = pytest.importorskip("msgspec")
    encoder, decoder = msgspec.msgpack.Encoder(), msgspec.msgpack.Decoder(Data)
    assert bench(lambda: decoder.decode(encoder.encode(DATA))) == DATA
