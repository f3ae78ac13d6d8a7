"""The runtime every feature shares, built once per process from the settings:
settings -> telemetry -> resilient client (with the features' offline stand-ins on the mock)
-> structured generator, plus the input limits and the review queue."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from {{ package_name }}.features.offline import offline_rules
from {{ package_name }}.guardrails import clean_text, strip_control_characters
from {{ package_name }}.llm.resilience import ResilientClient
from {{ package_name }}.llm.runtime import (
    ProviderClients,
    build_resilient_client,
    provider_clients,
)
from {{ package_name }}.llm.structured import Generated, StructuredGenerator
from {{ package_name }}.observability.setup import configure_observability
from {{ package_name }}.observability.telemetry import Telemetry
from {{ package_name }}.prompts import get_registry
from {{ package_name }}.review import ReviewItem, ReviewQueue, ReviewReason
from {{ package_name }}.settings import Settings


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
        """The answer and its provenance as plain JSON values."""
        generated = self.generated
        return {
            **self.value.model_dump(mode="json"),
            "degraded": generated.degraded,
            "needs_review": self.needs_review,
            "review_reason": self.review_reason,
            "request_id": generated.request_id,
            "model": None if generated.target is None else str(generated.target),
            "fallback_index": generated.fallback_index,
            "attempts": generated.attempts,
            "repairs": generated.repairs,
            "cache_hit": generated.cache_hit,
            "cost_usd": str(generated.cost),
        }


@dataclass
class FeatureSystem:
    settings: Settings
    telemetry: Telemetry
    client: ResilientClient
    generator: StructuredGenerator
    offline: bool  # every provider is served by the mock (no API key configured)
    review_queue: ReviewQueue | None  # None: nothing is queued (evaluations)

    def clean(self, text: str, delimiters: Sequence[str], *, what: str = "text") -> str:
        """Untrusted text through the input guardrails (size, control characters, delimiters)."""
        return clean_text(
            text, limit=self.settings.max_input_chars, delimiters=delimiters, what=what
        )

    def finish(
        self, feature: str, text: str, generated: Generated[OutputT]
    ) -> FeatureResult[OutputT]:
        """Flag a degraded or low-confidence answer for review (and queue it), then wrap it."""
        reason: ReviewReason | None = None
        if generated.degraded:
            reason = "degraded"
        elif generated.value.confidence < self.settings.review_confidence_threshold:
            reason = "low_confidence"
        result = FeatureResult(feature, generated, reason)
        if reason is not None and self.review_queue is not None:
            self.review_queue.append(
                ReviewItem.create(
                    feature=feature,
                    request_id=generated.request_id,
                    reason=reason,
                    confidence=generated.value.confidence,
                    text=strip_control_characters(text),
                    output=generated.value.model_dump(mode="json"),
                )
            )
        return result

    async def aclose(self) -> None:
        await self.client.aclose()


def build_system(
    settings: Settings,
    *,
    telemetry: Telemetry | None = None,
    review: bool = True,
    clients: ProviderClients | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: random.Random | None = None,
) -> FeatureSystem:
    """The features' runtime. Bad settings raise ConfigurationError, bad prompt files
    PromptLoadError, both before any model is called.

    `review=False` queues nothing (evaluations); `clients`, `clock`, `sleep` and `rng` are for
    tests (scripted providers, time that only moves when slept)."""
    registry = get_registry(settings)
    if telemetry is None:
        telemetry = configure_observability(settings)
    providers = clients or provider_clients(settings, mock_rules=offline_rules())
    client = build_resilient_client(
        settings, observer=telemetry, clients=providers, clock=clock, sleep=sleep, rng=rng
    )
    return FeatureSystem(
        settings=settings,
        telemetry=telemetry,
        client=client,
        generator=StructuredGenerator(
            client, registry, repair_attempts=settings.structured_repair_attempts
        ),
        offline=providers.offline,
        review_queue=ReviewQueue(settings.review_queue_path) if review else None,
    )


@asynccontextmanager
async def open_system(settings: Settings, **options: Any) -> AsyncIterator[FeatureSystem]:
    """`build_system`, closing its clients at the end."""
    system = build_system(settings, **options)
    try:
        yield system
    finally:
        await system.aclose()
