"""The fault matrix: one test per failure, each asserting the exact attempts per target, the
target that answered, the backoff delays requested, the cost charged, the breaker state and
the error raised. Everything runs on MockLLM and a fake clock: nothing really sleeps."""

from __future__ import annotations

import random
from collections.abc import Sequence
from decimal import Decimal

import pytest

from airuntime.errors import (
    AuthenticationError,
    LLMError,
    ProviderConnectionError,
)
from airuntime.model.mock import MockLLM, Step
from airuntime.model.mock_faults import Fault
from airuntime.observability.events import RecordingObserver
from airuntime.resilience.budget import Budget, BudgetExceeded
from airuntime.resilience.chain import AllTargetsFailedError, ResilienceConfig
from airuntime.resilience.client import ResilientClient
from airuntime.resilience.retry import RetryPolicy
from airuntime.testing import FakeClock, flat_prices, resilient_client
from airuntime.types import Chunk, LLMRequest, Message, ModelTarget

PRIMARY = ModelTarget(provider="primary", model="model-a")
SECONDARY = ModelTarget(provider="secondary", model="model-b")
QUESTION = "Summarise the incident report."  # 30 bytes, 8 mock tokens
ANSWER = "All systems recovered."  # 6 mock tokens
MAX_TOKENS = 100
MILLION = Decimal(1_000_000)
# Prices: $1 per million input tokens, $2 per million output tokens, for both targets.
SUCCESS_COST = Decimal(8 * 1 + 6 * 2) / MILLION
# The worst case reserved before each attempt: 30 bytes + 8 framing tokens in, max_tokens out.
RESERVATION = Decimal((30 + 8) * 1 + MAX_TOKENS * 2) / MILLION
POLICY = RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=8.0, retry_after_cap=30.0)


class Stack:
    """The resilient client over two scripted mock providers, and what it recorded."""

    def __init__(
        self,
        primary: Sequence[Step],
        secondary: Sequence[Step] = (),
        *,
        budget: Budget | None = None,
        config: ResilienceConfig | None = None,
    ) -> None:
        self.clock = FakeClock()
        self.primary = MockLLM(primary, provider="primary", sleep=self.clock.sleep)
        self.secondary = MockLLM(secondary, provider="secondary", sleep=self.clock.sleep)
        self.observer = RecordingObserver()
        self.budget = budget or Budget()
        self.client: ResilientClient = resilient_client(
            {"primary": self.primary, "secondary": self.secondary},
            clock=self.clock,
            fallbacks=[SECONDARY],
            config=config or ResilienceConfig(retry=POLICY),
            pricing=flat_prices([PRIMARY, SECONDARY]),
            budget=self.budget,
            observer=self.observer,
        )

    def attempts(self) -> tuple[int, int]:
        """Requests each provider actually received."""
        return len(self.primary.requests), len(self.secondary.requests)

    def breaker(self, target: ModelTarget) -> str:
        return self.client.breakers.get(target).state.value


def request() -> LLMRequest:
    return LLMRequest(
        model=PRIMARY.model,
        messages=(Message(role="user", content=QUESTION),),
        max_tokens=MAX_TOKENS,
    )


def backoffs(*attempts: int, seed: int = 0) -> list[float]:
    """The full-jitter draws the client makes, in order, for these attempt numbers."""
    rng = random.Random(seed)
    return [POLICY.backoff(attempt, rng) for attempt in attempts]


async def test_timeout_is_retried_and_charged_as_possibly_billed() -> None:
    stack = Stack([Fault("timeout"), Fault("timeout"), ANSWER])

    result = await stack.client.run(request())

    assert stack.attempts() == (3, 0)
    assert (result.target, result.fallback_index, result.response.text) == (PRIMARY, 0, ANSWER)
    assert stack.clock.sleeps == backoffs(1, 2)
    # A timed-out attempt may have been billed: charged at its reservation.
    assert stack.budget.spent == 2 * RESERVATION + SUCCESS_COST
    assert stack.breaker(PRIMARY) == "closed"


async def test_rate_limit_with_retry_after_waits_the_hint() -> None:
    stack = Stack([Fault("rate_limit", retry_after=5), ANSWER])

    result = await stack.client.run(request())

    assert stack.attempts() == (1 + 1, 0)
    assert result.target == PRIMARY
    assert stack.clock.sleeps == [5.0]  # Retry-After beats the jitter (at most 0.5 s here)
    assert stack.budget.spent == SUCCESS_COST  # a 429 is refused before any work: not billed
    assert stack.breaker(PRIMARY) == "closed"  # the 429 opened it; this call's success closed it


async def test_rate_limit_opens_the_breaker_for_other_callers() -> None:
    stack = Stack(
        [Fault("rate_limit", retry_after=5), Fault("rate_limit", retry_after=5)],
        [ANSWER],
        config=ResilienceConfig(retry=RetryPolicy(max_attempts=2)),
    )

    result = await stack.client.run(request())

    assert stack.attempts() == (2, 1)
    assert result.target == SECONDARY
    assert stack.breaker(PRIMARY) == "open"  # for max(Retry-After, cooldown) = 30 s


async def test_rate_limit_without_retry_after_uses_full_jitter() -> None:
    stack = Stack([Fault("rate_limit", retry_after=None), ANSWER])

    await stack.client.run(request())

    assert stack.clock.sleeps == backoffs(1)
    assert stack.attempts() == (2, 0)


async def test_retry_after_beyond_the_cap_moves_to_the_fallback_without_waiting() -> None:
    stack = Stack([Fault("rate_limit", retry_after=600)], [ANSWER])

    result = await stack.client.run(request())

    assert stack.attempts() == (1, 1)
    assert (result.target, result.fallback_index) == (SECONDARY, 1)
    assert stack.clock.sleeps == []
    assert stack.breaker(PRIMARY) == "open"
    assert stack.budget.spent == SUCCESS_COST


async def test_server_errors_exhaust_retries_then_fall_back() -> None:
    stack = Stack([Fault("server_error")] * 3, [ANSWER])

    result = await stack.client.run(request())

    assert stack.attempts() == (3, 1)
    assert (result.target, result.fallback_index, result.attempts) == (SECONDARY, 1, 1)
    assert stack.clock.sleeps == backoffs(1, 2)  # the third failure stops: no third wait
    assert stack.budget.spent == SUCCESS_COST  # 5xx responses are not billed
    assert stack.breaker(PRIMARY) == "open"  # 3 consecutive failures reach the threshold
    assert stack.breaker(SECONDARY) == "closed"
    outcomes = [(r.target.provider, r.attempt, r.outcome) for r in stack.observer.attempts]
    assert outcomes == [
        ("primary", 1, "server_error"),
        ("primary", 2, "server_error"),
        ("primary", 3, "server_error"),
        ("secondary", 1, "ok"),
    ]
    assert [call.outcome for call in stack.observer.calls] == ["fallback"]


async def test_connection_reset_is_retried_and_charged_as_possibly_billed() -> None:
    reset = ProviderConnectionError("connection reset by peer", provider="primary", model="model-a")
    stack = Stack([reset, ANSWER])

    result = await stack.client.run(request())

    assert stack.attempts() == (2, 0)
    assert result.target == PRIMARY
    assert stack.clock.sleeps == backoffs(1)
    assert stack.budget.spent == RESERVATION + SUCCESS_COST


async def test_content_filter_falls_back_at_once() -> None:
    stack = Stack([Fault("content_filter")], [ANSWER])

    result = await stack.client.run(request())

    assert stack.attempts() == (1, 1)
    assert result.target == SECONDARY
    assert stack.clock.sleeps == []  # terminal: no retry on the same target
    assert stack.budget.spent == RESERVATION + SUCCESS_COST  # output was generated, then cut
    assert stack.breaker(PRIMARY) == "closed"  # the model is up: no health signal


async def test_authentication_error_is_not_masked_by_a_fallback() -> None:
    denied = AuthenticationError(
        "invalid key", provider="primary", model="model-a", status_code=401
    )
    stack = Stack([denied], [ANSWER])

    with pytest.raises(AuthenticationError):
        await stack.client.run(request())

    assert stack.attempts() == (1, 0)
    assert stack.budget.spent == 0
    assert [call.outcome for call in stack.observer.calls] == ["error"]


async def test_authentication_error_falls_back_when_configured() -> None:
    denied = AuthenticationError("invalid key", provider="primary", model="model-a")
    stack = Stack(
        [denied],
        [ANSWER],
        config=ResilienceConfig(retry=POLICY, extra_fallback_errors=frozenset({"authentication"})),
    )

    result = await stack.client.run(request())

    assert stack.attempts() == (1, 1)
    assert result.target == SECONDARY


async def test_open_breaker_skips_the_target_without_sending() -> None:
    stack = Stack([Fault("server_error")] * 3, [ANSWER, ANSWER])
    await stack.client.run(request())  # opens the primary's breaker
    stack.observer.attempts.clear()

    result = await stack.client.run(request())

    assert stack.attempts() == (3, 2)  # the primary received nothing more
    assert result.target == SECONDARY
    first = stack.observer.attempts[0]
    assert (first.target, first.attempt, first.outcome) == (PRIMARY, 0, "breaker_open")


async def test_breaker_lets_a_probe_through_after_the_cooldown() -> None:
    stack = Stack([Fault("server_error")] * 3 + [ANSWER], [ANSWER])
    await stack.client.run(request())
    stack.clock.advance(30)

    result = await stack.client.run(request())

    assert result.target == PRIMARY  # the half-open probe succeeded
    assert stack.breaker(PRIMARY) == "closed"


async def test_every_target_down_raises_one_error_listing_each() -> None:
    stack = Stack([Fault("server_error")] * 3, [Fault("server_error")] * 3)

    with pytest.raises(AllTargetsFailedError) as caught:
        await stack.client.run(request())

    assert stack.attempts() == (3, 3)
    draws = backoffs(1, 2, 3, 1, 2, 3)
    # Each target's third failure draws a delay but stops instead of waiting it out.
    assert stack.clock.sleeps == [draws[0], draws[1], draws[3], draws[4]]
    assert stack.budget.spent == 0
    assert str(caught.value) == (
        "all 2 model targets failed: "
        "primary/model-a: server_error after 3 attempts (internal server error (injected by "
        "MockLLM)); secondary/model-b: server_error after 3 attempts (internal server error "
        "(injected by MockLLM))"
    )
    assert [failure.reason for failure in caught.value.failures] == ["server_error"] * 2


async def test_budget_runs_out_in_the_middle_of_retries() -> None:
    # Room for two worst-case attempts and a half: the third attempt is refused unsent.
    ceiling = RESERVATION * Decimal("2.5")
    budget = Budget(per_call=ceiling)
    stack = Stack([Fault("timeout"), Fault("timeout"), ANSWER], [ANSWER], budget=budget)

    with pytest.raises(BudgetExceeded) as caught:
        await stack.client.run(request())

    assert stack.attempts() == (2, 0)  # never sent the third, never tried the fallback
    assert stack.budget.spent == 2 * RESERVATION <= ceiling
    assert caught.value.ceiling == "per-call"
    assert [call.outcome for call in stack.observer.calls] == ["budget_exceeded"]


async def test_deadline_stops_retrying_before_a_wait_that_would_pass_it() -> None:
    config = ResilienceConfig(retry=POLICY, deadline_seconds=1.0)
    stack = Stack([Fault("rate_limit", retry_after=2)], [ANSWER], config=config)

    result = await stack.client.run(request())

    # Waiting 2 s would pass the 1 s deadline: no wait, the fallback answers at once.
    assert stack.attempts() == (1, 1)
    assert stack.clock.sleeps == []
    assert result.target == SECONDARY


async def collect(stack: Stack) -> tuple[list[Chunk], LLMError | None]:
    chunks: list[Chunk] = []
    try:
        async for chunk in stack.client.stream(request()):
            chunks.append(chunk)
    except LLMError as error:
        return chunks, error
    return chunks, None


async def test_error_in_the_middle_of_a_stream_reaches_the_caller_without_fallback() -> None:
    stack = Stack([Fault("server_error", at_chunk=2)], [ANSWER])

    chunks, error = await collect(stack)

    assert len(chunks) == 2
    assert error is not None
    assert error.kind == "server_error"
    assert stack.attempts() == (1, 0)
    assert stack.budget.spent == 0  # a 5xx is not billed, even mid-stream
    assert [call.outcome for call in stack.observer.calls] == ["error"]


async def test_stream_failing_before_its_first_chunk_falls_back() -> None:
    stack = Stack([Fault("connection_error")] * 3, [ANSWER])

    chunks, error = await collect(stack)

    assert error is None
    assert "".join(chunk.text for chunk in chunks) == ANSWER
    assert stack.attempts() == (3, 1)
    assert stack.clock.sleeps == backoffs(1, 2)
    assert stack.budget.spent == 3 * RESERVATION + SUCCESS_COST
    assert [call.outcome for call in stack.observer.calls] == ["fallback"]
