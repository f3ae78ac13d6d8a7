from __future__ import annotations

import math
import random

from hypothesis import given
from hypothesis import strategies as st

from airuntime.errors import (
    AuthenticationError,
    RateLimitedError,
    ServerError,
)
from airuntime.resilience.retry import Deadline, RetryPolicy, is_retryable


def rate_limited(retry_after: float | None) -> RateLimitedError:
    return RateLimitedError("slow", provider="p", model="m", retry_after=retry_after)


@given(
    attempt=st.integers(min_value=1, max_value=200),
    base=st.floats(min_value=0.001, max_value=10, allow_nan=False),
    cap=st.floats(min_value=0.001, max_value=120, allow_nan=False),
    seed=st.integers(),
)
def test_backoff_stays_within_zero_and_the_exponential_ceiling(
    attempt: int, base: float, cap: float, seed: int
) -> None:
    policy = RetryPolicy(base_delay=base, max_delay=cap)

    delay = policy.backoff(attempt, random.Random(seed))

    assert 0 <= delay <= min(cap, base * 2 ** min(attempt - 1, 60))


@given(
    retry_after=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    cap=st.floats(min_value=0.1, max_value=600, allow_nan=False),
    seed=st.integers(),
)
def test_retry_after_is_honoured_but_never_beyond_its_cap(
    retry_after: float, cap: float, seed: int
) -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=8, retry_after_cap=cap)

    delay = policy.delay_after(rate_limited(retry_after), 1, random.Random(seed))

    assert delay >= min(retry_after, cap)
    assert delay <= max(min(retry_after, cap), 0.5)


def test_full_jitter_is_deterministic_for_a_seed() -> None:
    policy = RetryPolicy()
    first = [policy.backoff(n, random.Random(7)) for n in range(1, 6)]
    second = [policy.backoff(n, random.Random(7)) for n in range(1, 6)]

    assert first == second


def test_gives_up_on_terminal_errors_and_long_retry_after() -> None:
    policy = RetryPolicy(retry_after_cap=30)

    assert policy.gives_up_on(AuthenticationError("no", provider="p", model="m"))
    assert policy.gives_up_on(rate_limited(31))
    assert policy.gives_up_on(ValueError("a bug, not a provider error"))
    assert not policy.gives_up_on(rate_limited(30))
    assert not policy.gives_up_on(rate_limited(None))
    assert not policy.gives_up_on(ServerError("down", provider="p", model="m"))


def test_deadline_counts_down_on_the_injected_clock() -> None:
    now = [100.0]
    deadline = Deadline(10, clock=lambda: now[0])

    now[0] = 104.0

    assert deadline.remaining() == 6.0


class Highest(random.Random):
    """A jitter source that always draws the top of the range: the ceiling itself."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_the_ceiling_doubles_from_the_base_delay_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0)

    ceilings = [policy.backoff(attempt, Highest()) for attempt in range(1, 8)]

    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_the_exponent_stops_growing_after_sixty_doublings() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=math.inf)

    assert policy.backoff(61, Highest()) == 2.0**60
    assert policy.backoff(62, Highest()) == 2.0**60
    assert policy.backoff(10_000, Highest()) == 2.0**60  # no overflow for any attempt number


def test_only_retryable_provider_errors_are_retried() -> None:
    assert is_retryable(ServerError("down", provider="p", model="m"))
    assert is_retryable(rate_limited(None))
    assert not is_retryable(AuthenticationError("no", provider="p", model="m"))
    assert not is_retryable(ValueError("a bug, not a provider error"))
