"""What the resilient client reports about each attempt and each call.

The client emits plain records to an `Observer`; observability (logs, metrics, traces) is one
observer, tests can be another. Records carry their own start time and duration so an observer
can build spans after the fact without sitting on the hot path as context managers.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol

from airuntime.frozen import quick_init
from airuntime.types import FinishReason, LLMRequest, ModelTarget, Usage

# "cancelled": the caller stopped waiting (a stream's reader went away, a task was cancelled).
CallOutcome = Literal[
    "ok", "fallback", "degraded", "cache_hit", "error", "budget_exceeded", "cancelled"
]

PROMPT_ID = "prompt.id"
PROMPT_VERSION = "prompt.version"
PROMPT_HASH = "prompt.hash"


@quick_init
@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One request sent (or refused before sending) to one target."""

    request_id: str
    prompt: str | None  # "id@version", when the request came from the prompt registry
    prompt_hash: str | None
    target: ModelTarget
    served_by: str  # the client that ran it: the target's provider, or "mock" offline
    attempt: int  # 1-based, within this target
    fallback_index: int  # 0 for the primary target
    started_ns: int  # time.time_ns() when the attempt started
    duration_s: float
    outcome: str  # "ok", an error kind ("rate_limited", ...), "breaker_open", "budget_exceeded"
    error_type: str | None
    usage: Usage | None
    cost: Decimal | None
    finish_reason: FinishReason | None
    response_model: str | None
    breaker_state: str
    # References, not copies: only read when content logging is on (and then redacted).
    request: LLMRequest | None = None
    response_text: str | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class CallRecord:
    """One logical call: everything between the first attempt and the answer (or the error)."""

    request_id: str
    prompt: str | None
    prompt_hash: str | None
    outcome: CallOutcome
    target: ModelTarget | None  # the target that answered
    served_by: str | None  # who really answered it: the target's provider, or "mock" offline
    fallback_index: int | None
    attempts: int
    retries: int
    started_ns: int
    duration_s: float
    usage: Usage
    cost: Decimal
    unknown_cost: bool
    error_type: str | None


@dataclass(frozen=True, slots=True)
class ValidationFailure:
    """Model output that failed to parse or validate (the structured-output layer)."""

    request_id: str
    prompt: str | None
    target: ModelTarget | None
    repair_attempt: int  # 0 for the first answer, 1.. for repair re-asks
    errors: tuple[str, ...]
    raw_text: str


class Observer(Protocol):
    def on_attempt(self, record: AttemptRecord) -> None: ...

    def on_call(self, record: CallRecord) -> None: ...

    def on_validation_failure(self, failure: ValidationFailure) -> None: ...


class NullObserver:
    """Observes nothing: the default until observability is configured."""

    def on_attempt(self, record: AttemptRecord) -> None:
        pass

    def on_call(self, record: CallRecord) -> None:
        pass

    def on_validation_failure(self, failure: ValidationFailure) -> None:
        pass


class RecordingObserver:
    """Keeps every record in memory: for tests and for `stats` of a short run."""

    def __init__(self) -> None:
        self.attempts: list[AttemptRecord] = []
        self.calls: list[CallRecord] = []
        self.validation_failures: list[ValidationFailure] = []

    def on_attempt(self, record: AttemptRecord) -> None:
        self.attempts.append(record)

    def on_call(self, record: CallRecord) -> None:
        self.calls.append(record)

    def on_validation_failure(self, failure: ValidationFailure) -> None:
        self.validation_failures.append(failure)
