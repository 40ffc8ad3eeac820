"""Marshalling alone: dump and load of the aspyx workload's Data dataclass and Pydantic model.

Groups put warpcall (compiled and pure) beside msgspec, pydantic and aspyx's own serializer:

    /work/venv/bin/pytest benchmarks/test_bench_marshal.py --benchmark-only -q
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from workload import DATA, FIELDS, PYDANTIC, Data, Pydantic

from warpcall._compiled import load_variant

TREE = dict(FIELDS)
EXPECTED = {Data: DATA, Pydantic: PYDANTIC}
INSTANCES = {Data: DATA, Pydantic: PYDANTIC}


def _warpcall(native: bool) -> Callable[[str, type], Callable[[], Any]]:
    def make(direction: str, tp: type) -> Callable[[], Any]:
        try:
            marshal = load_variant("marshal", native=native)
        except ImportError:
            pytest.skip("the compiled core is not built here")
        plan = marshal.plan_for(tp)
        if direction == "dump":
            instance = INSTANCES[tp]
            return lambda: plan.dump(instance)
        return lambda: plan.load(TREE)

    return make


def _msgspec(direction: str, tp: type) -> Callable[[], Any]:
    msgspec = pytest.importorskip("msgspec")
    if direction == "dump":
        return lambda: msgspec.to_builtins(DATA)
    return lambda: msgspec.convert(TREE, Data)


def _pydantic(direction: str, tp: type) -> Callable[[], Any]:
    if tp is Pydantic:
        if direction == "dump":
            return PYDANTIC.model_dump
        return lambda: Pydantic.model_validate(TREE)
    from pydantic import TypeAdapter

    adapter = TypeAdapter(Data)
    if direction == "dump":
        return lambda: adapter.dump_python(DATA)
    return lambda: adapter.validate_python(TREE)


def _aspyx(direction: str, tp: type) -> Callable[[], Any]:
    serialization = pytest.importorskip("aspyx.util.serialization")
    if direction == "dump":
        serialize = serialization.get_serializer(tp)
        instance = INSTANCES[tp]
        return lambda: serialize(instance)
    deserialize = serialization.get_deserializer(tp)  # pydantic: model_construct, no validation
    return lambda: deserialize(TREE)


RIVALS = {
    "warpcall-native": _warpcall(native=True),
    "warpcall-pure": _warpcall(native=False),
    "msgspec": _msgspec,
    "pydantic": _pydantic,
    "aspyx": _aspyx,
}


# msgspec does not marshal pydantic models: that pair is not a case (not a skip)
CASES = [(rival, tp) for tp in (Data, Pydantic) for rival in RIVALS if not (rival == "msgspec" and tp is Pydantic)]


@pytest.mark.parametrize(("rival", "tp"), CASES, ids=[f"{tp.__name__}-{rival}" for rival, tp in CASES])
@pytest.mark.parametrize("direction", ["dump", "load"])
def test_marshal(benchmark, direction: str, tp: type, rival: str) -> None:
    call = RIVALS[rival](direction, tp)
    benchmark.group = f"{direction}-{tp.__name__}"
    result = benchmark(call)
    if direction == "dump":
        assert result == TREE
    else:
        assert result == EXPECTED[tp]
