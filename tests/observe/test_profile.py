"""warpcall.profile() and its HDR-style histogram, fed by records.emit with records made here."""

from __future__ import annotations

import asyncio
import contextvars
import json
import math
import random
import threading
from collections.abc import Iterator

import pytest

import warpcall
from warpcall.observe import hdr
from warpcall.observe.child import ChildServer, RemoteServices
from warpcall.observe.hdr import Histogram
from warpcall.observe.profile import process_profile, profile
from warpcall.observe.records import CallRecord, emit, wanted


def record(total: int, method: str = "c:s:m", channel: str = "dispatch-json", **extra: object) -> CallRecord:
    client = {"marshal": total // 10, "first_byte": total // 2}
    server = {"impl": total // 4}
    return CallRecord(method, channel, "http://127.0.0.1:1", total, client, server, 200, **extra)  # type: ignore[arg-type]


def exact_percentile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    rank = max(1, math.ceil(round(q * len(ordered) / 100, 9)))
    return ordered[rank - 1]


# the histogram


def test_small_values_are_exact() -> None:
    values = list(range(256))
    histogram = Histogram(values)
    for q in (1, 10, 50, 90, 99, 100):
        assert histogram.percentile(q) == exact_percentile(values, q)


def test_bucket_bounds_invert_bucket_of() -> None:
    for value in [0, 1, 255, 256, 257, 511, 512, 1000, 123_456, 10**9, 2**40 + 12345]:
        low, high = hdr.bucket_bounds(hdr.bucket_of(value))
        assert low <= value <= high
        if value >= 256:  # below, every value has its own bucket
            assert (high - low + 1) / low <= 2 * hdr.RELATIVE_ERROR
        else:
            assert low == high == value
    # indices grow with the value and buckets tile the line without gaps
    previous_high = -1
    for index in range(0, 256 + 128 * 20):
        low, high = hdr.bucket_bounds(index)
        assert low == previous_high + 1
        previous_high = high


def test_percentiles_within_the_relative_error() -> None:
    rng = random.Random(17)
    values = [int(rng.lognormvariate(12, 1.5)) for _ in range(20_000)]  # ~160 µs, long tail
    histogram = Histogram(values)
    assert histogram.count == len(values) and histogram.total == sum(values)
    assert histogram.min == min(values) and histogram.max == max(values)
    assert histogram.percentile(0) == min(values) and histogram.percentile(100) == max(values)
    for q in (50, 90, 99, 99.9):
        exact = exact_percentile(values, q)
        assert abs(histogram.percentile(q) - exact) <= exact * hdr.RELATIVE_ERROR + 1, q


def test_merge_equals_recording_everything() -> None:
    rng = random.Random(3)
    a, b = [rng.randrange(10**7) for _ in range(500)], [rng.randrange(10**4) for _ in range(300)]
    merged = Histogram(a)
    merged.merge(Histogram(b))
    whole = Histogram(a + b)
    assert list(merged.buckets()) == list(whole.buckets())
    assert (merged.min, merged.max, merged.count, merged.total) == (whole.min, whole.max, whole.count, whole.total)


def test_percentile_out_of_range_and_empty() -> None:
    with pytest.raises(ValueError, match="between 0 and 100"):
        Histogram([1]).percentile(101)
    assert Histogram().percentile(50) == 0 and Histogram().mean == 0.0


# the profile


def test_profile_collects_the_records_of_its_block_only() -> None:
    assert not wanted()
    emit(record(1000))  # before: nobody receives it
    with warpcall.profile() as p:
        assert wanted()
        for total in range(1, 101):
            emit(record(total * 1000))
    emit(record(5))  # after
    assert not wanted()
    assert len(p.records) == 100
    summary = p.summary()
    call = summary["c:s:m", "dispatch-json"]
    assert call.count == 100 and call.errors == 0
    total = call.total
    assert (total.count, total.min, total.mean, total.max) == (100, 1000, 50500.0, 100000)  # exact
    for reported, exact in ((total.p50, 50000), (total.p90, 90000), (total.p99, 99000)):
        assert abs(reported - exact) <= exact * hdr.RELATIVE_ERROR
    assert list(call.client) == ["marshal", "first_byte"]  # the contract's order
    assert abs(call.client["first_byte"].p50 - 25000) <= 25000 * hdr.RELATIVE_ERROR
    assert call.server["impl"].max == 25000


def test_summary_separates_method_and_channel_and_counts_errors() -> None:
    with profile() as p:
        emit(record(100, channel="dispatch-json"))
        emit(record(200, channel="dispatch-msgpack"))
        emit(record(300, channel="dispatch-msgpack", error="ServiceCommunicationException"))
        emit(record(400, method="c:s:other", channel="dispatch-msgpack"))
    summary = p.summary()
    assert [(c.method, c.channel, c.count, c.errors) for c in summary] == [
        ("c:s:m", "dispatch-json", 1, 0),
        ("c:s:m", "dispatch-msgpack", 2, 1),
        ("c:s:other", "dispatch-msgpack", 1, 0),
    ]
    with pytest.raises(KeyError):
        summary["c:s:m", "rest"]


def test_to_json_and_table() -> None:
    with profile() as p:
        for total in (150_000, 160_000, 900_000):
            emit(record(total))
    document = json.loads(p.to_json(records=True))
    assert document["unit"] == "ns" and document["percentiles"] == [50.0, 90.0, 99.0]
    (call,) = document["calls"]
    assert call["total"]["max"] == 900_000 and abs(call["total"]["p50"] - 160_000) <= 160_000 * hdr.RELATIVE_ERROR
    assert set(call["client"]) == {"marshal", "first_byte"} and set(call["server"]) == {"impl"}
    assert [r["total_ns"] for r in document["records"]] == [150_000, 160_000, 900_000]
    lines = p.table().splitlines()
    assert lines[0].split() == ["method", "channel", "phase", "calls", "p50", "µs", "p90", "µs", "p99", "µs",
                                "max", "µs", "mean", "µs"]
    rows = [line.split() for line in lines[2:]]
    assert [row[2] for row in rows] == ["total", "client.marshal", "client.first_byte", "server.impl"]
    assert rows[0][:4] == ["c:s:m", "dispatch-json", "total", "3"] and rows[0][7] == "900.0"
    assert abs(float(rows[0][4]) - 160.0) <= 160.0 * hdr.RELATIVE_ERROR + 0.05


def test_empty_profile_table_says_so() -> None:
    with profile() as p:
        pass
    assert "(no calls recorded)" in p.table()
    assert json.loads(p.to_json()) == {"unit": "ns", "percentiles": [50.0, 90.0, 99.0], "calls": []}


def test_max_records_bounds_memory_not_the_figures() -> None:
    with profile(max_records=10) as p:
        for total in range(1, 51):
            emit(record(total))
    assert len(p.records) == 10 and p.dropped == 40
    assert p.summary()["c:s:m", "dispatch-json"].count == 50
    assert "40 records not kept" in p.table()
    p.clear()
    assert p.records == [] and len(p.summary()) == 0


def test_nested_profiles_both_receive() -> None:
    with profile() as outer:
        emit(record(1))
        with profile() as inner:
            emit(record(2))
        emit(record(3))
    assert [r.total_ns for r in outer.records] == [1, 2, 3]
    assert [r.total_ns for r in inner.records] == [2]


def test_context_local_reaches_tasks_not_plain_threads() -> None:
    async def call() -> None:
        emit(record(7))

    with profile() as p:
        asyncio.run(call())  # asyncio.run copies the context
        thread = threading.Thread(target=emit, args=(record(8),))
        thread.start()
        thread.join(timeout=10)
        copied = threading.Thread(target=contextvars.copy_context().run, args=(emit, record(9)))
        copied.start()
        copied.join(timeout=10)
    assert [r.total_ns for r in p.records] == [7, 9]


def test_process_profile_receives_other_threads() -> None:
    with profile(process=True) as p:
        threads = [threading.Thread(target=emit, args=(record(n),)) for n in range(1, 9)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    emit(record(99))
    assert sorted(r.total_ns for r in p.records) == list(range(1, 9))
    assert not wanted()


def test_start_twice_refused_and_reentry_keeps_figures() -> None:
    p = profile()
    p.start()
    with pytest.raises(RuntimeError, match="already active"):
        p.start()
    emit(record(1))
    p.stop()
    p.stop()  # idempotent
    with p:
        emit(record(2))
    assert [r.total_ns for r in p.records] == [1, 2]
    with pytest.raises(ValueError):
        profile(max_records=-1)


def test_process_profile_is_one_profile() -> None:
    first = process_profile()
    try:
        assert process_profile() is first and first.active and wanted()
        emit(record(5))
        assert first.records[-1].total_ns == 5
    finally:
        first.stop()
    assert not wanted()


# end to end: real calls to a real server in a child process on 127.0.0.1


@pytest.fixture(scope="module")
def demo_remote() -> Iterator[RemoteServices]:
    child = ChildServer.for_module("warpcall.demo.server:DemoServerModule")
    child.start()
    remote = RemoteServices(child.url)
    yield remote
    remote.close()
    child.stop()


@pytest.mark.parametrize("channel", ["dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest"])
def test_real_calls_carry_both_ends_phases(demo_remote: RemoteServices, channel: str) -> None:
    from warpcall.demo.example import GreeterService, Order

    greeter = demo_remote.get(GreeterService, channel)
    order = Order(3, "ada", ["tea"])
    greeter.echo(order)  # connection made outside the profile
    with warpcall.profile() as p:
        for _ in range(20):
            assert greeter.echo(order) == order
    assert not wanted()
    assert len(p.records) == 20
    for item in p.records:
        assert item.channel == channel and item.method == "demo:greeter:echo" and item.status == 200
        assert item.error is None and item.url == demo_remote.url
        assert sum(item.client.values()) <= item.total_ns
        assert item.server.get("impl", 0) > 0  # the server's Server-Timing came back and was joined
    call = p.summary()["demo:greeter:echo", channel]
    assert call.count == 20 and call.total.p50 > 0 and "impl" in call.server and "marshal" in call.client
    greeter.echo(order)
    assert len(p.records) == 20  # after the block: not collected


def test_real_calls_from_threads_need_a_process_profile(demo_remote: RemoteServices) -> None:
    from warpcall.demo.example import GreeterService

    greeter = demo_remote.get(GreeterService, "dispatch-msgpack")
    greeter.hello("warm")

    def calls() -> None:
        for _ in range(5):
            greeter.hello("thread")

    with profile() as local, profile(process=True) as everything:
        threads = [threading.Thread(target=calls) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        greeter.hello("main")
    assert len(local.records) == 1  # the with block's own call; the threads' are not in its context
    assert len(everything.records) == 16


def test_record_many_equals_record_each() -> None:
    rng = random.Random(5)
    values = [rng.randrange(-5, 10**9) for _ in range(3000)] + [0, 255, 256, 2**40]
    one_by_one = Histogram(values)
    bulk = Histogram()
    bulk.record_many(values[:1000])
    bulk.record_many(values[1000:])
    bulk.record_many([])
    assert list(bulk.buckets()) == list(one_by_one.buckets())
    assert (bulk.min, bulk.max, bulk.count, bulk.total) == (one_by_one.min, one_by_one.max, one_by_one.count,
                                                            one_by_one.total)


def test_folding_in_batches_loses_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from warpcall.observe import profile as profile_module

    monkeypatch.setattr(profile_module, "FOLD_AT", 7)  # many folds, one partial batch left for summary()
    with profile(max_records=0) as p:
        for total in range(1, 101):
            emit(record(total * 1000, error="X" if total % 10 == 0 else None))
    call = p.summary()["c:s:m", "dispatch-json"]
    assert (call.count, call.errors, call.total.min, call.total.max) == (100, 10, 1000, 100_000)
    assert call.client["marshal"].count == 100 and call.server["impl"].max == 25_000
    assert p.dropped == 100 and p.records == []
