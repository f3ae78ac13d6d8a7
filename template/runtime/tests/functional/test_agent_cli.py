"""`trace show` and `review approve` end to end, through a command line composed as a project
composes them: the trajectory printed with secrets and personal data redacted, and an approval
that resumes the run it belongs to."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from airuntime.agents.loop import Agent, AgentConfig
from airuntime.agents.run import AgentLimits, AgentRun
from airuntime.agents.store import RunStore
from airuntime.agents.tools import tool
from airuntime.cli.agents import exit_code_of, render_outcome, trace_app
from airuntime.cli.exits import ExitCode
from airuntime.cli.review import review_app
from airuntime.cli.support import set_global_options
from airuntime.model.mock import CallTool, MockLLM, Step
from airuntime.review import ReviewItem, ReviewQueue
from airuntime.testing import FakeClock, flat_prices, resilient_client
from airuntime.types import ModelTarget

runner = CliRunner()
SECRET_KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz123456"


def build(tmp_path: Path, script: list[Step], opened: list[str]) -> Agent:
    @tool(requires_approval=True)
    def open_ticket(summary: str, email: str) -> str:
        """Open a ticket for a customer."""
        opened.append(summary)
        return f"ticket T-1 for {email}"

    @tool
    def check_key(key: str) -> str:
        """Check an API key."""
        return f"{key} is revoked"

    client = resilient_client(
        {"mock": MockLLM(script)},
        clock=FakeClock(),
        pricing=flat_prices([ModelTarget(provider="mock", model="m")]),
    )
    return Agent(
        client,
        [open_ticket, check_key],
        AgentConfig(name="triage", model="m", instructions="Help.", limits=AgentLimits()),
        store=RunStore(tmp_path / "runs"),
        review_queue=ReviewQueue(tmp_path / "review.jsonl"),
    )


def cli(tmp_path: Path, agent: Agent) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
        set_global_options(ctx, provider=None, as_json=as_json)

    def resume(item: ReviewItem) -> None:
        typer.echo(render_outcome(asyncio.run(agent.resume(item.request_id))))

    app.add_typer(trace_app(lambda: tmp_path / "runs"))
    app.add_typer(review_app(lambda: tmp_path / "review.jsonl", on_decision=resume))
    return app


def test_trace_show_prints_the_trajectory_redacted(tmp_path: Path) -> None:
    script: list[Step] = [
        CallTool("check_key", {"key": SECRET_KEY}),
        "That key is revoked; mail ada@example.org.",
    ]
    agent = build(tmp_path, script, [])
    run = asyncio.run(agent.run(f"Is {SECRET_KEY} still valid?", run_id="run-1"))

    shown = runner.invoke(cli(tmp_path, agent), ["trace", "show", "run-1"])
    as_json = runner.invoke(cli(tmp_path, agent), ["--json", "trace", "show", "run-1"])

    assert shown.exit_code == 0, shown.output
    assert SECRET_KEY not in shown.stdout
    assert SECRET_KEY not in as_json.stdout
    lines = shown.stdout.splitlines()
    assert lines[0] == "run run-1  agent triage  model m  status finished"
    assert lines[1] == "prompt: Is [SECRET] still valid?"
    assert lines[2] == "tools allowed: open_ticket, check_key"
    assert lines[3].startswith("step 1  mock/m  1 attempt  ")
    assert lines[3].endswith("finish tool_calls")
    assert lines[4].startswith('  -> check_key {"key": "[SECRET]"}  [ok]  ')
    assert lines[5] == "     [SECRET] is revoked"
    assert lines[6].startswith("step 2  mock/m  1 attempt  ")
    assert lines[7] == "  says: That key is revoked; mail [EMAIL]."
    assert lines[8] == "answer: That key is revoked; mail [EMAIL]."
    assert lines[9] == (
        f"2 steps, 1 tool call, 2 model attempts, {run.input_tokens} in / {run.output_tokens} "
        f"out tokens, ${run.cost}, stop reason completed"
    )
    data = json.loads(as_json.stdout)
    assert (data["stop_reason"], data["cost"], data["prompt"]) == (
        "completed",
        str(run.cost),
        "Is [SECRET] still valid?",
    )
    assert "messages" not in data


def test_trace_show_of_an_unknown_run_is_one_line(tmp_path: Path) -> None:
    agent = build(tmp_path, [], [])

    unknown = runner.invoke(cli(tmp_path, agent), ["trace", "show", "nope"])
    bad = runner.invoke(cli(tmp_path, agent), ["trace", "show", "../etc/passwd"])

    assert unknown.exit_code == ExitCode.BAD_INPUT
    assert unknown.stderr.startswith("error: no run nope in ")
    assert len(unknown.stderr.splitlines()) == 1
    assert bad.exit_code == ExitCode.BAD_INPUT
    assert "is not a run id" in bad.stderr


def test_review_approve_resumes_the_run(tmp_path: Path) -> None:
    opened: list[str] = []
    call = CallTool("open_ticket", {"summary": "broken parcel", "email": "ada@example.org"})
    agent = build(tmp_path, [call, "Ticket T-1 is open."], opened)
    held = asyncio.run(agent.run("My parcel arrived broken.", run_id="run-2"))
    assert held.pending is not None
    approval = held.pending.approval_id
    assert approval in render_outcome(held)
    app = cli(tmp_path, agent)

    listed = runner.invoke(app, ["review", "list"])
    approved = runner.invoke(app, ["review", "approve", approval])
    again = runner.invoke(app, ["review", "approve", approval])
    missing = runner.invoke(app, ["review", "reject", "000000000000"])

    assert f"approval_required     -  {approval}  run-2" in listed.stdout
    assert approved.exit_code == 0, approved.output
    assert approved.stdout.splitlines()[0] == (
        f'approved {approval}: open_ticket {{"email":"[EMAIL]","summary":"broken parcel"}}'
    )
    assert "Ticket T-1 is open." in approved.stdout
    assert "stop reason completed (`trace show run-2`)" in approved.stdout
    assert opened == ["broken parcel"]
    assert again.exit_code == ExitCode.BAD_INPUT
    assert again.stderr == f"error: review item {approval} was approved already.\n"
    assert missing.exit_code == ExitCode.BAD_INPUT
    assert "no review item '000000000000'" in missing.stderr
    kept = agent.store.load("run-2")
    assert (kept.status, kept.stop_reason, kept.pending) == ("finished", "completed", None)
    assert kept.cost > Decimal(0)


@pytest.mark.parametrize(
    ("stop_reason", "code"),
    [
        ("completed", ExitCode.OK),
        ("awaiting_approval", ExitCode.OK),
        ("budget_exceeded", ExitCode.BUDGET_EXCEEDED),
        ("model_error", ExitCode.PROVIDER_UNAVAILABLE),
        ("deadline_exceeded", ExitCode.PROVIDER_UNAVAILABLE),
        ("max_steps", ExitCode.AGENT_STOPPED),
        ("repeated_call", ExitCode.AGENT_STOPPED),
        ("tool_errors", ExitCode.AGENT_STOPPED),
    ],
)
def test_each_stop_reason_has_its_exit_code(stop_reason: str, code: ExitCode) -> None:
    run = AgentRun(run_id="r", agent="a", model="m", prompt="p", allowed_tools=[])
    run.stop_reason = stop_reason  # type: ignore[assignment]

    assert exit_code_of(run) == code
    if stop_reason not in ("completed", "awaiting_approval"):
        assert render_outcome(run).startswith(f"stopped: {stop_reason}")
