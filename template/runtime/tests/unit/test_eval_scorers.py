"""Each scorer on passing and failing records, and the custom-scorer hook."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from airuntime.evals import scorers
from airuntime.evals.dataset import Check
from airuntime.evals.feature import EvalFeature
from airuntime.evals.scorers import lookup, register_scorer, score

CHECK: TypeAdapter[Check] = TypeAdapter(Check)
RECORD: dict[str, Any] = {
    "id": "case-1",
    "input": {"text": "My invoice is wrong.", "labels": ["billing", "bug"], "max_words": 3},
    "outcome": "answered",
    "output": {"label": "Billing", "confidence": 0.8, "summary": "one two three four"},
    "degraded": False,
    "needs_review": False,
    "error": None,
}


def check(**fields: Any) -> Check:
    return CHECK.validate_python(fields)


@pytest.mark.parametrize(
    ("fields", "passed", "detail"),
    [
        ({"field": "outcome", "expected": "answered"}, True, ""),
        (
            {"field": "output.label", "expected": "billing"},
            False,
            'output.label="Billing", expected "billing"',
        ),
        ({"field": "output.label", "expected": "billing", "case_sensitive": False}, True, ""),
        ({"field": "output.missing", "expected": 1}, False, "output.missing missing"),
        ({"field": "input.labels.1", "expected": "bug"}, True, ""),
        ({"field": "input.labels.7", "expected": "bug"}, False, "input.labels.7 missing"),
    ],
)
def test_exact(
    fields: dict[str, Any], passed: bool, detail: str, classify_feature: EvalFeature
) -> None:
    result = score(check(scorer="exact", **fields), RECORD, classify_feature)

    assert (result.scorer, result.passed, result.detail) == ("exact", passed, detail)


@pytest.mark.parametrize(
    ("fields", "passed"),
    [
        ({"expected": ["invoice", "WRONG"]}, True),
        ({"expected": ["invoice", "refund"]}, False),
        ({"expected": ["invoice", "refund"], "mode": "any"}, True),
        ({"expected": ["refund", "bug"], "mode": "any"}, False),
        ({"expected": ["refund"], "mode": "none"}, True),
        ({"expected": ["Invoice"], "mode": "none"}, False),
        ({"expected": ["INVOICE"], "case_sensitive": True}, False),
    ],
)
def test_contains(fields: dict[str, Any], passed: bool, classify_feature: EvalFeature) -> None:
    result = score(check(scorer="contains", field="input.text", **fields), RECORD, classify_feature)

    assert result.passed is passed
    assert (result.detail == "") is passed


def test_contains_joins_a_list_of_strings(classify_feature: EvalFeature) -> None:
    assert score(
        check(scorer="contains", field="input.labels", expected=["bug"]), RECORD, classify_feature
    ).passed


def test_contains_fails_on_a_value_that_is_not_text(classify_feature: EvalFeature) -> None:
    result = score(
        check(scorer="contains", field="output.confidence", expected=["0"]),
        RECORD,
        classify_feature,
    )

    assert result.detail == "output.confidence is not text: 0.8"


def test_schema_valid_checks_the_features_output_schema(classify_feature: EvalFeature) -> None:
    valid = {**RECORD, "output": {"label": "bug", "confidence": 0.5}}
    out_of_range = {**RECORD, "output": {"label": "bug", "confidence": 2}}
    no_output = {**RECORD, "output": None, "outcome": "rejected"}

    assert score(check(scorer="schema_valid"), valid, classify_feature).passed
    result = score(check(scorer="schema_valid"), out_of_range, classify_feature)
    assert not result.passed
    assert "2" in result.detail
    assert score(check(scorer="schema_valid"), no_output, classify_feature).detail == (
        "no output (rejected)"
    )


@pytest.mark.parametrize(
    ("fields", "passed"),
    [
        ({"expected": 0.78, "tolerance": 0.05}, True),
        ({"expected": 0.5, "tolerance": 0.1}, False),
        ({"min": 0.6}, True),
        ({"min": 0.9}, False),
        ({"max": 0.7}, False),
        ({"min": 0, "max": 1}, True),
    ],
)
def test_numeric(fields: dict[str, Any], passed: bool, classify_feature: EvalFeature) -> None:
    result = score(
        check(scorer="numeric", field="output.confidence", **fields), RECORD, classify_feature
    )

    assert result.passed is passed


def test_numeric_needs_a_number(classify_feature: EvalFeature) -> None:
    result = score(check(scorer="numeric", field="output.label", min=0), RECORD, classify_feature)

    assert result.detail == 'output.label is not a number: "Billing"'


def test_numeric_needs_a_target() -> None:
    with pytest.raises(ValueError, match="numeric needs expected"):
        check(scorer="numeric", field="output.confidence")


def test_a_features_own_scorer(summarize_feature: EvalFeature) -> None:
    result = score(check(scorer="custom", name="within_word_limit"), RECORD, summarize_feature)

    assert (result.scorer, result.passed) == ("custom:within_word_limit", False)
    assert score(
        check(scorer="custom", name="within_word_limit", options={"max_words": 4}),
        RECORD,
        summarize_feature,
    ).passed


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scorers registered by a test stay in that test."""
    monkeypatch.setattr(scorers, "REGISTERED", {})


def test_a_registered_scorer_and_one_named_by_path(
    classify_feature: EvalFeature, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    @register_scorer("confident")
    def confident(record: Mapping[str, Any], options: Mapping[str, Any]) -> bool:
        return bool(record["output"]["confidence"] >= options.get("at_least", 0.5))

    (tmp_path / "team_scorers.py").write_text(
        "def short(record, options):\n    return len(record['output']['summary'].split()) <= 3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    assert score(check(scorer="custom", name="confident"), RECORD, classify_feature).passed
    by_path = check(scorer="custom", name="team_scorers:short")
    assert not score(by_path, RECORD, classify_feature).passed


def test_a_scorer_that_raises_fails_its_check_with_the_reason(
    classify_feature: EvalFeature,
) -> None:
    @register_scorer("broken")
    def broken(record: Mapping[str, Any], options: Mapping[str, Any]) -> bool:
        raise KeyError("nope")

    result = score(check(scorer="custom", name="broken"), RECORD, classify_feature)

    assert result.detail == "broken raised KeyError: 'nope'"


def test_a_path_to_nothing_callable_is_an_error(classify_feature: EvalFeature) -> None:
    with pytest.raises(LookupError, match="has no function missing"):
        score(check(scorer="custom", name="json:missing"), RECORD, classify_feature)


def test_lookup_walks_mappings_and_lists() -> None:
    assert lookup(RECORD, "input.labels.0") == "billing"
    assert lookup(RECORD, "output") == RECORD["output"]
