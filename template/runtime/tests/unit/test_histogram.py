from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airuntime.observability.histogram import (
    RELATIVE_ACCURACY,
    LatencyHistogram,
)


def exact_quantile(values: list[float], q: float) -> float:
    """The nearest-rank quantile, the definition the histogram approximates."""
    return sorted(values)[max(1, math.ceil(q * len(values))) - 1]


@given(
    values=st.lists(st.floats(min_value=1e-5, max_value=100), min_size=1, max_size=300),
    q=st.sampled_from([0.5, 0.95, 0.99]),
)
def test_quantiles_are_within_the_relative_accuracy(values: list[float], q: float) -> None:
    histogram = LatencyHistogram()
    for value in values:
        histogram.record(value)

    expected = exact_quantile(values, q)

    assert histogram.quantile(q) == pytest.approx(expected, rel=RELATIVE_ACCURACY)


def test_memory_is_bounded_however_many_values_arrive() -> None:
    histogram = LatencyHistogram()
    rng = random.Random(1)
    for _ in range(50_000):
        histogram.record(rng.lognormvariate(-3, 1.5))

    assert histogram.count == 50_000
    assert histogram.bucket_count < 1_500


def test_empty_histogram_reports_zero_and_merge_adds_counts() -> None:
    first, second = LatencyHistogram(), LatencyHistogram()
    assert first.quantile(0.5) == 0.0
    assert first.mean == 0.0

    first.record(0.1)
    second.record(0.3)
    first.merge(second)

    assert first.count == 2
    assert first.max == 0.3
    assert first.mean == pytest.approx(0.2)
