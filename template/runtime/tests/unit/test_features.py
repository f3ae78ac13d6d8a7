"""What every feature shares: untrusted text through the input guardrails, degraded and
low-confidence answers flagged (and queued for review, with personal data redacted), and a
result's provenance as plain JSON values."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from airuntime.features import (
    DEFAULT_MAX_INPUT_CHARS,
    DEFAULT_REVIEW_THRESHOLD,
    FeatureOutput,
    FeaturePolicy,
    FeatureResult,
    FeatureSystem,
)
from airuntime.guardrails import InputRejectedError
from airuntime.model.mock import MockLLM
from airuntime.observability.telemetry import Telemetry
from airuntime.prompts import PromptRegistry
from airuntime.review import ReviewQueue
from airuntime.structured import Generated, StructuredGenerator
from airuntime.testing import FakeClock, resilient_client
from airuntime.types import ModelTarget, Usage


class Verdict(FeatureOutput):
    label: str


def system(queue: ReviewQueue | None, policy: FeaturePolicy | None = None) -> FeatureSystem:
    client = resilient_client({"mock": MockLLM()}, clock=FakeClock())
    return FeatureSystem(
        telemetry=Telemetry(),
        client=client,
        generator=StructuredGenerator(client, PromptRegistry(())),
        offline=True,
        review_queue=queue,
        policy=policy or FeaturePolicy(),
    )


def generated(
    confidence: float, *, degraded: bool = False, label: str = "billing"
) -> Generated[Verdict]:
    return Generated(
        value=Verdict(label=label, confidence=confidence),
        raw_text="" if degraded else f'{{"label": "{label}"}}',
        request_id="req-7",
        target=None if degraded else ModelTarget(provider="openai", model="gpt-5-mini"),
        served_by=None if degraded else "openai",
        fallback_index=None if degraded else 1,
        attempts=3,
        repairs=0 if degraded else 1,
        usage=Usage(input_tokens=10, output_tokens=5),
        cost=Decimal("0.000123"),
        degraded=degraded,
    )


@pytest.fixture
def queue(tmp_path: Path) -> ReviewQueue:
    return ReviewQueue(tmp_path / "var" / "review.jsonl")


def test_the_default_policy() -> None:
    policy = FeaturePolicy()

    assert (policy.max_input_chars, policy.review_confidence_threshold) == (20_000, 0.6)
    assert (DEFAULT_MAX_INPUT_CHARS, DEFAULT_REVIEW_THRESHOLD) == (20_000, 0.6)


def test_clean_strips_control_characters_and_escapes_the_delimiters(queue: ReviewQueue) -> None:
    cleaned = system(queue).clean("a\x00b </text> <TEXT>", ("text",))

    assert cleaned == "ab &lt;/text&gt; &lt;TEXT&gt;"


def test_clean_enforces_the_policy_limit_naming_what_was_given(queue: ReviewQueue) -> None:
    small = system(queue, FeaturePolicy(max_input_chars=5))

    assert small.clean("12345", ()) == "12345"
    message = (
        "the document is 6 characters long, over the limit of 5 (MAX_INPUT_CHARS): shorten it "
        "or split it into parts."
    )
    with pytest.raises(InputRejectedError, match=f"^{re.escape(message)}$"):
        small.clean("123456", (), what="document")
    with pytest.raises(InputRejectedError, match=r"^the text is empty: give some text"):
        small.clean(" \x07 ", ())


def test_a_confident_answer_is_not_flagged(queue: ReviewQueue) -> None:
    result = system(queue).finish("classify", "text", generated(0.6))

    assert (result.review_reason, result.needs_review) == (None, False)
    assert result.feature == "classify"
    assert result.value == Verdict(label="billing", confidence=0.6)
    assert queue.items() == ([], 0)


def test_a_low_confidence_answer_is_flagged_and_queued_redacted(queue: ReviewQueue) -> None:
    text = "Refund me\x00 at jane.roe@example.com"

    result = system(queue).finish("classify", text, generated(0.59, label="call +44 20 7946 0958"))

    assert (result.review_reason, result.needs_review) == ("low_confidence", True)
    (item,), skipped = queue.items()
    assert skipped == 0
    assert (item.feature, item.request_id, item.reason, item.confidence) == (
        "classify",
        "req-7",
        "low_confidence",
        0.59,
    )
    assert (item.model, item.served_by) == ("openai/gpt-5-mini", "openai")
    assert item.input_excerpt == "Refund me at [EMAIL]"
    assert item.output == {"confidence": 0.59, "label": "call [PHONE]"}


def test_a_degraded_answer_is_flagged_as_degraded_whatever_its_confidence(
    queue: ReviewQueue,
) -> None:
    result = system(queue).finish("summarize", "text", generated(0.99, degraded=True))

    assert result.review_reason == "degraded"
    (item,), _ = queue.items()
    assert (item.feature, item.reason, item.confidence) == ("summarize", "degraded", 0.99)
    assert (item.model, item.served_by) == (None, None)  # no model answered


def test_the_threshold_comes_from_the_policy(queue: ReviewQueue) -> None:
    strict = system(queue, FeaturePolicy(review_confidence_threshold=0.95))

    assert strict.finish("classify", "t", generated(0.9)).review_reason == "low_confidence"
    assert strict.finish("classify", "t", generated(0.95)).review_reason is None
    assert len(queue.items()[0]) == 1


def test_without_a_queue_a_result_is_flagged_but_nothing_is_written(tmp_path: Path) -> None:
    result = system(None).finish("classify", "text", generated(0.1))

    assert result.review_reason == "low_confidence"
    assert list(tmp_path.rglob("*.jsonl")) == []


def test_to_dict_is_the_answer_and_its_provenance() -> None:
    answered = FeatureResult("classify", generated(0.9), None)
    degraded = FeatureResult("classify", generated(0.0, degraded=True), "degraded")

    assert answered.to_dict() == {
        "prompt": None,
        "label": "billing",
        "confidence": 0.9,
        "degraded": False,
        "needs_review": False,
        "review_reason": None,
        "request_id": "req-7",
        "model": "openai/gpt-5-mini",
        "served_by": "openai",
        "fallback_index": 1,
        "attempts": 3,
        "repairs": 1,
        "cache_hit": False,
        "cost_usd": "0.000123",
    }
    assert degraded.to_dict() == {
        "prompt": None,
        "label": "billing",
        "confidence": 0.0,
        "degraded": True,
        "needs_review": True,
        "review_reason": "degraded",
        "request_id": "req-7",
        "model": None,
        "served_by": None,
        "fallback_index": None,
        "attempts": 3,
        "repairs": 0,
        "cache_hit": False,
        "cost_usd": "0.000123",
    }


async def test_aclose_closes_the_client() -> None:
    closed: list[bool] = []

    class ClosingMock(MockLLM):
        async def aclose(self) -> None:
            closed.append(True)

    client = resilient_client({"mock": ClosingMock()}, clock=FakeClock())
    feature_system = FeatureSystem(
        Telemetry(), client, StructuredGenerator(client, PromptRegistry(())), True, None
    )

    await feature_system.aclose()

    assert closed == [True]


async def test_what_registers_to_close_closes_with_the_system_last_first() -> None:
    closed: list[str] = []
    built = system(None)

    async def first() -> None:
        closed.append("first")

    async def second() -> None:
        closed.append("second")

    built.on_close(first)
    built.on_close(second)
    await built.aclose()
    await built.aclose()  # closers run once
    assert closed == ["second", "first"]
