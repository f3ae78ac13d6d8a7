"""The bounded agent loop on the mock, trajectory by trajectory: the exact steps, the exact tool
arguments, what each step was charged and why the run stopped.

Every model call goes through a real ResilientClient (retries, budget, deadline) on a fake
clock; prices are $1 per million input tokens and $2 per million output tokens, and the mock
counts a token per four characters of each message's content (and, for a tool-calling answer,
of its text, tool names and arguments), so every cost below is that arithmetic.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import Field

from airuntime.agents.loop import Agent, AgentConfig
from airuntime.agents.run import AgentLimits, AgentRun
from airuntime.agents.store import RunStore, ToolResults
from airuntime.agents.tools import ToolContext, ToolError, tool
from airuntime.cli.agents import render_trace
from airuntime.model.mock import CallTool, MockLLM, Step, estimate_tokens
from airuntime.model.mock_faults import Fault
from airuntime.observability.otel import GenAIInstruments
from airuntime.observability.telemetry import Telemetry
from airuntime.prompts import Prompt, PromptInputError, PromptRegistry
from airuntime.prompts.loader import PromptSource
from airuntime.resilience.budget import Budget
from airuntime.resilience.chain import ResilienceConfig
from airuntime.resilience.retry import RetryPolicy
from airuntime.review import ReviewQueue
from airuntime.testing import FakeClock, flat_prices, resilient_client
from airuntime.types import LLMRequest, ModelTarget

MODEL = "agent-model"
INSTRUCTIONS = "You triage support requests. Use the tools; answer in one sentence."
ORDERS = {
    "A1001": {"status": "shipped", "carrier": "DHL", "eta": "2026-12-04"},
    "A1002": {"status": "processing"},
}
PER_MILLION = Decimal(1_000_000)


@dataclass
class Desk:
    """The tools' side of the world: what they were called with, and the tickets opened."""

    lookups: list[str] = field(default_factory=list)
    tickets: list[dict[str, Any]] = field(default_factory=list)
    keys: list[str | None] = field(default_factory=list)


def desk_tools(desk: Desk, clock: FakeClock) -> list[Any]:
    @tool
    def lookup_order(
        order_id: Annotated[str, Field(description="The order number, e.g. A1001.")],
    ) -> dict[str, Any]:
        """Look up an order's status by its number."""
        desk.lookups.append(order_id)
        if order_id not in ORDERS:
            raise ToolError(f"no order {order_id}")
        return {"order_id": order_id, **ORDERS[order_id]}

    @tool(side_effects=True)
    def open_ticket(summary: str, priority: str, context: ToolContext) -> dict[str, str]:
        """Open a support ticket."""
        desk.tickets.append({"summary": summary, "priority": priority})
        desk.keys.append(context.idempotency_key)
        return {"ticket": f"T-{len(desk.tickets)}"}

    @tool(requires_approval=True)
    def refund(order_id: str, amount_usd: float) -> str:
        """Refund an order (a person approves every refund)."""
        desk.tickets.append({"refund": order_id, "amount": amount_usd})
        return f"refunded ${amount_usd:.2f} on {order_id}"

    @tool(timeout_seconds=0.05)
    async def slow_search(query: str) -> str:
        """Search the archive (slow)."""
        await asyncio.sleep(5)
        return "never"

    @tool
    def long_history(customer: str) -> str:
        """The customer's whole history."""
        return "history " * 1000

    @tool
    def wait_for_carrier(order_id: str) -> str:
        """Ask the carrier, which takes a while."""
        clock.advance(30)
        return "no answer yet"

    return [lookup_order, open_ticket, refund, slow_search, long_history, wait_for_carrier]


@dataclass
class Harness:
    tmp_path: Path
    clock: FakeClock = field(default_factory=FakeClock)
    desk: Desk = field(default_factory=Desk)
    mocks: list[MockLLM] = field(default_factory=list)
    spans: InMemorySpanExporter = field(default_factory=InMemorySpanExporter)

    @property
    def mock(self) -> MockLLM:
        return self.mocks[-1]

    @property
    def queue(self) -> ReviewQueue:
        return ReviewQueue(self.tmp_path / "review.jsonl")

    def agent(
        self,
        script: Sequence[Step],
        targets: tuple[ModelTarget, ...] = (),
        prompt: Prompt | None = None,
        per_call: Decimal = Decimal(1),
        **limits: Any,
    ) -> Agent:
        mock = MockLLM(script)
        self.mocks.append(mock)
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.spans))
        client = resilient_client(
            {"mock": mock},
            clock=self.clock,
            pricing=flat_prices(
                [ModelTarget(provider="mock", model=MODEL), *targets], output_usd="2"
            ),
            budget=Budget(per_call=per_call),
            config=ResilienceConfig(retry=RetryPolicy(max_attempts=3, base_delay=0.1)),
            observer=Telemetry(instruments=GenAIInstruments(tracer_provider=provider)),
        )
        run_limits = AgentLimits(**{"budget_usd": Decimal("0.01"), **limits})
        config = AgentConfig(
            name="triage",
            model=MODEL,
            instructions=INSTRUCTIONS,
            max_tokens=200,
            targets=targets,
            limits=run_limits,
        )
        if prompt is not None:
            config = AgentConfig.from_prompt("triage", prompt, limits=run_limits)
        return Agent(
            client,
            desk_tools(self.desk, self.clock),
            config,
            store=RunStore(self.tmp_path / "runs"),
            review_queue=self.queue,
            tool_results=ToolResults(self.tmp_path / "runs" / "tool-results.sqlite3"),
            clock=self.clock,
            tracer=provider.get_tracer("test"),
        )


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


@pytest.fixture
def logs() -> Iterator[list[MutableMapping[str, Any]]]:
    with structlog.testing.capture_logs() as captured:
        yield captured


def cost_of(request: LLMRequest, written: str) -> Decimal:
    """What the mock charges for answering `request` with `written` at the flat prices."""
    tokens_in = sum(estimate_tokens(message.content) for message in request.messages)
    return (tokens_in * 1 + estimate_tokens(written) * 2) / PER_MILLION


def calls_of(run: AgentRun) -> list[tuple[int, str, dict[str, Any], str]]:
    """(step, tool, arguments, status) of every tool call, in order."""
    return [
        (step.number, outcome.name, json.loads(outcome.arguments), outcome.status)
        for step in run.steps
        for outcome in step.tool_calls
    ]


LOOKUP = CallTool("lookup_order", {"order_id": "A1001"})
LOOKUP_WRITTEN = 'lookup_order{"order_id": "A1001"}'
ANSWER = "Order A1001 shipped with DHL and arrives on 4 December."


async def test_success_in_two_steps(harness: Harness, logs: list[MutableMapping[str, Any]]) -> None:
    agent = harness.agent([LOOKUP, ANSWER])

    run = await agent.run("Where is my order A1001?", run_id="run-success")

    assert (run.status, run.stop_reason, run.answer) == ("finished", "completed", ANSWER)
    assert [step.finish_reason for step in run.steps] == ["tool_calls", "stop"]
    assert calls_of(run) == [(1, "lookup_order", {"order_id": "A1001"}, "ok")]
    assert harness.desk.lookups == ["A1001"]
    first, second = harness.mock.requests
    # Step 1 offers every tool; step 2 carries the call and its result back to the model.
    assert [spec.name for spec in first.tools] == [
        "lookup_order",
        "open_ticket",
        "refund",
        "slow_search",
        "long_history",
        "wait_for_carrier",
    ]
    assert first.tools[0].parameters["properties"]["order_id"]["description"] == (
        "The order number, e.g. A1001."
    )
    result = json.dumps(
        {"carrier": "DHL", "eta": "2026-12-04", "order_id": "A1001", "status": "shipped"}
    )
    assert [(m.role, m.content, m.tool_call_id) for m in second.messages[2:]] == [
        ("assistant", "", None),
        ("tool", result, "call_1_0"),
    ]
    assert second.messages[2].tool_calls[0].arguments == '{"order_id": "A1001"}'
    # Budget: each step charged at the mock's usage, the run at their sum.
    expected = [cost_of(first, LOOKUP_WRITTEN), cost_of(second, ANSWER)]
    assert [step.cost for step in run.steps] == expected
    assert run.cost == sum(expected) == Decimal("0.000113")
    assert (run.attempts, len(harness.mock.requests)) == (2, 2)
    assert run.input_tokens == sum(step.input_tokens for step in run.steps) > 0
    # A log event per step, and one for the run.
    steps = [entry for entry in logs if entry["event"] == "agent.step"]
    assert [(entry["step"], entry["finish_reason"]) for entry in steps] == [
        (1, "tool_calls"),
        (2, "stop"),
    ]
    assert steps[0]["tool_calls"] == [{"id": "call_1_0", "name": "lookup_order"}]
    assert "arguments" not in steps[0]["tool_calls"][0]  # content is not logged by default
    assert {entry["request_id"] for entry in logs if entry["event"] == "llm.attempt"} == {
        "run-success"
    }
    (ended,) = [entry for entry in logs if entry["event"] == "agent.run"]
    assert (ended["stop_reason"], ended["steps"], ended["cost_usd"]) == ("completed", 2, "0.000113")
    # Traces: invoke_agent around the run, execute_tool per tool run under it.
    spans = {span.name: span for span in harness.spans.get_finished_spans()}
    invoke, execute = spans["invoke_agent triage"], spans["execute_tool lookup_order"]
    assert execute.parent is not None
    assert execute.parent.span_id == invoke.context.span_id
    assert dict(invoke.attributes or {}) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "triage",
        "gen_ai.conversation.id": "run-success",
        "gen_ai.request.model": MODEL,
        "gen_ai.usage.input_tokens": run.input_tokens,
        "gen_ai.usage.output_tokens": run.output_tokens,
        "airuntime.cost_usd": 0.000113,
        "airuntime.agent.steps": 2,
        "airuntime.agent.stop_reason": "completed",
    }
    chats = [span for span in harness.spans.get_finished_spans() if span.name.startswith("chat")]
    assert [span.name for span in chats] == [f"chat {MODEL}"] * 2
    assert {span.parent.span_id for span in chats if span.parent} == {invoke.context.span_id}
    assert execute.attributes is not None
    assert execute.attributes["gen_ai.operation.name"] == "execute_tool"
    assert execute.attributes["gen_ai.tool.call.id"] == "call_1_0"
    assert execute.attributes["gen_ai.tool.type"] == "function"
    # The run is kept: its trace is what was returned; its id is the model calls' request id.
    assert agent.store.load("run-success") == run
    with pytest.raises(ValueError, match="run run-success exists already: resume it"):
        await agent.run("Again?", run_id="run-success")


async def test_max_steps_reached(harness: Harness) -> None:
    lookups = [CallTool("lookup_order", {"order_id": order}) for order in ("A1001", "A1002")]
    agent = harness.agent([*lookups, ANSWER], max_steps=2)

    run = await agent.run("Where are A1001 and A1002?")

    assert (run.status, run.stop_reason, run.answer) == ("finished", "max_steps", None)
    assert calls_of(run) == [
        (1, "lookup_order", {"order_id": "A1001"}, "ok"),
        (2, "lookup_order", {"order_id": "A1002"}, "ok"),
    ]
    assert len(harness.mock.requests) == 2
    assert harness.mock.steps_left == 1  # the answer was never asked for
    first, second = harness.mock.requests
    written = [f'lookup_order{{"order_id": "{order}"}}' for order in ("A1001", "A1002")]
    assert run.cost == cost_of(first, written[0]) + cost_of(second, written[1])


async def test_a_repeated_call_is_detected_and_not_run_again(harness: Harness) -> None:
    agent = harness.agent([LOOKUP, LOOKUP, ANSWER])

    run = await agent.run("Where is my order A1001?")

    assert (run.status, run.stop_reason) == ("finished", "repeated_call")
    assert run.error == 'lookup_order {"order_id":"A1001"}'
    assert calls_of(run) == [
        (1, "lookup_order", {"order_id": "A1001"}, "ok"),
        (2, "lookup_order", {"order_id": "A1001"}, "refused"),
    ]
    assert harness.desk.lookups == ["A1001"]  # ran once
    assert len(harness.mock.requests) == 2
    first, second = harness.mock.requests
    assert run.cost == cost_of(first, LOOKUP_WRITTEN) + cost_of(second, LOOKUP_WRITTEN)


async def test_the_budget_runs_out_mid_run_before_the_call_is_sent(harness: Harness) -> None:
    # Step 1 reserves its worst case (its prompt, 200 output tokens) within $0.004; the long
    # history makes step 2's prompt about 8,000 bytes, whose worst case no longer fits.
    history = CallTool("long_history", {"customer": "ada@example.org"})
    agent = harness.agent([history, ANSWER], budget_usd=Decimal("0.004"))

    run = await agent.run("Summarise the history of ada@example.org.")

    assert (run.status, run.stop_reason) == ("finished", "budget_exceeded")
    assert run.error is not None
    assert "per-run ceiling ($0.004)" in run.error
    assert "BUDGET_PER_RUN_USD" in run.error
    assert calls_of(run) == [(1, "long_history", {"customer": "ada@example.org"}, "ok")]
    (first,) = harness.mock.requests  # step 2 was never sent
    written = 'long_history{"customer": "ada@example.org"}'
    assert run.cost == run.steps[0].cost == cost_of(first, written)
    assert run.cost < Decimal("0.004")
    assert (len(run.steps), run.attempts) == (1, 1)


async def test_the_per_call_ceiling_bounds_each_step_and_the_run_budget_the_whole_run(
    harness: Harness,
) -> None:
    # The history makes steps 2 and 3 cost about $0.002 each, and step 3's worst case (its
    # prompt and 200 output tokens) about $0.0103. A per-call ceiling of $0.0105 fits every
    # step alone but not step 3's worst case on top of what steps 1 and 2 spent: it must bound
    # each model call of the run, while the run's budget bounds their sum.
    history = CallTool("long_history", {"customer": "ada@example.org"})
    lookup = CallTool("lookup_order", {"order_id": "A1001"})
    agent = harness.agent(
        [history, lookup, ANSWER], per_call=Decimal("0.0105"), budget_usd=Decimal("0.1")
    )

    run = await agent.run("Where is A1001, given ada@example.org's history?")

    assert (run.status, run.stop_reason, run.answer) == ("finished", "completed", ANSWER)
    assert (len(run.steps), run.attempts) == (3, 3)
    assert [step.cost > Decimal("0.002") for step in run.steps] == [False, True, True]
    assert run.cost == sum(step.cost for step in run.steps)


async def test_a_tool_timeout_is_returned_to_the_model(harness: Harness) -> None:
    search = CallTool("slow_search", {"query": "A1001 delay"})
    agent = harness.agent([search, "The archive is not answering; try again later."])

    run = await agent.run("Why is A1001 late?")

    assert (run.stop_reason, run.tool_errors) == ("completed", 1)
    assert calls_of(run) == [(1, "slow_search", {"query": "A1001 delay"}, "timeout")]
    told = harness.mock.requests[1].messages[-1]
    assert (told.role, told.content, told.is_error) == (
        "tool",
        "slow_search timed out after 0.05s",
        True,
    )
    assert run.steps[0].tool_calls[0].duration_ms >= 50


async def test_tool_errors_past_the_limit_stop_the_run(harness: Harness) -> None:
    missing = [CallTool("lookup_order", {"order_id": order}) for order in ("X1", "X2", "X3")]
    agent = harness.agent([*missing, ANSWER], max_tool_errors=2)

    run = await agent.run("Where are X1, X2 and X3?")

    assert (run.stop_reason, run.tool_errors) == ("tool_errors", 3)
    assert run.error == "lookup_order: no order X3"
    assert [status for *_, status in calls_of(run)] == ["error", "error", "error"]
    # The first two errors went back to the model as results; the third stopped the run.
    assert [m.content for m in harness.mock.requests[2].messages if m.role == "tool"] == [
        "no order X1",
        "no order X2",
    ]
    assert len(harness.mock.requests) == 3


async def test_bad_arguments_and_tools_off_the_allowlist_are_refused_to_the_model(
    harness: Harness,
) -> None:
    script: list[Step] = [
        CallTool("lookup_order", {"order": "A1001"}),
        CallTool("open_ticket", {"summary": "late", "priority": "high"}),
        ANSWER,
    ]
    agent = harness.agent(script)

    run = await agent.run("Where is A1001?", allowed_tools=["lookup_order"])

    assert run.stop_reason == "completed"
    assert [spec.name for spec in harness.mock.requests[0].tools] == ["lookup_order"]
    assert [(status, outcome.result) for status, outcome in _results(run)] == [
        (
            "error",
            "invalid arguments: order_id: Field required; order: Extra inputs are not permitted",
        ),
        ("refused", "no tool 'open_ticket' here; the tools are: lookup_order"),
    ]
    assert harness.desk.tickets == []
    assert run.tool_errors == 2


def _results(run: AgentRun) -> list[tuple[str, Any]]:
    return [(outcome.status, outcome) for outcome in run.outcomes()]


async def test_the_deadline_covers_the_whole_run(harness: Harness) -> None:
    wait = CallTool("wait_for_carrier", {"order_id": "A1001"})
    agent = harness.agent([wait, ANSWER], deadline_seconds=20)

    run = await agent.run("Ask the carrier about A1001.")

    assert (run.stop_reason, len(harness.mock.requests)) == ("deadline_exceeded", 1)
    assert calls_of(run) == [(1, "wait_for_carrier", {"order_id": "A1001"}, "ok")]


TICKET = CallTool("open_ticket", {"summary": "A1001 arrived broken", "priority": "high"})
TICKET_WRITTEN = 'open_ticket{"priority": "high", "summary": "A1001 arrived broken"}'


async def test_a_retried_model_call_after_a_side_effecting_tool_runs_it_once(
    harness: Harness,
) -> None:
    agent = harness.agent([TICKET, Fault("server_error"), "Ticket T-1 is open."])

    run = await agent.run("My order A1001 arrived broken.")

    assert (run.stop_reason, run.answer) == ("completed", "Ticket T-1 is open.")
    assert harness.desk.tickets == [{"summary": "A1001 arrived broken", "priority": "high"}]
    assert calls_of(run) == [
        (1, "open_ticket", {"summary": "A1001 arrived broken", "priority": "high"}, "ok")
    ]
    # Step 2's first attempt failed (a 500 is not billed) and was retried: 3 attempts in all.
    assert [step.attempts for step in run.steps] == [1, 2]
    assert harness.clock.sleeps == [pytest.approx(harness.clock.sleeps[0])]
    first, _, third = harness.mock.requests
    assert run.cost == cost_of(first, TICKET_WRITTEN) + cost_of(third, "Ticket T-1 is open.")
    # The tool got the call's idempotency key, the same one the run recorded.
    (outcome,) = run.outcomes()
    assert harness.desk.keys == [outcome.idempotency_key]
    assert outcome.idempotency_key is not None
    assert len(outcome.idempotency_key) == 32


async def test_a_run_started_again_after_a_crash_never_opens_the_ticket_twice(
    harness: Harness,
) -> None:
    first = await harness.agent([TICKET, "Ticket T-1 is open."]).run(
        "My order A1001 arrived broken.", run_id="run-crash"
    )
    # The process died before it kept the run: the same run starts again, and the model
    # (asked again, with a new call id) asks for the same ticket at the same step.
    (harness.tmp_path / "runs" / "run-crash.json").unlink()
    again = CallTool(TICKET.name, TICKET.arguments, id="call_other")
    second = await harness.agent([again, "Ticket T-1 is open."]).run(
        "My order A1001 arrived broken.", run_id="run-crash"
    )

    assert len(harness.desk.tickets) == 1
    assert [o.status for o in first.outcomes()] == ["ok"]
    assert [o.status for o in second.outcomes()] == ["replayed"]
    assert second.outcomes()[0].result == first.outcomes()[0].result == '{"ticket": "T-1"}'
    assert second.outcomes()[0].idempotency_key == first.outcomes()[0].idempotency_key


REFUND = CallTool("refund", {"order_id": "A1001", "amount_usd": 42.5})
REFUND_WRITTEN = 'refund{"amount_usd": 42.5, "order_id": "A1001"}'


async def test_approval_pending_then_approved(harness: Harness) -> None:
    agent = harness.agent([REFUND, "Refunded $42.50 on A1001."])

    held = await agent.run("Refund my broken order A1001, $42.50.", run_id="run-refund")

    assert (held.status, held.stop_reason) == ("awaiting_approval", "awaiting_approval")
    assert harness.desk.tickets == []  # not run before a person approves
    assert held.pending is not None
    assert calls_of(held) == [
        (1, "refund", {"order_id": "A1001", "amount_usd": 42.5}, "awaiting_approval")
    ]
    (item,) = harness.queue.items()[0]
    assert (item.id, item.reason, item.status, item.request_id) == (
        held.pending.approval_id,
        "approval_required",
        "pending",
        "run-refund",
    )
    assert item.output == {"tool": "refund", "arguments": {"amount_usd": 42.5, "order_id": "A1001"}}
    assert len(harness.mock.requests) == 1
    held_cost = held.cost
    # Resuming before anyone decided changes nothing.
    assert await agent.resume("run-refund") == held

    assert item.id is not None
    harness.queue.decide(item.id, "approved")
    done = await agent.resume("run-refund")

    assert (done.status, done.stop_reason, done.answer) == (
        "finished",
        "completed",
        "Refunded $42.50 on A1001.",
    )
    assert harness.desk.tickets == [{"refund": "A1001", "amount": 42.5}]
    assert calls_of(done) == [(1, "refund", {"order_id": "A1001", "amount_usd": 42.5}, "ok")]
    assert done.outcomes()[0].approval_id == item.id
    assert len(harness.mock.requests) == 2
    resumed = harness.mock.requests[1]
    assert resumed.messages[-1].content == "refunded $42.50 on A1001"
    # One budget across the hold: the run's cost is both parts'.
    assert held_cost == cost_of(harness.mock.requests[0], REFUND_WRITTEN)
    assert done.cost == held_cost + cost_of(resumed, "Refunded $42.50 on A1001.")
    assert [step.number for step in done.steps] == [1, 2]
    assert await agent.resume("run-refund") == done  # a finished run stays finished


async def test_a_rejected_call_is_not_run_and_the_model_is_told(harness: Harness) -> None:
    agent = harness.agent([REFUND, "I could not refund it; a colleague will call you."])
    held = await agent.run("Refund A1001.", run_id="run-no")
    assert held.pending is not None

    harness.queue.decide(held.pending.approval_id, "rejected")
    done = await agent.resume("run-no")

    assert done.stop_reason == "completed"
    assert harness.desk.tickets == []
    assert calls_of(done) == [(1, "refund", {"order_id": "A1001", "amount_usd": 42.5}, "rejected")]
    told = harness.mock.requests[1].messages[-1]
    assert (told.role, told.is_error) == ("tool", True)
    assert told.content == "a reviewer rejected this call; do not retry it"
    assert done.tool_errors == 0


async def test_a_model_that_fails_stops_the_run_with_its_error(harness: Harness) -> None:
    failures: list[Step] = [Fault("server_error")] * 3
    agent = harness.agent(failures)

    run = await agent.run("Where is A1001?")

    assert (run.stop_reason, run.attempts, run.steps) == ("model_error", 0, [])
    assert run.error is not None
    assert "the only model target failed" in run.error
    assert run.cost == 0


async def test_a_bug_mid_run_is_raised_after_the_run_is_saved_as_it_stood(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = harness.agent([LOOKUP, ANSWER])
    model_run = agent.client.run
    asked: list[int] = []

    async def buggy_second_step(request: LLMRequest, **options: Any) -> Any:
        asked.append(1)
        if len(asked) == 2:
            raise RuntimeError("a bug in the model layer")
        return await model_run(request, **options)

    monkeypatch.setattr(agent.client, "run", buggy_second_step)

    with pytest.raises(RuntimeError, match="a bug in the model layer"):
        await agent.run("Where is my order A1001?", run_id="run-bug")

    saved = agent.store.load("run-bug")
    assert (saved.status, saved.stop_reason) == ("finished", "internal_error")
    assert saved.error == "RuntimeError: a bug in the model layer"
    assert calls_of(saved) == [(1, "lookup_order", {"order_id": "A1001"}, "ok")]
    assert harness.desk.lookups == ["A1001"]
    (first,) = harness.mock.requests
    assert saved.cost == saved.steps[0].cost == cost_of(first, 'lookup_order{"order_id": "A1001"}')
    (span,) = [s for s in harness.spans.get_finished_spans() if s.name == "invoke_agent triage"]
    assert span.status.status_code.name == "ERROR"


async def test_bad_agent_set_ups_fail_with_one_line(harness: Harness) -> None:
    agent = harness.agent([ANSWER])
    with pytest.raises(ValueError, match="no tool named teleport: this agent has lookup_order"):
        await agent.run("Hi", allowed_tools=["teleport"])
    with pytest.raises(ValueError, match="max_steps must be 1 or more"):
        AgentLimits(max_steps=0)
    with pytest.raises(ValueError, match="require approval: give the agent a review queue"):
        Agent(agent.client, list(agent.tools.values()), agent.config, store=agent.store)


async def test_the_configured_targets_answer_each_step(harness: Harness) -> None:
    chosen = ModelTarget(provider="mock", model="bigger-model")
    agent = harness.agent([LOOKUP, ANSWER], targets=(chosen,))

    run = await agent.run("Where is my order A1001?")

    assert [step.target for step in run.steps] == ["mock/bigger-model", "mock/bigger-model"]
    assert [request.model for request in harness.mock.requests] == ["bigger-model"] * 2


TRIAGE_PROMPT = f"""\
id: triage
version: "1.2.0"
description: Triage a support request with the order tools only.
model:
  provider: mock
  name: {MODEL}
  params: {{max_tokens: 300, temperature: 0.1}}
input:
  fields:
    request: string
    shop: 'string = "Example Shop"'
tools: [lookup_order, refund]
messages:
  - role: system
    template: "You triage support requests for {{{{ shop }}}}. Use the tools."
  - role: user
    template: "<request>{{{{ request }}}}</request>"
"""


def triage_prompt(tmp_path: Path, text: str = TRIAGE_PROMPT) -> Prompt:
    (tmp_path / "library" / "triage").mkdir(parents=True, exist_ok=True)
    (tmp_path / "library" / "triage" / "1.2.0.yaml").write_text(text, "utf-8")
    return PromptRegistry.load([PromptSource.directory(tmp_path / "library")]).get("triage")


async def test_a_tool_off_the_prompts_list_is_never_offered_and_refused_when_called(
    harness: Harness,
) -> None:
    prompt = triage_prompt(harness.tmp_path)
    script: list[Step] = [
        CallTool("open_ticket", {"summary": "late", "priority": "high"}),
        LOOKUP,
        ANSWER,
    ]
    agent = harness.agent(script, prompt=prompt)

    run = await agent.run({"request": "Where is A1001?"}, run_id="run-prompt")

    assert (run.stop_reason, run.answer) == ("completed", ANSWER)
    assert (run.prompt_version, run.prompt_hash) == ("triage@1.2.0", prompt.content_hash)
    assert run.allowed_tools == ["lookup_order", "refund"]
    # No step offers open_ticket: the agent has it, the prompt does not list it.
    assert [[spec.name for spec in request.tools] for request in harness.mock.requests] == [
        ["lookup_order", "refund"]
    ] * 3
    assert calls_of(run) == [
        (1, "open_ticket", {"summary": "late", "priority": "high"}, "refused"),
        (2, "lookup_order", {"order_id": "A1001"}, "ok"),
    ]
    refused = run.steps[0].tool_calls[0]
    assert refused.result == "no tool 'open_ticket' here; the tools are: lookup_order, refund"
    assert (run.tool_errors, harness.desk.tickets, harness.desk.lookups) == (1, [], ["A1001"])
    # The model read the refusal as a tool error.
    second = harness.mock.requests[1]
    assert [(m.role, m.is_error) for m in second.messages[-1:]] == [("tool", True)]
    # Instructions and message come from the prompt; every request names its version.
    first = harness.mock.requests[0]
    assert [(m.role, m.content) for m in first.messages] == [
        ("system", "You triage support requests for Example Shop. Use the tools."),
        ("user", "<request>Where is A1001?</request>"),
    ]
    assert (first.max_tokens, first.temperature) == (300, 0.1)
    assert {key: first.metadata[key] for key in ("prompt.version", "prompt.hash")} == {
        "prompt.version": "triage@1.2.0",
        "prompt.hash": prompt.content_hash,
    }
    assert render_trace(run).splitlines()[1] == (
        f"instructions: prompt triage@1.2.0 ({prompt.content_hash})"
    )
    (span,) = [s for s in harness.spans.get_finished_spans() if s.name == "invoke_agent triage"]
    assert span.attributes is not None
    assert span.attributes["prompt.version"] == "triage@1.2.0"


async def test_the_run_allowlist_narrows_the_prompts_list_and_cannot_widen_it(
    harness: Harness,
) -> None:
    prompt = triage_prompt(harness.tmp_path)
    agent = harness.agent([CallTool("refund", {"order_id": "A1001"}), ANSWER], prompt=prompt)

    run = await agent.run({"request": "Refund A1001"}, allowed_tools=["lookup_order"])

    assert [spec.name for spec in harness.mock.requests[0].tools] == ["lookup_order"]
    assert calls_of(run) == [(1, "refund", {"order_id": "A1001"}, "refused")]
    assert run.steps[0].tool_calls[0].result == (
        "no tool 'refund' here; the tools are: lookup_order"
    )
    with pytest.raises(
        ValueError,
        match=r"tool open_ticket is not in the tools of prompt triage@1\.2\.0 "
        r"\(lookup_order, refund\)",
    ):
        await agent.run({"request": "Hi"}, allowed_tools=["lookup_order", "open_ticket"])
    with pytest.raises(PromptInputError, match="input 'request' is required"):
        await agent.run({})


async def test_a_prompt_listing_a_tool_the_agent_lacks_is_refused(harness: Harness) -> None:
    prompt = triage_prompt(
        harness.tmp_path, TRIAGE_PROMPT.replace("[lookup_order, refund]", "[lookup_order, fly]")
    )
    with pytest.raises(ValueError, match=r"prompt triage@1\.2\.0 lists fly, which this agent"):
        harness.agent([ANSWER], prompt=prompt)
    plain = harness.agent([ANSWER])
    with pytest.raises(TypeError, match="inputs need an agent made from a prompt"):
        await plain.run({"request": "Hi"})
    # Instructions are rendered once, before any run: they cannot need a run's input.
    needs_input = triage_prompt(
        harness.tmp_path,
        TRIAGE_PROMPT.replace("support requests for {{ shop }}", "{{ request }}"),
    )
    with pytest.raises(
        ValueError,
        match=r"^triage@1\.2\.0 \(library/triage/1\.2\.0\.yaml\): an agent's system messages "
        r"may use only inputs with defaults: 'request' is undefined$",
    ):
        AgentConfig.from_prompt("triage", needs_input)
