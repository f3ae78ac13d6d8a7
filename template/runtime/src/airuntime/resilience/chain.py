"""The vocabulary of a call through the fallback chain: its configuration, its running
account, and how it ends (a result, or one error listing what happened to every target)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from airuntime.errors import LLMError, TerminalError
from airuntime.frozen import quick_init
from airuntime.observability.events import CallOutcome
from airuntime.resilience.budget import ZERO, BudgetExceeded, CallBudget
from airuntime.resilience.retry import Deadline, RetryPolicy
from airuntime.types import LLMResponse, ModelTarget, Usage

# Errors another target may not have: a bigger context window, a different content policy.
FIXABLE_BY_FALLBACK = frozenset({"context_length_exceeded", "content_filtered"})


@dataclass(frozen=True, slots=True)
class ResilienceConfig:
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    deadline_seconds: float = 60.0
    attempt_timeout_seconds: float = 30.0
    allow_unknown_cost: bool = False
    # Terminal error kinds that also move on to the next target (e.g. "authentication").
    extra_fallback_errors: frozenset[str] = frozenset()

    def falls_back_on(self, error: LLMError) -> bool:
        return (
            error.retryable
            or error.kind in FIXABLE_BY_FALLBACK
            or error.kind in self.extra_fallback_errors
        )


class UnknownCostError(Exception):
    """A model without a price was about to be called while unknown costs are not allowed."""

    def __init__(self, target: ModelTarget) -> None:
        self.target = target
        super().__init__(
            f"no price for {target} in the price table, so its cost cannot be bounded: add it "
            "to the price file (PRICES_FILE) or set ALLOW_UNKNOWN_COST=true."
        )


@dataclass(frozen=True, slots=True)
class TargetFailure:
    """How one target of the chain failed."""

    target: ModelTarget
    attempts: int
    reason: str
    error: LLMError | None = None

    def describe(self) -> str:
        tries = ""
        if self.attempts:
            tries = f" after {self.attempts} attempt{'s' if self.attempts != 1 else ''}"
        detail = f" ({self.error.message})" if self.error is not None else ""
        return f"{self.target}: {self.reason}{tries}{detail}"


class AllTargetsFailedError(TerminalError):
    """Every target of the chain failed; `failures` says how each one did."""

    kind = "all_targets_failed"

    def __init__(self, failures: Sequence[TargetFailure]) -> None:
        self.failures = tuple(failures)
        first = self.failures[0].target
        summary = "; ".join(failure.describe() for failure in self.failures)
        super().__init__(
            f"all {len(self.failures)} model targets failed: {summary}",
            provider=first.provider,
            model=first.model,
        )

    def __str__(self) -> str:
        return self.message


@dataclass(slots=True)
class CallState:
    """The running account of one logical call, across targets, retries and repairs."""

    request_id: str
    prompt: str | None
    prompt_hash: str | None
    started: float
    started_ns: int
    deadline: Deadline
    budget: CallBudget = field(default_factory=CallBudget)
    attempts: int = 0
    retries: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cost: Decimal = ZERO
    unknown_cost: bool = False
    target: ModelTarget | None = None
    fallback_index: int | None = None
    _usage: tuple[tuple[int, int, int], Usage] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def add_usage(self, usage: Usage) -> None:
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.cache_read_tokens += usage.cache_read_tokens

    @property
    def usage(self) -> Usage:
        """The tokens so far, as a Usage (made again only when they have changed: a finished
        call asks for it twice, for its result and for its record)."""
        tokens = (self.input_tokens, self.output_tokens, self.cache_read_tokens)
        made = self._usage
        if made is None or made[0] != tokens:
            made = self._usage = (
                tokens,
                Usage(input_tokens=tokens[0], output_tokens=tokens[1], cache_read_tokens=tokens[2]),
            )
        return made[1]


@quick_init
@dataclass(frozen=True, slots=True)
class ChainResult:
    """A response and how it was obtained."""

    response: LLMResponse
    target: ModelTarget
    fallback_index: int
    attempts: int
    cost: Decimal | None
    cache_hit: bool = False


def failure_outcome(error: BaseException) -> CallOutcome:
    return "budget_exceeded" if isinstance(error, BudgetExceeded) else "error"


def result_outcome(result: ChainResult) -> CallOutcome:
    if result.cache_hit:
        return "cache_hit"
    return "fallback" if result.fallback_index > 0 else "ok"
