"""Two small features for the evaluation engine's unit tests (fixtures: test modules cannot
import conftest). They are never run: the tests score records and load datasets."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from airuntime.evals.feature import EvalFeature
from airuntime.features import FeatureOutput, FeatureResult, FeatureSystem

# A project installs only the runtime extras its answers ask for: without the retrieval extra
# (numpy) the vector parts of retrieval cannot load, so their tests are not collected.
collect_ignore_glob = (
    []
    if importlib.util.find_spec("numpy")
    else ["retrieval/test_embedders.py", "retrieval/test_stores.py"]
)


class Classification(FeatureOutput):
    model_config = ConfigDict(extra="forbid")

    label: str


class ClassifyInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    labels: list[str]


class Summary(FeatureOutput):
    model_config = ConfigDict(extra="forbid")

    summary: str


class SummarizeInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    max_words: int = Field(default=120, ge=1)


def within_word_limit(record: Mapping[str, Any], options: Mapping[str, Any]) -> bool:
    """A feature's own scorer: the summary has at most `max_words` words."""
    summary = (record.get("output") or {}).get("summary")
    limit = options.get("max_words", record["input"].get("max_words", 120))
    return isinstance(summary, str) and len(summary.split()) <= int(limit)


async def never_run(system: FeatureSystem, inputs: Any) -> FeatureResult[Any]:
    raise AssertionError("these features score records; no case runs them")


@pytest.fixture
def classify_feature() -> EvalFeature:
    return EvalFeature("classify", ClassifyInput, Classification, never_run)


@pytest.fixture
def summarize_feature() -> EvalFeature:
    return EvalFeature(
        "summarize",
        SummarizeInput,
        Summary,
        never_run,
        scorers={"within_word_limit": within_word_limit},
    )
