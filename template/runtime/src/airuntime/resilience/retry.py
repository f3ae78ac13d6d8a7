"""The retry policy: which errors to retry, how long to wait, when to stop.

Tenacity runs the loop; these functions decide. Waits use full-jitter exponential backoff
(a random delay between 0 and min(cap, base * 2**(attempt - 1))), so a burst of failed clients
spreads out instead of retrying in lockstep. A server's Retry-After is honoured up to a cap; a
longer one is not waited out: the target is abandoned for the next fallback (and its breaker
stays open for that long).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import RetryCallState

from airuntime.errors import LLMError, RateLimitedError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    retry_after_cap: float = 30.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(max_delay, base_delay * 2**(attempt - 1))]."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** min(attempt - 1, 60))
        return rng.uniform(0.0, ceiling)

    def delay_after(self, error: BaseException | None, attempt: int, rng: random.Random) -> float:
        """How long to wait after `attempt` failed with `error`."""
        delay = self.backoff(attempt, rng)
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            delay = max(delay, min(error.retry_after, self.retry_after_cap))
        return delay

    def gives_up_on(self, error: BaseException | None) -> bool:
        """Errors not worth waiting for: terminal ones, and a Retry-After beyond the cap."""
        if not isinstance(error, LLMError) or not error.retryable:
            return True
        return (
            isinstance(error, RateLimitedError)
            and error.retry_after is not None
            and error.retry_after > self.retry_after_cap
        )


def is_retryable(error: BaseException) -> bool:
    return isinstance(error, LLMError) and error.retryable


class Deadline:
    """A point in time, on an injectable clock, after which no new attempt starts."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.at = clock() + seconds

    def remaining(self) -> float:
        return self.at - self._clock()


def _error_of(state: RetryCallState) -> BaseException | None:
    return state.outcome.exception() if state.outcome is not None else None


def make_wait(policy: RetryPolicy, rng: random.Random) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        return policy.delay_after(_error_of(state), state.attempt_number, rng)

    return wait


def make_stop(policy: RetryPolicy, deadline: Deadline) -> Callable[[RetryCallState], bool]:
    """Stop after max_attempts, on an error not worth waiting for, or when the wait would
    run past the deadline."""

    def stop(state: RetryCallState) -> bool:
        return (
            state.attempt_number >= policy.max_attempts
            or policy.gives_up_on(_error_of(state))
            or state.upcoming_sleep >= deadline.remaining()
        )

    return stop
