"""What the evaluation engine needs to know about a feature to evaluate it.

The project's feature catalog lists one `EvalFeature` per feature; `eval run` evaluates each on
`evals/<name>.jsonl`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from airuntime.features import FeatureOutput, FeatureResult, FeatureSystem

CustomScorer = Callable[[Mapping[str, Any], Mapping[str, Any]], bool | float]
"""(the scored record: input, output, outcome...; the check's options) -> passed, or a partial
credit from 0 to 1 (averaged into the scorer's accuracy)."""


@dataclass(frozen=True, slots=True)
class EvalFeature:
    """A feature as the evaluation engine sees it: its input and output models, how to run one
    case, and any scorers of its own (named by `custom` checks)."""

    name: str
    input_model: type[BaseModel]
    output_model: type[FeatureOutput]
    run_case: Callable[[FeatureSystem, Any], Awaitable[FeatureResult[Any]]]
    scorers: Mapping[str, CustomScorer] = field(default_factory=dict)
