"""The record of an agent run: its limits, every step (the model's answer and the tool calls it
made, with their results), what it cost and why it stopped.

The same record is the run's state (what `resume` continues from after an approval) and its
trace (what `trace show RUN_ID` prints), so the two can never disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from airuntime.types import Message, ToolCall

StopReason = Literal[
    "completed",  # the model answered without asking for a tool
    "max_steps",  # still asking for tools after the last step allowed
    "repeated_call",  # asked for a call it had made already (same tool, same arguments)
    "budget_exceeded",  # the next model call could spend past the run's budget
    "deadline_exceeded",  # the run's deadline passed
    "tool_errors",  # more tool errors than the model may be shown
    "awaiting_approval",  # on hold until a person approves a call (`review approve ID`)
    "model_error",  # no model target could answer
    "internal_error",  # a bug (an exception nothing expected): saved as it stood, then raised
]
RunStatus = Literal["running", "awaiting_approval", "finished"]
ToolStatus = Literal[
    "ok", "error", "timeout", "refused", "replayed", "awaiting_approval", "rejected"
]
# A run id names a file: letters, digits, dashes and underscores only.
RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class AgentLimits:
    """What bounds one run, from its first step to its last (resumptions included)."""

    max_steps: int = 8  # model calls
    deadline_seconds: float = 120.0  # active time (waiting for an approval does not count)
    budget_usd: Decimal | None = Decimal("0.25")  # every attempt of every step
    tool_timeout_seconds: float = 10.0  # a tool's own `timeout_seconds` replaces it
    max_tool_errors: int = 3  # errors shown to the model; one more stops the run
    max_identical_calls: int = 1  # times the same call may be made

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be 1 or more, got {self.max_steps}")
        if self.deadline_seconds <= 0 or self.tool_timeout_seconds <= 0:
            raise ValueError("the deadline and the tool timeout must be more than 0 seconds")
        if self.max_tool_errors < 0 or self.max_identical_calls < 1:
            raise ValueError("max_tool_errors must be 0 or more, max_identical_calls 1 or more")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ToolOutcome(_Record):
    """One tool call of a step and what came of it."""

    call_id: str
    name: str
    arguments: str  # the JSON the model wrote
    status: ToolStatus
    result: str = ""  # what the model was shown
    idempotency_key: str | None = None
    approval_id: str | None = None
    duration_ms: float = 0.0


class AgentStep(_Record):
    """One model call of the run and the tool calls it asked for."""

    number: int
    text: str
    finish_reason: str
    target: str | None
    attempts: int
    input_tokens: int
    output_tokens: int
    cost: Decimal
    tool_calls: list[ToolOutcome] = Field(default_factory=list)


class PendingApproval(_Record):
    """The call a run waits on, and the calls of the same step after it."""

    approval_id: str
    step: int
    call: ToolCall
    remaining: list[ToolCall] = Field(default_factory=list)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class AgentRun(_Record):
    """A run: its state while it goes on, its trace once it has stopped."""

    run_id: str = Field(pattern=RUN_ID.pattern)
    agent: str
    model: str
    prompt: str
    allowed_tools: list[str]
    # The prompt version the instructions came from (`id@version`) and its content hash.
    prompt_version: str | None = None
    prompt_hash: str | None = None
    status: RunStatus = "running"
    stop_reason: StopReason | None = None
    answer: str | None = None
    error: str | None = None
    steps: list[AgentStep] = Field(default_factory=list)
    messages: list[Message] = Field(default_factory=list)
    pending: PendingApproval | None = None
    cost: Decimal = Decimal(0)
    input_tokens: int = 0
    output_tokens: int = 0
    attempts: int = 0
    tool_errors: int = 0
    active_seconds: float = 0.0
    started_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    def outcomes(self) -> list[ToolOutcome]:
        """Every tool call of the run, in order."""
        return [outcome for step in self.steps for outcome in step.tool_calls]
