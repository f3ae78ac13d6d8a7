"""The resilient client's account of a call, beyond the fault matrix: what the call and attempt
records say, skipped targets, deadlines on the injected clock, unknown prices, rate limits,
per-attempt timeouts, its own cache and idempotency store, and closing. Each test asserts what
a caller or an observer sees; nothing really sleeps except where a timeout has to expire."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import closing
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from airuntime.errors import (
    ContentFilteredError,
    ContextLengthExceededError,
    ProviderTimeoutError,
    RateLimitedError,
    ServerError,
    TerminalError,
)
from airuntime.model.mock import MockLLM, Step
from airuntime.model.mock_faults import NO_LATENCY, Fault, Latency
from airuntime.observability.events import RecordingObserver
from airuntime.resilience.breaker import BreakerBoard
from airuntime.resilience.budget import Budget, CallBudget, DailyLedger
from airuntime.resilience.cache import ResponseCache
from airuntime.resilience.chain import (
    AllTargetsFailedError,
    ChainResult,
    ResilienceConfig,
    UnknownCostError,
)
from airuntime.resilience.client import ResilientClient
from airuntime.resilience.limits import Limits
from airuntime.resilience.pricing import PriceTable
from airuntime.resilience.retry import RetryPolicy
from airuntime.testing import FakeClock, flat_prices, resilient_client
from airuntime.types import LLMRequest, LLMResponse, Message, ModelTarget, Usage

PRIMARY = ModelTarget(provider="primary", model="model-a")
SECONDARY = ModelTarget(provider="secondary", model="model-b")
ABSENT = ModelTarget(provider="absent", model="model-c")  # no client for this provider
QUESTION = "Summarise the incident report."  # 30 bytes, 8 mock tokens
ANSWER = "All systems recovered."  # 6 mock tokens
MAX_TOKENS = 100
MILLION = Decimal(1_000_000)
SUCCESS_COST = Decimal(8 * 1 + 6 * 2) / MILLION
RESERVATION = Decimal((30 + 8) * 1 + MAX_TOKENS * 2) / MILLION
WORST_CASE_TOKENS = (30 + 8) + MAX_TOKENS  # what the tokens-per-minute limit counts
POLICY = RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=8.0, retry_after_cap=30.0)
METADATA = {"prompt.id": "incident", "prompt.version": "1.0.0", "prompt.hash": "sha256:x"}


def request(metadata: dict[str, str] | None = None, content: str = QUESTION) -> LLMRequest:
    return LLMRequest(
        model=PRIMARY.model,
        messages=(Message(role="user", content=content),),
        max_tokens=MAX_TOKENS,
        metadata=METADATA if metadata is None else metadata,
    )


def backoffs(*attempts: int, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [POLICY.backoff(attempt, rng) for attempt in attempts]


class Stack:
    """The resilient client over two scripted mocks, with every part reachable."""

    def __init__(
        self,
        primary: Sequence[Step],
        secondary: Sequence[Step] = (),
        *,
        config: ResilienceConfig | None = None,
        fallbacks: Sequence[ModelTarget] = (SECONDARY,),
        pricing: PriceTable | None = None,
        budget: Budget | None = None,
        cache: ResponseCache | None = None,
        limits: Limits | None = None,
        latency: Latency = NO_LATENCY,
    ) -> None:
        self.clock = FakeClock()
        self.primary = MockLLM(primary, provider="primary", sleep=self.clock.sleep, latency=latency)
        self.secondary = MockLLM(secondary, provider="secondary", sleep=self.clock.sleep)
        self.observer = RecordingObserver()
        self.budget = budget or Budget()
        self.client = ResilientClient(
            {"primary": self.primary, "secondary": self.secondary},
            default_provider="primary",
            config=config or ResilienceConfig(retry=POLICY),
            pricing=pricing if pricing is not None else flat_prices([PRIMARY, SECONDARY]),
            budget=self.budget,
            breakers=BreakerBoard(failure_threshold=3, cooldown_seconds=30, clock=self.clock),
            limits=limits or Limits(max_concurrency=20),
            fallbacks=fallbacks,
            cache=cache,
            observer=self.observer,
            clock=self.clock,
            sleep=self.clock.sleep,
            rng=random.Random(0),
        )

    def attempts(self) -> tuple[int, int]:
        return len(self.primary.requests), len(self.secondary.requests)


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[ResponseCache]:
    with closing(ResponseCache(tmp_path / "cache.sqlite3", ttl_seconds=60)) as opened:
        yield opened


# -- what the records say ---------------------------------------------------------------------


async def test_the_call_record_names_the_request_prompt_answerer_retries_and_cost() -> None:
    stack = Stack([Fault("timeout"), Fault("timeout"), ANSWER])
    sent = request()
    before = time.time_ns()

    await stack.client.run(sent)

    after = time.time_ns()
    (call,) = stack.observer.calls
    assert (call.request_id, call.prompt, call.prompt_hash) == (
        sent.request_id,
        "incident@1.0.0",
        "sha256:x",
    )
    assert (call.outcome, call.target, call.fallback_index) == ("ok", PRIMARY, 0)
    assert (call.attempts, call.retries) == (3, 2)
    assert before <= call.started_ns <= after
    assert call.duration_s == pytest.approx(sum(stack.clock.sleeps))  # the clock moved by waits
    assert call.usage == Usage(input_tokens=8, output_tokens=6)
    assert call.cost == 2 * RESERVATION + SUCCESS_COST
    assert call.unknown_cost is False
    assert call.error_type is None


async def test_retries_are_counted_across_targets() -> None:
    stack = Stack([Fault("server_error")] * 3, [Fault("server_error"), ANSWER])

    await stack.client.run(request())

    (call,) = stack.observer.calls
    assert (call.attempts, call.retries, call.outcome) == (5, 3, "fallback")


@pytest.mark.parametrize(
    ("metadata", "prompt"),
    [
        ({"prompt.id": "incident"}, "incident"),  # a prompt id without a version
        ({"prompt.version": "1.0.0"}, None),  # a version alone names no prompt
        ({}, None),
    ],
)
async def test_the_prompt_is_named_by_id_and_version_only_when_both_are_known(
    metadata: dict[str, str], prompt: str | None
) -> None:
    stack = Stack([ANSWER])

    await stack.client.run(request(metadata))

    assert stack.observer.calls[0].prompt == prompt
    assert stack.observer.attempts[0].prompt == prompt


async def test_a_failed_call_is_reported_with_its_error_type_and_no_answerer() -> None:
    stack = Stack([Fault("server_error")] * 3, [Fault("server_error")] * 3)

    with pytest.raises(AllTargetsFailedError) as caught:
        await stack.client.run(request())

    assert isinstance(caught.value, ServerError)  # what both targets failed with
    (call,) = stack.observer.calls
    assert (call.outcome, call.error_type) == ("error", "ServerError")
    assert (call.target, call.fallback_index, call.attempts) == (None, None, 6)


async def test_attempt_records_carry_duration_and_the_cost_charged_for_each_failure() -> None:
    stack = Stack([Fault("server_error"), Fault("timeout"), ANSWER], latency=Latency(250.0, 250.0))

    await stack.client.run(request())

    records = [(r.attempt, r.outcome, r.cost, r.duration_s) for r in stack.observer.attempts]
    assert records == [
        (1, "server_error", Decimal(0), 0.25),  # refused before any work: not billed
        (2, "timeout", RESERVATION, 0.25),  # may have been billed: charged at the reservation
        (3, "ok", SUCCESS_COST, 0.25),
    ]


async def test_a_target_skipped_for_an_open_breaker_is_reported_as_attempt_zero() -> None:
    stack = Stack([Fault("server_error")] * 3, [ANSWER, ANSWER])
    await stack.client.run(request())  # opens the primary's breaker
    stack.observer.attempts.clear()
    sent = request()
    before = time.time_ns()

    result = await stack.client.run(sent)

    after = time.time_ns()
    skipped = stack.observer.attempts[0]
    assert (skipped.request_id, skipped.prompt, skipped.prompt_hash) == (
        sent.request_id,
        "incident@1.0.0",
        "sha256:x",
    )
    assert (skipped.target, skipped.served_by, skipped.attempt, skipped.fallback_index) == (
        PRIMARY,
        "primary",
        0,
        0,
    )
    assert (skipped.outcome, skipped.breaker_state, skipped.duration_s) == (
        "breaker_open",
        "open",
        0.0,
    )
    assert (skipped.error_type, skipped.usage, skipped.cost) == (None, None, None)
    assert before <= skipped.started_ns <= after
    assert (result.target, result.fallback_index) == (SECONDARY, 1)


async def test_a_target_without_a_client_is_skipped_and_named_in_the_final_error() -> None:
    stack = Stack([Fault("server_error")] * 3, fallbacks=[ABSENT])

    with pytest.raises(AllTargetsFailedError) as caught:
        await stack.client.run(request())

    skipped = stack.observer.attempts[-1]
    assert (skipped.target, skipped.served_by, skipped.outcome, skipped.fallback_index) == (
        ABSENT,
        "-",
        "not_configured",
        1,
    )
    error = caught.value
    assert str(error) == (
        "all 2 model targets failed: primary/model-a: server_error after 3 attempts (internal "
        "server error (injected by MockLLM)); absent/model-c: not_configured"
    )
    assert [(f.target, f.attempts, f.reason) for f in error.failures] == [
        (PRIMARY, 3, "server_error"),
        (ABSENT, 0, "not_configured"),
    ]
    assert error.failures[1].error is None
    # The error is attributed to the first target of the chain.
    assert (error.provider, error.model) == ("primary", "model-a")


# -- what an exhausted chain raises: the real cause, by its class (issue 13, item 12) --------


def too_long(request: LLMRequest) -> ContextLengthExceededError:
    return ContextLengthExceededError(
        "This model's maximum context length is 128000 tokens. However, your messages resulted "
        "in 131072 tokens.",
        provider="primary",
        model=request.model,
        status_code=400,
    )


async def test_with_no_fallback_a_refusal_is_raised_as_a_content_filter_error() -> None:
    stack = Stack([Fault("content_filter")], fallbacks=())

    with pytest.raises(ContentFilteredError) as caught:
        await stack.client.run(request())

    refusal = caught.value
    assert isinstance(refusal, AllTargetsFailedError)  # the degraded answer still takes over
    assert type(refusal).__name__ == "ContentFilteredError"
    assert refusal.cause is refusal.failures[0].error
    assert (refusal.kind, refusal.retryable) == ("all_targets_failed", False)
    assert str(refusal) == (
        "the only model target failed: primary/model-a: content_filtered after 1 attempt "
        "(output stopped by the content filter (injected by MockLLM))"
    )
    assert stack.attempts() == (1, 0)  # terminal for this target: no retry
    (call,) = stack.observer.calls
    assert (call.outcome, call.error_type, call.attempts) == ("error", "ContentFilteredError", 1)


async def test_with_the_fallback_skipped_a_prompt_too_long_keeps_its_class_and_status() -> None:
    stack = Stack([too_long], fallbacks=[ABSENT])

    with pytest.raises(ContextLengthExceededError) as caught:
        await stack.client.run(request())

    error = caught.value
    assert isinstance(error, AllTargetsFailedError)
    assert [failure.reason for failure in error.failures] == [
        "context_length_exceeded",
        "not_configured",
    ]
    assert error.status_code == 400  # the cause's, not lost on the way up
    assert "131072 tokens" in str(error)


async def test_targets_failing_alike_raise_that_class_with_its_details() -> None:
    limited = Fault("rate_limit", retry_after=40.0)  # longer than the cap: no retry, next target
    stack = Stack([limited], [limited], config=ResilienceConfig(retry=POLICY))

    with pytest.raises(RateLimitedError) as caught:
        await stack.client.run(request())

    assert caught.value.retry_after == 40.0
    assert caught.value.retryable is False  # an exhausted chain is not retried above it
    assert stack.attempts() == (1, 1)


async def test_targets_failing_differently_raise_the_chain_error_alone() -> None:
    stack = Stack([Fault("content_filter")], [too_long])

    with pytest.raises(AllTargetsFailedError) as caught:
        await stack.client.run(request())

    error = caught.value
    assert type(error) is AllTargetsFailedError
    assert not isinstance(error, ContentFilteredError | ContextLengthExceededError)
    assert isinstance(error, TerminalError)
    assert error.cause is None
    assert [failure.reason for failure in error.failures] == [
        "content_filtered",
        "context_length_exceeded",
    ]


async def test_a_stream_with_no_fallback_raises_its_refusal_by_class() -> None:
    stack = Stack([Fault("content_filter")], fallbacks=())

    with pytest.raises(ContentFilteredError):
        async for _ in stack.client.stream(request()):
            pass

    assert stack.observer.calls[0].error_type == "ContentFilteredError"


async def test_the_fallback_is_sent_its_own_model() -> None:
    stack = Stack([Fault("content_filter")], [ANSWER])

    await stack.client.run(request())

    assert [sent.model for sent in stack.primary.requests] == ["model-a"]
    assert [sent.model for sent in stack.secondary.requests] == ["model-b"]


async def test_a_route_builds_the_request_each_target_is_sent() -> None:
    stack = Stack([Fault("content_filter")], [ANSWER])

    def shorter(sent: LLMRequest, target: ModelTarget) -> LLMRequest:
        return sent.model_copy(update={"model": target.model, "max_tokens": 7})

    await stack.client.run(request(), route=shorter)

    sent = [*stack.primary.requests, *stack.secondary.requests]
    assert [(each.model, each.max_tokens) for each in sent] == [("model-a", 7), ("model-b", 7)]


async def test_explicit_targets_replace_the_default_chain() -> None:
    stack = Stack([ANSWER], [ANSWER])

    result = await stack.client.run(request(), targets=[SECONDARY])

    assert stack.attempts() == (0, 1)
    assert (result.target, result.fallback_index) == (SECONDARY, 0)


async def test_complete_answers_with_the_response_alone() -> None:
    stack = Stack([ANSWER])

    response = await stack.client.complete(request())

    assert (response.text, response.provider) == (ANSWER, "primary")
    assert [call.outcome for call in stack.observer.calls] == ["ok"]


async def test_runs_sharing_one_account_add_up_usage_and_leave_the_report_to_its_owner() -> None:
    cached = Usage(input_tokens=8, output_tokens=6, cache_read_tokens=5)
    answer = LLMResponse(text=ANSWER, model="model-a", provider="primary", usage=cached)
    stack = Stack([answer, answer])
    sent = request()
    account = stack.client.begin_call(sent)

    await stack.client.run(sent, call=account)
    await stack.client.run(sent, call=account)

    assert account.usage == Usage(input_tokens=16, output_tokens=12, cache_read_tokens=10)
    assert stack.observer.calls == []  # the account's owner reports the call, once
    stack.client.finish_call(account, "ok")
    assert stack.observer.calls[0].usage == account.usage


# -- retries, deadlines and jitter ------------------------------------------------------------


async def test_a_terminal_error_draws_no_jitter_so_the_next_wait_is_the_next_draw() -> None:
    stack = Stack([Fault("server_error"), Fault("content_filter")], [Fault("server_error"), ANSWER])

    result = await stack.client.run(request())

    assert result.target == SECONDARY
    assert stack.clock.sleeps == backoffs(1, 1)  # one draw per wait, none for the terminal error


async def test_a_wait_that_would_end_exactly_at_the_deadline_is_not_taken() -> None:
    config = ResilienceConfig(retry=POLICY, deadline_seconds=5.0)
    stack = Stack([Fault("rate_limit", retry_after=5)], [ANSWER], config=config)

    result = await stack.client.run(request())

    assert stack.clock.sleeps == []
    assert stack.attempts() == (1, 1)
    assert result.target == SECONDARY


async def test_the_deadline_runs_on_the_injected_clock_and_ends_at_zero_remaining() -> None:
    clock_holder: list[FakeClock] = []

    def slow_then_filtered(sent: LLMRequest) -> Fault:
        clock_holder[0].advance(60.0)  # the whole deadline, to the instant
        return Fault("content_filter")

    stack = Stack([slow_then_filtered], [ANSWER])
    clock_holder.append(stack.clock)

    with pytest.raises(AllTargetsFailedError) as caught:
        await stack.client.run(request())

    assert stack.attempts() == (1, 0)  # no time left for the fallback
    assert [failure.reason for failure in caught.value.failures] == [
        "content_filtered",
        "deadline_exceeded",
    ]
    assert stack.observer.attempts[-1].outcome == "deadline_exceeded"


async def test_each_attempt_times_out_on_its_own_and_says_after_how_long() -> None:
    class Silent(MockLLM):
        async def complete(self, request: LLMRequest) -> LLMResponse:
            await asyncio.Event().wait()  # never answers
            raise AssertionError("unreachable")

    config = ResilienceConfig(retry=RetryPolicy(max_attempts=1), attempt_timeout_seconds=0.01)
    clock = FakeClock()
    budget = Budget()
    client = resilient_client(
        {"primary": Silent(provider="primary")},
        clock=clock,
        config=config,
        pricing=flat_prices([PRIMARY]),
        budget=budget,
    )

    with pytest.raises(AllTargetsFailedError) as caught:  # (and never hangs the suite)
        await asyncio.wait_for(client.run(request()), timeout=5.0)

    assert str(caught.value) == (
        "the only model target failed: primary/model-a: timeout after 1 attempt "
        "(no answer within 0.01s)"
    )
    timeout = caught.value.failures[0].error
    assert isinstance(timeout, ProviderTimeoutError)
    assert (timeout.provider, timeout.model) == ("primary", "model-a")
    assert budget.spent == RESERVATION  # a timed-out attempt may have been billed


async def test_the_tokens_per_minute_limit_counts_each_attempts_worst_case() -> None:
    limits = Limits(max_concurrency=5, tokens_per_minute=2 * WORST_CASE_TOKENS)
    stack = Stack([ANSWER, ANSWER, ANSWER], limits=limits)

    await stack.client.run(request())
    await stack.client.run(request())  # the minute's allowance is now used up exactly
    with pytest.raises(TimeoutError):  # the third waits for the bucket to drain
        await asyncio.wait_for(stack.client.run(request()), timeout=0.05)

    assert stack.attempts() == (2, 0)
    assert stack.budget.reserved == 0  # the waiting attempt was abandoned, not billed


# -- prices ----------------------------------------------------------------------------------


async def test_a_model_without_a_price_is_refused_before_sending() -> None:
    stack = Stack([ANSWER], pricing=PriceTable({}))

    with pytest.raises(UnknownCostError) as caught:
        await stack.client.run(request())

    assert caught.value.target == PRIMARY
    assert str(caught.value) == (
        "no price for primary/model-a in the price table, so its cost cannot be bounded: add it "
        "to the price file (PRICES_FILE) or set ALLOW_UNKNOWN_COST=true."
    )
    assert stack.attempts() == (0, 0)
    assert [(call.outcome, call.error_type) for call in stack.observer.calls] == [
        ("error", "UnknownCostError")
    ]


async def test_an_unknown_price_allowed_is_called_and_flagged_at_no_recorded_cost() -> None:
    config = ResilienceConfig(retry=POLICY, allow_unknown_cost=True)
    stack = Stack([ANSWER], pricing=PriceTable({}), config=config)

    result = await stack.client.run(request())

    assert result.response.text == ANSWER
    assert result.cost is None
    (call,) = stack.observer.calls
    assert (call.unknown_cost, call.cost) == (True, Decimal(0))
    assert stack.observer.attempts[0].cost is None
    assert stack.budget.spent == 0


# -- the client's own cache and idempotency store ------------------------------------------


async def test_a_cached_response_is_served_for_free_named_after_who_answered(
    cache: ResponseCache,
) -> None:
    stack = Stack([Fault("content_filter"), ANSWER], [ANSWER], cache=cache)
    first = await stack.client.run(request())
    assert (first.target, first.served_by) == (SECONDARY, "secondary")

    again = await stack.client.run(request())

    assert again.response == first.response
    assert (again.target, again.fallback_index, again.attempts, again.cost, again.cache_hit) == (
        SECONDARY,
        1,
        0,
        Decimal(0),
        True,
    )
    assert again.served_by == "secondary"
    assert stack.attempts() == (1, 1)
    hit = stack.observer.calls[1]
    assert (hit.outcome, hit.target, hit.served_by, hit.fallback_index, hit.attempts) == (
        "cache_hit",
        SECONDARY,
        "secondary",
        1,
        0,
    )
    assert stack.client.lookup(request()) == again


async def test_a_run_bypassing_the_cache_neither_reads_nor_stores(cache: ResponseCache) -> None:
    stack = Stack([ANSWER, ANSWER, ANSWER], cache=cache)

    await stack.client.run(request(), use_cache=False)
    second = await stack.client.run(request())
    third = await stack.client.run(request(), use_cache=False)

    assert (second.cache_hit, third.cache_hit) == (False, False)
    assert stack.attempts() == (3, 0)


async def test_an_idempotency_key_replays_the_stored_response(cache: ResponseCache) -> None:
    stack = Stack([ANSWER, ANSWER], cache=cache)
    first = await stack.client.run(request(), idempotency_key="job-7", use_cache=False)
    spent = stack.budget.spent

    replay = await stack.client.run(
        request(content="Summarise the incident report, again."),
        idempotency_key="job-7",
        use_cache=False,
    )

    assert replay.response == first.response
    assert replay.cache_hit
    assert stack.attempts() == (1, 0)
    assert stack.budget.spent == spent


async def test_remember_and_lookup_use_the_cache_by_default(cache: ResponseCache) -> None:
    stack = Stack([], cache=cache)
    answer = LLMResponse(text=ANSWER, model="model-a", provider="primary")
    result = ChainResult(answer, PRIMARY, 0, 1, Decimal(0), "primary")

    stack.client.remember(request(), None, result)

    hit = stack.client.lookup(request())
    assert hit is not None
    assert (hit.response, hit.target, hit.served_by, hit.cache_hit) == (
        answer,
        PRIMARY,
        "primary",
        True,
    )
    assert stack.client.lookup(request(), use_cache=False) is None


async def test_a_stored_answer_is_served_only_while_its_server_serves_its_target(
    cache: ResponseCache,
) -> None:
    offline = Stack([ANSWER], cache=cache)
    stand_in = await offline.client.run(request())  # "primary" answered by its own client
    assert (stand_in.served_by, offline.attempts()) == ("primary", (1, 0))

    # The same request, the same cache, but the primary now served by another client (the
    # offline mock replaced by the real adapter, or another server): a miss, and the call is sent.
    moved = Stack([ANSWER], cache=cache)
    moved.client.clients["primary"] = MockLLM([ANSWER], provider="elsewhere")
    served = await moved.client.run(request())
    assert (served.cache_hit, served.served_by) == (False, "elsewhere")

    # The first answer is kept for its own server, and never given to the other.
    assert (offline.client.lookup(request()) or served).served_by == "primary"
    assert (moved.client.lookup(request()) or stand_in).served_by == "elsewhere"
    elsewhere = moved.client.clients["primary"]
    assert isinstance(elsewhere, MockLLM)
    assert len(elsewhere.requests) == 1


async def test_an_endpoint_of_its_own_is_a_server_of_its_own(cache: ResponseCache) -> None:
    local = Stack([ANSWER, ANSWER], cache=cache)
    await local.client.run(request())
    local.client.endpoints["primary"] = "http://127.0.0.1:11434/v1"

    again = await local.client.run(request())

    assert (again.cache_hit, local.attempts()) == (False, (2, 0))
    assert (await local.client.run(request())).cache_hit  # now stored for that endpoint


async def test_an_idempotent_replay_is_never_a_stand_in_for_another_server(
    cache: ResponseCache,
) -> None:
    stack = Stack([ANSWER, ANSWER], cache=cache)
    await stack.client.run(request(), idempotency_key="job-7", use_cache=False)
    stack.client.clients["primary"] = MockLLM([ANSWER], provider="real")

    replay = await stack.client.run(request(), idempotency_key="job-7", use_cache=False)

    assert (replay.cache_hit, replay.served_by) == (False, "real")


# -- defaults and closing ---------------------------------------------------------------------


async def test_a_client_built_without_observer_or_jitter_source_still_retries() -> None:
    clock = FakeClock()
    primary = MockLLM([Fault("server_error"), ANSWER], provider="primary", sleep=clock.sleep)
    client = ResilientClient(
        {"primary": primary},
        default_provider="primary",
        config=ResilienceConfig(retry=POLICY),
        pricing=flat_prices([PRIMARY]),
        budget=Budget(),
        breakers=BreakerBoard(failure_threshold=3, cooldown_seconds=30, clock=clock),
        limits=Limits(max_concurrency=1),
        clock=clock,
        sleep=clock.sleep,
    )

    result = await client.run(request())

    assert result.response.text == ANSWER
    assert len(clock.sleeps) == 1
    assert 0 <= clock.sleeps[0] <= POLICY.base_delay


class Closable(MockLLM):
    def __init__(self, provider: str) -> None:
        super().__init__([], provider=provider)
        self.closed = 0

    async def aclose(self) -> None:
        self.closed += 1


async def test_aclose_closes_each_client_once_the_cache_and_the_budget(tmp_path: Path) -> None:
    shared, other = Closable("primary"), Closable("secondary")
    cache = ResponseCache(tmp_path / "cache.sqlite3", ttl_seconds=60)
    ledger_path = tmp_path / "budget.sqlite3"
    today = date(2026, 1, 1)
    budget = Budget(per_day=Decimal(1), ledger=DailyLedger(ledger_path, today=lambda: today))
    budget.reserve(RESERVATION, CallBudget())  # claims a lease of 1% of the ceiling
    client = ResilientClient(
        {"primary": shared, "alias": shared, "secondary": other},
        default_provider="primary",
        config=ResilienceConfig(),
        pricing=flat_prices([PRIMARY]),
        budget=budget,
        breakers=BreakerBoard(failure_threshold=3, cooldown_seconds=30),
        limits=Limits(max_concurrency=1),
        cache=cache,
    )

    await client.aclose()

    assert (shared.closed, other.closed) == (1, 1)
    with pytest.raises(sqlite3.ProgrammingError):
        cache.get("anything")
    with closing(DailyLedger(ledger_path, today=lambda: today)) as ledger:
        assert ledger.spent_today() == RESERVATION  # the unused lease came back


async def test_aclose_without_a_cache_closes_the_clients() -> None:
    only = Closable("primary")
    client = resilient_client({"primary": only}, clock=FakeClock())

    await client.aclose()

    assert only.closed == 1
