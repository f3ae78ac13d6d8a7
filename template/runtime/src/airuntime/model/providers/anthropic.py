"""Anthropic adapter: the Messages API.

- System messages become the `system` parameter (joined in order).
- JSON-schema output uses Structured Outputs (`output_config.format`), with the schema passed
  through the SDK's `transform_schema` (constraints the API cannot enforce move into
  descriptions; the structured-output layer still validates them). Plain JSON mode has no API
  switch, so it is asked for with a system instruction.
- The Messages API of this SDK generation has no `temperature` or `seed`: they are not sent.
- A 429's wait is its `retry-after` when it has one; else the reset (an RFC 3339 time, measured
  from the response's `date`) of the `anthropic-ratelimit-*` limit with nothing remaining, or
  the latest reset when none says so.
- `stop_reason` "refusal" becomes `ContentFilteredError`, with the policy category and the
  explanation of its `stop_details` when given (streamed or not: the same message); an HTTP 529
  "overloaded" becomes `RateLimitedError`, so callers back off and the breaker cools down.
- Usage: `input_tokens` counts every prompt token, cache reads and writes included (the API
  reports them apart), so it means the same as OpenAI's `prompt_tokens`. A stream's usage is
  the last `message_delta`'s: its counts are cumulative totals, input and cache included, which
  with server tools (web search, code execution) are several times `message_start`'s; so a
  streamed call counts exactly what the same call unstreamed does.
- Cache writes have no count of their own in `Usage`: they are priced as uncached input tokens,
  below Anthropic's bill for them (1.25x the input price for the 5-minute cache, 2x for the
  1-hour one) until the price table has a cache-write price.

SDK retries are off (`max_retries=0`): retrying is the resilience layer's job. A response of a
shape the adapter cannot read (an error object sent with a 200 by a gateway, content that is
not a list of blocks) becomes an `LLMError` too, never an AttributeError.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from typing import NamedTuple

import anthropic
import httpx2
from anthropic.types import (
    ContentBlockParam,
    MessageDeltaUsage,
    MessageParam,
    OutputConfigParam,
    RawMessageStreamEvent,
    RefusalStopDetails,
    ToolChoiceParam,
    ToolParam,
)
from anthropic.types import Message as AnthropicMessage
from anthropic.types import Usage as AnthropicUsage

from airuntime.errors import (
    AuthenticationError,
    ContentFilteredError,
    LLMError,
    ProviderConnectionError,
    ProviderTimeoutError,
    ServerError,
)
from airuntime.model.providers.http_errors import (
    FIRST_ERROR_STATUS,
    RATE_LIMIT_STATUSES,
    LimitWindow,
    error_for_status,
    header_int,
    readable_response,
    reset_wait,
    seconds_until,
    text_of,
)
from airuntime.types import (
    Chunk,
    FinishReason,
    LLMRequest,
    LLMResponse,
    Message,
    ToolCall,
    ToolCallDelta,
    Usage,
)

PROVIDER = "anthropic"
_FINISH_REASONS: Mapping[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
}
# The status an error event in the middle of a stream stands for (the stream itself was a 200).
_STATUS_OF_ERROR_TYPE: Mapping[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "conflict_error": 409,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
# 429s that waiting does not fix: a spend limit someone has to raise.
_SPEND_LIMIT_CODES = frozenset({"contract_spend_limit_reached", "enforced_spend_limit_reached"})
_CONTEXT_LENGTH = re.compile(
    r"prompt is too long|context limit|context window|context length", re.IGNORECASE
)
_JSON_INSTRUCTION = "Respond with a single JSON object and nothing else."
# The limits the API reports, as anthropic-ratelimit-<limit>-{remaining,reset}.
_LIMITS = ("requests", "tokens", "input-tokens", "output-tokens")


class AnthropicClient:
    """`LLMClient` over the Anthropic SDK's async client."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout_seconds: float = 30.0,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            # None: api.anthropic.com (the SDK reads ANTHROPIC_BASE_URL only from the process
            # environment; the project's settings pass what .env says).
            base_url=base_url,
            timeout=timeout_seconds,
            max_retries=0,
            http_client=http_client,
            # The SDK's own GenAI spans would duplicate ours, which carry the attempt, the
            # fallback index and the cost; and they could record message content.
            open_telemetry=False,
        )

    @property
    def provider(self) -> str:
        return PROVIDER

    async def complete(self, request: LLMRequest) -> LLMResponse:
        started = time.perf_counter()
        with _translated_errors(request.model):
            message = await self._create(request)
        latency_ms = (time.perf_counter() - started) * 1000
        return _to_response(message, request, latency_ms)

    async def stream(self, request: LLMRequest) -> AsyncIterator[Chunk]:
        index = 0
        finish: FinishReason = "other"
        counts = _Counts()
        calls = _ToolUseAssembler()
        with _translated_errors(request.model):
            events = await self._create_stream(request)
            async with events:
                async for event in events:
                    with readable_response(PROVIDER, request.model):
                        text = _text_of_event(event)
                        delta = calls.read(event)
                        if event.type == "message_start":
                            counts = _Counts.of(event.message.usage)
                        elif event.type == "message_delta":
                            finish = _finish_reason(
                                event.delta.stop_reason, request.model, event.delta.stop_details
                            )
                            counts = counts.updated(event.usage)
                    if text:
                        yield Chunk(text=text, index=index)
                        index += 1
                    if delta is not None:
                        yield Chunk(text="", index=index, tool_call_delta=delta)
                        index += 1
        yield Chunk(
            text="",
            index=index,
            finish_reason=finish,
            usage=counts.usage(),
            tool_calls=calls.calls(),
        )

    async def aclose(self) -> None:
        await self._client.close()

    async def _create(self, request: LLMRequest) -> AnthropicMessage:
        params = _Params(request)
        return await self._client.messages.create(
            model=request.model,
            max_tokens=request.max_tokens,
            messages=params.messages,
            system=params.system or anthropic.omit,
            stop_sequences=list(request.stop) or anthropic.omit,
            output_config=params.output_config or anthropic.omit,
            tools=params.tools or anthropic.omit,
            tool_choice=params.tool_choice or anthropic.omit,
        )

    async def _create_stream(
        self, request: LLMRequest
    ) -> anthropic.AsyncStream[RawMessageStreamEvent]:
        params = _Params(request)
        return await self._client.messages.create(
            model=request.model,
            max_tokens=request.max_tokens,
            messages=params.messages,
            system=params.system or anthropic.omit,
            stop_sequences=list(request.stop) or anthropic.omit,
            output_config=params.output_config or anthropic.omit,
            tools=params.tools or anthropic.omit,
            tool_choice=params.tool_choice or anthropic.omit,
            stream=True,
        )


class _Params:
    """The parts of a request that differ from our types: system, messages, output config."""

    def __init__(self, request: LLMRequest) -> None:
        system = [m.content for m in request.messages if m.role == "system"]
        if request.output.type == "json":
            system.append(_JSON_INSTRUCTION)
        self.system = "\n\n".join(system)
        self.messages = _messages([m for m in request.messages if m.role != "system"])
        self.tools: list[ToolParam] = [
            {
                "name": tool.name,
                "description": tool.description,
                "input_schema": dict(tool.parameters),
            }
            for tool in request.tools
        ]
        self.tool_choice: ToolChoiceParam | None = None
        if request.tools:
            self.tool_choice = _TOOL_CHOICES[request.tool_choice]
        self.output_config: OutputConfigParam | None = None
        schema = request.output.json_schema
        if request.output.type == "json_schema" and schema is not None:
            self.output_config = {
                "format": {
                    "type": "json_schema",
                    "schema": anthropic.transform_schema(dict(schema)),
                }
            }


_TOOL_CHOICES: Mapping[str, ToolChoiceParam] = {
    "auto": {"type": "auto"},
    "required": {"type": "any"},
    "none": {"type": "none"},
}


def _messages(messages: list[Message]) -> list[MessageParam]:
    """The conversation as the Messages API takes it: a tool-calling turn as `tool_use`
    blocks, and the results that answer it as `tool_result` blocks of one user message (the
    API wants every result of a turn in the message right after it)."""
    params: list[MessageParam] = []
    results: list[ContentBlockParam] = []
    for message in messages:
        if message.role == "tool":
            results.append(
                {
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id or "",
                    "content": message.content,
                    "is_error": message.is_error,
                }
            )
            continue
        if results:
            params.append({"role": "user", "content": results})
            results = []
        params.append(_message(message))
    if results:
        params.append({"role": "user", "content": results})
    return params


def _message(message: Message) -> MessageParam:
    if message.role == "assistant" and message.tool_calls:
        blocks: list[ContentBlockParam] = []
        if message.content:
            blocks.append({"type": "text", "text": message.content})
        blocks.extend(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": _input(call)}
            for call in message.tool_calls
        )
        return {"role": "assistant", "content": blocks}
    if message.role == "assistant":
        return {"role": "assistant", "content": message.content}
    return {"role": "user", "content": message.content}


def _input(call: ToolCall) -> dict[str, object]:
    """A call's arguments as the object `tool_use` needs. Arguments that are not an object
    were already answered as an error; the call is sent back as made with none."""
    try:
        return call.parsed_arguments()
    except ValueError:
        return {}


class _ToolUseAssembler:
    """Streamed `tool_use` blocks put back together: `content_block_start` names the call,
    its `input_json_delta`s carry pieces of the input's JSON, in order. Only the client's
    tools: a `server_tool_use` block is run by the API and answered in the same message."""

    def __init__(self) -> None:
        self._started: dict[int, tuple[str, str]] = {}  # block index -> (id, name)
        self._json: dict[int, list[str]] = {}

    def read(self, event: RawMessageStreamEvent) -> ToolCallDelta | None:
        if event.type == "content_block_start" and event.content_block.type == "tool_use":
            block = event.content_block
            self._started[event.index] = (block.id, block.name)
            self._json[event.index] = []
            return ToolCallDelta(position=self._position(event.index), id=block.id, name=block.name)
        if (
            event.type == "content_block_delta"
            and event.delta.type == "input_json_delta"
            # Server tools (web search...) stream their input too: the API runs those itself.
            and event.index in self._json
        ):
            piece = text_of(event.delta.partial_json, "an input_json_delta")
            self._json[event.index].append(piece)
            return ToolCallDelta(position=self._position(event.index), arguments=piece)
        return None

    def _position(self, index: int) -> int:
        return sorted(self._started).index(index)

    def calls(self) -> tuple[ToolCall, ...]:
        # A tool without parameters streams no JSON at all: its input is {}.
        return tuple(
            ToolCall(id=call_id, name=name, arguments="".join(self._json[index]) or "{}")
            for index, (call_id, name) in sorted(self._started.items())
        )


def _to_response(message: AnthropicMessage, request: LLMRequest, latency_ms: float) -> LLMResponse:
    with readable_response(PROVIDER, request.model):
        if message.type != "message":  # e.g. a gateway's error object sent with a 200
            raise _error_in_body(message, request.model)
        text = "".join(
            text_of(block.text, "a text block's text")
            for block in message.content
            if block.type == "text"
        )
        return LLMResponse(
            text=text,
            model=message.model or request.model,
            provider=PROVIDER,
            finish_reason=_finish_reason(message.stop_reason, request.model, message.stop_details),
            usage=_usage(message.usage),
            response_id=message.id,
            latency_ms=latency_ms,
            request_id=request.request_id,
            tool_calls=tuple(
                ToolCall(id=block.id, name=block.name, arguments=json.dumps(block.input))
                for block in message.content
                if block.type == "tool_use"
            ),
        )


def _text_of_event(event: RawMessageStreamEvent) -> str:
    if event.type == "content_block_delta" and event.delta.type == "text_delta":
        return text_of(event.delta.text, "a text delta")
    return ""


def _error_in_body(message: AnthropicMessage, model: str) -> LLMError:
    """The error a body that is not a message stands for: its error object's type, if any."""
    error = getattr(message, "error", None)
    if isinstance(error, Mapping):
        error_type = error.get("type")
        status = _STATUS_OF_ERROR_TYPE.get(error_type if isinstance(error_type, str) else "")
        text = error.get("message")
        if status is not None and isinstance(text, str):
            return error_for_status(status, text, provider=PROVIDER, model=model, headers={})
    return ServerError(
        f"the response is not a message (type {message.type!r})", provider=PROVIDER, model=model
    )


def _finish_reason(
    reason: str | None, model: str, details: RefusalStopDetails | None = None
) -> FinishReason:
    if reason == "refusal":
        raise ContentFilteredError(_refusal(details), provider=PROVIDER, model=model)
    return _FINISH_REASONS.get(reason or "", "other")


def _refusal(details: RefusalStopDetails | None) -> str:
    """What a refusal says: its policy category and explanation when the API gives them (a
    whole message and a stream's `message_delta` carry the same `stop_details`)."""
    said = "the model refused to answer (stop_reason refusal"
    if details is not None and details.category:
        said += f", category {details.category}"
    said += ")"
    if details is not None and details.explanation:
        said += f": {text_of(details.explanation, 'the refusal explanation')}"
    return said


def _usage(usage: AnthropicUsage) -> Usage:
    return _Counts.of(usage).usage()


class _Counts(NamedTuple):
    """Tokens as the Messages API counts them: the prompt's uncached part, cache reads and
    cache writes apart."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read: int = 0
    cache_write: int = 0

    @classmethod
    def of(cls, usage: AnthropicUsage) -> _Counts:
        return cls(
            usage.input_tokens or 0,
            usage.output_tokens or 0,
            usage.cache_read_input_tokens or 0,
            usage.cache_creation_input_tokens or 0,
        )

    def updated(self, delta: MessageDeltaUsage) -> _Counts:
        """The counts after a `message_delta`: each total it gives replaces ours (they are
        cumulative, not increments); one it leaves out keeps `message_start`'s."""
        return _Counts(
            _given(delta.input_tokens, self.input_tokens),
            _given(delta.output_tokens, self.output_tokens),
            _given(delta.cache_read_input_tokens, self.cache_read),
            _given(delta.cache_creation_input_tokens, self.cache_write),
        )

    def usage(self) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + self.cache_read + self.cache_write,
            output_tokens=self.output_tokens,
            cache_read_tokens=self.cache_read,
        )


def _given(total: int | None, current: int) -> int:
    return current if total is None else total


@contextmanager
def _translated_errors(model: str) -> Iterator[None]:
    """Re-raise every SDK or transport exception as the matching `LLMError`."""
    try:
        yield
    except LLMError:
        raise
    except anthropic.APIError as error:
        raise translate_error(error, model) from error
    except httpx2.TimeoutException as error:  # the SDK lets these through mid-stream
        raise ProviderTimeoutError(str(error), provider=PROVIDER, model=model) from error
    except httpx2.TransportError as error:
        raise ProviderConnectionError(str(error), provider=PROVIDER, model=model) from error
    except json.JSONDecodeError as error:
        raise ServerError(f"unreadable stream: {error}", provider=PROVIDER, model=model) from error
    except anthropic.AnthropicError as error:
        raise ServerError(str(error), provider=PROVIDER, model=model) from error


def translate_error(error: anthropic.APIError, model: str) -> LLMError:
    """The taxonomy class of one SDK error."""
    if isinstance(error, anthropic.APITimeoutError):
        return ProviderTimeoutError(error.message, provider=PROVIDER, model=model)
    if isinstance(error, anthropic.APIConnectionError):
        return ProviderConnectionError(error.message, provider=PROVIDER, model=model)
    if not isinstance(error, anthropic.APIStatusError):
        return ServerError(error.message, provider=PROVIDER, model=model)
    message = error.api_message or error.message
    headers = error.response.headers
    status = error.status_code
    # The rate-limit headers of a 429 (or 529) describe the limit it hit; those of a stream
    # that began with a 200 describe the limits before it.
    hint = _retry_hint(headers) if status in RATE_LIMIT_STATUSES else None
    if status < FIRST_ERROR_STATUS:  # an error event inside a stream that began with 200
        status = _STATUS_OF_ERROR_TYPE.get(error.type or "", 500)
    if error.error_code in _SPEND_LIMIT_CODES:
        return AuthenticationError(message, provider=PROVIDER, model=model, status_code=status)
    return error_for_status(
        status,
        message,
        provider=PROVIDER,
        model=model,
        headers=headers,
        retry_hint=hint,
        context_length=bool(_CONTEXT_LENGTH.search(message)),
    )


def _retry_hint(headers: Mapping[str, str]) -> float | None:
    """A rate limit's wait when it has no retry-after: the reset of the limit with nothing
    remaining, else the latest reset."""
    return reset_wait(
        LimitWindow(
            name,
            header_int(headers, f"anthropic-ratelimit-{name}-remaining"),
            seconds_until(headers.get(f"anthropic-ratelimit-{name}-reset"), headers),
        )
        for name in _LIMITS
    )
