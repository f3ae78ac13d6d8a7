"""Embeddings through the resilient client: the same retries, breaker, budget and records as a
completion, on the mock provider with failures queued so attempts and costs are exact."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from airuntime.errors import AuthenticationError, BadRequestError, ServerError
from airuntime.model.mock import MockLLM
from airuntime.model.mock_faults import Fault
from airuntime.observability.events import RecordingObserver
from airuntime.resilience.budget import Budget, BudgetExceeded
from airuntime.resilience.chain import AllTargetsFailedError, ResilienceConfig, UnknownCostError
from airuntime.resilience.client import EMBEDDING_CALL, ResilientClient
from airuntime.resilience.pricing import PriceTable
from airuntime.resilience.retry import RetryPolicy
from airuntime.testing import FakeClock, flat_prices, resilient_client
from airuntime.types import EmbeddingRequest, ModelTarget

TARGET = ModelTarget(provider="mock", model="mock-embedding")
TEXTS = ("refunds take five days", "the office opens at nine")  # 22 + 24 bytes
MILLION = Decimal(1_000_000)
# flat_prices: $1 per million input tokens; the mock counts 4 characters a token: 6 + 6.
SUCCESS_COST = Decimal(6 + 6) / MILLION
RESERVATION = Decimal(22 + 24) / MILLION  # every byte a token, no output
CONFIG = ResilienceConfig(retry=RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=8.0))


def embed_request(texts: tuple[str, ...] = TEXTS) -> EmbeddingRequest:
    return EmbeddingRequest(model=TARGET.model, texts=texts)


def stack(
    mock: MockLLM, observer: RecordingObserver, budget: Budget | None = None
) -> tuple[ResilientClient, FakeClock]:
    clock = FakeClock()
    client = resilient_client(
        {"mock": mock},
        clock=clock,
        config=CONFIG,
        pricing=flat_prices([TARGET]),
        budget=budget,
        observer=observer,
        failure_threshold=2,
    )
    return client, clock


async def test_an_embedding_call_returns_unit_vectors_and_reports_its_cost() -> None:
    observer = RecordingObserver()
    client, _ = stack(MockLLM(), observer)
    response = await client.embed(embed_request())
    assert len(response.vectors) == 2
    assert all(math.isclose(math.hypot(*vector), 1.0, rel_tol=1e-6) for vector in response.vectors)
    (attempt,) = observer.attempts
    assert (attempt.outcome, attempt.attempt, attempt.cost) == ("ok", 1, SUCCESS_COST)
    assert attempt.request is None  # texts are never logged
    (call,) = observer.calls
    assert (call.outcome, call.attempts, call.retries, call.cost) == ("ok", 1, 0, SUCCESS_COST)
    assert call.prompt == EMBEDDING_CALL
    assert call.usage.input_tokens == 12


async def test_transient_failures_are_retried_with_backoff_and_cost_nothing() -> None:
    mock = MockLLM()
    mock.fail_next_embeddings(Fault("server_error"), Fault("rate_limit", retry_after=2.0))
    observer = RecordingObserver()
    client, clock = stack(mock, observer)
    await client.embed(embed_request())
    assert [a.outcome for a in observer.attempts] == ["server_error", "rate_limited", "ok"]
    assert len(mock.embedding_requests) == 3
    assert len(clock.sleeps) == 2
    assert clock.sleeps[1] == 2.0  # the Retry-After hint
    (call,) = observer.calls
    assert (call.attempts, call.retries, call.cost) == (3, 2, SUCCESS_COST)


async def test_a_timeout_may_have_been_billed_so_it_is_charged_its_reservation() -> None:
    mock = MockLLM()
    mock.fail_next_embeddings(Fault("timeout"))
    observer = RecordingObserver()
    client, _ = stack(mock, observer)
    await client.embed(embed_request())
    (call,) = observer.calls
    assert call.cost == RESERVATION + SUCCESS_COST


async def test_exhausted_retries_raise_and_open_the_breaker_for_the_next_call() -> None:
    mock = MockLLM()
    mock.fail_next_embeddings(*(Fault("server_error") for _ in range(3)))
    observer = RecordingObserver()
    client, _ = stack(mock, observer)
    with pytest.raises(ServerError):
        await client.embed(embed_request())
    assert len(mock.embedding_requests) == 3
    with pytest.raises(AllTargetsFailedError, match="breaker_open"):
        await client.embed(embed_request())
    assert len(mock.embedding_requests) == 3  # nothing sent while the breaker is open
    assert [call.outcome for call in observer.calls] == ["error", "error"]
    assert observer.attempts[-1].outcome == "breaker_open"


async def test_a_terminal_error_is_not_retried() -> None:
    mock = MockLLM()
    mock.fail_next_embeddings(AuthenticationError("bad key", provider="mock", model="m"))
    observer = RecordingObserver()
    client, _ = stack(mock, observer)
    with pytest.raises(AuthenticationError):
        await client.embed(embed_request())
    assert len(mock.embedding_requests) == 1


async def test_the_budget_refuses_before_anything_is_sent() -> None:
    mock = MockLLM()
    observer = RecordingObserver()
    budget = Budget(per_call=RESERVATION / 2)
    client, _ = stack(mock, observer, budget)
    with pytest.raises(BudgetExceeded):
        await client.embed(embed_request())
    assert mock.embedding_requests == []
    assert observer.calls[0].outcome == "budget_exceeded"


async def test_an_unpriced_embedding_model_is_refused() -> None:
    clock = FakeClock()
    mock = MockLLM()
    client = resilient_client({"mock": mock}, clock=clock, pricing=PriceTable({}))
    with pytest.raises(UnknownCostError):
        await client.embed(embed_request())
    assert mock.embedding_requests == []


class CompletionsOnly:
    """A provider with no embeddings API (as Anthropic's)."""

    provider = "chat"

    async def complete(self, request: object) -> object:
        raise NotImplementedError

    def stream(self, request: object) -> object:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass


async def test_a_provider_without_embeddings_fails_terminally_once() -> None:
    observer = RecordingObserver()
    client = resilient_client(
        {"chat": CompletionsOnly()},  # type: ignore[dict-item]
        clock=FakeClock(),
        config=ResilienceConfig(allow_unknown_cost=True),
        observer=observer,
    )
    with pytest.raises(BadRequestError, match="has no embeddings API"):
        await client.embed(EmbeddingRequest(model="any", texts=("x",)))
    assert observer.attempts == []
    assert observer.calls[0].outcome == "error"


async def test_embeddings_are_counted_against_a_day_ceiling_shared_on_redis(
    redis_url: str,
) -> None:
    from airuntime.resilience.shared.connection import connect
    from airuntime.resilience.shared.ledger import RedisLedger
    from airuntime.resilience.state import RedisConfig

    ceiling = 10 * RESERVATION
    ledger = RedisLedger(connect(RedisConfig(url=redis_url)))
    budget = Budget(per_day=ceiling, ledger=ledger, daily_lease=ceiling)
    client, _ = stack(MockLLM(), RecordingObserver(), budget)

    for _ in range(12):  # each settles at 12 tokens, reserving 46: the lease runs out
        await client.embed(embed_request())
    await budget.aclose()  # gives the unused lease back and writes what was spent

    reader = RedisLedger(connect(RedisConfig(url=redis_url)))
    assert await reader.acommitted(reader.today()) == 12 * SUCCESS_COST
    await reader.aclose()
