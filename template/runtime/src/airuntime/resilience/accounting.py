"""The books of every attempt: budget reservation before sending, settlement after, the
breaker's verdict and the record sent to the observer. Shared by whole and streamed calls."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from airuntime.errors import LLMError
from airuntime.observability.events import AttemptRecord, Observer
from airuntime.resilience.breaker import BreakerBoard, CircuitBreaker
from airuntime.resilience.budget import ZERO, Budget, Reservation
from airuntime.resilience.chain import CallState, UnknownCostError
from airuntime.resilience.pricing import PriceTable, estimate_input_tokens, utf8_length
from airuntime.types import EmbeddingRequest, FinishReason, LLMRequest, ModelTarget, Usage

# Failures after which the provider may have done (and billed) the work: charged at the
# reservation, because the real usage is unknown. Refusals (429, 4xx) and 5xx are not billed.
POSSIBLY_BILLED = frozenset({"timeout", "connection_error", "content_filtered"})


@dataclass(slots=True)
class Attempt:
    """One request sent to one target, from reservation to settlement."""

    call: CallState
    target: ModelTarget
    fallback_index: int
    number: int
    served_by: str
    breaker: CircuitBreaker
    reservation: Reservation
    started: float
    started_ns: int
    tokens: int  # worst-case tokens, for the tokens-per-minute limiter
    request: LLMRequest | None  # None for an embedding call (its texts are not logged)


class AttemptBooks:
    def __init__(
        self,
        *,
        pricing: PriceTable,
        budget: Budget,
        breakers: BreakerBoard,
        observer: Observer,
        allow_unknown_cost: bool,
        clock: Callable[[], float],
    ) -> None:
        self.pricing = pricing
        self.budget = budget
        self.breakers = breakers
        self.observer = observer
        self.allow_unknown_cost = allow_unknown_cost
        self.clock = clock

    def open(
        self,
        request: LLMRequest,
        call: CallState,
        target: ModelTarget,
        fallback_index: int,
        number: int,
        served_by: str,
    ) -> Attempt:
        """Reserve the attempt's worst-case cost; raises BudgetExceeded before anything is sent
        (a local budget only: the client uses `aopen`)."""
        input_tokens = estimate_input_tokens(request)
        worst = self._worst_case(call, target, input_tokens, request.max_tokens)
        reservation = self.budget.reserve(worst, call.budget)
        return self._opened(
            call, target, fallback_index, number, served_by, reservation, request, input_tokens
        )

    async def aopen(
        self,
        request: LLMRequest,
        call: CallState,
        target: ModelTarget,
        fallback_index: int,
        number: int,
        served_by: str,
    ) -> Attempt:
        """`open`, with a budget whose day ledger may be shared (and so awaited)."""
        input_tokens = estimate_input_tokens(request)
        worst = self._worst_case(call, target, input_tokens, request.max_tokens)
        reservation = await self.budget.areserve(worst, call.budget)
        return self._opened(
            call, target, fallback_index, number, served_by, reservation, request, input_tokens
        )

    async def aopen_embedding(
        self,
        request: EmbeddingRequest,
        call: CallState,
        target: ModelTarget,
        number: int,
        served_by: str,
    ) -> Attempt:
        """Reserve an embedding call's worst case (every text's bytes as input tokens, no
        output), on the day ledger too, shared or not; raises BudgetExceeded before anything
        is sent."""
        input_tokens = sum(utf8_length(text) for text in request.texts)
        worst = self._worst_case(call, target, input_tokens, 0)
        reservation = await self.budget.areserve(worst, call.budget)
        return self._opened(call, target, 0, number, served_by, reservation, None, input_tokens)

    def _worst_case(
        self, call: CallState, target: ModelTarget, input_tokens: int, output_tokens: int
    ) -> Decimal:
        price = self.pricing.price(target.provider, target.model)
        if price is None:
            if not self.allow_unknown_cost:
                raise UnknownCostError(target)
            call.unknown_cost = True
            return ZERO
        return price.worst_case(input_tokens, output_tokens)

    def _opened(
        self,
        call: CallState,
        target: ModelTarget,
        fallback_index: int,
        number: int,
        served_by: str,
        reservation: Reservation,
        request: LLMRequest | None,
        input_tokens: int,
    ) -> Attempt:
        call.attempts += 1
        return Attempt(
            call=call,
            target=target,
            fallback_index=fallback_index,
            number=number,
            served_by=served_by,
            breaker=self.breakers.get(target),
            reservation=reservation,
            started=self.clock(),
            started_ns=time.time_ns(),
            # What the rate limiter counts: the prompt and the most the answer may use.
            tokens=input_tokens + (request.max_tokens if request is not None else 0),
            request=request,
        )

    def succeed(
        self,
        attempt: Attempt,
        usage: Usage | None,
        *,
        finish_reason: FinishReason | None = None,
        response_model: str | None = None,
        response_text: str | None = None,
    ) -> Decimal | None:
        """Settle at the real cost; without reported usage, at the reservation."""
        call = attempt.call
        if usage is None:
            charged: Decimal | None = attempt.reservation.amount
            self.budget.settle(attempt.reservation, attempt.reservation.amount)
            call.cost += attempt.reservation.amount
        else:
            charged = self.pricing.cost(attempt.target.provider, attempt.target.model, usage)
            self.budget.settle(attempt.reservation, charged if charged is not None else ZERO)
            call.cost += charged if charged is not None else ZERO
            call.add_usage(usage)
        attempt.breaker.record_success()
        self._report(
            attempt, "ok", None, usage, charged, finish_reason, response_model, response_text
        )
        return charged

    def fail(self, attempt: Attempt, error: LLMError) -> None:
        """Settle a failed attempt (charged only if the provider may have billed it)."""
        if error.kind in POSSIBLY_BILLED:
            charged = attempt.reservation.amount
            self.budget.settle(attempt.reservation, charged)
            attempt.call.cost += charged
        else:
            charged = ZERO
            self.budget.release(attempt.reservation)
        attempt.breaker.record_failure(error)
        self._report(attempt, error.kind, error, None, charged, None, None, None)

    def abandon(self, attempt: Attempt) -> None:
        """Cancelled or a bug mid-attempt: nothing known was billed; free the reservation."""
        self.budget.release(attempt.reservation)

    def skip(
        self, call: CallState, target: ModelTarget, fallback_index: int, reason: str, served_by: str
    ) -> None:
        """A target passed over without sending anything: reported as attempt 0."""
        self.observer.on_attempt(
            AttemptRecord(
                request_id=call.request_id,
                prompt=call.prompt,
                prompt_hash=call.prompt_hash,
                target=target,
                served_by=served_by,
                attempt=0,
                fallback_index=fallback_index,
                started_ns=time.time_ns(),
                duration_s=0.0,
                outcome=reason,
                error_type=None,
                usage=None,
                cost=None,
                finish_reason=None,
                response_model=None,
                breaker_state=self.breakers.get(target).state.value,
            )
        )

    def _report(
        self,
        attempt: Attempt,
        outcome: str,
        error: LLMError | None,
        usage: Usage | None,
        cost: Decimal | None,
        finish_reason: FinishReason | None,
        response_model: str | None,
        response_text: str | None,
    ) -> None:
        call = attempt.call
        self.observer.on_attempt(
            AttemptRecord(
                request_id=call.request_id,
                prompt=call.prompt,
                prompt_hash=call.prompt_hash,
                target=attempt.target,
                served_by=attempt.served_by,
                attempt=attempt.number,
                fallback_index=attempt.fallback_index,
                started_ns=attempt.started_ns,
                duration_s=self.clock() - attempt.started,
                outcome=outcome,
                error_type=None if error is None else type(error).__name__,
                usage=usage,
                cost=cost,
                finish_reason=finish_reason,
                response_model=response_model,
                breaker_state=attempt.breaker.state.value,
                request=attempt.request,
                response_text=response_text,
            )
        )
