"""The public interface of the resilient layer, for the layers above it.

Structured output (and later agents) run several model calls as one logical call: they open
its account, run the fallback chain with their own routing, consult and fill the cache only
with answers that validated, and report the call once. They depend on this protocol, never
on `ResilientClient` itself, so another implementation (a shared, remote or instrumented one)
can stand in without them knowing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from airuntime.model.client import LLMClient
from airuntime.observability.events import CallOutcome, ValidationFailure
from airuntime.resilience.chain import CallState, ChainResult
from airuntime.types import LLMRequest, ModelTarget

Router = Callable[[LLMRequest, ModelTarget], LLMRequest]
"""Builds the request sent to one target of the chain (by default: the model swapped in)."""


class ResilientRunner(LLMClient, Protocol):
    """An `LLMClient` that runs requests through a fallback chain under one account."""

    def begin_call(self, request: LLMRequest) -> CallState:
        """Open the account of a logical call that may span several runs."""
        ...

    def finish_call(
        self, call: CallState, outcome: CallOutcome, error: BaseException | None = None
    ) -> None:
        """Report the logical call once, with everything it cost."""
        ...

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
        """Answer from the cache or the first target that can; with `call`, as part of it."""
        ...

    def lookup(
        self,
        request: LLMRequest,
        idempotency_key: str | None = None,
        *,
        use_cache: bool = True,
        targets: Sequence[ModelTarget] | None = None,
    ) -> ChainResult | None:
        """The stored answer for this idempotency key, or (when caching) this request to this
        chain, labelled with the target that answered and who served it; only while that
        server would still be asked (a stand-in's answer never reaches a real provider's call)."""
        ...

    def remember(
        self,
        request: LLMRequest,
        idempotency_key: str | None,
        result: ChainResult,
        *,
        use_cache: bool = True,
        targets: Sequence[ModelTarget] | None = None,
    ) -> None:
        """Store an answer the caller has accepted (validated), with its provenance, for
        replays and the cache."""
        ...

    def report_validation_failure(self, failure: ValidationFailure) -> None:
        """Tell the observers that an answer failed to parse or validate."""
        ...
