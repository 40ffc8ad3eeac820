"""A small HDR-style latency histogram: logarithmic buckets with a bounded relative error.

Values (non-negative integers, nanoseconds here) below ``2**SIGNIFICANT_BITS`` get a bucket each, so
they are exact. Above, a value keeps its ``SIGNIFICANT_BITS`` highest bits: the bucket holding ``v``
spans ``[m << s, (m + 1) << s)`` with ``m >= 2**(SIGNIFICANT_BITS - 1)``, and the bucket's middle is
within ``1 / 2**SIGNIFICANT_BITS`` of any value in it (0.39% with 8 bits). Buckets are kept sparsely
(a dict), so a histogram of calls between 10 µs and 10 s holds a few hundred entries at most.

Percentiles follow the nearest-rank definition (the smallest recorded value with at least ``q`` percent
of the values at or below it), reported as the bucket's middle clamped to the exact minimum and maximum,
so ``percentile(0)`` and ``percentile(100)`` are exact.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator

SIGNIFICANT_BITS = 8
#: the largest relative distance between a reported percentile and the value it stands for
RELATIVE_ERROR = 1 / (1 << SIGNIFICANT_BITS)

_EXACT = 1 << SIGNIFICANT_BITS
_HALF = _EXACT >> 1
_NO_MIN = 1 << 127  # above any nanosecond count: the first value recorded replaces it


def bucket_of(value: int) -> int:
    """The bucket index of ``value`` (>= 0); indices grow with the value and leave no gaps.

    Above the exact range, ``value`` is ``m << s`` plus less than ``1 << s`` with ``m`` its
    ``SIGNIFICANT_BITS`` top bits (``_HALF <= m < _EXACT``); the index ``s * _HALF + m`` continues where
    the previous shift's indices ended.
    """
    if value < _EXACT:
        return value
    shift = value.bit_length() - SIGNIFICANT_BITS
    return shift * _HALF + (value >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """``(lowest, highest)`` value of bucket ``index``, both included."""
    if index < _EXACT:
        return index, index
    shift = index // _HALF - 1
    low = (index - shift * _HALF) << shift
    return low, low + (1 << shift) - 1


class Histogram:
    """Counts of values in logarithmic buckets, with the exact count, sum, minimum and maximum."""

    __slots__ = ("_buckets", "count", "total", "_min", "max")

    def __init__(self, values: Iterable[int] = ()) -> None:
        self._buckets: dict[int, int] = {}
        self.count = 0
        self.total = 0
        self._min = _NO_MIN
        self.max = 0
        for value in values:
            self.record(value)

    @property
    def min(self) -> int:
        """The smallest value recorded (0 when empty)."""
        return self._min if self.count else 0

    def record(self, value: int) -> None:
        """Add one value (an int; negative values, from clocks that went backwards, count as 0)."""
        # inlined bucket_of: a profiled call records about fifteen values, so this is its hot path
        if value < _EXACT:
            if value < 0:
                value = 0
            index = value
        else:
            shift = value.bit_length() - SIGNIFICANT_BITS
            index = shift * _HALF + (value >> shift)
        buckets = self._buckets
        buckets[index] = buckets.get(index, 0) + 1
        self.count += 1
        self.total += value
        if value > self.max:
            self.max = value
        if value < self._min:
            self._min = value

    def record_many(self, values: list[int]) -> None:
        """Add every value of ``values`` (ints): the same as ``record`` each, at a fraction of the cost
        (bucket indices by one comprehension, counted, summed and compared by builtins)."""
        if not values:
            return
        if min(values) < 0:
            values = [value if value > 0 else 0 for value in values]
        indices = [
            value if value < _EXACT else (shift := value.bit_length() - SIGNIFICANT_BITS) * _HALF + (value >> shift)
            for value in values
        ]
        buckets = self._buckets
        for index, number in Counter(indices).items():
            buckets[index] = buckets.get(index, 0) + number
        self.count += len(values)
        self.total += sum(values)
        self.max = max(self.max, max(values))
        self._min = min(self._min, min(values))

    def merge(self, other: Histogram) -> None:
        """Add every value of ``other``."""
        if not other.count:
            return
        for index, number in other._buckets.items():
            self._buckets[index] = self._buckets.get(index, 0) + number
        self._min = min(self._min, other._min)
        self.max = max(self.max, other.max)
        self.count += other.count
        self.total += other.total

    @property
    def mean(self) -> float:
        """The exact mean (0.0 when empty)."""
        return self.total / self.count if self.count else 0.0

    def percentile(self, q: float) -> int:
        """The ``q``-th percentile (0 <= q <= 100), within ``RELATIVE_ERROR`` of the recorded value; 0 when empty."""
        if not 0 <= q <= 100:
            raise ValueError(f"a percentile is between 0 and 100, not {q!r}")
        if not self.count:
            return 0
        if q == 100:
            return self.max
        # rounded first so that 99.9% of 20000 is rank 19980, not 19981 from 19980.000000000004
        rank = max(1, math.ceil(round(q * self.count / 100, 9)))
        seen = 0
        for index in sorted(self._buckets):
            seen += self._buckets[index]
            if seen >= rank:
                low, high = bucket_bounds(index)
                return min(self.max, max(self.min, (low + high + 1) // 2))
        return self.max  # pragma: no cover - the counts add up to self.count

    def buckets(self) -> Iterator[tuple[int, int, int]]:
        """``(lowest, highest, count)`` of every non-empty bucket, lowest first."""
        for index in sorted(self._buckets):
            low, high = bucket_bounds(index)
            yield low, high, self._buckets[index]

    def curve(self, points: Iterable[float]) -> list[tuple[float, int]]:
        """``(percentile, value)`` at each of ``points``: what a percentile plot draws."""
        return [(q, self.percentile(q)) for q in points]
