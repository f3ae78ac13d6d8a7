"""Loading evaluation datasets: every problem reported by line, long inputs built by repeat."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airuntime.evals.dataset import (
    DatasetError,
    check_key,
    expand,
    load_dataset,
)
from airuntime.evals.feature import EvalFeature

GOOD = {
    "id": "one",
    "input": {"text": "My invoice is wrong.", "labels": ["billing", "bug"]},
    "checks": [{"scorer": "exact", "field": "output.label", "expected": "billing"}],
}


def write(tmp_path: Path, *lines: Any) -> Path:
    path = tmp_path / "classify.jsonl"
    path.write_text(
        "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n",
        encoding="utf-8",
    )
    return path


def test_a_dataset_loads_with_validated_inputs_and_a_hash(
    tmp_path: Path, classify_feature: EvalFeature
) -> None:
    path = write(tmp_path, GOOD, "", {**GOOD, "id": "two", "tags": ["x"]})

    dataset = load_dataset(path, classify_feature)

    assert [case.id for case in dataset.cases] == ["one", "two"]
    assert dataset.inputs[0].model_dump() == GOOD["input"]
    assert len(dataset.sha256) == 64
    assert check_key(dataset.cases[0].checks[0]) == "exact"


def test_every_problem_is_reported_by_line(tmp_path: Path, classify_feature: EvalFeature) -> None:
    path = write(
        tmp_path,
        GOOD,
        "{not json",
        {**GOOD, "checks": []},
        {**GOOD, "id": "bad-input", "input": {"text": "x"}},
        {**GOOD, "id": "bad-scorer", "checks": [{"scorer": "regex"}]},
        {**GOOD, "id": "no-custom", "checks": [{"scorer": "custom", "name": "nope"}]},
        GOOD,
    )

    with pytest.raises(DatasetError) as failed:
        load_dataset(path, classify_feature)

    problems = failed.value.problems
    assert [problem.split(": ")[0] for problem in problems] == [
        f"{path}:{line}" for line in (2, 3, 4, 5, 6, 7)
    ]
    assert "not JSON" in problems[0]
    assert "checks: List should have at least 1 item" in problems[1]
    assert "labels: Field required" in problems[2]
    assert "does not match any of the expected tags" in problems[3]
    assert problems[4].endswith("unknown custom scorer 'nope'")
    assert problems[5].endswith("case id 'one' is used twice")
    assert str(failed.value).endswith("(and 5 more)")


def test_a_missing_or_empty_dataset_is_an_error(
    tmp_path: Path, classify_feature: EvalFeature
) -> None:
    with pytest.raises(DatasetError, match="cannot read"):
        load_dataset(tmp_path / "none.jsonl", classify_feature)
    with pytest.raises(DatasetError, match="no cases"):
        load_dataset(write(tmp_path, ""), classify_feature)


def test_repeat_builds_long_inputs() -> None:
    assert expand({"text": {"repeat": "ab", "times": 3}, "n": [1, {"repeat": "", "times": 0}]}) == {
        "text": "ababab",
        "n": [1, ""],
    }


@pytest.mark.parametrize(
    "bad",
    [{"repeat": 1, "times": 2}, {"repeat": "a", "times": -1}, {"repeat": "ab", "times": 10**7}],
)
def test_bad_repeats_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="repeat"):
        expand(bad)
