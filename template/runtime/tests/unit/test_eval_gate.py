"""Metrics of a run, its Markdown table, and the regression gate against a baseline."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from airuntime.evals.dataset import EvalCase
from airuntime.evals.gate import (
    Tolerances,
    accept,
    baseline_entry,
    baseline_path,
    compare,
    load_baseline,
)
from airuntime.evals.report import (
    FeatureReport,
    compute_metrics,
    markdown,
    quantile,
)
from airuntime.evals.runner import CaseResult, Outcome
from airuntime.evals.scorers import CheckResult
from airuntime.observability.metrics import MetricsRegistry

CHECK = {"scorer": "exact", "field": "outcome", "expected": "answered"}


def case_result(
    number: int,
    outcome: Outcome = "answered",
    *,
    passed: tuple[bool, ...] = (True,),
    latency_ms: float = 10.0,
    fallback: bool = False,
    review: bool = False,
) -> CaseResult:
    return CaseResult(
        case=EvalCase.model_validate(
            {"id": f"c{number}", "input": {"text": "x"}, "checks": [CHECK], "tags": ["t"]}
        ),
        outcome=outcome,
        output={"label": "a"} if outcome in ("answered", "degraded") else None,
        error=None if outcome in ("answered", "degraded") else f"{outcome}: because",
        latency_s=latency_ms / 1000,
        cost=Decimal("0.001"),
        fallback=fallback,
        degraded=outcome == "degraded",
        needs_review=review,
        checks=tuple(
            CheckResult("exact" if index == 0 else "contains", ok, "" if ok else "wrong | bad")
            for index, ok in enumerate(passed)
        ),
    )


def run_metrics(results: list[CaseResult], cost: str = "0.01") -> dict[str, Any]:
    usage = MetricsRegistry()
    usage.cost = Decimal(cost)
    return compute_metrics(results, usage)


def report(metrics: dict[str, Any], results: list[CaseResult] | None = None) -> FeatureReport:
    return FeatureReport(
        feature="classify",
        provider="mock",
        prompt="classify@1.0.0",
        dataset_path="evals/classify.jsonl",
        dataset_sha256="abc",
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        duration_s=1.5,
        metrics=metrics,
        cases=tuple(results or ()),
    )


RESULTS = [
    case_result(1, passed=(True, True), latency_ms=5),
    case_result(2, passed=(True, False), latency_ms=15, review=True),
    case_result(3, "degraded", fallback=True, latency_ms=40, review=True),
    case_result(4, "rejected", passed=(False,), latency_ms=1),
    case_result(5, "refused", latency_ms=2),
    case_result(6, "error", passed=(False,), latency_ms=100),
    case_result(7, latency_ms=20),
    case_result(8, latency_ms=30),
]


def test_metrics_of_a_run() -> None:
    metrics = run_metrics(RESULTS)

    assert metrics["cases"] == 8
    assert metrics["pass_rate"] == 0.625  # cases 1, 3, 5, 7 and 8
    assert metrics["accuracy"] == {"contains": 0.5, "exact": 0.75}
    assert metrics["checks"] == {"contains": [1, 2], "exact": [6, 8]}
    assert metrics["latency_ms"] == {"p50": 15.0, "p95": 100.0, "max": 100.0}
    assert metrics["cost_usd"] == {"total": "0.010000000", "per_case": "0.001250000"}
    assert metrics["rates"] == {
        "refusal": 0.125,
        "rejection": 0.125,
        "fallback": 0.125,
        "degraded": 0.125,
        "error": 0.125,
        "review": 0.25,
    }


def test_no_cases_give_zero_metrics() -> None:
    metrics = run_metrics([], cost="0")

    assert metrics["pass_rate"] == 0.0
    assert metrics["latency_ms"]["p95"] == 0.0
    assert metrics["cost_usd"]["per_case"] == "0"


def test_quantile_is_nearest_rank() -> None:
    assert quantile([1, 2, 3, 4], 0.5) == 2
    assert quantile([1, 2, 3, 4], 0.95) == 4
    assert quantile([7], 0.5) == 7


BASELINE = baseline_entry(report(run_metrics(RESULTS)))
TOLERANCES = Tolerances(rate=0.02, cost=0.10, latency=None)


def test_the_same_figures_pass_the_gate() -> None:
    comparison = compare(report(run_metrics(RESULTS)), BASELINE, TOLERANCES)

    assert comparison.regressions == []
    assert comparison.notes == []


def test_each_regressed_metric_is_named_with_both_values() -> None:
    worse = [*RESULTS[:-1], case_result(8, "error", passed=(False,))]

    comparison = compare(report(run_metrics(worse, cost="0.02")), BASELINE, TOLERANCES)

    assert [regression.describe() for regression in comparison.regressions] == [
        "classify pass_rate: 0.6250 -> 0.5000 (allowed -0.02)",
        "classify accuracy.exact: 0.7500 -> 0.6250 (allowed -0.02)",
        "classify rates.error: 0.1250 -> 0.2500 (allowed +0.02)",
        "classify cost_usd.per_case: $0.001250000 -> $0.002500000 (allowed +10%)",
    ]
    assert comparison.metrics == {
        "pass_rate",
        "accuracy.exact",
        "rates.error",
        "cost_usd.per_case",
    }


def test_changes_within_the_tolerance_pass() -> None:
    loose = Tolerances(rate=0.2, cost=1.5)
    worse = [*RESULTS[:-1], case_result(8, "error", passed=(False,))]

    assert compare(report(run_metrics(worse, cost="0.02")), BASELINE, loose).regressions == []


def test_a_scorer_that_disappeared_is_a_regression() -> None:
    only_exact = [case_result(number) for number in range(8)]

    comparison = compare(report(run_metrics(only_exact)), BASELINE, TOLERANCES)

    assert "accuracy.contains" in comparison.metrics


def test_latency_gates_only_with_a_tolerance() -> None:
    slow = copy.deepcopy(run_metrics(RESULTS))
    slow["latency_ms"]["p95"] = 200.0

    assert compare(report(slow), BASELINE, TOLERANCES).regressions == []
    gated = compare(report(slow), BASELINE, Tolerances(latency=0.5))
    assert [regression.describe() for regression in gated.regressions] == [
        "classify latency_ms.p95: 100.0 ms -> 200.0 ms (allowed +50%)"
    ]


def test_a_changed_dataset_or_prompt_is_noted() -> None:
    entry = {**BASELINE, "dataset_sha256": "old", "prompt": "classify@0.9.0"}

    notes = compare(report(run_metrics(RESULTS)), entry, TOLERANCES).notes

    assert notes[0].startswith("classify: the dataset changed since the baseline was accepted")
    assert notes[1] == (
        "classify: the baseline was made with classify@0.9.0, this run used classify@1.0.0"
    )


def test_accept_writes_and_keeps_other_features(tmp_path: Path) -> None:
    path = baseline_path(tmp_path, "mock")
    existing = {"features": {"summarize": {"metrics": {"cases": 1}}}}

    accept(path, [report(run_metrics(RESULTS))], existing)

    loaded = load_baseline(path)
    assert loaded is not None
    assert loaded["provider"] == "mock"
    assert sorted(loaded["features"]) == ["classify", "summarize"]
    assert "checks" not in loaded["features"]["classify"]["metrics"]
    assert load_baseline(tmp_path / "none.json") is None


def test_a_file_that_is_not_a_baseline_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mock.json"
    path.write_text(json.dumps([1]), encoding="utf-8")

    with pytest.raises(ValueError, match="is not an evaluation baseline"):
        load_baseline(path)


def test_the_markdown_table_shows_baseline_and_regressions() -> None:
    current = report(run_metrics(RESULTS), RESULTS)

    table = markdown(current, BASELINE["metrics"], {"accuracy.exact"})

    assert table.startswith("## classify: 8 cases on mock (classify@1.0.0)\n")
    assert "| accuracy: exact | 75.0% (6/8) | 75.0% | **regressed** |" in table
    assert "| latency p95 | 100.0 ms | 100.0 ms |  |" in table
    assert "| cost per case | $0.001250000 | $0.001250000 |  |" in table
    assert "| refusal rate (the model declined) | 12.5% | 12.5% |  |" in table
    assert "| c2 | t | answered | contains: wrong \\| bad |" in table


def test_the_markdown_table_without_a_baseline() -> None:
    table = markdown(report(run_metrics(RESULTS), RESULTS), None, set())

    assert "| cases passing every check | 62.5% | - |  |" in table
