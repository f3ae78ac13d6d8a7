"""A latency histogram with bounded memory and bounded relative error.

Values fall into logarithmic buckets that each span 2% of their value, so any quantile is
reported within 2% of the truth, and a histogram never holds more than about a thousand
counters however many calls it sees (a list of samples would grow for ever in a long-running
service).
"""

from __future__ import annotations

import math

RELATIVE_ACCURACY = 0.02
_GAMMA = 1 + RELATIVE_ACCURACY
_LOG_GAMMA = math.log(_GAMMA)
_MIN_SECONDS = 1e-6  # anything faster is reported as 1 microsecond


class LatencyHistogram:
    __slots__ = ("_buckets", "count", "max", "total")

    def __init__(self) -> None:
        self._buckets: dict[int, int] = {}
        self.count = 0
        self.total = 0.0
        self.max = 0.0

    def record(self, seconds: float) -> None:
        value = max(seconds, _MIN_SECONDS)
        index = math.ceil(math.log(value / _MIN_SECONDS) / _LOG_GAMMA)
        self._buckets[index] = self._buckets.get(index, 0) + 1
        self.count += 1
        self.total += seconds
        self.max = max(self.max, seconds)

    def quantile(self, q: float) -> float:
        """The q-quantile (0 <= q <= 1) in seconds; 0.0 when nothing was recorded."""
        if not self.count:
            return 0.0
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for index in sorted(self._buckets):
            seen += self._buckets[index]
            if seen >= rank:
                upper = _MIN_SECONDS * _GAMMA**index
                # The bucket's midpoint on a log scale: within the relative accuracy.
                return min(self.max, upper * 2 / (1 + _GAMMA))
        return self.max  # pragma: no cover - rank never exceeds count

    @property
    def bucket_count(self) -> int:
        return len(self._buckets)

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def merge(self, other: LatencyHistogram) -> None:
        for index, count in other._buckets.items():
            self._buckets[index] = self._buckets.get(index, 0) + count
        self.count += other.count
        self.total += other.total
        self.max = max(self.max, other.max)
