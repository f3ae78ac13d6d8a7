"""Structured output end to end on MockLLM: validation, bounded repair re-asks, the response
cache, idempotent replays and degraded answers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, Field

from airuntime.model.mock import MockLLM, Step
from airuntime.model.mock_faults import Fault
from airuntime.observability.events import RecordingObserver
from airuntime.prompts import PromptRegistry, load_registry
from airuntime.resilience.cache import ResponseCache
from airuntime.resilience.chain import AllTargetsFailedError
from airuntime.structured import (
    StructuredGenerator,
    StructuredOutputError,
    _route,
    strip_code_fences,
)
from airuntime.testing import FakeClock, flat_prices, resilient_client
from airuntime.types import ModelTarget

PRIMARY = ModelTarget(provider="mock", model="model-a")
FALLBACK = ModelTarget(provider="mock", model="model-b")
GOOD = '{"label": "billing", "confidence": 0.9}'


class Verdict(BaseModel):
    label: str
    confidence: float = Field(ge=0, le=1)


@pytest.fixture
def open_cache() -> Iterator[Callable[[Path], ResponseCache]]:
    """Open response caches in tmp_path and close them after the test."""
    opened: list[ResponseCache] = []

    def open_one(directory: Path) -> ResponseCache:
        opened.append(ResponseCache(directory / "cache.sqlite3", ttl_seconds=60))
        return opened[-1]

    yield open_one
    for cache in opened:
        cache.close()


@pytest.fixture
def registry(tmp_path: Path) -> PromptRegistry:
    prompt = {
        "id": "triage",
        "version": "1.0.0",
        "description": "Sorts a ticket into a queue.",
        "labels": ["production"],
        "model": {"provider": "mock", "name": "model-a", "params": {"max_tokens": 64}},
        "fallbacks": [{"provider": "mock", "name": "model-b"}],
        "input": {"fields": {"ticket": "string"}},
        "output": {"format": "json"},
        "metadata": {},
        "messages": [
            {"role": "system", "template": "Sort the ticket. Answer JSON: label, confidence."},
            {"role": "user", "template": "<ticket>{{ ticket }}</ticket>"},
        ],
    }
    folder = tmp_path / "prompts" / "triage"
    folder.mkdir(parents=True)
    (folder / "1.0.0.yaml").write_text(yaml.safe_dump(prompt), encoding="utf-8")
    return load_registry(prompts_dir=tmp_path / "prompts")


class Setup:
    def __init__(
        self,
        registry: PromptRegistry,
        script: list[Step],
        *,
        cache: ResponseCache | None = None,
        repair_attempts: int = 1,
    ) -> None:
        self.clock = FakeClock()
        self.mock = MockLLM(script, sleep=self.clock.sleep)
        self.observer = RecordingObserver()
        self.client = resilient_client(
            {"mock": self.mock},
            clock=self.clock,
            pricing=flat_prices([PRIMARY, FALLBACK]),
            observer=self.observer,
        )
        self.client.cache = cache
        self.generator = StructuredGenerator(self.client, registry, repair_attempts=repair_attempts)


async def test_valid_json_validates_first_time(registry: PromptRegistry) -> None:
    setup = Setup(registry, [GOOD])

    result = await setup.generator.generate("triage", {"ticket": "I was charged twice"}, Verdict)

    assert result.value == Verdict(label="billing", confidence=0.9)
    assert (result.attempts, result.repairs, result.degraded) == (1, 0, False)
    sent = setup.mock.requests[0]
    assert sent.output.type == "json_schema"
    assert sent.output.json_schema == Verdict.model_json_schema()
    assert sent.metadata["prompt.id"] == "triage"
    assert sent.max_tokens == 64
    assert [call.outcome for call in setup.observer.calls] == ["ok"]


async def test_code_fences_are_stripped(registry: PromptRegistry) -> None:
    setup = Setup(registry, [f"```json\n{GOOD}\n```"])

    result = await setup.generator.generate("triage", {"ticket": "x"}, Verdict)

    assert result.value.label == "billing"
    assert strip_code_fences("```\n{}\n```") == "{}"
    assert strip_code_fences(" {} ") == "{}"


async def test_malformed_json_is_repaired_with_the_error_appended(
    registry: PromptRegistry,
) -> None:
    setup = Setup(registry, [Fault("malformed_json"), GOOD])

    result = await setup.generator.generate("triage", {"ticket": "x"}, Verdict)

    assert (result.attempts, result.repairs) == (2, 1)
    repair = setup.mock.requests[1]
    assert [message.role for message in repair.messages] == ["system", "user", "assistant", "user"]
    assert "not valid JSON" in repair.messages[-1].content
    failures = setup.observer.validation_failures
    assert [(failure.repair_attempt, failure.prompt) for failure in failures] == [
        (0, "triage@1.0.0")
    ]
    # Both answers were paid for: the repair is part of the same call's cost.
    assert len(setup.observer.calls) == 1
    assert setup.observer.calls[0].cost == result.cost == setup.client.budget.spent


async def test_schema_invalid_json_is_repaired(registry: PromptRegistry) -> None:
    setup = Setup(registry, ['{"label": "billing", "confidence": 7}', GOOD])

    result = await setup.generator.generate("triage", {"ticket": "x"}, Verdict)

    assert result.repairs == 1
    assert "confidence: Input should be less than or equal to 1" in (
        setup.mock.requests[1].messages[-1].content
    )


async def test_truncated_output_is_repaired(registry: PromptRegistry) -> None:
    setup = Setup(registry, [Fault("truncated"), GOOD])

    result = await setup.generator.generate("triage", {"ticket": "x"}, Verdict)

    assert result.repairs == 1
    assert "cut off at max_tokens" in setup.mock.requests[1].messages[-1].content


async def test_repair_budget_spent_raises_with_raw_text_errors_attempts_and_usage(
    registry: PromptRegistry,
) -> None:
    setup = Setup(registry, ["not json", '{"label": 3}'])

    with pytest.raises(StructuredOutputError) as caught:
        await setup.generator.generate("triage", {"ticket": "x"}, Verdict)

    error = caught.value
    assert error.raw_text == '{"label": 3}'
    assert error.errors == (
        "label: Input should be a valid string",
        "confidence: Field required",
    )
    assert (error.attempts, error.repairs) == (2, 1)
    assert error.usage.output_tokens == 2 + 3  # "not json" and '{"label": 3}' at 4 chars/token
    assert error.cost == setup.client.budget.spent > 0
    assert len(setup.mock.requests) == 2  # bounded: no third ask
    assert [call.outcome for call in setup.observer.calls] == ["error"]


async def test_repair_budget_is_separate_from_transport_retries(registry: PromptRegistry) -> None:
    setup = Setup(registry, [Fault("server_error"), "nope", Fault("timeout"), GOOD])

    result = await setup.generator.generate("triage", {"ticket": "x"}, Verdict)

    assert (result.attempts, result.repairs) == (4, 1)
    assert setup.clock.sleeps != []  # each transport failure was retried after a backoff


async def test_cache_serves_a_validated_answer_for_free(
    registry: PromptRegistry, tmp_path: Path, open_cache: Callable[[Path], ResponseCache]
) -> None:
    cache = open_cache(tmp_path)
    setup = Setup(registry, [GOOD], cache=cache)

    first = await setup.generator.generate("triage", {"ticket": "x"}, Verdict)
    second = await setup.generator.generate("triage", {"ticket": "x"}, Verdict)

    assert second.value == first.value
    assert (second.cache_hit, second.cost, second.attempts) == (True, Decimal(0), 0)
    assert len(setup.mock.requests) == 1
    assert [call.outcome for call in setup.observer.calls] == ["ok", "cache_hit"]


async def test_cache_holds_only_validated_answers_and_can_be_bypassed(
    registry: PromptRegistry, tmp_path: Path, open_cache: Callable[[Path], ResponseCache]
) -> None:
    cache = open_cache(tmp_path)
    setup = Setup(registry, ["not json", "still not json", GOOD, GOOD], cache=cache)

    with pytest.raises(StructuredOutputError):
        await setup.generator.generate("triage", {"ticket": "x"}, Verdict)
    first = await setup.generator.generate("triage", {"ticket": "x"}, Verdict)
    bypass = await setup.generator.generate("triage", {"ticket": "x"}, Verdict, use_cache=False)

    assert not first.cache_hit  # the invalid answers were never stored
    assert not bypass.cache_hit
    assert len(setup.mock.requests) == 4


async def test_idempotent_replay_returns_the_stored_result_without_billing(
    registry: PromptRegistry, tmp_path: Path, open_cache: Callable[[Path], ResponseCache]
) -> None:
    cache = open_cache(tmp_path)
    setup = Setup(registry, [GOOD], cache=cache)

    first = await setup.generator.generate(
        "triage", {"ticket": "job 7"}, Verdict, idempotency_key="job-7", use_cache=False
    )
    spent = setup.client.budget.spent
    replay = await setup.generator.generate(
        "triage", {"ticket": "job 7 (retried)"}, Verdict, idempotency_key="job-7", use_cache=False
    )

    assert replay.value == first.value
    assert replay.cache_hit
    assert setup.client.budget.spent == spent
    assert len(setup.mock.requests) == 1


async def test_degraded_answer_when_every_target_fails(registry: PromptRegistry) -> None:
    setup = Setup(registry, [Fault("server_error")] * 6)

    result = await setup.generator.generate(
        "triage",
        {"ticket": "x"},
        Verdict,
        degraded=lambda: Verdict(label="needs-human", confidence=0.0),
    )

    assert result.degraded
    assert result.value.label == "needs-human"
    assert result.attempts == 6  # three on each target
    assert [call.outcome for call in setup.observer.calls] == ["degraded"]


async def test_without_a_degraded_answer_the_chain_failure_is_raised(
    registry: PromptRegistry,
) -> None:
    setup = Setup(registry, [Fault("server_error")] * 6)

    with pytest.raises(AllTargetsFailedError):
        await setup.generator.generate("triage", {"ticket": "x"}, Verdict)

    assert [call.outcome for call in setup.observer.calls] == ["error"]


def test_routing_keeps_the_primary_request_and_builds_the_fallback_its_own(
    registry: PromptRegistry,
) -> None:
    rendered = registry.render("triage", {"ticket": "I was charged twice"})
    first = rendered.to_request()
    primary, fallback = (target.model_target for target in rendered.targets)

    # For the primary, routing would rebuild exactly the request `generate` made first.
    rebuilt = rendered.to_request(rendered.target, request_id=first.request_id)
    assert _route(rendered, first, primary) is first
    assert first == rebuilt.model_copy(update={"messages": first.messages, "output": first.output})
    routed = _route(rendered, first, fallback)
    assert routed.model == "model-b"
    assert routed == rendered.to_request(rendered.fallbacks[0], request_id=first.request_id)
