"""Run a feature over its dataset: every case concurrently (bounded), each one timed, scored
and classified by how it ended."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from airuntime.errors import ContentFilteredError, LLMError
from airuntime.evals.dataset import Dataset, EvalCase
from airuntime.evals.scorers import CheckResult, score
from airuntime.features import FeatureResult, FeatureSystem
from airuntime.guardrails import InputRejectedError
from airuntime.prompts import PromptInputError
from airuntime.resilience.budget import BudgetExceeded
from airuntime.resilience.chain import UnknownCostError
from airuntime.structured import StructuredOutputError

Outcome = Literal["answered", "degraded", "rejected", "refused", "error"]
# Failures a case can end in; anything else is a bug and stops the run.
EXPECTED_FAILURES = (
    InputRejectedError,
    PromptInputError,
    LLMError,
    StructuredOutputError,
    BudgetExceeded,
    UnknownCostError,
)


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: EvalCase
    outcome: Outcome
    output: dict[str, Any] | None
    error: str | None
    latency_s: float
    cost: Decimal  # what this case is known to have cost (failed chains: see the run total)
    fallback: bool  # answered by a fallback model, or degraded
    degraded: bool
    needs_review: bool
    checks: tuple[CheckResult, ...] = field(default=())
    model: str | None = None  # the target that answered (None: degraded or failed)
    served_by: str | None = None  # who really answered it: its provider, or "mock" offline

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)


def record_of(
    case: EvalCase, outcome: Outcome, result: FeatureResult[Any] | None, error: str | None
) -> dict[str, Any]:
    """What a check's `field` points into."""
    return {
        "id": case.id,
        "input": case.input,
        "outcome": outcome,
        "output": None if result is None else result.value.model_dump(mode="json"),
        "degraded": result is not None and result.generated.degraded,
        "needs_review": result is not None and result.needs_review,
        "error": error,
    }


def failure_outcome(error: BaseException) -> Outcome:
    if isinstance(error, InputRejectedError | PromptInputError):
        return "rejected"
    # An exhausted chain is a ContentFilteredError too when every model it tried declined.
    if isinstance(error, ContentFilteredError):
        return "refused"
    return "error"


async def run_case(
    system: FeatureSystem, dataset: Dataset, index: int, clock: Callable[[], float]
) -> CaseResult:
    case, inputs, feature = dataset.cases[index], dataset.inputs[index], dataset.feature
    started = clock()
    result: FeatureResult[Any] | None = None
    error: str | None = None
    outcome: Outcome = "error"
    cost = Decimal(0)
    try:
        result = await feature.run_case(system, inputs)
    except EXPECTED_FAILURES as failure:
        outcome = failure_outcome(failure)
        error = f"{type(failure).__name__}: {' '.join(str(failure).split())}"
        if isinstance(failure, StructuredOutputError):
            cost = failure.cost
    latency = clock() - started
    if result is not None:
        outcome = "degraded" if result.generated.degraded else "answered"
        cost = result.generated.cost
    record = record_of(case, outcome, result, error)
    return CaseResult(
        case=case,
        outcome=outcome,
        output=record["output"],
        error=error,
        latency_s=latency,
        cost=cost,
        fallback=result is not None
        and (result.generated.degraded or bool(result.generated.fallback_index)),
        degraded=record["degraded"],
        needs_review=record["needs_review"],
        checks=tuple(score(check, record, feature) for check in case.checks),
        model=None
        if result is None or result.generated.target is None
        else str(result.generated.target),
        served_by=None if result is None else result.generated.served_by,
    )


async def run_dataset(
    system: FeatureSystem,
    dataset: Dataset,
    *,
    concurrency: int,
    on_case_done: Callable[[], None] = lambda: None,
    clock: Callable[[], float] = time.perf_counter,
) -> list[CaseResult]:
    """Every case of the dataset, at most `concurrency` at once, in dataset order."""
    gate = asyncio.Semaphore(concurrency)

    async def bounded(index: int) -> CaseResult:
        async with gate:
            result = await run_case(system, dataset, index, clock)
        on_case_done()
        return result

    return list(await asyncio.gather(*(bounded(index) for index in range(len(dataset.cases)))))
