"""Structured output end to end on MockLLM: validation, bounded repair re-asks, the response
cache, idempotent replays and degraded answers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from pydantic import BaseModel, Field

from airuntime.errors import ContentFilteredError
from airuntime.model.mock import MockLLM, Step
from airuntime.model.mock_faults import Fault
from airuntime.observability.events import RecordingObserver
from airuntime.prompts import PromptRegistry, load_registry
from airuntime.resilience.budget import Budget, BudgetExceeded
from airuntime.resilience.cache import ResponseCache
from airuntime.resilience.chain import AllTargetsFailedError
from airuntime.resilience.switch import KillSwitch
from airuntime.structured import (
    StructuredGenerator,
    StructuredOutputError,
    SwitchedOffError,
    _route,
    strip_code_fences,
)
from airuntime.testing import FakeClock, flat_prices, resilient_client
from airuntime.types import ModelTarget, Usage

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


async def test_when_every_target_refuses_the_caller_gets_the_refusal_by_class(
    registry: PromptRegistry,
) -> None:
    setup = Setup(registry, [Fault("content_filter"), Fault("content_filter")])

    with pytest.raises(ContentFilteredError) as caught:
        await setup.generator.generate("triage", {"ticket": "x"}, Verdict)

    refusal = caught.value
    assert isinstance(refusal, AllTargetsFailedError)
    assert [failure.reason for failure in refusal.failures] == ["content_filtered"] * 2
    assert len(setup.mock.requests) == 2  # one per target: a refusal is not retried
    assert setup.observer.calls[0].error_type == "ContentFilteredError"


async def test_a_refusal_on_every_target_still_takes_the_degraded_answer(
    registry: PromptRegistry,
) -> None:
    setup = Setup(registry, [Fault("content_filter"), Fault("content_filter")])

    result = await setup.generator.generate(
        "triage", {"ticket": "x"}, Verdict, degraded=lambda: Verdict(label="human", confidence=0)
    )

    assert (result.degraded, result.value.label, result.attempts) == (True, "human", 2)


async def test_a_switched_off_prompt_serves_its_degraded_answer_without_a_call(
    registry: PromptRegistry,
) -> None:
    setup = Setup(registry, [GOOD])
    setup.generator.switch = KillSwitch({"triage"})

    result = await setup.generator.generate(
        "triage",
        {"ticket": "x"},
        Verdict,
        degraded=lambda: Verdict(label="needs-human", confidence=0.0),
    )

    assert result.degraded
    assert result.value.label == "needs-human"
    assert (result.attempts, result.cost) == (0, Decimal(0))
    assert setup.mock.requests == []  # the model was never called
    assert [call.outcome for call in setup.observer.calls] == ["degraded"]
    with pytest.raises(SwitchedOffError, match=r"^the AI path of triage is switched off"):
        await setup.generator.generate("triage", {"ticket": "x"}, Verdict)
    assert [call.outcome for call in setup.observer.calls] == ["degraded", "error"]


async def test_a_canary_serves_its_share_sticky_by_key_and_each_result_names_its_version(
    registry: PromptRegistry, tmp_path: Path
) -> None:
    folder = tmp_path / "prompts" / "triage"
    stable = yaml.safe_load((folder / "1.0.0.yaml").read_text(encoding="utf-8"))
    canary = {**stable, "version": "1.1.0", "labels": ["canary"], "canary_weight": 30}
    (folder / "1.1.0.yaml").write_text(yaml.safe_dump(canary), encoding="utf-8")
    setup = Setup(load_registry(prompts_dir=tmp_path / "prompts"), [GOOD] * 40)

    served = [
        (await setup.generator.generate("triage", {"ticket": "x"}, Verdict, rollout_key=f"u{n}"))
        for n in range(20)
    ]
    again = await setup.generator.generate("triage", {"ticket": "x"}, Verdict, rollout_key="u3")
    pinned = await setup.generator.generate("triage", {"ticket": "x"}, Verdict, version="1.0.0")

    versions = [result.prompt for result in served]
    assert set(versions) == {"triage@1.0.0", "triage@1.1.0"}
    assert again.prompt == versions[3]  # the same key, the same side
    assert pinned.prompt == "triage@1.0.0"
    sent = [request.metadata["prompt.version"] for request in setup.mock.requests[:20]]
    assert sent == [str(version).split("@")[1] for version in versions]  # as the log line says
    assert {call.prompt for call in setup.observer.calls} == {"triage@1.0.0", "triage@1.1.0"}


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


# -- what a result, an error and the records say -------------------------------------------


class Ticket(BaseModel):
    label: str
    confidence: float
    queue: str


class Routed(BaseModel):
    verdict: Verdict


def write_prompt(prompts: Path, version: str, **changes: object) -> None:
    """A version of the triage prompt with some of its fields changed."""
    prompt: dict[str, object] = {
        "id": "triage",
        "version": version,
        "description": "Sorts a ticket into a queue.",
        "labels": [],
        "model": {"provider": "mock", "name": "model-a", "params": {"max_tokens": 64}},
        "fallbacks": [{"provider": "mock", "name": "model-b"}],
        "input": {"fields": {"ticket": "string"}},
        "output": {"format": "json"},
        "metadata": {},
        "messages": [{"role": "user", "template": "<ticket>{{ ticket }}</ticket>"}],
        **changes,
    }
    folder = prompts / "triage"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{version}.yaml").write_text(yaml.safe_dump(prompt), encoding="utf-8")


async def test_a_validated_result_says_how_it_was_produced(registry: PromptRegistry) -> None:
    setup = Setup(registry, [GOOD])

    result = await setup.generator.generate("triage", {"ticket": "x"}, Verdict)

    sent = setup.mock.requests[0]
    assert (result.raw_text, result.request_id) == (GOOD, sent.request_id)
    assert (result.target, result.fallback_index, result.cache_hit) == (PRIMARY, 0, False)
    assert result.usage == setup.observer.calls[0].usage
    assert result.usage.output_tokens == 10  # 40 characters at 4 a token


async def test_an_answer_from_the_fallback_is_reported_as_a_fallback(
    registry: PromptRegistry,
) -> None:
    setup = Setup(registry, [*[Fault("server_error")] * 3, GOOD])

    result = await setup.generator.generate("triage", {"ticket": "x"}, Verdict)

    assert (result.target, result.fallback_index) == (FALLBACK, 1)
    assert [call.outcome for call in setup.observer.calls] == ["fallback"]


async def test_the_fallback_gets_its_own_parameters_the_schema_and_the_repair_conversation(
    tmp_path: Path,
) -> None:
    write_prompt(
        tmp_path / "prompts",
        "1.0.0",
        fallbacks=[{"provider": "mock", "name": "model-b", "params": {"max_tokens": 32}}],
    )
    registry = load_registry(prompts_dir=tmp_path / "prompts")
    # The primary fails three times (its breaker opens), so the fallback answers the first ask
    # and, the primary being skipped, the repair re-ask too.
    setup = Setup(registry, [*[Fault("server_error")] * 3, "nope", GOOD])

    result = await setup.generator.generate("triage", {"ticket": "x"}, Verdict)

    assert result.value == Verdict(label="billing", confidence=0.9)
    first, repair = setup.mock.requests[3:]
    assert [(sent.model, sent.max_tokens) for sent in (first, repair)] == [("model-b", 32)] * 2
    assert first.output.type == repair.output.type == "json_schema"
    assert [message.role for message in repair.messages] == ["user", "assistant", "user"]
    assert repair.messages[1].content == "nope"


async def test_the_repair_re_ask_lists_each_problem_on_its_own_line(
    registry: PromptRegistry,
) -> None:
    setup = Setup(registry, ["not json", '{"label": 3}', GOOD], repair_attempts=2)

    await setup.generator.generate("triage", {"ticket": "x"}, Verdict)

    first_repair, second_repair = (sent.messages[-1].content for sent in setup.mock.requests[1:])
    assert first_repair == (
        "Your answer could not be used:\n"
        "- not valid JSON: Expecting value at line 1 column 1\n"
        "Reply again with only the JSON object, matching the schema exactly."
    )
    assert second_repair == (
        "Your answer could not be used:\n"
        "- label: Input should be a valid string\n"
        "- confidence: Field required\n"
        "Reply again with only the JSON object, matching the schema exactly."
    )


async def test_problems_name_the_field_path_or_the_root(registry: PromptRegistry) -> None:
    nested = '{"verdict": {"label": "billing", "confidence": 7}}'
    setup = Setup(registry, ["[1]", nested, '{"verdict": ' + GOOD + "}"], repair_attempts=2)

    await setup.generator.generate("triage", {"ticket": "x"}, Routed)

    problems = [failure.errors for failure in setup.observer.validation_failures]
    assert problems == [
        ("(root): Input should be a valid dictionary or instance of Routed",),
        ("verdict.confidence: Input should be less than or equal to 1",),
    ]


async def test_a_truncated_answer_is_re_asked_for_a_shorter_one(registry: PromptRegistry) -> None:
    setup = Setup(registry, [Fault("truncated"), GOOD])

    await setup.generator.generate("triage", {"ticket": "x"}, Verdict)

    assert setup.observer.validation_failures[0].errors == (
        "the output was cut off at max_tokens (finish_reason=length): answer shorter",
    )


async def test_a_validation_failure_record_says_whose_answer_failed_and_how(
    registry: PromptRegistry,
) -> None:
    setup = Setup(registry, ["not json", GOOD])

    await setup.generator.generate("triage", {"ticket": "x"}, Verdict)

    (failure,) = setup.observer.validation_failures
    assert (failure.request_id, failure.target, failure.repair_attempt) == (
        setup.mock.requests[0].request_id,
        PRIMARY,
        0,
    )
    assert (failure.raw_text, failure.errors) == (
        "not json",
        ("not valid JSON: Expecting value at line 1 column 1",),
    )


async def test_the_error_after_the_last_repair_names_the_prompt_and_the_first_problems(
    registry: PromptRegistry,
) -> None:
    once = Setup(registry, ["{}", "{}"])
    twice = Setup(registry, ["{}", "{}", "{}"], repair_attempts=2)

    with pytest.raises(StructuredOutputError) as after_one:
        await once.generator.generate("triage", {"ticket": "x"}, Ticket)
    with pytest.raises(StructuredOutputError) as after_two:
        await twice.generator.generate("triage", {"ticket": "x"}, Ticket)

    assert after_one.value.prompt == "triage@1.0.0"
    assert str(after_one.value) == (
        "triage@1.0.0: the model's output did not validate after 1 repair re-ask "
        "(label: Field required; confidence: Field required)"
    )
    assert len(after_one.value.errors) == 3  # all kept; the message shows the first two
    assert str(after_two.value) == (
        "triage@1.0.0: the model's output did not validate after 2 repair re-asks "
        "(label: Field required; confidence: Field required)"
    )
    assert [(call.outcome, call.error_type) for call in once.observer.calls] == [
        ("error", "StructuredOutputError")
    ]


async def test_one_repair_re_ask_is_the_default(registry: PromptRegistry) -> None:
    setup = Setup(registry, ["nope", "still nope", GOOD])
    generator = StructuredGenerator(setup.client, registry)

    with pytest.raises(StructuredOutputError) as caught:
        await generator.generate("triage", {"ticket": "x"}, Verdict)

    assert caught.value.repairs == 1
    assert len(setup.mock.requests) == 2


async def test_a_chain_failure_is_reported_with_its_type(registry: PromptRegistry) -> None:
    setup = Setup(registry, [Fault("server_error")] * 6)

    with pytest.raises(AllTargetsFailedError):
        await setup.generator.generate("triage", {"ticket": "x"}, Verdict)

    assert setup.observer.calls[0].error_type == "ServerError"  # what every target failed with


async def test_a_budget_refusal_is_reported_as_such(registry: PromptRegistry) -> None:
    clock = FakeClock()
    observer = RecordingObserver()
    client = resilient_client(
        {"mock": MockLLM([GOOD], sleep=clock.sleep)},
        clock=clock,
        pricing=flat_prices([PRIMARY, FALLBACK]),
        budget=Budget(per_call=Decimal("0.000001")),
        observer=observer,
    )

    with pytest.raises(BudgetExceeded):
        await StructuredGenerator(client, registry).generate("triage", {"ticket": "x"}, Verdict)

    assert [(call.outcome, call.error_type) for call in observer.calls] == [
        ("budget_exceeded", "BudgetExceeded")
    ]


async def test_a_degraded_answer_carries_the_calls_account(registry: PromptRegistry) -> None:
    setup = Setup(registry, [Fault("timeout")] * 6)

    result = await setup.generator.generate(
        "triage", {"ticket": "x"}, Verdict, degraded=lambda: Verdict(label="human", confidence=0)
    )

    (call,) = setup.observer.calls
    assert (result.raw_text, result.request_id, result.repairs) == ("", call.request_id, 0)
    assert (result.target, result.fallback_index, result.cache_hit) == (None, None, False)
    assert result.usage == call.usage == Usage()
    assert result.cost == call.cost == setup.client.budget.spent > 0  # timeouts are billed


async def test_a_cache_hit_is_the_primarys_answer_with_no_repairs(
    registry: PromptRegistry, tmp_path: Path, open_cache: Callable[[Path], ResponseCache]
) -> None:
    setup = Setup(registry, ["nope", GOOD], cache=open_cache(tmp_path))
    first = await setup.generator.generate("triage", {"ticket": "x"}, Verdict)

    hit = await setup.generator.generate("triage", {"ticket": "x"}, Verdict)

    assert (first.repairs, hit.repairs, hit.cache_hit) == (1, 0, True)
    assert (hit.target, hit.fallback_index) == (PRIMARY, 0)
    call = setup.observer.calls[1]
    assert (call.outcome, call.target, call.fallback_index) == ("cache_hit", PRIMARY, 0)


async def test_an_answer_generated_bypassing_the_cache_is_not_stored(
    registry: PromptRegistry, tmp_path: Path, open_cache: Callable[[Path], ResponseCache]
) -> None:
    setup = Setup(registry, [GOOD, GOOD], cache=open_cache(tmp_path))

    await setup.generator.generate("triage", {"ticket": "x"}, Verdict, use_cache=False)
    again = await setup.generator.generate("triage", {"ticket": "x"}, Verdict)

    assert not again.cache_hit
    assert len(setup.mock.requests) == 2


@pytest.mark.parametrize(
    ("version", "label", "ref"),
    [
        (None, None, "triage@1.1.0"),
        ("1.0.0", None, "triage@1.0.0"),
        (None, "stable", "triage@1.0.0"),
    ],
)
async def test_the_prompt_version_is_chosen_by_version_or_label(
    tmp_path: Path, version: str | None, label: str | None, ref: str
) -> None:
    write_prompt(tmp_path / "prompts", "1.0.0", labels=["stable"])
    write_prompt(tmp_path / "prompts", "1.1.0")
    setup = Setup(load_registry(prompts_dir=tmp_path / "prompts"), [GOOD])

    await setup.generator.generate("triage", {"ticket": "x"}, Verdict, version=version, label=label)

    assert setup.observer.calls[0].prompt == ref


async def test_the_generate_span_carries_the_prompt_request_outcome_attempts_and_cost(
    registry: PromptRegistry,
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    setup = Setup(registry, [GOOD, "{}", "{}"])
    generator = StructuredGenerator(setup.client, registry, tracer=provider.get_tracer("tests"))

    result = await generator.generate("triage", {"ticket": "x"}, Verdict)
    with pytest.raises(StructuredOutputError) as caught:
        await generator.generate("triage", {"ticket": "y"}, Verdict)

    ok, failed = exporter.get_finished_spans()
    assert dict(ok.attributes or {}) == {
        "airuntime.prompt": "triage@1.0.0",
        "request_id": result.request_id,
        "airuntime.outcome": "ok",
        "airuntime.attempts": 1,
        "airuntime.cost_usd": float(result.cost),
    }
    assert ok.status.status_code is StatusCode.UNSET
    failed_attributes = dict(failed.attributes or {})
    assert failed_attributes["airuntime.outcome"] == "error"
    assert failed_attributes["airuntime.attempts"] == 2
    assert failed_attributes["airuntime.cost_usd"] == float(caught.value.cost)
    assert failed_attributes["error.type"] == "StructuredOutputError"
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description == f"StructuredOutputError: {caught.value}"
    provider.shutdown()


async def test_without_a_tracer_the_spans_come_from_the_process_provider_as_airuntime(
    registry: PromptRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)  # as an SDK set up
    setup = Setup(registry, [GOOD])

    await setup.generator.generate("triage", {"ticket": "x"}, Verdict)

    (span,) = exporter.get_finished_spans()
    assert span.name == "generate triage"
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "airuntime"
    provider.shutdown()
