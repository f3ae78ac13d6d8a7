"""The vocabulary of a call through the fallback chain: its configuration, its running
account, and how it ends (a result, or one error listing what happened to every target)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import cast

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
    """Every target of the chain failed; `failures` says how each one did.

    When every target that was tried failed with the same class of error (always so with a
    single target: no fallback configured, or the others skipped), that error is the `cause`
    and the error raised is also an instance of its class: `except ContentFilteredError`
    catches a refusal whether or not fallbacks were configured, `type(error).__name__` (what
    logs and the command line show) is the cause's name, and `except AllTargetsFailedError`
    still catches every exhausted chain (the structured layer's degraded answer does).
    """

    kind = "all_targets_failed"

    def __new__(cls, failures: Sequence[TargetFailure]) -> AllTargetsFailedError:
        if cls is AllTargetsFailedError:
            cause = shared_cause(failures)
            if cause is not None:
                cls = exhausted_by(type(cause))
        return super().__new__(cls, failures)

    def __init__(self, failures: Sequence[TargetFailure]) -> None:
        self.failures = tuple(failures)
        self.cause = shared_cause(self.failures)
        first = self.failures[0].target
        summary = "; ".join(failure.describe() for failure in self.failures)
        count = len(self.failures)
        head = "the only model target failed" if count == 1 else f"all {count} model targets failed"
        LLMError.__init__(
            self,
            f"{head}: {summary}",
            provider=first.provider,
            model=first.model,
            status_code=None if self.cause is None else self.cause.status_code,
        )
        if self.cause is not None:  # the cause's own details (a rate limit's retry_after...)
            for name, value in vars(self.cause).items():
                self.__dict__.setdefault(name, value)

    def __str__(self) -> str:
        return self.message


def shared_cause(failures: Sequence[TargetFailure]) -> LLMError | None:
    """The last error, when every target that was tried failed with an error of its class;
    None when some failed differently or none was tried (all skipped)."""
    errors = [failure.error for failure in failures if failure.error is not None]
    if not errors or any(type(error) is not type(errors[-1]) for error in errors):
        return None
    return errors[-1]


_EXHAUSTED_BY: dict[type[LLMError], type[AllTargetsFailedError]] = {}


def exhausted_by(cause: type[LLMError]) -> type[AllTargetsFailedError]:
    """The AllTargetsFailedError that is also a `cause` (made once per class, and named as it,
    so that logs and metrics count the real cause)."""
    if issubclass(cause, AllTargetsFailedError):  # a chain of chains: already both
        return cause
    found = _EXHAUSTED_BY.get(cause)
    if found is None:
        namespace = {
            "__module__": __name__,
            "__qualname__": cause.__qualname__,
            "__doc__": f"Every target of the chain failed, each with {cause.__name__}.",
        }
        found = _EXHAUSTED_BY[cause] = cast(
            "type[AllTargetsFailedError]",
            type(cause.__name__, (AllTargetsFailedError, cause), namespace),
        )
    return found


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
    served_by: str | None = None  # the client that answered: the target's provider, or "mock"
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
    """A response and how it was obtained: the target it answers for, and who really served it
    (`served_by`: the client that ran the target, its provider's adapter or the offline mock
    standing in for it)."""

    response: LLMResponse
    target: ModelTarget
    fallback_index: int
    attempts: int
    cost: Decimal | None
    served_by: str
    cache_hit: bool = False


def failure_outcome(error: BaseException) -> CallOutcome:
    return "budget_exceeded" if isinstance(error, BudgetExceeded) else "error"


def result_outcome(result: ChainResult) -> CallOutcome:
    if result.cache_hit:
        return "cache_hit"
    return "fallback" if result.fallback_index > 0 else "ok"
