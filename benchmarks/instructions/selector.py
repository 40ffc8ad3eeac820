"""URL selection per call."""

SETUP = """
try:
    from warpcall.core import selector
except ImportError:
    from warpcall._native import selector
first = selector.FirstURLSelector("x")
first.set_urls(["http://a", "http://b"])
round_robin = selector.RoundRobinURLSelector("x")
round_robin.set_urls(["http://a", "http://b", "http://c"])
select_first = first.select
select_next = round_robin.select
"""

CASES = {
    "first": "select_first()",
    "round-robin": "select_next()",
}
