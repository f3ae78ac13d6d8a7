"""Circuit breakers, one per (provider, model).

When a model keeps failing, every caller waiting on its retries makes the outage worse and the
bill bigger. The breaker opens after `failure_threshold` consecutive transient failures, or at
once on a rate limit (for max(Retry-After, cooldown)); while open, calls skip the model and go
to the next fallback without sending anything. After the cooldown one probe is let through
(half-open): success closes the breaker, failure opens it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

from airuntime.errors import LLMError, RateLimitedError
from airuntime.types import ModelTarget


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int,
        cooldown_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._open_until = 0.0
        self._probe_in_flight = False

    @property
    def state(self) -> BreakerState:
        """The state now (an open breaker whose cooldown has passed reads as half-open)."""
        if self._state is BreakerState.OPEN and self._clock() >= self._open_until:
            return BreakerState.HALF_OPEN
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def allow(self) -> bool:
        """May a request be sent now? In half-open state, only one probe at a time."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN or self._probe_in_flight:
            return False
        self._state = BreakerState.HALF_OPEN
        self._probe_in_flight = True
        return True

    async def aallow(self) -> bool:
        """`allow`, as the client asks it (a shared breaker asks the others too)."""
        return self.allow()

    def record_success(self) -> None:
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._probe_in_flight = False

    def record_failure(self, error: LLMError) -> None:
        """Count a failure. Only transient failures say anything about the model's health."""
        self._probe_in_flight = False
        if not error.retryable:
            if self._state is BreakerState.HALF_OPEN:
                self._state = BreakerState.CLOSED  # the model answered: it is up
            return
        self._failures += 1
        hold = self.cooldown_seconds
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            hold = max(hold, error.retry_after)
        if (
            isinstance(error, RateLimitedError)
            or self._state is BreakerState.HALF_OPEN
            or self._failures >= self.failure_threshold
        ):
            self._open(hold)

    def _open(self, seconds: float) -> None:
        self._state = BreakerState.OPEN
        self._open_until = max(self._open_until, self._clock() + seconds)


class BreakerBoard:
    """The breakers of every (provider, model) this process has called."""

    def __init__(
        self,
        *,
        failure_threshold: int,
        cooldown_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._failure_threshold = failure_threshold
        self._cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._breakers: dict[ModelTarget, CircuitBreaker] = {}

    def get(self, target: ModelTarget) -> CircuitBreaker:
        breaker = self._breakers.get(target)
        if breaker is None:
            breaker = CircuitBreaker(
                failure_threshold=self._failure_threshold,
                cooldown_seconds=self._cooldown_seconds,
                clock=self._clock,
            )
            self._breakers[target] = breaker
        return breaker

    async def aclose(self) -> None:
        """Release what the board holds (a shared board: its subscription)."""

    def states(self) -> dict[str, str]:
        """Every breaker's state by "provider/model", for metrics and `stats`."""
        return {str(target): breaker.state.value for target, breaker in self._breakers.items()}
