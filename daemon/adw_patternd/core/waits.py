"""How long agents waited on a command signature's calls, as sums that stay bounded.

A long session makes thousands of Bash calls; keeping each wait would make its state grow with
its length. So a signature's waits are kept one by one up to EXACT_WAITS calls (the median is
then exact), and past that as counts in buckets 5% wide (the median is then an estimate, and
says so). The calls and the total are always exact. Pure: values in, values out.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

EXACT_WAITS = 64
_STEP = math.log(1.05)


def bucket_of(ms: int) -> int:
    return int(math.log1p(ms) / _STEP)


def _middle(bucket: int) -> float:
    """The middle of a bucket's range, in milliseconds (geometric, as the buckets are)."""
    return math.expm1((bucket + 0.5) * _STEP)


@dataclass(frozen=True)
class Waits:
    calls: int = 0
    total_ms: int = 0
    values: tuple[int, ...] = ()  # every wait, sorted, while calls <= EXACT_WAITS
    buckets: tuple[tuple[int, int], ...] = ()  # (bucket, calls), sorted, once past it

    @classmethod
    def of(cls, values) -> "Waits":
        return Waits().plus(Waits(len(values), sum(values), tuple(sorted(values))))

    def add(self, ms: int) -> "Waits":
        return self.plus(Waits(1, ms, (ms,)))

    @property
    def exact(self) -> bool:
        return not self.buckets

    def plus(self, other: "Waits") -> "Waits":
        calls, total = self.calls + other.calls, self.total_ms + other.total_ms
        if self.exact and other.exact and calls <= EXACT_WAITS:
            return Waits(calls, total, tuple(sorted(self.values + other.values)))
        counts: dict[int, int] = {}
        for w in (self, other):
            for b, n in w.buckets + tuple((bucket_of(v), 1) for v in w.values):
                counts[b] = counts.get(b, 0) + n
        return Waits(calls, total, (), tuple(sorted(counts.items())))

    def median_ms(self) -> float:
        if self.exact:
            return float(statistics.median(self.values)) if self.values else 0.0
        ranks = [(self.calls - 1) // 2, self.calls // 2]  # the middle one, or the middle two
        seen, found = 0, []
        for b, n in self.buckets:
            while ranks and ranks[0] < seen + n:
                found.append(_middle(b))
                ranks.pop(0)
            seen += n
        return sum(found) / len(found)

    def to_json(self):
        """Stored form: the list of waits while exact, else the counts and buckets."""
        if self.exact:
            return list(self.values)
        return {"calls": self.calls, "total_ms": self.total_ms, "buckets": [list(b) for b in self.buckets]}

    @classmethod
    def from_json(cls, value) -> "Waits":
        if isinstance(value, list):
            return cls.of(value)
        return cls(value["calls"], value["total_ms"], (), tuple((b, n) for b, n in value["buckets"]))
