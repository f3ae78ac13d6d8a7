"""`trace show RUN_ID`: an agent run's trajectory (every step, tool call, argument and result,
with personal data and secrets redacted), its tokens, cost and stop reason; and the lines a
project's `agent run` prints."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from airuntime.agents.run import AgentRun, AgentStep, ToolOutcome
from airuntime.agents.store import RunNotFoundError, RunStore
from airuntime.cli.exits import ExitCode, fail
from airuntime.cli.support import load_or_exit, wants_json
from airuntime.redaction import redact

SHOWN_CHARS = 240
RunArgument = Annotated[str, typer.Argument(help="The run's id, as `agent run` printed it.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the run as JSON (redacted).")]


def trace_app(runs_dir: Callable[[], Path]) -> typer.Typer:
    """The `trace` commands over the runs kept in the project's AGENT_RUNS_DIR."""
    app = typer.Typer(name="trace", help="Agent runs, step by step.", no_args_is_help=True)

    @app.command("show")
    def show(ctx: typer.Context, run_id: RunArgument, as_json: JsonOption = False) -> None:
        """Print a run's trajectory: steps, tool calls and results, tokens, cost, stop reason."""
        store = RunStore(load_or_exit(runs_dir))
        try:
            run = store.load(run_id)
        except RunNotFoundError as error:
            raise fail(str(error), ExitCode.BAD_INPUT) from None
        if wants_json(ctx, as_json):
            typer.echo(json.dumps(redacted_trace(run), indent=2))
        else:
            typer.echo(render_trace(run))

    return app


def _shown(text: str) -> str:
    one_line = " ".join(redact(text).split())
    return one_line if len(one_line) <= SHOWN_CHARS else one_line[: SHOWN_CHARS - 1] + "…"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _step_lines(step: AgentStep) -> list[str]:
    lines = [
        f"step {step.number}  {step.target or '-'}  {_plural(step.attempts, 'attempt')}  "
        f"{step.input_tokens} in / {step.output_tokens} out tokens  ${step.cost}  "
        f"finish {step.finish_reason}"
    ]
    if step.text:
        lines.append(f"  says: {_shown(step.text)}")
    lines.extend(_call_lines(outcome) for outcome in step.tool_calls)
    return lines


def _call_lines(outcome: ToolOutcome) -> str:
    extra = f"  approval {outcome.approval_id}" if outcome.approval_id else ""
    if outcome.idempotency_key:
        extra += f"  key {outcome.idempotency_key[:12]}"
    return (
        f"  -> {outcome.name} {_shown(outcome.arguments)}  [{outcome.status}]  "
        f"{outcome.duration_ms:.1f} ms{extra}\n     {_shown(outcome.result) or '(no result)'}"
    )


def render_trace(run: AgentRun) -> str:
    """The run as `trace show` prints it, redacted."""
    lines = [
        f"run {run.run_id}  agent {run.agent}  model {run.model}  status {run.status}",
        *(
            [f"instructions: prompt {run.prompt_version} ({run.prompt_hash})"]
            if run.prompt_version
            else []
        ),
        f"prompt: {_shown(run.prompt)}",
        f"tools allowed: {', '.join(run.allowed_tools) or 'none'}",
    ]
    for step in run.steps:
        lines.extend(_step_lines(step))
    if run.answer is not None:
        lines.append(f"answer: {_shown(run.answer)}")
    if run.error:
        lines.append(f"error: {_shown(run.error)}")
    if run.pending is not None:
        lines.append(
            f"waiting for approval {run.pending.approval_id}: "
            f"`review approve {run.pending.approval_id}` resumes the run"
        )
    lines.append(summary_line(run))
    return "\n".join(lines)


def summary_line(run: AgentRun) -> str:
    """Steps, attempts, tokens, cost and stop reason on one line."""
    return (
        f"{_plural(len(run.steps), 'step')}, {_plural(len(run.outcomes()), 'tool call')}, "
        f"{_plural(run.attempts, 'model attempt')}, {run.input_tokens} in / "
        f"{run.output_tokens} out tokens, ${run.cost}, stop reason {run.stop_reason or '-'}"
    )


def redacted_trace(run: AgentRun) -> dict[str, object]:
    """The run as JSON values, every text in it redacted (the conversation is left out: the
    steps hold what was said)."""
    data = run.model_dump(mode="json", exclude={"messages"})
    return {key: _redacted(value) for key, value in data.items()}


def _redacted(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    return value


def render_outcome(run: AgentRun) -> str:
    """What `agent run` prints: the answer (or why there is none), then the run's line."""
    if run.status == "awaiting_approval" and run.pending is not None:
        call = run.pending.call
        head = (
            f"waiting for approval: {call.name} {_shown(call.arguments)}\n"
            f"approve with `review approve {run.pending.approval_id}` "
            f"(or `review reject {run.pending.approval_id}`); the run then resumes."
        )
    elif run.answer is not None:
        head = run.answer
    else:
        head = f"stopped: {run.stop_reason}" + (f" ({_shown(run.error)})" if run.error else "")
    return f"{head}\n\nrun {run.run_id}: {summary_line(run)} (`trace show {run.run_id}`)"


def exit_code_of(run: AgentRun) -> ExitCode:
    """How `agent run` exits: 0 for an answer or a run waiting for approval, else the code of
    what stopped it."""
    if run.stop_reason in ("completed", "awaiting_approval"):
        return ExitCode.OK
    if run.stop_reason == "budget_exceeded":
        return ExitCode.BUDGET_EXCEEDED
    if run.stop_reason in ("model_error", "deadline_exceeded"):
        return ExitCode.PROVIDER_UNAVAILABLE
    return ExitCode.AGENT_STOPPED
