"""Validated structured output on top of the prompt registry and the resilient client.

`generate` renders a prompt, asks for JSON (with the schema where the provider supports it),
strips code fences, and validates the answer with pydantic. An answer that is not JSON, does
not validate, or was cut off at max_tokens is re-asked with the errors appended, within a
repair budget separate from transport retries; when that is spent, StructuredOutputError
carries the raw text, the errors, the attempts and the usage. When every model target fails,
a feature's degraded (non-AI) answer is used if it registered one.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any, Generic, TypeVar

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode, Tracer
from pydantic import BaseModel, ValidationError

from airuntime.frozen import quick_init
from airuntime.observability.events import CallOutcome, ValidationFailure
from airuntime.prompts import PromptRegistry, RenderedPrompt
from airuntime.resilience.budget import BudgetExceeded
from airuntime.resilience.chain import AllTargetsFailedError, CallState, failure_outcome
from airuntime.resilience.interface import ResilientRunner
from airuntime.resilience.switch import KillSwitch, SwitchedOffError
from airuntime.types import (
    LLMRequest,
    LLMResponse,
    Message,
    ModelTarget,
    OutputFormat,
    Usage,
    new_request_id,
)

T = TypeVar("T", bound=BaseModel)
SPAN_NAMESPACE = "airuntime"

_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(?P<body>.*?)\n?\s*```\s*$", re.DOTALL)
MAX_ERRORS_SHOWN = 5


class StructuredOutputError(Exception):
    """The model's output never validated, not even after the repair re-asks."""

    def __init__(
        self,
        prompt: str,
        raw_text: str,
        errors: Sequence[str],
        *,
        attempts: int,
        repairs: int,
        usage: Usage,
        cost: Decimal,
    ) -> None:
        self.prompt = prompt
        self.raw_text = raw_text
        self.errors = tuple(errors)
        self.attempts = attempts
        self.repairs = repairs
        self.usage = usage
        self.cost = cost
        super().__init__(
            f"{prompt}: the model's output did not validate after {repairs} repair "
            f"re-ask{'s' if repairs != 1 else ''} ({'; '.join(self.errors[:2])})"
        )


@quick_init
@dataclass(frozen=True, slots=True)
class Generated(Generic[T]):
    """A validated value and how it was produced: `target` is the model it answers for,
    `served_by` who really answered (that target's provider, or "mock" when the offline mock
    stood in for it); both None for a degraded (non-AI) answer."""

    value: T
    raw_text: str
    request_id: str
    target: ModelTarget | None
    served_by: str | None
    fallback_index: int | None
    attempts: int
    repairs: int
    usage: Usage
    cost: Decimal
    cache_hit: bool = False
    degraded: bool = False
    prompt: str | None = None  # id@version that answered (a rollout may choose either)


def strip_code_fences(text: str) -> str:
    """The JSON inside a ```json ... ``` block, or the text itself."""
    match = _FENCE.match(text)
    return match.group("body") if match else text.strip()


def parse_output(response: LLMResponse, model: type[T]) -> T | list[str]:
    """The validated value, or the list of what is wrong with the output."""
    if response.finish_reason == "length":
        return ["the output was cut off at max_tokens (finish_reason=length): answer shorter"]
    try:
        data = json.loads(strip_code_fences(response.text))
    except json.JSONDecodeError as error:
        return [f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"]
    try:
        return model.model_validate(data)
    except ValidationError as error:
        return [
            f"{'.'.join(str(part) for part in item['loc']) or '(root)'}: {item['msg']}"
            for item in error.errors()[:MAX_ERRORS_SHOWN]
        ]


def repair_messages(raw_text: str, errors: Sequence[str]) -> tuple[Message, Message]:
    """The re-ask: the model's own answer, then what was wrong with it."""
    problems = "\n".join(f"- {error}" for error in errors)
    return (
        Message(role="assistant", content=raw_text),
        Message(
            role="user",
            content=(
                "Your answer could not be used:\n"
                f"{problems}\n"
                "Reply again with only the JSON object, matching the schema exactly."
            ),
        ),
    )


class StructuredGenerator:
    """Runs prompts from a registry through a resilient client into validated models."""

    def __init__(
        self,
        client: ResilientRunner,
        registry: PromptRegistry,
        *,
        repair_attempts: int = 1,
        tracer: Tracer | None = None,
        switched_off: Collection[str] = frozenset(),
        switch: KillSwitch | None = None,
    ) -> None:
        self.client = client
        self.registry = registry
        self.repair_attempts = repair_attempts
        # The kill switch, read at each call: prompts whose AI path is off serve their degraded
        # answer, uncalled. `switched_off` is a fixed set (a switch of this process's own).
        self.switch = switch if switch is not None else KillSwitch(switched_off)
        # The parent span of each call: the attempt spans the observer emits nest under it.
        self.tracer = tracer if tracer is not None else trace.get_tracer(SPAN_NAMESPACE)

    async def generate(
        self,
        prompt_id: str,
        inputs: Mapping[str, Any],
        output_model: type[T],
        *,
        version: str | None = None,
        label: str | None = None,
        use_cache: bool = True,
        idempotency_key: str | None = None,
        degraded: Callable[[], T] | None = None,
        rollout_key: str | None = None,
    ) -> Generated[T]:
        """One validated answer of a prompt. Which version: `version` or `label` when given,
        else the rollout's choice, sticky by `rollout_key` (a user id; None: each call on its
        own), between the canary and production (`PromptRegistry.choose`)."""
        if version is None and label is None:
            version = self.registry.choose(prompt_id, rollout_key or new_request_id()).version
        rendered = self.registry.render(prompt_id, inputs, version=version, label=label)
        first = rendered.to_request()
        if first.output.json_schema is None:  # ask for the model's schema where none is given
            first = first.model_copy(update={"output": json_output(output_model, prompt_id)})
        call = self.client.begin_call(first)
        span = self.tracer.start_span(
            f"generate {prompt_id}",
            attributes={f"{SPAN_NAMESPACE}.prompt": rendered.ref, "request_id": call.request_id},
        )
        with current(span):
            await self.switch.refresh()
            if self.switch.is_off(prompt_id):
                return self._switched_off(prompt_id, degraded, span, call)
            try:
                result = await self._generate(
                    rendered, first, output_model, call, use_cache, idempotency_key
                )
            except AllTargetsFailedError as error:
                if degraded is None:
                    self._finish(span, call, "error", error)
                    raise
                result = self._degraded(degraded(), call)
            except Exception as error:
                self._finish(span, call, failure_outcome(error), error)
                raise
            self._finish(span, call, outcome_of(result))
            return result

    def _finish(
        self, span: Span, call: CallState, outcome: CallOutcome, error: BaseException | None = None
    ) -> None:
        if span.is_recording():
            span.set_attribute(f"{SPAN_NAMESPACE}.outcome", outcome)
            span.set_attribute(f"{SPAN_NAMESPACE}.attempts", call.attempts)
            span.set_attribute(f"{SPAN_NAMESPACE}.cost_usd", float(call.cost))
            if error is not None:
                span.set_attribute("error.type", type(error).__name__)
                span.set_status(Status(StatusCode.ERROR, str(error)))
        self.client.finish_call(call, outcome, error)

    def _switched_off(
        self, prompt_id: str, degraded: Callable[[], T] | None, span: Span, call: CallState
    ) -> Generated[T]:
        """The emergency override: no model is called; the degraded answer, marked so."""
        if span.is_recording():
            span.set_attribute(f"{SPAN_NAMESPACE}.switched_off", True)
        if degraded is None:
            error = SwitchedOffError(
                f"the AI path of {prompt_id} is switched off (the kill switch) and it has no "
                "degraded answer: turn it back on, or give the feature a degraded answer."
            )
            self._finish(span, call, "error", error)
            raise error
        result = self._degraded(degraded(), call)
        self._finish(span, call, "degraded")
        return result

    @staticmethod
    def _degraded(value: T, call: CallState) -> Generated[T]:
        return Generated(
            value=value,
            raw_text="",
            request_id=call.request_id,
            target=None,
            served_by=None,
            fallback_index=None,
            attempts=call.attempts,
            repairs=0,
            usage=call.usage,
            cost=call.cost,
            degraded=True,
            prompt=call.prompt,
        )

    async def _generate(
        self,
        rendered: RenderedPrompt,
        first: LLMRequest,
        output_model: type[T],
        call: CallState,
        use_cache: bool,
        idempotency_key: str | None,
    ) -> Generated[T]:
        client = self.client
        targets = [target.model_target for target in rendered.targets]
        cached = await client.lookup(first, idempotency_key, use_cache=use_cache, targets=targets)
        if cached is not None:
            value = parse_output(cached.response, output_model)
            if not isinstance(value, list):
                call.target, call.fallback_index = cached.target, cached.fallback_index
                call.served_by = cached.served_by
                return self._result(value, cached.response, call, 0, cache_hit=True)

        messages = first.messages
        errors: list[str] = []
        raw_text = ""
        for repair in range(self.repair_attempts + 1):
            request = first if repair == 0 else first.model_copy(update={"messages": messages})
            outcome = await client.run(
                request,
                targets=targets,
                route=partial(_route, rendered),
                use_cache=False,
                call=call,
            )
            raw_text = outcome.response.text
            value = parse_output(outcome.response, output_model)
            if not isinstance(value, list):
                await client.remember(
                    first, idempotency_key, outcome, use_cache=use_cache, targets=targets
                )
                return self._result(value, outcome.response, call, repair)
            errors = value
            client.report_validation_failure(
                ValidationFailure(
                    request_id=call.request_id,
                    prompt=call.prompt,
                    target=outcome.target,
                    repair_attempt=repair,
                    errors=tuple(errors),
                    raw_text=raw_text,
                )
            )
            messages = (*messages, *repair_messages(raw_text, errors))
        raise StructuredOutputError(
            rendered.ref,
            raw_text,
            errors,
            attempts=call.attempts,
            repairs=self.repair_attempts,
            usage=call.usage,
            cost=call.cost,
        )

    @staticmethod
    def _result(
        value: T, response: LLMResponse, call: CallState, repairs: int, *, cache_hit: bool = False
    ) -> Generated[T]:
        return Generated(
            value=value,
            raw_text=response.text,
            request_id=call.request_id,
            target=call.target,
            served_by=call.served_by,
            fallback_index=call.fallback_index,
            attempts=call.attempts,
            repairs=repairs,
            usage=call.usage,
            cost=call.cost,
            cache_hit=cache_hit,
            prompt=call.prompt,
        )


def current(span: Span) -> AbstractContextManager[Span]:
    """Make `span` the current span until the block ends, then end it (as
    `start_as_current_span` does), when it can parent anything. Without an OpenTelemetry SDK the
    API hands back an invalid span: attaching it to the context would change nothing and cost
    more than the rest of the call."""
    if span.get_span_context().is_valid:
        return trace.use_span(span, end_on_exit=True)
    return nullcontext(span)


def outcome_of(result: Generated[T]) -> CallOutcome:
    if result.degraded:
        return "degraded"
    if result.cache_hit:
        return "cache_hit"
    return "fallback" if (result.fallback_index or 0) > 0 else "ok"


@functools.lru_cache(maxsize=256)
def json_output(model: type[BaseModel], name: str) -> OutputFormat:
    """Ask for JSON matching the model's schema (built once per model and name: pydantic
    generates a schema afresh on every call)."""
    return OutputFormat(type="json_schema", json_schema=model.model_json_schema(), schema_name=name)


def _route(rendered: RenderedPrompt, request: LLMRequest, target: ModelTarget) -> LLMRequest:
    """The request for one target, with that target's own parameters (max_tokens, ...), and
    the conversation so far (repair re-asks add to it)."""
    primary = rendered.target
    if target.provider == primary.provider and target.model == primary.model:
        # `request` is `generate`'s first request or a repair copy of it, both made for the
        # primary target: exactly what the lines below would build again.
        return request
    routed = rendered.to_request(rendered.prompt_target(target), request_id=request.request_id)
    return routed.model_copy(update={"messages": request.messages, "output": request.output})


__all__ = [
    "BudgetExceeded",
    "Generated",
    "StructuredGenerator",
    "StructuredOutputError",
    "SwitchedOffError",
]
