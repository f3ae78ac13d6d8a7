"""MockLLM: a deterministic provider for tests, offline demos and chaos drills.

It is a provider like any other (`LLMClient`), so everything above it runs its production code
paths. What it answers, in order:

1. A chaos fault drawn at the seeded probabilities (`faults`), if any.
2. The first rule whose pattern matches the last user message.
3. The next step of the script (a trajectory: answers, tool calls (`CallTool`) and faults in the
   order the calls will meet them); when a script was given and is used up, it raises
   `MockScriptExhaustedError` (never an empty answer).
4. Without a script, a generated answer: an echo for text, and for JSON-schema output a small
   instance valid against the schema, so demos run offline.

Every request is recorded in `requests` (only the last `max_recorded` when a long-running
service uses the mock). Latency is simulated through the injected `sleep`, so
tests never really wait, and nothing sleeps when latency is zero.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airuntime.errors import LLMError
from airuntime.model.hashing import DEFAULT_DIMENSIONS, hashed_vector
from airuntime.model.mock_faults import (
    DEFAULT_RETRY_AFTER_SECONDS,
    NO_LATENCY,
    OUTPUT_FAULTS,
    ChaosMonkey,
    Fault,
    FaultKind,
    Latency,
    fault_error,
)
from airuntime.model.schema_instance import minimal_instance
from airuntime.types import (
    Chunk,
    EmbeddingRequest,
    EmbeddingResponse,
    FinishReason,
    LLMRequest,
    LLMResponse,
    ToolCall,
    ToolCallDelta,
    Usage,
)


@dataclass(frozen=True, slots=True)
class CallTool:
    """A scripted answer in which the model asks to run the tool `name` with `arguments`.

    Several in a tuple are one answer asking for several calls. `id` defaults to a
    deterministic `call_<n>_<i>` (the n-th request, the i-th call); `text` is what the model
    says alongside.
    """

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None
    text: str = ""


Reply = str | LLMResponse | Fault | BaseException | CallTool | tuple[CallTool, ...]
"""A scripted answer: text, a full response, a fault, an exception to raise, or tool calls."""
Step = Reply | Callable[[LLMRequest], Reply]
"""A reply, or a function of the request that returns one (or raises)."""
Sleep = Callable[[float], Awaitable[None]]

CHARS_PER_TOKEN = 4
_WORDS = re.compile(r"\s*\S+\s*|\s+")


class MockScriptExhaustedError(RuntimeError):
    """The script has no step left for a request.

    Deliberately not an `LLMError`: a missing scripted answer is a mistake in the test or demo,
    and no retry or fallback should paper over it.
    """


@dataclass(frozen=True, slots=True)
class Rule:
    """Answer `reply` whenever `pattern` matches (re.search) the last user message."""

    pattern: str | re.Pattern[str]
    reply: Step

    def matches(self, request: LLMRequest) -> bool:
        return re.search(self.pattern, request.last_user_message) is not None


def estimate_tokens(text: str) -> int:
    """A cheap, deterministic token estimate: about four characters per token."""
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def split_into_chunks(text: str) -> list[str]:
    """Word-sized pieces that keep every whitespace character: "".join(pieces) == text."""
    return _WORDS.findall(text)


@dataclass(frozen=True, slots=True)
class _Failure:
    """A call that raises `error`; when streamed, after `at_chunk` chunks of `partial`."""

    error: BaseException
    at_chunk: int = 0
    partial: LLMResponse | None = None


class MockLLM:
    """A scripted, seeded, fault-injecting model client that accepts any model name."""

    def __init__(
        self,
        script: Iterable[Step] | None = None,
        *,
        rules: Iterable[Rule] = (),
        faults: Mapping[FaultKind, float] | None = None,
        seed: int = 0,
        latency: Latency = NO_LATENCY,
        sleep: Sleep | None = None,
        timeout_seconds: float = 0.0,
        retry_after_seconds: float = DEFAULT_RETRY_AFTER_SECONDS,
        provider: str = "mock",
        max_recorded: int | None = None,
    ) -> None:
        self._recorded: deque[LLMRequest] = deque(maxlen=max_recorded)
        self._calls = 0
        self._script: deque[Step] | None = deque(script) if script is not None else None
        self._rules = tuple(rules)
        self._chaos_rng = random.Random(seed)  # noqa: S311 - simulation, not security
        self._latency_rng = random.Random(f"{seed}:latency")  # noqa: S311
        self._chaos = ChaosMonkey(faults or {}, self._chaos_rng, retry_after=retry_after_seconds)
        self._latency = latency
        self._sleep = sleep or asyncio.sleep
        self._timeout_seconds = timeout_seconds
        self._provider = provider
        self._answered = 0

    @property
    def provider(self) -> str:
        return self._provider

    @property
    def requests(self) -> list[LLMRequest]:
        """The requests received, oldest first."""
        return list(self._recorded)

    @property
    def steps_left(self) -> int | None:
        """Script steps not yet used; None when there is no script."""
        return None if self._script is None else len(self._script)

    async def complete(self, request: LLMRequest) -> LLMResponse:
        delay, result = self._plan(request, streaming=False)
        if delay > 0:
            await self._sleep(delay)
        if isinstance(result, _Failure):
            raise result.error
        return result

    async def stream(self, request: LLMRequest) -> AsyncIterator[Chunk]:
        """Yield the answer word by word; the last chunk carries finish reason and usage.

        A fault with `at_chunk=N` yields N chunks of a generated answer, then raises.
        """
        delay, result = self._plan(request, streaming=True)
        if delay > 0:  # time to first token
            await self._sleep(delay)
        failure = result if isinstance(result, _Failure) else None
        response = result.partial if isinstance(result, _Failure) else result
        if response is not None and response.tool_calls and failure is None:
            for chunk in _tool_call_chunks(response):
                yield chunk
        elif response is not None:
            pieces = split_into_chunks(response.text) or [""]
            count = len(pieces) if failure is None else min(failure.at_chunk, len(pieces))
            for index in range(count):
                last = failure is None and index == len(pieces) - 1
                yield Chunk(
                    text=pieces[index],
                    index=index,
                    finish_reason=response.finish_reason if last else None,
                    usage=response.usage if last else None,
                )
        if failure is not None:
            raise failure.error

    async def aclose(self) -> None:
        """Nothing to release; present for the protocol."""

    # -- embeddings -------------------------------------------------------------------------

    def fail_next_embeddings(self, *failures: Fault | BaseException) -> None:
        """Make the next `embed` calls fail, one failure each, in order (for fault-path tests
        that count attempts exactly); later calls answer."""
        queued: deque[Fault | BaseException] = self.__dict__.setdefault(
            "_embedding_failures", deque()
        )
        queued.extend(failures)

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """Feature-hashing vectors of the texts (deterministic, and close for texts that share
        words, so offline retrieval finds related text). Queued failures come first, then the
        chaos faults drawn as for completions; latency is simulated the same way."""
        self.__dict__.setdefault("_embedding_requests", deque(maxlen=self._recorded.maxlen))
        self.__dict__["_embedding_requests"].append(request)
        self._calls += 1
        delay = self._latency.draw_seconds(self._latency_rng) if self._latency.high_ms else 0.0
        queued: deque[Fault | BaseException] = self.__dict__.get("_embedding_failures", deque())
        failure = queued.popleft() if queued else self._chaos.draw() if self._chaos else None
        if isinstance(failure, Fault) and failure.kind in OUTPUT_FAULTS:
            failure = None  # malformed or truncated output has no meaning for vectors
        if isinstance(failure, Fault):
            if failure.kind == "timeout":
                delay = max(delay, self._timeout_seconds)
            failure = fault_error(failure, provider=self._provider, model=request.model)
        if delay > 0:
            await self._sleep(delay)
        if failure is not None:
            raise failure
        dimensions = request.dimensions or DEFAULT_DIMENSIONS
        return EmbeddingResponse(
            vectors=tuple(tuple(hashed_vector(text, dimensions)) for text in request.texts),
            model=request.model,
            provider=self._provider,
            usage=Usage(input_tokens=sum(estimate_tokens(text) for text in request.texts)),
            latency_ms=delay * 1000,
            request_id=request.request_id,
        )

    @property
    def embedding_requests(self) -> list[EmbeddingRequest]:
        """The embedding requests received, oldest first."""
        return list(self.__dict__.get("_embedding_requests", ()))

    def _plan(
        self, request: LLMRequest, *, streaming: bool
    ) -> tuple[float, LLMResponse | _Failure]:
        """Record the request and decide the delay and the answer or failure."""
        self._recorded.append(request)
        self._calls += 1
        delay = self._latency.draw_seconds(self._latency_rng) if self._latency.high_ms else 0.0
        fault = self._chaos.draw() if self._chaos else None
        if fault is not None and fault.kind not in OUTPUT_FAULTS:
            if streaming:  # real streams also fail part-way: after 0 to 3 chunks
                fault = Fault(fault.kind, fault.retry_after, self._chaos_rng.randrange(4))
            return self._fail(request, fault, delay, streaming=streaming)
        reply = self._reply(request)
        if callable(reply):
            reply = reply(request)
        if isinstance(reply, BaseException):
            return delay, _Failure(reply)
        if isinstance(reply, Fault):
            if reply.kind not in OUTPUT_FAULTS:
                return self._fail(request, reply, delay, streaming=streaming)
            fault, reply = reply, self._generated_text(request)
        if isinstance(reply, LLMResponse):
            return delay, reply
        if isinstance(reply, CallTool | tuple):
            return delay, self._tool_response(request, reply, delay)
        return delay, self._response(request, reply, fault, delay)

    def _tool_response(
        self, request: LLMRequest, reply: CallTool | tuple[CallTool, ...], delay: float
    ) -> LLMResponse:
        steps = reply if isinstance(reply, tuple) else (reply,)
        calls = tuple(
            ToolCall(
                id=step.id or f"call_{self._calls}_{position}",
                name=step.name,
                arguments=json.dumps(dict(step.arguments), sort_keys=True),
            )
            for position, step in enumerate(steps)
        )
        text = "".join(step.text for step in steps)
        written = text + "".join(call.name + call.arguments for call in calls)
        input_tokens = sum(estimate_tokens(message.content) for message in request.messages)
        return LLMResponse(
            text=text,
            model=request.model,
            provider=self._provider,
            finish_reason="tool_calls",
            usage=Usage(input_tokens=input_tokens, output_tokens=estimate_tokens(written)),
            response_id=f"mock-{self._calls}",
            latency_ms=delay * 1000,
            request_id=request.request_id,
            tool_calls=calls,
        )

    def _reply(self, request: LLMRequest) -> Step:
        for rule in self._rules:
            if rule.matches(request):
                return rule.reply
        if self._script is None:
            return self._generated_text(request)
        if not self._script:
            preview = request.last_user_message[:60]
            raise MockScriptExhaustedError(
                f"MockLLM script exhausted after {self._answered} answers: nothing left for "
                f"request {request.request_id} (last user message {preview!r}); "
                "add a step or a rule, or leave the script out for generated answers"
            )
        self._answered += 1
        return self._script.popleft()

    def _fail(
        self, request: LLMRequest, fault: Fault, delay: float, *, streaming: bool
    ) -> tuple[float, _Failure]:
        error: LLMError = fault_error(fault, provider=self._provider, model=request.model)
        if fault.kind == "timeout":  # a timeout takes the whole timeout to happen
            delay = max(delay, self._timeout_seconds)
        if not (streaming and fault.at_chunk):
            return delay, _Failure(error)
        partial = self._response(request, self._generated_text(request), None, delay)
        return delay, _Failure(error, fault.at_chunk, partial)

    def _response(
        self, request: LLMRequest, text: str, fault: Fault | None, delay: float
    ) -> LLMResponse:
        finish: FinishReason = "stop"
        if fault is not None and fault.kind == "malformed_json":
            text = malformed_json(text)
        elif fault is not None and fault.kind == "truncated":
            text, finish = text[: max(1, len(text) // 2)], "length"
        else:
            text, finish = _apply_limits(request, text)
        input_tokens = sum(estimate_tokens(message.content) for message in request.messages)
        return LLMResponse(
            text=text,
            model=request.model,
            provider=self._provider,
            finish_reason=finish,
            usage=Usage(input_tokens=input_tokens, output_tokens=estimate_tokens(text)),
            response_id=f"mock-{self._calls}",
            latency_ms=delay * 1000,
            request_id=request.request_id,
        )

    @staticmethod
    def _generated_text(request: LLMRequest) -> str:
        output = request.output
        if output.type == "json_schema" and output.json_schema is not None:
            return json.dumps(minimal_instance(output.json_schema))
        if output.type != "text":
            return json.dumps({"echo": request.last_user_message})
        return f"Mock answer to: {request.last_user_message}"


def _tool_call_chunks(response: LLMResponse) -> Iterable[Chunk]:
    """A tool-calling answer as a vendor streams it: its text, then per call a delta naming it
    and deltas of its arguments (in two halves), then the last chunk with the whole calls."""
    index = 0
    for piece in split_into_chunks(response.text):
        yield Chunk(text=piece, index=index)
        index += 1
    for position, call in enumerate(response.tool_calls):
        half = len(call.arguments) // 2
        parts = (
            ToolCallDelta(position=position, id=call.id, name=call.name),
            ToolCallDelta(position=position, arguments=call.arguments[:half]),
            ToolCallDelta(position=position, arguments=call.arguments[half:]),
        )
        for delta in parts:
            yield Chunk(text="", index=index, tool_call_delta=delta)
            index += 1
    yield Chunk(
        text="",
        index=index,
        finish_reason=response.finish_reason,
        usage=response.usage,
        tool_calls=response.tool_calls,
    )


def _apply_limits(request: LLMRequest, text: str) -> tuple[str, FinishReason]:
    """Cut at the first stop sequence, or at max_tokens, as a real model would."""
    if request.stop:
        cuts = [index for stop in request.stop if (index := text.find(stop)) >= 0]
        if cuts:
            text = text[: min(cuts)]
    if estimate_tokens(text) > request.max_tokens:
        return text[: request.max_tokens * CHARS_PER_TOKEN], "length"
    return text, "stop"


def malformed_json(text: str) -> str:
    """Text that looks like the JSON the caller wanted but does not parse."""
    stripped = text.rstrip()
    if stripped.endswith(("}", "]")):
        return stripped[:-1] + ","  # a dangling comma where the closing bracket was
    return '{"text": ' + stripped  # an object that never closes
