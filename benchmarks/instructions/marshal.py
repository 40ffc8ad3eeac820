"""Marshalling per call: dump and load of a dataclass tree, the workload's dataclass and pydantic model, a list."""

SETUP = """
import enum
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Optional

try:
    from warpcall.core import marshal
except ImportError:
    from warpcall._native import marshal
from warpcall.exceptions import MarshalException
from benchmarks.workload import DATA, FIELDS, PYDANTIC, Data, Pydantic


class Status(enum.Enum):
    OPEN = "open"
    PAID = "paid"


@dataclass
class Line:
    sku: str
    qty: int
    price: float
    when: datetime
    note: Optional[str] = None


@dataclass
class Order:
    id: int
    status: Status
    lines: list[Line]
    placed: datetime
    coupon: Optional[str] = None
    tags: dict[str, int] = field(default_factory=dict)


WHEN = datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)
ORDER = Order(
    7, Status.PAID, [Line("a", 1, 2.5, WHEN), Line("b", 3, 1.0, WHEN, "gift")], WHEN, "X1", {"prio": 2}
)
order_plan = marshal.plan_for(Order)
ORDER_TREE = order_plan.dump(ORDER)
data_plan = marshal.plan_for(Data)
model_plan = marshal.plan_for(Pydantic)
many_plan = marshal.plan_for(list[Data])
MANY = [DATA] * 20
MANY_TREE = many_plan.dump(MANY)
BAD_TREE = {**ORDER_TREE, "lines": [ORDER_TREE["lines"][0], {**ORDER_TREE["lines"][1], "when": 7}]}
dump_order, load_order = order_plan.dump, order_plan.load
dump_data, load_data = data_plan.dump, data_plan.load
dump_model, load_model = model_plan.dump, model_plan.load
dump_many, load_many = many_plan.dump, many_plan.load
plan_for = marshal.plan_for
assert load_order(ORDER_TREE) == ORDER and load_data(FIELDS) == DATA and load_model(FIELDS) == PYDANTIC
assert load_many(MANY_TREE) == MANY


def load_bad():
    try:
        load_order(BAD_TREE)
    except MarshalException:
        pass
"""

CASES = {
    "dump dataclass tree": "dump_order(ORDER)",
    "load dataclass tree": "load_order(ORDER_TREE)",
    "dump dataclass (14 fields)": "dump_data(DATA)",
    "load dataclass (14 fields)": "load_data(FIELDS)",
    "dump pydantic model": "dump_model(PYDANTIC)",
    "load pydantic model": "load_model(FIELDS)",
    "dump list of 20 dataclasses": "dump_many(MANY)",
    "load list of 20 dataclasses": "load_many(MANY_TREE)",
    "load with an error (message)": "load_bad()",
    "plan_for (cached)": "plan_for(Order)",
}
