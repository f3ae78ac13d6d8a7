"""A custom scorer may give partial credit (a recall, a reciprocal rank): the check passes above
0 and the report's accuracy for that scorer is the mean credit."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from airuntime.evals.dataset import EvalCase
from airuntime.evals.feature import EvalFeature
from airuntime.evals.report import compute_metrics
from airuntime.evals.runner import CaseResult
from airuntime.evals.scorers import CheckResult, score
from airuntime.features import FeatureOutput
from airuntime.observability.metrics import MetricsRegistry


def rank(record: Mapping[str, Any], options: Mapping[str, Any]) -> float:
    ranked: list[str] = record["output"]["ranked"]
    wanted = options["relevant"]
    return 1.0 / (ranked.index(wanted) + 1) if wanted in ranked else 0.0


class Empty(BaseModel):
    pass


async def never(system: object, inputs: object) -> Any:
    raise NotImplementedError


FEATURE = EvalFeature("answer", Empty, FeatureOutput, never, scorers={"rank": rank})
CHECK = {"scorer": "custom", "name": "rank", "options": {"relevant": "b"}}


def case(ranked: list[str]) -> tuple[EvalCase, dict[str, Any]]:
    built = EvalCase.model_validate({"id": "c", "input": {}, "checks": [CHECK]})
    return built, {"id": "c", "input": {}, "outcome": "answered", "output": {"ranked": ranked}}


def test_a_number_is_a_partial_credit_that_passes_above_zero() -> None:
    built, record = case(["a", "b"])
    result = score(built.checks[0], record, FEATURE)
    assert result == CheckResult("custom:rank", True, "", 0.5)
    built, record = case(["a"])
    assert score(built.checks[0], record, FEATURE) == CheckResult(
        "custom:rank", False, "rank gave 0", 0.0
    )


def test_the_report_averages_credits_into_the_accuracy() -> None:
    results = []
    for ranked in (["b"], ["a", "b"], ["x"], ["a", "c", "d", "b"]):
        built, record = case(ranked)
        results.append(
            CaseResult(
                case=built,
                outcome="answered",
                output=record["output"],
                error=None,
                latency_s=0.001,
                cost=Decimal(0),
                fallback=False,
                degraded=False,
                needs_review=False,
                checks=(score(built.checks[0], record, FEATURE),),
            )
        )
    metrics = compute_metrics(results, MetricsRegistry())
    assert metrics["accuracy"]["custom:rank"] == round((1 + 0.5 + 0 + 0.25) / 4, 4)
    assert metrics["checks"]["custom:rank"] == [3, 4]
