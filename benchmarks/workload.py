"""The aspyx-service performance workload: a str, a dataclass and a pydantic model with ten long strings."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore "
    "et dolore magna aliqua."
)
assert len(LOREM) == 123


@dataclass
class Data:
    i: int
    f: float
    b: bool
    s: str
    s0: str
    s1: str
    s2: str
    s3: str
    s4: str
    s5: str
    s6: str
    s7: str
    s8: str
    s9: str


class Pydantic(BaseModel):
    i: int
    f: float
    b: bool
    s: str
    s0: str
    s1: str
    s2: str
    s3: str
    s4: str
    s5: str
    s6: str
    s7: str
    s8: str
    s9: str


FIELDS = {"i": 1, "f": 1.5, "b": True, "s": "s", **{f"s{n}": LOREM for n in range(10)}}
DATA = Data(**FIELDS)
PYDANTIC = Pydantic(**FIELDS)
