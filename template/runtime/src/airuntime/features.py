"""What every feature shares: its output's confidence, its result with provenance, and the
system it runs on (structured generator, resilient client, telemetry, input limits and review
queue), which the project's wiring builds once per process from its settings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from airuntime.guardrails import clean_text, strip_control_characters
from airuntime.observability.telemetry import Telemetry
from airuntime.resilience.client import ResilientClient
from airuntime.review import ReviewItem, ReviewQueue, ReviewReason
from airuntime.structured import Generated, StructuredGenerator

DEFAULT_MAX_INPUT_CHARS = 20_000
DEFAULT_REVIEW_THRESHOLD = 0.6


class FeatureOutput(BaseModel):
    """What every feature answers: its own fields, and how sure the model is of them."""

    confidence: float = Field(ge=0, le=1, description="How sure the model is, from 0 to 1.")


OutputT = TypeVar("OutputT", bound=FeatureOutput)


@dataclass(frozen=True, slots=True)
class FeatureResult(Generic[OutputT]):
    """A feature's validated answer, how it was produced, and whether a person should check it."""

    feature: str
    generated: Generated[OutputT]
    review_reason: ReviewReason | None

    @property
    def value(self) -> OutputT:
        return self.generated.value

    @property
    def needs_review(self) -> bool:
        return self.review_reason is not None

    def to_dict(self) -> dict[str, Any]:
        """The answer and its provenance as plain JSON values: `model` is the target it answers
        for, `served_by` who really answered (its provider, or "mock" standing in for it)."""
        generated = self.generated
        return {
            **self.value.model_dump(mode="json"),
            "degraded": generated.degraded,
            "needs_review": self.needs_review,
            "review_reason": self.review_reason,
            "request_id": generated.request_id,
            "prompt": generated.prompt,
            "model": None if generated.target is None else str(generated.target),
            "served_by": generated.served_by,
            "fallback_index": generated.fallback_index,
            "attempts": generated.attempts,
            "repairs": generated.repairs,
            "cache_hit": generated.cache_hit,
            "cost_usd": str(generated.cost),
        }


@dataclass(frozen=True, slots=True)
class FeaturePolicy:
    """What features enforce around every call: the longest input, in characters, and the
    confidence below which a result goes to the review queue."""

    max_input_chars: int = DEFAULT_MAX_INPUT_CHARS
    review_confidence_threshold: float = DEFAULT_REVIEW_THRESHOLD


@dataclass
class FeatureSystem:
    """The runtime a feature runs on. The project's wiring builds it from the settings."""

    telemetry: Telemetry
    client: ResilientClient
    generator: StructuredGenerator
    offline: bool  # every provider is served by the mock (no API key configured)
    review_queue: ReviewQueue | None  # None: nothing is queued (evaluations)
    policy: FeaturePolicy = field(default_factory=FeaturePolicy)
    # What else closes with the system (a feature's index, opened once per system).
    _closers: list[Callable[[], Awaitable[None]]] = field(
        default_factory=list, init=False, repr=False, compare=False
    )

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Run `closer` when the system closes, before the model client (last in, first)."""
        self._closers.append(closer)

    def clean(self, text: str, delimiters: Sequence[str], *, what: str = "text") -> str:
        """Untrusted text through the input guardrails (size, control characters, delimiters)."""
        return clean_text(text, limit=self.policy.max_input_chars, delimiters=delimiters, what=what)

    def finish(
        self, feature: str, text: str, generated: Generated[OutputT]
    ) -> FeatureResult[OutputT]:
        """Flag a degraded or low-confidence answer for review (and queue it), then wrap it."""
        reason: ReviewReason | None = None
        if generated.degraded:
            reason = "degraded"
        elif generated.value.confidence < self.policy.review_confidence_threshold:
            reason = "low_confidence"
        result = FeatureResult(feature, generated, reason)
        if reason is not None and self.review_queue is not None:
            self.review_queue.append(
                ReviewItem.create(
                    feature=feature,
                    request_id=generated.request_id,
                    model=None if generated.target is None else str(generated.target),
                    served_by=generated.served_by,
                    reason=reason,
                    confidence=generated.value.confidence,
                    text=strip_control_characters(text),
                    output=generated.value.model_dump(mode="json"),
                )
            )
        return result

    async def aclose(self) -> None:
        while self._closers:
            await self._closers.pop()()
        await self.client.aclose()
