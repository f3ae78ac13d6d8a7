"""The bounded agent loop: the model asks for tools, the tools run, until it answers or a limit
stops it.

Every model call goes through the resilient layer's public interface (`ResilientRunner`) as
part of one logical call per run: its retries, fallbacks and breakers apply to each step, and
its budget reserves each attempt's worst case against the run's budget before sending, so a
run never spends past it. Retries wrap the model call only: a tool runs after its step's
answer arrived, and a side-effecting tool's result is kept by an idempotency key derived from
the run, the step and the call, so a retried or resumed run never runs it twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from pydantic import ValidationError

from airuntime.agents.run import AgentLimits, AgentRun, AgentStep, PendingApproval, ToolOutcome
from airuntime.agents.store import RunStore, ToolResults
from airuntime.agents.tools import (
    Tool,
    ToolContext,
    ToolError,
    result_text,
    tools_by_name,
    validation_problems,
)
from airuntime.errors import LLMError
from airuntime.observability.events import PROMPT_HASH, PROMPT_ID, PROMPT_VERSION, CallOutcome
from airuntime.observability.logs import EventLog
from airuntime.prompts import Prompt
from airuntime.prompts.prompt import MessageTemplate
from airuntime.redaction import redact
from airuntime.resilience.budget import BudgetExceeded
from airuntime.resilience.chain import AllTargetsFailedError, CallState
from airuntime.resilience.interface import ResilientRunner
from airuntime.resilience.retry import Deadline
from airuntime.resilience.switch import KillSwitch, SwitchedOffError
from airuntime.review import ReviewItem, ReviewQueue
from airuntime.types import LLMRequest, Message, ModelTarget, ToolCall, new_request_id

NAMESPACE = "airuntime"
LOGGER_NAME = "airuntime.agents"
STEP_EVENT = "agent.step"
RUN_EVENT = "agent.run"
_logger = logging.getLogger(LOGGER_NAME)
DEFAULT_MAX_TOKENS = 1024


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """Who the agent is: its name (logs, spans, review items), its model and instructions.

    `targets` is the chain each step runs through (the primary, then fallbacks); empty: the
    client's default chain for `model`. `prompt` is the prompt version the instructions come
    from (see `from_prompt`): its `tools` list is the most the agent offers, and its version
    goes in every run's trace.
    """

    name: str
    model: str
    instructions: str
    limits: AgentLimits = field(default_factory=AgentLimits)
    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float | None = None
    targets: tuple[ModelTarget, ...] = ()
    prompt: Prompt | None = None

    @classmethod
    def from_prompt(
        cls,
        name: str,
        prompt: Prompt,
        *,
        limits: AgentLimits | None = None,
        extra_targets: Sequence[ModelTarget] = (),
    ) -> AgentConfig:
        """The agent a prompt version describes: its system messages (rendered with the
        inputs' defaults) are the instructions, its model then its fallbacks (then
        `extra_targets`) the chain, its primary's parameters each step's, and its `tools` the
        tools it may offer. Its user messages render each run's message (`Agent.run` given the
        prompt's inputs)."""
        chain = [prompt.target.model_target, *(item.model_target for item in prompt.fallbacks)]
        chain += [target for target in extra_targets if target not in chain]
        params = prompt.target.params
        defaults = dict(prompt.input_defaults)
        instructions = "\n\n".join(
            _render_system(prompt, message, defaults)
            for message in prompt.messages
            if message.role == "system"
        )
        return cls(
            name=name,
            model=prompt.target.model,
            instructions=instructions,
            limits=limits or AgentLimits(),
            max_tokens=params.max_tokens or DEFAULT_MAX_TOKENS,
            temperature=params.temperature,
            targets=tuple(chain),
            prompt=prompt,
        )


def _render_system(prompt: Prompt, message: MessageTemplate, values: dict[str, Any]) -> str:
    try:
        text: str = message.render(values)
    except Exception as error:  # noqa: BLE001 - any template failure is the file's fault
        raise ValueError(
            f"{prompt.ref} ({prompt.file}): an agent's system messages may use only inputs "
            f"with defaults: {error}"
        ) from None
    return text.strip()


class _Hold(Exception):  # noqa: N818 - control flow, never escapes the loop
    """The run waits for a person."""


class _Stop(Exception):  # noqa: N818 - control flow, never escapes the loop
    def __init__(
        self, reason: str, error: str | None = None, cause: BaseException | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error
        self.cause = cause


class Agent:
    """Runs prompts as bounded tool-calling loops, persisting each run as it goes."""

    def __init__(
        self,
        client: ResilientRunner,
        tools: Sequence[Tool],
        config: AgentConfig,
        *,
        store: RunStore,
        review_queue: ReviewQueue | None = None,
        tool_results: ToolResults | None = None,
        clock: Callable[[], float] = time.monotonic,
        tracer: Tracer | None = None,
        log_content: bool = False,
        switch: KillSwitch | None = None,
    ) -> None:
        self.client = client
        # The kill switch (read at each run and resume): an agent has no degraded answer, so
        # one switched off is refused (SwitchedOffError) before its run starts.
        self.switch = switch
        self.tools = tools_by_name(tuple(tools))
        self.config = config
        # What the agent may offer: the prompt's list when it has one, else every tool.
        self.offered: tuple[str, ...] = tuple(self.tools)
        if config.prompt is not None:
            listed = config.prompt.tools or ()
            missing = [name for name in listed if name not in self.tools]
            if missing:
                raise ValueError(
                    f"prompt {config.prompt.ref} lists {', '.join(missing)}, which this agent "
                    f"does not have (it has {', '.join(self.tools) or 'no tools'})"
                )
            self.offered = tuple(listed)
        self.store = store
        self.review_queue = review_queue
        self.tool_results = tool_results or ToolResults(store.directory / "tool-results.sqlite3")
        self._clock = clock
        self._tracer = tracer if tracer is not None else trace.get_tracer(NAMESPACE)
        self._log_content = log_content
        self._events = EventLog(LOGGER_NAME)
        needs_review = [t.name for t in self.tools.values() if t.requires_approval]
        if needs_review and review_queue is None:
            raise ValueError(
                f"tools {', '.join(needs_review)} require approval: give the agent a review queue"
            )

    async def aclose(self) -> None:
        """Close the client and the store of tool results."""
        await self.client.aclose()
        self.tool_results.close()

    async def run(
        self,
        prompt: str | Mapping[str, Any],
        *,
        allowed_tools: Collection[str] | None = None,
        run_id: str | None = None,
    ) -> AgentRun:
        """Run `prompt` with the tools of `allowed_tools`, within what the agent's prompt lists
        (all of those by default).

        `prompt` is the user's message, or, for an agent made `from_prompt`, the inputs its
        prompt's user messages render (checked against the prompt's input schema)."""
        allowed = self._allowed(allowed_tools)
        await self._check_switch()
        if run_id is not None and self.store.exists(run_id):
            raise ValueError(f"run {run_id} exists already: resume it, or give a new id")
        source = self.config.prompt
        message = prompt if isinstance(prompt, str) else self._user_message(prompt)
        run = AgentRun(
            run_id=run_id or new_request_id(),
            agent=self.config.name,
            model=self.config.model,
            prompt=message,
            allowed_tools=allowed,
            prompt_version=source.ref if source is not None else None,
            prompt_hash=source.content_hash if source is not None else None,
            messages=[
                Message(role="system", content=self.config.instructions),
                Message(role="user", content=message),
            ],
        )
        return await self._drive(run)

    def _allowed(self, allowed_tools: Collection[str] | None) -> list[str]:
        """The run's tools: the per-run list, each of which the prompt must list too."""
        if allowed_tools is None:
            return list(self.offered)
        allowed = list(allowed_tools)
        unknown = sorted(set(allowed) - set(self.tools))
        if unknown:
            raise ValueError(
                f"no tool named {', '.join(unknown)}: this agent has {', '.join(self.tools)}"
            )
        unlisted = sorted(set(allowed) - set(self.offered))
        if unlisted and self.config.prompt is not None:
            raise ValueError(
                f"tool {', '.join(unlisted)} is not in the tools of prompt "
                f"{self.config.prompt.ref} ({', '.join(self.offered) or 'none'})"
            )
        return allowed

    def _user_message(self, inputs: Mapping[str, Any]) -> str:
        source = self.config.prompt
        if source is None:
            raise TypeError("inputs need an agent made from a prompt: pass the message as text")
        rendered = source.render(inputs)
        return "\n\n".join(m.content for m in rendered.messages if m.role == "user")

    async def resume(self, run_id: str) -> AgentRun:
        """Go on with a run that waits for an approval, once a person decided; a run still
        waiting, or finished, is returned as it is."""
        run = self.store.load(run_id)
        if run.finished or run.pending is None or self._decision(run.pending) == "pending":
            return run
        await self._check_switch()
        return await self._drive(run)

    @property
    def switch_id(self) -> str:
        """The name the kill switch knows this agent by: its prompt's id (else its name)."""
        source = self.config.prompt
        return source.id if source is not None else self.config.name

    async def _check_switch(self) -> None:
        switch = self.switch
        if switch is None:
            return
        await switch.refresh()
        if switch.is_off(self.switch_id):
            raise SwitchedOffError(
                f"the AI path of {self.switch_id} is switched off (the kill switch) and an "
                "agent has no degraded answer: turn it back on to run it."
            )

    # -- the loop -------------------------------------------------------------------------

    async def _drive(self, run: AgentRun) -> AgentRun:
        limits = self.config.limits
        started = self._clock()
        # The run's model attempts are logged and traced under the run's id.
        first = self._request(run, len(run.steps) + 1)
        call = self.client.begin_call(first.model_copy(update={"request_id": run.run_id}))
        # One deadline and one budget for the whole run: what earlier parts used counts.
        call.deadline = Deadline(limits.deadline_seconds - run.active_seconds, self._clock)
        call.budget.ceiling = limits.budget_usd
        call.budget.spent = run.cost
        earlier_cost = run.cost
        run.status = "running"
        bug: Exception | None = None
        with self._span(run) as span:
            error: BaseException | None = None
            try:
                await self._loop(run, call, earlier_cost)
            except _Hold:
                run.status, run.stop_reason = "awaiting_approval", "awaiting_approval"
            except _Stop as stop:
                self._stop(run, stop.reason, stop.error)
                error = stop.cause
            except Exception as unexpected:  # noqa: BLE001 - saved, then raised again below
                # A bug: the run is still saved, traced and its spending settled as it stood,
                # so `trace show` tells what happened, then the error goes on to the caller.
                self._stop(run, "internal_error", f"{type(unexpected).__name__}: {unexpected}")
                error = bug = unexpected
            self._account(run, call, earlier_cost)
            run.active_seconds += self._clock() - started
            run.updated_at = datetime.now(UTC).replace(microsecond=0)
            self.store.save(run)
            self._end_span(span, run)
            self._log_run(run)
            outcome: CallOutcome = "ok"
            if isinstance(error, BudgetExceeded):
                outcome = "budget_exceeded"
            elif run.stop_reason in ("model_error", "deadline_exceeded", "internal_error"):
                outcome = "error"
            self.client.finish_call(call, outcome, error)
        if bug is not None:
            raise bug
        return run

    async def _loop(self, run: AgentRun, call: CallState, earlier_cost: Decimal) -> None:
        if run.pending is not None:
            await self._settle_pending(run, call)
        limits = self.config.limits
        while True:
            number = len(run.steps) + 1
            if number > limits.max_steps:
                raise _Stop("max_steps")
            if call.deadline.remaining() <= 0:
                raise _Stop("deadline_exceeded")
            step = await self._model_step(run, call, number)
            self._account(run, call, earlier_cost)
            if not run.messages[-1].tool_calls:
                run.answer = step.text
                raise _Stop("completed")
            await self._run_calls(run, call, step, list(run.messages[-1].tool_calls))
            self.store.save(run)

    async def _model_step(self, run: AgentRun, call: CallState, number: int) -> AgentStep:
        request = self._request(run, number)
        attempts, cost = call.attempts, call.cost
        tokens = (call.input_tokens, call.output_tokens)
        call.budget.per_call_from = call.budget.spent  # the per-call ceiling bounds each step
        try:
            result = await self.client.run(
                request,
                targets=self.config.targets or None,
                use_cache=False,
                # A resumed or retried run asking the same step again gets the same answer.
                idempotency_key=f"agent:{run.run_id}:{number}",
                call=call,
            )
        except BudgetExceeded as exceeded:
            raise _Stop("budget_exceeded", str(exceeded), exceeded) from None
        except AllTargetsFailedError as failed:
            late = all(failure.reason == "deadline_exceeded" for failure in failed.failures)
            reason = "deadline_exceeded" if late else "model_error"
            raise _Stop(reason, str(failed), failed) from None
        except LLMError as failed:
            raise _Stop("model_error", str(failed), failed) from None
        response = result.response
        step = AgentStep(
            number=number,
            text=response.text,
            finish_reason=response.finish_reason,
            target=str(result.target),
            attempts=call.attempts - attempts,
            input_tokens=call.input_tokens - tokens[0],
            output_tokens=call.output_tokens - tokens[1],
            cost=call.cost - cost,
        )
        run.steps.append(step)
        run.messages.append(
            Message(role="assistant", content=response.text, tool_calls=response.tool_calls)
        )
        self._log_step(run, step)
        return step

    def _request(self, run: AgentRun, number: int) -> LLMRequest:
        allowed = [self.tools[name] for name in run.allowed_tools if name in self.offered]
        metadata = {PROMPT_ID: f"agent:{self.config.name}"}
        if run.prompt_version is not None:
            metadata[PROMPT_VERSION] = run.prompt_version
            metadata[PROMPT_HASH] = run.prompt_hash or ""
        return LLMRequest(
            model=self.config.model,
            messages=tuple(run.messages),
            max_tokens=self.config.max_tokens,
            temperature=self.config.temperature,
            tools=tuple(item.spec() for item in allowed),
            request_id=f"{run.run_id}-{number}",
            metadata=metadata,
        )

    # -- tool calls -------------------------------------------------------------------------

    async def _run_calls(
        self, run: AgentRun, call: CallState, step: AgentStep, calls: list[ToolCall]
    ) -> None:
        for index, tool_call in enumerate(calls):
            outcome = await self._run_call(run, call, step, tool_call, approved=False)
            if outcome.status == "awaiting_approval":
                step.tool_calls.append(outcome)
                run.pending = PendingApproval(
                    approval_id=outcome.approval_id or "",
                    step=step.number,
                    call=tool_call,
                    remaining=calls[index + 1 :],
                )
                raise _Hold
            self._answer(run, step, outcome)

    async def _settle_pending(self, run: AgentRun, call: CallState) -> None:
        pending = run.pending
        assert pending is not None  # noqa: S101 - checked by the caller
        step = next(item for item in run.steps if item.number == pending.step)
        waiting = next(o for o in step.tool_calls if o.approval_id == pending.approval_id)
        step.tool_calls.remove(waiting)
        decision = self._decision(pending)
        if decision == "approved":
            outcome = await self._run_call(run, call, step, pending.call, approved=True)
        else:
            outcome = self._refused(
                pending.call, "rejected", "a reviewer rejected this call; do not retry it"
            )
        outcome.approval_id = pending.approval_id
        run.pending = None
        self._answer(run, step, outcome)
        await self._run_calls(run, call, step, pending.remaining)

    def _answer(self, run: AgentRun, step: AgentStep, outcome: ToolOutcome) -> None:
        """Show the model the call's result, and count an error against the run's limit."""
        step.tool_calls.append(outcome)
        failed = outcome.status in ("error", "timeout", "refused")
        run.messages.append(
            Message(
                role="tool",
                content=outcome.result,
                tool_call_id=outcome.call_id,
                is_error=failed or outcome.status == "rejected",
            )
        )
        if failed:
            run.tool_errors += 1
            if run.tool_errors > self.config.limits.max_tool_errors:
                raise _Stop("tool_errors", f"{outcome.name}: {outcome.result}")

    async def _run_call(
        self,
        run: AgentRun,
        call: CallState,
        step: AgentStep,
        tool_call: ToolCall,
        *,
        approved: bool,
    ) -> ToolOutcome:
        tool = self.tools.get(tool_call.name)
        permitted = tool is not None and tool.name in self.offered
        if tool is None or not permitted or tool.name not in run.allowed_tools:
            offered = ", ".join(t for t in run.allowed_tools if t in self.offered) or "none"
            return self._refused(
                tool_call, "refused", f"no tool {tool_call.name!r} here; the tools are: {offered}"
            )
        try:
            arguments = tool.validate(tool_call.arguments)
        except ValidationError as invalid:
            return self._refused(tool_call, "error", validation_problems(invalid))
        canonical = _canonical(tool_call.arguments)
        if not approved and self._times_made(run, tool.name, canonical) >= (
            self.config.limits.max_identical_calls
        ):
            step.tool_calls.append(self._refused(tool_call, "refused", "the same call again"))
            raise _Stop("repeated_call", f"{tool.name} {canonical}")
        if tool.requires_approval and not approved:
            return self._ask_approval(run, tool_call, canonical)
        key = _idempotency_key(run.run_id, step.number, tool.name, canonical)
        if tool.side_effects:
            replay = self.tool_results.get(key)
            if replay is not None:
                return self._outcome(tool_call, "replayed", replay, key, 0.0)
        with self._tool_span(run, tool, tool_call) as span:
            outcome = await self._execute(run, call, tool, tool_call, arguments, key)
            if outcome.status != "ok" and span.is_recording():
                span.set_attribute("error.type", outcome.status)
                span.set_status(Status(StatusCode.ERROR, outcome.result[:200]))
        if tool.side_effects and outcome.status == "ok":
            self.tool_results.put(key, outcome.result)
        return outcome

    async def _execute(
        self,
        run: AgentRun,
        call: CallState,
        tool: Tool,
        tool_call: ToolCall,
        arguments: object,
        key: str,
    ) -> ToolOutcome:
        timeout = tool.timeout_seconds or self.config.limits.tool_timeout_seconds
        timeout = max(0.0, min(timeout, call.deadline.remaining()))
        context = ToolContext(
            run_id=run.run_id,
            call_id=tool_call.id,
            idempotency_key=key if tool.side_effects else None,
            timeout_seconds=timeout,
        )
        used_key = key if tool.side_effects else None
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                value = await tool.invoke(arguments, context)  # type: ignore[arg-type]
        except TimeoutError:
            text = f"{tool.name} timed out after {timeout:.3g}s"
            return self._outcome(tool_call, "timeout", text, used_key, started)
        except ToolError as failed:
            return self._outcome(tool_call, "error", str(failed), used_key, started)
        except Exception as failed:  # a bug in the tool: the model is told, the log has it
            _logger.exception("tool %s failed", tool.name)
            text = f"{tool.name} failed: {type(failed).__name__}"
            return self._outcome(tool_call, "error", text, used_key, started)
        return self._outcome(tool_call, "ok", result_text(value), used_key, started)

    def _ask_approval(self, run: AgentRun, tool_call: ToolCall, canonical: str) -> ToolOutcome:
        queue = self.review_queue
        assert queue is not None  # noqa: S101 - the constructor requires one
        item = ReviewItem.create(
            feature=f"agent:{self.config.name}",
            request_id=run.run_id,
            reason="approval_required",
            confidence=None,
            text=f"{tool_call.name} {canonical}",
            output={"tool": tool_call.name, "arguments": json.loads(canonical)},
        )
        queue.append(item)
        outcome = self._refused(tool_call, "awaiting_approval", "waiting for a person's approval")
        outcome.approval_id = item.id
        return outcome

    def _decision(self, pending: PendingApproval) -> str:
        if self.review_queue is None:
            return "pending"
        item = self.review_queue.find(pending.approval_id)
        return "pending" if item is None else item.status

    @staticmethod
    def _times_made(run: AgentRun, name: str, canonical: str) -> int:
        return sum(
            1
            for outcome in run.outcomes()
            if outcome.name == name
            and outcome.status != "refused"
            and _canonical(outcome.arguments) == canonical
        )

    @staticmethod
    def _refused(tool_call: ToolCall, status: str, text: str) -> ToolOutcome:
        return ToolOutcome(
            call_id=tool_call.id,
            name=tool_call.name,
            arguments=tool_call.arguments,
            status=status,  # type: ignore[arg-type]
            result=text,
        )

    @staticmethod
    def _outcome(
        tool_call: ToolCall, status: str, text: str, key: str | None, started: float
    ) -> ToolOutcome:
        elapsed = (time.perf_counter() - started) * 1000 if started else 0.0
        return ToolOutcome(
            call_id=tool_call.id,
            name=tool_call.name,
            arguments=tool_call.arguments,
            status=status,  # type: ignore[arg-type]
            result=text,
            idempotency_key=key,
            duration_ms=round(elapsed, 3),
        )

    # -- books, spans and logs ------------------------------------------------------------------

    @staticmethod
    def _account(run: AgentRun, call: CallState, earlier_cost: Decimal) -> None:
        run.cost = earlier_cost + call.cost
        run.input_tokens = sum(step.input_tokens for step in run.steps)
        run.output_tokens = sum(step.output_tokens for step in run.steps)
        run.attempts = sum(step.attempts for step in run.steps)

    @staticmethod
    def _stop(run: AgentRun, reason: str, error: str | None) -> None:
        run.status = "finished"
        run.stop_reason = reason  # type: ignore[assignment]
        run.error = error
        run.pending = None

    def _span(self, run: AgentRun) -> AbstractContextManager[Span]:
        return self._tracer.start_as_current_span(
            f"invoke_agent {self.config.name}",
            kind=SpanKind.INTERNAL,
            attributes={
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": self.config.name,
                "gen_ai.conversation.id": run.run_id,
                "gen_ai.request.model": self.config.model,
                **({PROMPT_VERSION: run.prompt_version} if run.prompt_version else {}),
            },
        )

    def _tool_span(
        self, run: AgentRun, tool: Tool, tool_call: ToolCall
    ) -> AbstractContextManager[Span]:
        return self._tracer.start_as_current_span(
            f"execute_tool {tool.name}",
            kind=SpanKind.INTERNAL,
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": tool.name,
                "gen_ai.tool.call.id": tool_call.id,
                "gen_ai.tool.type": "function",
                "gen_ai.tool.description": tool.description,
                "gen_ai.conversation.id": run.run_id,
            },
        )

    @staticmethod
    def _end_span(span: Span, run: AgentRun) -> None:
        if not span.is_recording():
            return
        span.set_attribute("gen_ai.usage.input_tokens", run.input_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", run.output_tokens)
        span.set_attribute(f"{NAMESPACE}.cost_usd", float(run.cost))
        span.set_attribute(f"{NAMESPACE}.agent.steps", len(run.steps))
        span.set_attribute(f"{NAMESPACE}.agent.stop_reason", run.stop_reason or "-")
        if run.stop_reason not in ("completed", "awaiting_approval"):
            span.set_attribute("error.type", run.stop_reason or "-")
            span.set_status(Status(StatusCode.ERROR, run.error or run.stop_reason or ""))

    def _log_step(self, run: AgentRun, step: AgentStep) -> None:
        sink = self._events.at(logging.INFO)
        if sink is None:
            return
        calls: list[dict[str, object]] = []
        for tool_call in run.messages[-1].tool_calls:
            entry: dict[str, object] = {"id": tool_call.id, "name": tool_call.name}
            if self._log_content:
                entry["arguments"] = redact(tool_call.arguments)
            calls.append(entry)
        fields: dict[str, object] = {
            "run_id": run.run_id,
            "agent": run.agent,
            "step": step.number,
            "target": step.target,
            "finish_reason": step.finish_reason,
            "tool_calls": calls,
            "attempts": step.attempts,
            "input_tokens": step.input_tokens,
            "output_tokens": step.output_tokens,
            "cost_usd": str(step.cost),
        }
        if self._log_content:
            fields["text"] = redact(step.text)
        sink.emit(logging.INFO, STEP_EVENT, fields)

    def _log_run(self, run: AgentRun) -> None:
        level = (
            logging.INFO
            if run.stop_reason in ("completed", "awaiting_approval")
            else logging.WARNING
        )
        sink = self._events.at(level)
        if sink is None:
            return
        sink.emit(
            level,
            RUN_EVENT,
            {
                "run_id": run.run_id,
                "agent": run.agent,
                "status": run.status,
                "stop_reason": run.stop_reason,
                "steps": len(run.steps),
                "tool_calls": len(run.outcomes()),
                "tool_errors": run.tool_errors,
                "attempts": run.attempts,
                "input_tokens": run.input_tokens,
                "output_tokens": run.output_tokens,
                "cost_usd": str(run.cost),
                "error": redact(run.error) if run.error else None,
            },
        )


def _canonical(arguments: str) -> str:
    """The arguments in one spelling (keys sorted, no spaces), so equal calls compare equal."""
    try:
        return json.dumps(json.loads(arguments or "{}"), sort_keys=True, separators=(",", ":"))
    except ValueError:
        return arguments


def _idempotency_key(run_id: str, step: int, name: str, canonical: str) -> str:
    """The same for the same call of the same step of the same run, whatever the call's id
    (a model asked again writes a new one)."""
    material = f"{run_id}\0{step}\0{name}\0{canonical}".encode()
    return hashlib.sha256(material).hexdigest()[:32]
