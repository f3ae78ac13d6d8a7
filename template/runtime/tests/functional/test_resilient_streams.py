"""Streams through the resilient client beyond the fault matrix: what the records say, explicit
targets, skipped targets, every way a stream can fail before or after its first chunk, chunk
timeouts, streams without usage, and a stream its caller stops reading."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from decimal import Decimal
from typing import cast

import pytest

from airuntime.errors import (
    AuthenticationError,
    LLMError,
    ProviderConnectionError,
    ProviderTimeoutError,
    ServerError,
)
from airuntime.model.mock import MockLLM, Step
from airuntime.model.mock_faults import Fault
from airuntime.observability.events import RecordingObserver
from airuntime.resilience.breaker import BreakerBoard
from airuntime.resilience.budget import Budget, BudgetExceeded
from airuntime.resilience.chain import AllTargetsFailedError, ResilienceConfig
from airuntime.resilience.client import ResilientClient
from airuntime.resilience.limits import Limits
from airuntime.resilience.retry import RetryPolicy
from airuntime.resilience.streaming import OpenStream
from airuntime.testing import FakeClock, flat_prices
from airuntime.types import Chunk, LLMRequest, Message, ModelTarget, Usage

PRIMARY = ModelTarget(provider="primary", model="model-a")
SECONDARY = ModelTarget(provider="secondary", model="model-b")
QUESTION = "Summarise the incident report."  # 30 bytes, 8 mock tokens
ANSWER = "All systems recovered."  # 6 mock tokens, 3 chunks
MAX_TOKENS = 100
MILLION = Decimal(1_000_000)
SUCCESS_COST = Decimal(8 * 1 + 6 * 2) / MILLION
RESERVATION = Decimal((30 + 8) * 1 + MAX_TOKENS * 2) / MILLION
WORST_CASE_TOKENS = (30 + 8) + MAX_TOKENS  # what the tokens-per-minute limit counts
POLICY = RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=8.0, retry_after_cap=30.0)

StreamFactory = Callable[[], AsyncIterator[Chunk]]
NO_CHUNKS: tuple[Chunk, ...] = ()


class Streams(MockLLM):
    """A provider whose streams are given one per request, as async-iterator factories."""

    def __init__(self, provider: str, streams: Sequence[StreamFactory]) -> None:
        super().__init__([], provider=provider)
        self._streams = list(streams)

    def stream(self, request: LLMRequest) -> AsyncIterator[Chunk]:
        return self._streams.pop(0)()


class Stack:
    def __init__(
        self,
        primary: Sequence[Step] | MockLLM,
        secondary: Sequence[Step] = (),
        *,
        config: ResilienceConfig | None = None,
        budget: Budget | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.clock = FakeClock()
        self.primary = (
            primary
            if isinstance(primary, MockLLM)
            else MockLLM(primary, provider="primary", sleep=self.clock.sleep)
        )
        self.secondary = MockLLM(secondary, provider="secondary", sleep=self.clock.sleep)
        self.observer = RecordingObserver()
        self.budget = budget or Budget()
        self.limits = limits or Limits(max_concurrency=5)
        self.client = ResilientClient(
            {"primary": self.primary, "secondary": self.secondary},
            default_provider="primary",
            config=config or ResilienceConfig(retry=POLICY),
            pricing=flat_prices([PRIMARY, SECONDARY]),
            budget=self.budget,
            breakers=BreakerBoard(failure_threshold=3, cooldown_seconds=30, clock=self.clock),
            limits=self.limits,
            fallbacks=[SECONDARY],
            observer=self.observer,
            clock=self.clock,
            sleep=self.clock.sleep,
            rng=random.Random(0),
        )

    async def collect(
        self, targets: Sequence[ModelTarget] | None = None
    ) -> tuple[str, BaseException | None]:
        text = ""
        try:
            async for chunk in self.client.stream(request(), targets=targets):
                text += chunk.text
        except (LLMError, BudgetExceeded) as error:
            return text, error
        return text, None

    def outcomes(self) -> list[tuple[str, str | None]]:
        return [(call.outcome, call.error_type) for call in self.observer.calls]


def resilient_stream(stack: Stack) -> AsyncGenerator[Chunk, None]:
    """The client's stream as what it is, an async generator its caller can close early."""
    return cast("AsyncGenerator[Chunk, None]", stack.client.stream(request()))


def request() -> LLMRequest:
    return LLMRequest(
        model=PRIMARY.model,
        messages=(Message(role="user", content=QUESTION),),
        max_tokens=MAX_TOKENS,
    )


async def test_a_stream_answered_by_the_primary_is_ok_and_recorded_in_full() -> None:
    stack = Stack([ANSWER])

    text, error = await stack.collect()

    assert (text, error) == (ANSWER, None)
    assert stack.outcomes() == [("ok", None)]
    (attempt,) = stack.observer.attempts
    assert (attempt.target, attempt.served_by, attempt.attempt, attempt.fallback_index) == (
        PRIMARY,
        "primary",
        1,
        0,
    )
    assert (attempt.outcome, attempt.finish_reason, attempt.response_model) == (
        "ok",
        "stop",
        "model-a",
    )
    assert attempt.usage == Usage(input_tokens=8, output_tokens=6)
    assert attempt.cost == SUCCESS_COST == stack.budget.spent


async def test_a_stream_goes_only_to_the_targets_it_is_given() -> None:
    stack = Stack([ANSWER], [ANSWER])

    text, _ = await stack.collect(targets=[SECONDARY])

    assert text == ANSWER
    assert (len(stack.primary.requests), len(stack.secondary.requests)) == (0, 1)
    assert stack.secondary.requests[0].model == "model-b"
    assert stack.outcomes() == [("ok", None)]  # the first target given is the primary here


async def test_a_stream_passes_over_an_open_breaker_to_the_fallback() -> None:
    stack = Stack([Fault("server_error")] * 3, [ANSWER, ANSWER])
    await stack.client.run(request())  # opens the primary's breaker
    stack.observer.attempts.clear()
    stack.observer.calls.clear()

    text, error = await stack.collect()

    assert (text, error) == (ANSWER, None)
    skipped, answered = stack.observer.attempts
    assert (skipped.target, skipped.attempt, skipped.fallback_index, skipped.outcome) == (
        PRIMARY,
        0,
        0,
        "breaker_open",
    )
    assert (answered.target, answered.attempt, answered.fallback_index) == (SECONDARY, 1, 1)
    assert stack.outcomes() == [("fallback", None)]


async def test_a_stream_with_every_target_down_raises_one_error_listing_each() -> None:
    stack = Stack([Fault("server_error")] * 3, [Fault("connection_error")] * 3)

    text, error = await stack.collect()

    assert text == ""
    assert isinstance(error, AllTargetsFailedError)
    assert str(error) == (
        "all 2 model targets failed: "
        "primary/model-a: server_error after 3 attempts (internal server error (injected by "
        "MockLLM)); secondary/model-b: connection_error after 3 attempts (connection reset "
        "(injected by MockLLM))"
    )
    assert [(f.target, f.attempts) for f in error.failures] == [(PRIMARY, 3), (SECONDARY, 3)]
    assert stack.outcomes() == [("error", "AllTargetsFailedError")]


async def test_a_stream_refused_for_authentication_is_not_masked_by_a_fallback() -> None:
    denied = AuthenticationError("invalid key", provider="primary", model="model-a")
    stack = Stack([denied], [ANSWER])

    _, error = await stack.collect()

    assert isinstance(error, AuthenticationError)
    assert len(stack.secondary.requests) == 0
    assert stack.outcomes() == [("error", "AuthenticationError")]


async def test_a_stream_over_budget_is_refused_unsent_and_reported() -> None:
    stack = Stack([ANSWER], budget=Budget(per_call=RESERVATION / 2))

    _, error = await stack.collect()

    assert isinstance(error, BudgetExceeded)
    assert len(stack.primary.requests) == 0
    assert stack.outcomes() == [("budget_exceeded", "BudgetExceeded")]


async def test_an_error_after_the_first_chunk_is_reported_with_its_type() -> None:
    stack = Stack([Fault("server_error", at_chunk=1)], [ANSWER])

    text, error = await stack.collect()

    assert text == "Mock "  # the mock's generated answer, cut after one chunk
    assert error is not None
    assert stack.outcomes() == [("error", "ServerError")]


async def test_a_stream_without_usage_is_charged_at_its_reservation() -> None:
    async def reset() -> AsyncIterator[Chunk]:
        for chunk in NO_CHUNKS:
            yield chunk
        raise ProviderConnectionError("connection reset", provider="primary", model="model-a")

    async def no_usage() -> AsyncIterator[Chunk]:
        yield Chunk(text="All ", index=0)
        yield Chunk(text="systems recovered.", index=1)

    stack = Stack(Streams("primary", [reset, no_usage]))

    text, error = await stack.collect()

    assert (text, error) == (ANSWER, None)
    failed, answered = stack.observer.attempts
    assert (answered.outcome, answered.usage, answered.finish_reason) == ("ok", None, None)
    assert answered.cost == RESERVATION  # the real cost is unknown: the worst case is charged
    assert failed.cost == RESERVATION  # a reset connection may have been billed too
    assert stack.budget.spent == 2 * RESERVATION
    assert stack.budget.reserved == 0
    assert stack.observer.calls[0].cost == 2 * RESERVATION  # the call adds up both


async def test_a_stream_ending_before_its_first_chunk_is_a_retried_server_error() -> None:
    async def empty() -> AsyncIterator[Chunk]:
        for chunk in NO_CHUNKS:  # an async generator that ends without yielding anything
            yield chunk

    config = ResilienceConfig(retry=RetryPolicy(max_attempts=2))
    stack = Stack(Streams("primary", [empty, empty]), [Fault("server_error")] * 2, config=config)

    _, error = await stack.collect()

    assert isinstance(error, AllTargetsFailedError)
    first = error.failures[0]
    assert (first.reason, first.attempts) == ("server_error", 2)
    assert first.error is not None
    assert first.error.message == "the stream ended before its first chunk"
    assert (first.error.provider, first.error.model) == ("primary", "model-a")
    assert stack.budget.spent == 0  # a 5xx is not billed


async def test_a_bug_in_a_provider_stream_propagates_and_frees_its_reservation() -> None:
    async def broken() -> AsyncIterator[Chunk]:
        for chunk in NO_CHUNKS:
            yield chunk
        raise RuntimeError("a bug in the adapter")

    stack = Stack(Streams("primary", [broken]), [ANSWER])

    with pytest.raises(RuntimeError, match="a bug in the adapter"):
        await stack.collect()

    assert len(stack.secondary.requests) == 0  # a bug is not a reason to fall back
    assert (stack.budget.reserved, stack.budget.spent) == (Decimal(0), Decimal(0))
    assert stack.outcomes() == [("error", "RuntimeError")]


async def test_a_stalled_stream_times_out_between_chunks() -> None:
    async def stalls() -> AsyncIterator[Chunk]:
        yield Chunk(text="All ", index=0)
        await asyncio.Event().wait()
        yield Chunk(text="never", index=1)  # pragma: no cover

    config = ResilienceConfig(retry=POLICY, attempt_timeout_seconds=0.01)
    stack = Stack(Streams("primary", [stalls]), config=config)

    text, error = await asyncio.wait_for(stack.collect(), timeout=5.0)

    assert text == "All "
    assert isinstance(error, ProviderTimeoutError)
    assert error.message == "no chunk within 0.01s"
    assert (error.provider, error.model) == ("primary", "model-a")
    assert stack.budget.spent == RESERVATION  # a timed-out stream may have been billed


async def test_a_provider_stream_without_aclose_is_read_to_the_end() -> None:
    class Pieces:
        """A bare async iterator (not a generator): it has no aclose()."""

        def __init__(self) -> None:
            self._pieces = iter(["All ", "systems ", "recovered."])

        def __aiter__(self) -> Pieces:
            return self

        async def __anext__(self) -> Chunk:
            try:
                return Chunk(text=next(self._pieces), index=0)
            except StopIteration:
                raise StopAsyncIteration from None

    stack = Stack(Streams("primary", [Pieces]))

    text, error = await stack.collect()

    assert (text, error) == (ANSWER, None)
    assert stack.limits.in_flight == 0


async def test_a_stream_its_caller_stops_reading_is_closed_and_settled_at_once() -> None:
    closed: list[bool] = []

    async def endless() -> AsyncIterator[Chunk]:
        try:
            yield Chunk(text="All ", index=0)
            await asyncio.Event().wait()
            yield Chunk(text="never", index=1)  # pragma: no cover
        finally:
            closed.append(True)

    stack = Stack(Streams("primary", [endless]))
    stream = resilient_stream(stack)

    first = await anext(stream)
    await stream.aclose()  # e.g. the HTTP client went away

    assert first.text == "All "
    assert closed == [True]  # the provider's stream (and its connection) closed now, not at GC
    assert stack.limits.in_flight == 0
    # Chunks were generated, so the provider may have billed them: charged at the reservation,
    # and nothing stays reserved to count against the ceilings forever.
    assert (stack.budget.spent, stack.budget.reserved) == (RESERVATION, Decimal(0))
    # The call is reported once, as cancelled, with what it cost.
    (call,) = stack.observer.calls
    assert (call.outcome, call.error_type, call.attempts) == ("cancelled", "GeneratorExit", 1)
    assert call.cost == RESERVATION


async def test_a_stream_whose_reader_is_cancelled_mid_stream_is_settled_and_reported() -> None:
    async def endless() -> AsyncIterator[Chunk]:
        yield Chunk(text="All ", index=0)
        await asyncio.Event().wait()
        yield Chunk(text="never", index=1)  # pragma: no cover

    stack = Stack(Streams("primary", [endless]))
    stream = stack.client.stream(request())
    first_chunk = asyncio.Event()

    async def read() -> None:
        async for _chunk in stream:
            first_chunk.set()

    task = asyncio.create_task(read())
    await first_chunk.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert stream.call.target == PRIMARY
    assert stream.call.cost == RESERVATION
    assert (stack.budget.spent, stack.budget.reserved) == (RESERVATION, Decimal(0))
    assert [(call.outcome, call.error_type) for call in stack.observer.calls] == [
        ("cancelled", "CancelledError")
    ]


async def test_a_stream_cancelled_before_its_first_chunk_frees_its_reservation() -> None:
    started = asyncio.Event()

    async def silent() -> AsyncIterator[Chunk]:
        started.set()
        await asyncio.Event().wait()
        yield Chunk(text="never", index=0)  # pragma: no cover

    stack = Stack(Streams("primary", [silent]))
    stream = stack.client.stream(request())

    async def first() -> Chunk:
        return await anext(stream)

    task = asyncio.create_task(first())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert (stack.budget.spent, stack.budget.reserved) == (Decimal(0), Decimal(0))
    assert stack.limits.in_flight == 0
    assert stack.outcomes() == [("cancelled", "CancelledError")]


async def test_the_mock_paces_its_chunks_and_records_the_streams_left_unfinished() -> None:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    mock = MockLLM(["one two three"], chunk_interval=0.25, sleep=sleep)
    finished = MockLLM(["one two"], chunk_interval=0.25, sleep=sleep)
    abandoned = mock.stream(request())
    await anext(abandoned)
    await abandoned.aclose()  # type: ignore[attr-defined]
    texts = [chunk.text async for chunk in finished.stream(request())]

    assert mock.cancelled == [mock.requests[0].request_id]
    assert finished.cancelled == []
    assert len(texts) == 2
    assert sleeps == [0.25]  # between the two chunks of the finished one, none before the first


async def test_a_caller_that_stops_at_the_last_chunk_is_charged_the_reported_usage() -> None:
    async def one_chunk() -> AsyncIterator[Chunk]:
        usage = Usage(input_tokens=8, output_tokens=6)
        yield Chunk(text=ANSWER, index=0, finish_reason="stop", usage=usage)

    stack = Stack(Streams("primary", [one_chunk]))
    stream = resilient_stream(stack)

    await anext(stream)  # the whole answer: the caller reads no further
    await stream.aclose()

    (attempt,) = stack.observer.attempts
    assert (attempt.outcome, attempt.finish_reason, attempt.response_model) == (
        "ok",
        "stop",
        "model-a",
    )
    assert attempt.usage == Usage(input_tokens=8, output_tokens=6)
    assert attempt.cost == SUCCESS_COST == stack.budget.spent


async def test_a_half_open_probe_stream_its_caller_abandons_does_not_jam_the_breaker() -> None:
    async def one_chunk_then_more() -> AsyncIterator[Chunk]:
        yield Chunk(text="All ", index=0)
        yield Chunk(text="systems recovered.", index=1)

    stack = Stack(Streams("primary", [one_chunk_then_more, one_chunk_then_more]))
    breaker = stack.client.breakers.get(PRIMARY)
    for _ in range(3):
        breaker.record_failure(ServerError("down", provider="primary", model="model-a"))
    stack.clock.advance(30)  # half-open: the next call is the one probe

    stream = resilient_stream(stack)
    await anext(stream)  # the probe is under way
    await stream.aclose()

    text, error = await stack.collect()  # the next caller is not locked out
    assert (text, error) == (ANSWER, None)


async def test_the_tokens_per_minute_limit_counts_each_streams_worst_case() -> None:
    limits = Limits(max_concurrency=5, tokens_per_minute=2 * WORST_CASE_TOKENS)
    stack = Stack([ANSWER, ANSWER, ANSWER], limits=limits)

    assert await stack.collect() == (ANSWER, None)
    assert await stack.collect() == (ANSWER, None)  # the minute's allowance is used up exactly
    with pytest.raises(TimeoutError):  # the third waits for the bucket to drain
        await asyncio.wait_for(stack.collect(), timeout=0.05)

    assert len(stack.primary.requests) == 2
    assert stack.budget.reserved == 0  # the stream cancelled while it waited holds nothing


async def test_chunks_cannot_be_read_before_the_stream_has_started() -> None:
    stack = Stack([ANSWER])
    sent = request()
    attempt = stack.client.books.open(sent, stack.client.begin_call(sent), PRIMARY, 0, 1, "mock")
    opened = OpenStream(
        stack.primary.stream(sent), attempt, stack.client.books, stack.limits, timeout=lambda: 1.0
    )

    with pytest.raises(RuntimeError, match=r"^start\(\) must succeed before chunks\(\) is read$"):
        async for _ in opened.chunks():
            pass
    stack.client.books.abandon(attempt)
    assert stack.budget.reserved == 0
