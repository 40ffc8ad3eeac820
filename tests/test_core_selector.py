"""URL selection, on both cores."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from warpcall.exceptions import ServiceCommunicationException


def test_first_selector_returns_the_first_url(core):
    selector = core.selector.FirstURLSelector("dispatch-json of 'shop'")
    selector.set_urls(["http://127.0.0.1:1", "http://127.0.0.1:2"])
    assert [selector.select() for _ in range(3)] == ["http://127.0.0.1:1"] * 3


def test_round_robin_cycles_in_order(core):
    selector = core.selector.RoundRobinURLSelector()
    selector.set_urls(["a", "b", "c"])
    assert [selector.select() for _ in range(7)] == ["a", "b", "c", "a", "b", "c", "a"]


def test_new_url_list_is_picked_up_without_a_new_selector(core):
    selector = core.selector.RoundRobinURLSelector()
    selector.set_urls(["a"])
    assert selector.select() == "a"
    selector.set_urls(["b", "c"])
    assert {selector.select(), selector.select()} == {"b", "c"}
    assert selector.urls == ("b", "c")


@pytest.mark.parametrize("kind", ["FirstURLSelector", "RoundRobinURLSelector"])
def test_empty_list_raises_communication_error_naming_the_owner(core, kind):
    selector = getattr(core.selector, kind)("channel 'dispatch-json' of component 'shop'")
    with pytest.raises(ServiceCommunicationException, match="no URL available for channel 'dispatch-json' of component 'shop'"):
        selector.select()


def test_select_is_abstract_on_the_base(core):
    with pytest.raises(NotImplementedError, match="URLSelector must implement select"):
        core.selector.URLSelector().select()


def test_round_robin_is_exact_under_many_threads(core):
    selector = core.selector.RoundRobinURLSelector()
    urls = [f"http://127.0.0.1:{port}" for port in range(8000, 8005)]
    selector.set_urls(urls)
    threads, per_thread = 8, 5000
    counts: list[Counter[str]] = [Counter() for _ in range(threads)]
    barrier = threading.Barrier(threads)

    def work(index: int) -> None:
        barrier.wait()
        local = counts[index]
        for _ in range(per_thread):
            local[selector.select()] += 1

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    total = sum(counts, Counter())
    # 40000 picks over 5 URLs: exactly 8000 each when no increment is lost or doubled
    assert total == Counter({url: threads * per_thread // len(urls) for url in urls})


def test_user_subclass_can_define_its_own_policy(core):
    class LastURLSelector(core.selector.URLSelector):
        def select(self) -> str:
            return self.urls[-1]

    selector = LastURLSelector()
    selector.set_urls(["a", "b"])
    assert selector.select() == "b"


@pytest.mark.parametrize("kind", ["FirstURLSelector", "RoundRobinURLSelector"])
def test_others_lists_where_a_call_goes_after_a_failure(core, kind):
    selector = getattr(core.selector, kind)()
    selector.set_urls(["a", "b", "c", "d"])
    # every other URL once, from the one after the failed URL round to the one before it
    assert selector.others("b") == ["c", "d", "a"]
    assert selector.others("d") == ["a", "b", "c"]
    assert selector.others("a") == ["b", "c", "d"]
    # a URL the list no longer has (the registry dropped it meanwhile): all of them, in order
    assert selector.others("x") == ["a", "b", "c", "d"]
    selector.set_urls(["a", "b", "a", "c"])
    assert selector.others("a") == ["b", "c"]  # each instance once, the failed one never
    selector.set_urls(["a"])
    assert selector.others("a") == []
    selector.set_urls([])
    assert selector.others("a") == []
    # picking alternatives leaves the round robin where it was
    selector.set_urls(["a", "b", "c"])
    first = selector.select()
    selector.others(first)
    assert selector.select() == ("a" if kind == "FirstURLSelector" else "b")
