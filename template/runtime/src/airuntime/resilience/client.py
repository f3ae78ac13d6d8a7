"""The resilient client: retries, circuit breakers, a fallback chain, limits and a budget
around any LLMClient, and itself an LLMClient.

For each target in order (the primary, then the fallbacks) it checks the target's breaker, then
retries transient errors with tenacity (full-jitter backoff, Retry-After honoured up to a cap,
max attempts, one deadline for the whole call, a timeout per attempt). Before every attempt the
worst-case cost is reserved against the budget, so a refused call is never sent. It moves to the
next target when retries are exhausted, the breaker is open, or the error is one another target
can fix (context length, content filter); authentication and bad-request errors surface as they
are unless configured otherwise, because a fallback would only hide a bug or a bad key.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Mapping, Sequence
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar, cast

from tenacity import AsyncRetrying, DoAttempt, DoSleep, RetryCallState, retry_if_exception

from airuntime.errors import BadRequestError, LLMError, ProviderTimeoutError
from airuntime.model.client import EmbeddingClient, LLMClient
from airuntime.observability.events import (
    PROMPT_HASH,
    PROMPT_ID,
    PROMPT_VERSION,
    CallOutcome,
    CallRecord,
    NullObserver,
    Observer,
    ValidationFailure,
)
from airuntime.resilience.accounting import Attempt, AttemptBooks
from airuntime.resilience.breaker import BreakerBoard
from airuntime.resilience.budget import ZERO, Budget
from airuntime.resilience.cache import ResponseStore, StoredAnswer, cache_key
from airuntime.resilience.chain import (
    AllTargetsFailedError,
    CallState,
    ChainResult,
    ResilienceConfig,
    TargetFailure,
    failure_outcome,
    result_outcome,
)
from airuntime.resilience.interface import Router
from airuntime.resilience.limits import Limits
from airuntime.resilience.pricing import PriceTable
from airuntime.resilience.retry import Deadline, is_retryable, make_stop, make_wait
from airuntime.resilience.streaming import OpenStream
from airuntime.resilience.timeouts import run_until
from airuntime.types import (
    Chunk,
    EmbeddingRequest,
    EmbeddingResponse,
    LLMRequest,
    LLMResponse,
    ModelTarget,
    model_target,
)

T = TypeVar("T")
# What the logs and metrics name an embedding call by (in place of a prompt id@version).
EMBEDDING_CALL = "embeddings"


class ResilientClient:
    """Wraps provider clients (by provider name) behind one resilient LLMClient."""

    def __init__(
        self,
        clients: Mapping[str, LLMClient],
        *,
        default_provider: str,
        config: ResilienceConfig,
        pricing: PriceTable,
        budget: Budget,
        breakers: BreakerBoard,
        limits: Limits,
        fallbacks: Sequence[ModelTarget] = (),
        cache: ResponseStore | None = None,
        observer: Observer | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        endpoints: Mapping[str, str | None] | None = None,
        shared_errors: Mapping[str, int] | None = None,
    ) -> None:
        self.clients = dict(clients)
        # Failures of the shared state (Redis) by part, live: each one fell back (a cache
        # miss, the instance's own breakers or limits) or refused, so they never fail a call
        # unseen; /metrics shows them. None: the state is this process's own.
        self.shared_errors = shared_errors
        # Where each provider's client sends its requests (its base URL; absent or None: the
        # vendor's own, or in-process): part of who answers, so of the cache key.
        self.endpoints = dict(endpoints or {})
        self.default_provider = default_provider
        self.config = config
        self.budget = budget
        self.breakers = breakers
        self.limits = limits
        self.fallbacks = tuple(fallbacks)
        self.cache = cache
        self.observer: Observer = observer if observer is not None else NullObserver()
        self.books = AttemptBooks(
            pricing=pricing,
            budget=budget,
            breakers=breakers,
            observer=self.observer,
            allow_unknown_cost=config.allow_unknown_cost,
            clock=clock,
        )
        self._clock = clock
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 - jitter, not crypto

    @property
    def provider(self) -> str:
        return "resilient"

    def targets_for(self, request: LLMRequest) -> tuple[ModelTarget, ...]:
        """The default chain: the request's model on the default provider, then fallbacks."""
        return self.chain_for(request.model)

    def chain_for(self, model: str) -> tuple[ModelTarget, ...]:
        """`model` on the default provider, then the fallbacks (without it again)."""
        primary = model_target(self.default_provider, model)
        return (primary, *(target for target in self.fallbacks if target != primary))

    # -- the account of a logical call ----------------------------------------------------

    def begin_call(self, request: LLMRequest) -> CallState:
        """Open the account of a logical call (the structured layer spans several runs)."""
        prompt_id = request.metadata.get(PROMPT_ID)
        version = request.metadata.get(PROMPT_VERSION)
        return CallState(
            request_id=request.request_id,
            prompt=f"{prompt_id}@{version}" if prompt_id and version else prompt_id,
            prompt_hash=request.metadata.get(PROMPT_HASH),
            started=self._clock(),
            started_ns=time.time_ns(),
            deadline=Deadline(self.config.deadline_seconds, self._clock),
        )

    def finish_call(
        self, call: CallState, outcome: CallOutcome, error: BaseException | None = None
    ) -> None:
        """Report the logical call once, with everything it cost."""
        self.observer.on_call(
            CallRecord(
                request_id=call.request_id,
                prompt=call.prompt,
                prompt_hash=call.prompt_hash,
                outcome=outcome,
                target=call.target,
                served_by=call.served_by,
                fallback_index=call.fallback_index,
                attempts=call.attempts,
                retries=call.retries,
                started_ns=call.started_ns,
                duration_s=self._clock() - call.started,
                usage=call.usage,
                cost=call.cost,
                unknown_cost=call.unknown_cost,
                error_type=None if error is None else type(error).__name__,
            )
        )

    # -- whole responses --------------------------------------------------------------------

    async def complete(self, request: LLMRequest) -> LLMResponse:
        return (await self.run(request)).response

    async def run(
        self,
        request: LLMRequest,
        *,
        targets: Sequence[ModelTarget] | None = None,
        route: Router | None = None,
        use_cache: bool = True,
        idempotency_key: str | None = None,
        call: CallState | None = None,
    ) -> ChainResult:
        """Answer from the cache, or from the first target that can.

        `route` builds the request sent to each target (by default: the model swapped in).
        With `call`, this run is part of a larger logical call whose owner reports it;
        otherwise the run reports itself.
        """
        owned = call is None
        account = call if call is not None else self.begin_call(request)
        router = route if route is not None else swap_model
        try:
            result = await self._run(request, targets, router, use_cache, idempotency_key, account)
        except Exception as error:
            if owned:
                self.finish_call(account, failure_outcome(error), error)
            raise
        if owned:
            self.finish_call(account, result_outcome(result))
        return result

    async def _run(
        self,
        request: LLMRequest,
        targets: Sequence[ModelTarget] | None,
        router: Router,
        use_cache: bool,
        idempotency_key: str | None,
        call: CallState,
    ) -> ChainResult:
        chain = tuple(targets) if targets else self.targets_for(request)
        cached = await self.lookup(request, idempotency_key, use_cache=use_cache, targets=chain)
        if cached is not None:
            call.target, call.fallback_index = cached.target, cached.fallback_index
            call.served_by = cached.served_by
            return cached

        failures: list[TargetFailure] = []
        for index, target in enumerate(chain):
            if not await self._usable(target, index, call, failures):
                continue
            attempts_before = call.attempts
            try:
                response, cost = await self._with_retries(
                    call, partial(self._attempt, router(request, target), target, index, call)
                )
            except LLMError as error:
                failures.append(
                    TargetFailure(target, call.attempts - attempts_before, error.kind, error)
                )
                if not self.config.falls_back_on(error):
                    raise
                continue
            served_by = self.clients[target.provider].provider
            call.target, call.fallback_index, call.served_by = target, index, served_by
            result = ChainResult(
                response, target, index, call.attempts - attempts_before, cost, served_by
            )
            await self.remember(
                request, idempotency_key, result, use_cache=use_cache, targets=chain
            )
            return result
        raise AllTargetsFailedError(failures)

    async def _attempt(
        self, request: LLMRequest, target: ModelTarget, index: int, call: CallState, number: int
    ) -> tuple[LLMResponse, Decimal | None]:
        """The response and its cost (None when the model has no price)."""
        client = self.clients[target.provider]
        attempt = await self.books.aopen(request, call, target, index, number, client.provider)
        response = await self._bounded(
            attempt, target, call, lambda: client.complete(request), "answer"
        )
        cost = self.books.succeed(
            attempt,
            response.usage,
            finish_reason=response.finish_reason,
            response_model=response.model,
            response_text=response.text,
        )
        return response, cost

    # -- embeddings ---------------------------------------------------------------------------

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """Vectors from the default provider, under the same retries, breaker, limits, budget
        and observability as a completion.

        Only the one target: the fallback chain is for completions, and vectors from another
        model live in another space, so they could not be searched against the stored ones.
        """
        call = CallState(
            request_id=request.request_id,
            prompt=EMBEDDING_CALL,
            prompt_hash=None,
            started=self._clock(),
            started_ns=time.time_ns(),
            deadline=Deadline(self.config.deadline_seconds, self._clock),
        )
        target = model_target(self.default_provider, request.model)
        try:
            failures: list[TargetFailure] = []
            if not await self._usable(target, 0, call, failures):
                raise AllTargetsFailedError(failures)
            response = await self._with_retries(
                call, partial(self._embed_attempt, request, target, call)
            )
        except Exception as error:
            self.finish_call(call, failure_outcome(error), error)
            raise
        call.target, call.fallback_index = target, 0
        self.finish_call(call, "ok")
        return response

    async def _embed_attempt(
        self, request: EmbeddingRequest, target: ModelTarget, call: CallState, number: int
    ) -> EmbeddingResponse:
        client = self.clients[target.provider]
        if not isinstance(client, EmbeddingClient):
            raise BadRequestError(
                f"the {client.provider} client has no embeddings API: embed with a provider "
                "that has one (openai, or the mock offline)",
                provider=target.provider,
                model=target.model,
            )
        attempt = await self.books.aopen_embedding(request, call, target, number, client.provider)
        response = await self._bounded(
            attempt, target, call, lambda: client.embed(request), "embeddings"
        )
        self.books.succeed(attempt, response.usage, response_model=response.model)
        return response

    async def _bounded(
        self,
        attempt: Attempt,
        target: ModelTarget,
        call: CallState,
        send: Callable[[], Coroutine[Any, Any, T]],
        what: str,
    ) -> T:
        """`send()` inside the attempt's rate-limit slot and its time limit; the attempt is
        booked as failed (an LLMError) or abandoned (a cancellation, a bug) when no answer
        comes. Its success is booked by the caller, which knows what the answer cost."""
        try:
            async with self.limits.slot(attempt.tokens):
                timeout = attempt_timeout(self.config.attempt_timeout_seconds, call)
                when = asyncio.get_running_loop().time() + timeout
                try:
                    return await run_until(send(), when)
                except TimeoutError:
                    raise ProviderTimeoutError(
                        f"no {what} within {timeout:.3g}s",
                        provider=target.provider,
                        model=target.model,
                    ) from None
        except LLMError as error:
            self.books.fail(attempt, error)
            raise
        except BaseException:
            self.books.abandon(attempt)
            raise

    # -- streams ------------------------------------------------------------------------------

    def stream(
        self, request: LLMRequest, *, targets: Sequence[ModelTarget] | None = None
    ) -> ResilientStream:
        """Stream from the first target that produces a first chunk.

        Retries and fallbacks happen only before the first chunk: once text has reached the
        caller, switching models would splice two different answers together. An error after
        that reaches the caller as it is. The stream's `call` is its running account (who
        answers, attempts, usage, cost), complete once the stream has ended.
        """
        call = self.begin_call(request)
        return ResilientStream(call, self._stream(request, targets, call))

    async def _stream(
        self, request: LLMRequest, targets: Sequence[ModelTarget] | None, call: CallState
    ) -> AsyncGenerator[Chunk, None]:
        chain = tuple(targets) if targets else self.targets_for(request)
        failures: list[TargetFailure] = []
        for index, target in enumerate(chain):
            if not await self._usable(target, index, call, failures):
                continue
            attempts_before = call.attempts
            try:
                opened = await self._with_retries(
                    call,
                    partial(self._open_stream, swap_model(request, target), target, index, call),
                )
            except LLMError as error:
                failures.append(
                    TargetFailure(target, call.attempts - attempts_before, error.kind, error)
                )
                if not self.config.falls_back_on(error):
                    self.finish_call(call, "error", error)
                    raise
                continue
            except Exception as error:
                self.finish_call(call, failure_outcome(error), error)
                raise
            except BaseException as error:  # cancelled while waiting for the first chunk
                self.finish_call(call, "cancelled", error)
                raise
            call.target, call.fallback_index = target, index
            call.served_by = self.clients[target.provider].provider
            try:
                async with opened:
                    async for chunk in opened.chunks():
                        yield chunk
            except LLMError as error:
                self.finish_call(call, "error", error)
                raise
            except BaseException as error:
                # The reader stopped (closed the stream, or was cancelled) mid-stream: the open
                # stream has settled the attempt on its way out; the call is reported too.
                self.finish_call(call, "cancelled", error)
                raise
            self.finish_call(call, "fallback" if index > 0 else "ok")
            return
        exhausted = AllTargetsFailedError(failures)
        self.finish_call(call, "error", exhausted)
        raise exhausted

    async def _open_stream(
        self, request: LLMRequest, target: ModelTarget, index: int, call: CallState, number: int
    ) -> OpenStream:
        client = self.clients[target.provider]
        attempt = await self.books.aopen(request, call, target, index, number, client.provider)
        opened = OpenStream(
            client.stream(request),
            attempt,
            self.books,
            self.limits,
            timeout=lambda: attempt_timeout(self.config.attempt_timeout_seconds, call),
        )
        await opened.start()
        return opened

    # -- shared ------------------------------------------------------------------------------

    async def _with_retries(self, call: CallState, attempt: Callable[[int], Awaitable[T]]) -> T:
        """Run `attempt(number)` under the retry policy (a fresh tenacity loop per target).

        The first attempt runs on its own: most calls succeed at once, and tenacity's loop would
        cost more than the rest of the client. A failure hands its outcome to tenacity, which
        goes on exactly as if it had made that attempt itself: same waits, stops and jitter.
        """
        try:
            return await attempt(1)
        except LLMError as error:
            if not error.retryable:  # what tenacity would re-raise at once
                raise
            first_failure = error
        policy = self.config.retry
        retrying = AsyncRetrying(
            sleep=self._sleep,
            stop=make_stop(policy, call.deadline),
            wait=make_wait(policy, self._rng),
            retry=retry_if_exception(is_retryable),
            reraise=True,
        )
        retrying.begin()
        state = RetryCallState(retry_object=retrying, fn=None, args=(), kwargs={})
        state.set_exception((type(first_failure), first_failure, first_failure.__traceback__))
        number = 1
        while True:  # tenacity's own loop (AsyncRetrying.__call__), resumed after attempt 1
            do = await retrying.iter(retry_state=state)
            if isinstance(do, DoAttempt):
                number += 1
                call.retries += 1
                try:
                    result = await attempt(number)
                except LLMError as error:  # anything else propagates, as tenacity's would
                    state.set_exception((type(error), error, error.__traceback__))
                else:
                    state.set_result(result)
            elif isinstance(do, DoSleep):
                state.prepare_for_next_attempt()
                await self._sleep(do)
            else:
                return cast("T", do)

    async def _usable(
        self, target: ModelTarget, index: int, call: CallState, failures: list[TargetFailure]
    ) -> bool:
        """Whether to try the target now; if not, record and report why it was skipped."""
        client = self.clients.get(target.provider)
        if client is None:
            reason = "not_configured"
        elif call.deadline.remaining() <= 0:
            reason = "deadline_exceeded"
        elif not await self.breakers.get(target).aallow():
            reason = "breaker_open"
        else:
            return True
        failures.append(TargetFailure(target, 0, reason))
        served_by = client.provider if client is not None else "-"
        self.books.skip(call, target, index, reason, served_by)
        return False

    async def lookup(
        self,
        request: LLMRequest,
        idempotency_key: str | None = None,
        *,
        use_cache: bool = True,
        targets: Sequence[ModelTarget] | None = None,
    ) -> ChainResult | None:
        """The stored answer for this idempotency key (a replay), or else, when the cache is
        in use, for this exact request to this chain (`targets`, by default the request's), as
        a cache hit labelled with the target that answered and who served it.

        An answer is returned only while that target is in the chain and the client that
        served it is still the one serving it, at the same endpoint: an offline stand-in's
        answer never reaches a call a real provider would serve, nor one server's another's.
        """
        if self.cache is None:
            return None
        chain = tuple(targets) if targets else self.targets_for(request)
        stored = None
        if idempotency_key is not None:
            stored = self._trusted(await self.cache.aget_idempotent(idempotency_key), chain)
        if stored is None and use_cache:
            stored = self._trusted(await self.cache.aget(self._cache_key(request, chain)), chain)
        if stored is None:
            return None
        index = chain.index(stored.target)
        return ChainResult(
            stored.response, stored.target, index, 0, ZERO, stored.served_by, cache_hit=True
        )

    async def remember(
        self,
        request: LLMRequest,
        idempotency_key: str | None,
        result: ChainResult,
        *,
        use_cache: bool = True,
        targets: Sequence[ModelTarget] | None = None,
    ) -> None:
        """Store a good answer with its provenance (the result's target and served_by), for
        this request to this chain. Callers that validate output store only what validated."""
        if self.cache is None:
            return
        answer = StoredAnswer(
            response=result.response,
            target=result.target,
            served_by=result.served_by,
            endpoint=self.endpoints.get(result.target.provider),
        )
        if use_cache:
            chain = tuple(targets) if targets else self.targets_for(request)
            await self.cache.aput(self._cache_key(request, chain), answer)
        if idempotency_key is not None:
            await self.cache.aput_idempotent(idempotency_key, answer)

    def server(self, provider: str) -> tuple[str, str | None] | None:
        """Who serves `provider` now: its client's name (the provider, or "mock" standing in)
        and endpoint; None when it has no client."""
        client = self.clients.get(provider)
        return None if client is None else (client.provider, self.endpoints.get(provider))

    def _cache_key(self, request: LLMRequest, chain: Sequence[ModelTarget]) -> str:
        primary = chain[0]
        served_by, endpoint = self.server(primary.provider) or (None, None)
        return cache_key(request, target=primary, served_by=served_by, endpoint=endpoint)

    def _trusted(
        self, stored: StoredAnswer | None, chain: Sequence[ModelTarget]
    ) -> StoredAnswer | None:
        """`stored`, if whoever produced it would still be asked for it."""
        if stored is None or stored.target not in chain:
            return None
        if self.server(stored.target.provider) != (stored.served_by, stored.endpoint):
            return None
        return stored

    def report_validation_failure(self, failure: ValidationFailure) -> None:
        self.observer.on_validation_failure(failure)

    async def aclose(self) -> None:
        for client in {id(client): client for client in self.clients.values()}.values():
            await client.aclose()
        await self.breakers.aclose()
        if self.cache is not None:
            await self.cache.aclose()
        await self.budget.aclose()


class ResilientStream:
    """The chunks of a resilient stream, and the account of its call (`call`: target,
    attempts, usage and cost so far; complete once the stream has ended).

    `aclose()` stops it early: the attempt in flight is settled and the call reported as
    cancelled, as when the task reading it is cancelled.
    """

    __slots__ = ("_chunks", "call")

    def __init__(self, call: CallState, chunks: AsyncGenerator[Chunk, None]) -> None:
        self.call = call
        self._chunks = chunks

    def __aiter__(self) -> ResilientStream:
        return self

    def __anext__(self) -> Awaitable[Chunk]:
        return self._chunks.__anext__()

    async def aclose(self) -> None:
        await self._chunks.aclose()


def swap_model(request: LLMRequest, target: ModelTarget) -> LLMRequest:
    """The default router: the request as sent to one target, its model swapped in."""
    if request.model == target.model:
        return request
    return request.model_copy(update={"model": target.model})


def attempt_timeout(configured: float, call: CallState) -> float:
    """The per-attempt timeout, cut short by the call's deadline."""
    return max(0.0, min(configured, call.deadline.remaining()))
