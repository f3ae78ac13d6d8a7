"""A feature run over its dataset on the mock: each case classified by how it ended (answered,
degraded, rejected, refused, error), with its cost, fallback and review flags and its checks;
cases run concurrently but bounded, reported in dataset order; a bug stops the run."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from airuntime.errors import ContentFilteredError, ServerError
from airuntime.evals.dataset import Dataset, load_dataset
from airuntime.evals.feature import EvalFeature
from airuntime.evals.runner import CaseResult, failure_outcome, run_dataset
from airuntime.features import FeatureResult, FeatureSystem
from airuntime.guardrails import InputRejectedError
from airuntime.model.mock import MockLLM, Reply, Rule
from airuntime.prompts import PromptInputError
from airuntime.resilience.chain import AllTargetsFailedError, TargetFailure
from airuntime.resilience.pricing import PriceTable, estimate_input_tokens
from airuntime.types import LLMRequest, ModelTarget

LABELS = ["billing", "bug", "other"]
CALL = Decimal("0.00045")  # one call on openai/gpt-5-mini (see conftest.py)
FALLBACK_CALL = Decimal("0.0015")  # one call on anthropic/claude-haiku-4-5


def worst_case(target: tuple[str, str], sent: LLMRequest) -> Decimal:
    """What the budget reserves for this request to this target (packaged prices)."""
    price = PriceTable.load().price(*target)
    assert price is not None
    return price.worst_case(estimate_input_tokens(sent), sent.max_tokens)


def write_dataset(
    path: Path, feature: EvalFeature, cases: list[dict[str, Any]], scorers: Mapping[str, Any]
) -> Dataset:
    path.write_text("".join(json.dumps(case) + "\n" for case in cases), encoding="utf-8")
    return load_dataset(path, feature, scorers)


def case(case_id: str, text: str, *checks: dict[str, Any], **inputs: Any) -> dict[str, Any]:
    return {
        "id": case_id,
        "input": {"text": text, **inputs},
        "checks": list(checks) or [{"scorer": "schema_valid"}],
    }


def labelled(case_id: str, text: str, *checks: dict[str, Any]) -> dict[str, Any]:
    """A classify case with the usual labels."""
    return case(case_id, text, *checks, labels=LABELS)


def outcome_is(expected: str) -> dict[str, Any]:
    return {"scorer": "exact", "field": "outcome", "expected": expected}


def by_id(results: list[CaseResult]) -> dict[str, CaseResult]:
    return {result.case.id: result for result in results}


@pytest.fixture
def mock(mock_answer: Callable[[LLMRequest], Reply]) -> MockLLM:
    return MockLLM(rules=[Rule("", mock_answer)])


async def test_every_classify_case_ends_one_way_with_its_cost_and_flags(
    tmp_path: Path,
    eval_features: dict[str, EvalFeature],
    build_system: Callable[[MockLLM], FeatureSystem],
    mock: MockLLM,
) -> None:
    feature = eval_features["classify"]
    label_is_billing = {"scorer": "exact", "field": "output.label", "expected": "billing"}
    dataset = write_dataset(
        tmp_path / "classify.jsonl",
        feature,
        [
            labelled("answered", "A billing error.", outcome_is("answered"), label_is_billing),
            labelled("by-fallback", "[primary down] billing", label_is_billing),
            labelled("unsure", "[unsure] Where is the office?", outcome_is("answered")),
            labelled("wrong", "The app crashed.", label_is_billing),
            labelled("empty", "  \x07 ", outcome_is("rejected")),
            case("twice", "billing", outcome_is("rejected"), labels=["billing", "billing"]),
            labelled("refused", "[refuse] billing", outcome_is("refused")),
            labelled("failed", "[down] billing", outcome_is("error")),
            labelled("garbage", "[garbage] billing", outcome_is("error")),
        ],
        {},
    )
    system = build_system(mock)

    results = by_id(await run_dataset(system, dataset, concurrency=3))
    await system.aclose()

    summary = {
        name: (r.outcome, r.cost, r.fallback, r.degraded, r.needs_review, r.passed)
        for name, r in results.items()
    }
    assert summary == {
        "answered": ("answered", CALL, False, False, False, True),
        "by-fallback": ("answered", FALLBACK_CALL, True, False, False, True),
        "unsure": ("answered", CALL, False, False, True, True),
        "wrong": ("answered", CALL, False, False, False, False),
        "empty": ("rejected", Decimal(0), False, False, False, True),
        "twice": ("rejected", Decimal(0), False, False, False, True),
        "refused": ("refused", Decimal(0), False, False, False, True),
        "failed": ("error", Decimal(0), False, False, False, True),
        "garbage": ("error", 2 * CALL, False, False, False, True),  # the answer and its re-ask
    }
    assert results["answered"].output == {"label": "billing", "confidence": 0.9}
    served = {name: (r.model, r.served_by) for name, r in results.items() if r.model}
    assert served == {  # every answer is the mock's, standing in for the model it names
        "answered": ("openai/gpt-5-mini", "mock"),
        "by-fallback": ("anthropic/claude-haiku-4-5", "mock"),
        "unsure": ("openai/gpt-5-mini", "mock"),
        "wrong": ("openai/gpt-5-mini", "mock"),
    }
    assert results["unsure"].output == {"label": "other", "confidence": 0.3}
    assert results["empty"].error == (
        "InputRejectedError: the text is empty: give some text to work on."
    )
    assert str(results["twice"].error).startswith("PromptInputError: ")
    assert str(results["refused"].error).startswith(
        "ContentFilteredError: all 3 model targets failed: openai/gpt-5-mini: content_filtered"
    )
    assert results["failed"].error == (
        "ServerError: all 3 model targets failed: openai/gpt-5-mini: server_error "
        "after 2 attempts (internal server error (injected by MockLLM)); "
        "anthropic/claude-haiku-4-5: server_error after 2 attempts (internal server error "
        "(injected by MockLLM)); openai/gpt-4.1-mini: server_error after 2 attempts (internal "
        "server error (injected by MockLLM))"
    )
    assert results["garbage"].error == (
        "StructuredOutputError: classify@1.0.0: the model's output did not validate after 1 "
        "repair re-ask (not valid JSON: Expecting value at line 1 column 1)"
    )
    assert all(r.output is None for r in results.values() if r.outcome != "answered")
    (wrong,) = results["wrong"].checks
    assert (wrong.passed, wrong.scorer) == (False, "exact")
    # What the run cost, failed calls included: 3 answers on the primary, 2 for the garbage
    # (answer and re-ask), 1 on the fallback; server errors are not billed, while a refusal
    # may have been, so each of the 3 is charged its worst case, as reserved.
    refusals = [sent for sent in mock.requests if "[refuse]" in sent.last_user_message]
    targets = [
        ("openai", "gpt-5-mini"),
        ("anthropic", "claude-haiku-4-5"),
        ("openai", "gpt-4.1-mini"),
    ]
    assert [sent.model for sent in refusals] == [model for _, model in targets]
    reserved = sum(
        (worst_case(target, sent) for target, sent in zip(targets, refusals, strict=True)),
        Decimal(0),
    )
    assert system.telemetry.metrics.cost == 5 * CALL + FALLBACK_CALL + reserved
    # Rejected inputs never become calls.
    assert system.telemetry.metrics.calls_by_outcome == {"ok": 3, "fallback": 1, "error": 3}


async def test_a_feature_with_a_degraded_answer_ends_degraded_and_flagged(
    tmp_path: Path,
    eval_features: dict[str, EvalFeature],
    build_system: Callable[[MockLLM], FeatureSystem],
    mock: MockLLM,
) -> None:
    feature = eval_features["summarize"]
    short = {"scorer": "custom", "name": "within_words", "options": {"max": 3}}
    dataset = write_dataset(
        tmp_path / "summarize.jsonl",
        feature,
        [
            case("answered", "Checkout failed for two hours on Monday.", short),
            case("degraded", "[down] Checkout failed for two hours.", outcome_is("degraded")),
            case("long", "[down] one two three four five", short, max_words=4),
        ],
        feature.scorers,
    )
    system = build_system(mock)

    results = by_id(await run_dataset(system, dataset, concurrency=1))
    await system.aclose()

    answered, degraded, long = results["answered"], results["degraded"], results["long"]
    assert (answered.outcome, answered.cost, answered.passed) == ("answered", CALL, True)
    assert answered.output == {
        "summary": "Checkout failed for",
        "key_points": ["Checkout"],
        "confidence": 0.9,
    }
    assert (degraded.outcome, degraded.cost, degraded.error) == ("degraded", Decimal(0), None)
    assert (degraded.fallback, degraded.degraded, degraded.needs_review) == (True, True, True)
    assert degraded.output == {
        "summary": "[down] Checkout failed for two hours.",
        "key_points": [],
        "confidence": 0.0,
    }
    assert (long.outcome, long.passed) == ("degraded", False)
    assert long.checks[0].scorer == "custom:within_words"


async def test_cases_run_at_most_concurrency_at_once_and_are_reported_in_order(
    tmp_path: Path,
    eval_features: dict[str, EvalFeature],
    build_system: Callable[[MockLLM], FeatureSystem],
) -> None:
    running, most = 0, 0

    async def slow(system: FeatureSystem, inputs: Any) -> FeatureResult[Any]:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0)
        running -= 1
        raise InputRejectedError(f"rejected {inputs.text}")

    classify = eval_features["classify"]
    feature = EvalFeature("slow", classify.input_model, classify.output_model, slow)
    dataset = write_dataset(
        tmp_path / "slow.jsonl",
        feature,
        [case(f"c{n}", f"text {n}", labels=LABELS) for n in range(7)],
        {},
    )
    ticks = itertools.count()
    done: list[int] = []

    results = await run_dataset(
        build_system(MockLLM()),
        dataset,
        concurrency=2,
        on_case_done=lambda: done.append(1),
        clock=lambda: float(next(ticks)),
    )

    assert most == 2
    assert [result.case.id for result in results] == [f"c{n}" for n in range(7)]
    assert [result.error for result in results] == [
        f"InputRejectedError: rejected text {n}" for n in range(7)
    ]
    assert len(done) == 7
    assert all(result.latency_s > 0 for result in results)


async def test_a_bug_in_a_feature_stops_the_run(
    tmp_path: Path,
    eval_features: dict[str, EvalFeature],
    build_system: Callable[[MockLLM], FeatureSystem],
) -> None:
    async def broken(system: FeatureSystem, inputs: Any) -> FeatureResult[Any]:
        raise KeyError("a bug")

    classify = eval_features["classify"]
    feature = EvalFeature("broken", classify.input_model, classify.output_model, broken)
    dataset = write_dataset(tmp_path / "b.jsonl", feature, [case("c", "t", labels=LABELS)], {})

    with pytest.raises(KeyError, match="a bug"):
        await run_dataset(build_system(MockLLM()), dataset, concurrency=1)


TARGET = ModelTarget(provider="mock", model="m")


def refusal(target: ModelTarget = TARGET) -> TargetFailure:
    error = ContentFilteredError("declined", provider=target.provider, model=target.model)
    return TargetFailure(target, 1, error.kind, error)


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (InputRejectedError("too long"), "rejected"),
        (PromptInputError("x@1.0.0: bad input"), "rejected"),
        (ContentFilteredError("declined", provider="mock", model="m"), "refused"),
        (
            AllTargetsFailedError([refusal(), refusal(ModelTarget(provider="p", model="n"))]),
            "refused",
        ),
        (
            AllTargetsFailedError(
                [
                    refusal(),
                    TargetFailure(
                        TARGET, 2, "server_error", ServerError("x", provider="mock", model="m")
                    ),
                ]
            ),
            "error",
        ),
        # The only model tried declined (the other is not configured): a refusal.
        (AllTargetsFailedError([refusal(), TargetFailure(TARGET, 0, "not_configured")]), "refused"),
        (AllTargetsFailedError([TargetFailure(TARGET, 0, "not_configured")]), "error"),
        (ServerError("down", provider="mock", model="m"), "error"),
    ],
)
def test_a_failure_is_refused_only_when_every_model_tried_declined(
    error: BaseException, outcome: str
) -> None:
    assert failure_outcome(error) == outcome
