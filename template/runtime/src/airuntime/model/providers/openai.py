"""OpenAI adapter: the Chat Completions API, on api.openai.com or any OpenAI-compatible server.

With `base_url` set, the same code talks to another server: a local or self-hosted one (vLLM,
Ollama, LiteLLM, llama.cpp...) or a gateway in front of OpenAI. The output limit goes out as
`output_limit_parameter` says, never guessed from the URL: `max_completion_tokens` by default
(the API's own name, the only one its reasoning models accept, so what a proxy in front of
OpenAI needs too), or `max_tokens` for a server that knows only the older name.

SDK retries are off (`max_retries=0`): retrying is the resilience layer's job. Every SDK
exception, every refusal (`finish_reason` "content_filter", a `refusal` message) and every
response of a shape the adapter cannot read (a choice without a message, a body that is not
JSON) becomes an `LLMError` of the shared taxonomy. An error object inside a stream is read by
the status it states (compatible servers write `"code": 400`) or that its OpenAI code implies,
so a deterministic 400 is terminal rather than a retryable server error.

A 429's wait is its Retry-After (`retry-after-ms`, `retry-after`) when it has one; else the
wait its message names ("Please try again in 26.604s", which accounts for the request's own
size), else the `x-ratelimit-reset-requests` / `-tokens` header of the limit that was hit.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple, TypedDict, cast

import httpx2
import openai
from openai import Omit
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessage,
    ChatCompletionMessageFunctionToolCallParam,
    ChatCompletionMessageParam,
    ChatCompletionToolChoiceOptionParam,
)
from openai.types.chat.chat_completion_chunk import ChoiceDelta, ChoiceDeltaToolCall
from openai.types.chat.completion_create_params import ResponseFormat
from openai.types.completion_usage import CompletionUsage
from openai.types.create_embedding_response import CreateEmbeddingResponse

from airuntime.errors import (
    AuthenticationError,
    ContentFilteredError,
    LLMError,
    ProviderConnectionError,
    ProviderTimeoutError,
    ServerError,
)
from airuntime.model.factory import OutputLimitParameter
from airuntime.model.providers.http_errors import (
    RATE_LIMIT_STATUSES,
    LimitWindow,
    error_for_status,
    header_int,
    parse_duration,
    readable_response,
    reset_wait,
    status_in,
    text_of,
)
from airuntime.types import (
    Chunk,
    EmbeddingRequest,
    EmbeddingResponse,
    FinishReason,
    LLMRequest,
    LLMResponse,
    Message,
    OutputFormat,
    ToolCall,
    ToolCallDelta,
    Usage,
)

PROVIDER = "openai"
_FINISH_REASONS: Mapping[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}
_CONTEXT_LENGTH = re.compile(
    r"context[_ ]length|context window|maximum context|too many tokens|prompt is too long",
    re.IGNORECASE,
)
_CONTENT_POLICY_CODES = frozenset({"content_filter", "content_policy_violation", "invalid_prompt"})
# The status an error object without a numeric one stands for, by its OpenAI `code`, then `type`.
_STATUS_OF_CODE: Mapping[str, int] = {
    "invalid_prompt": 400,
    "content_filter": 400,
    "content_policy_violation": 400,
    "context_length_exceeded": 400,
    "unsupported_parameter": 400,
    "unsupported_value": 400,
    "invalid_value": 400,
    "invalid_api_key": 401,
    "model_not_found": 404,
    "insufficient_quota": 429,
    "rate_limit_exceeded": 429,
    "server_error": 500,
}
_STATUS_OF_TYPE: Mapping[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "insufficient_quota": 429,
    "requests": 429,  # a 429's type names the limit that was hit
    "tokens": 429,
    "server_error": 500,
}
_JSON_INSTRUCTION = "Respond with a single JSON object."
# The wait a 429's message names: OpenAI's "Please try again in 1m9.696s." (a Go duration),
# Azure's "Please retry after 6 seconds."
_WAIT_IN_MESSAGE = re.compile(
    r"try again in (?P<duration>(?:\d+(?:\.\d+)?(?:ms|h|m|s))+)"
    r"|retry after (?P<seconds>\d+(?:\.\d+)?) seconds?",
    re.IGNORECASE,
)
# The limits OpenAI reports on every response, as x-ratelimit-{remaining,reset}-<limit>.
_LIMITS = ("requests", "tokens")


class OpenAIClient:
    """`LLMClient` over the OpenAI SDK's async client."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout_seconds: float = 30.0,
        output_limit_parameter: OutputLimitParameter = "max_completion_tokens",
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout_seconds,
            max_retries=0,
            http_client=http_client,
        )
        self._output_limit_parameter = output_limit_parameter

    @property
    def provider(self) -> str:
        return PROVIDER

    async def complete(self, request: LLMRequest) -> LLMResponse:
        started = time.perf_counter()
        with _translated_errors(request.model):
            completion = await self._client.chat.completions.create(**self._parameters(request))
        return _to_response(completion, request, (time.perf_counter() - started) * 1000)

    async def stream(self, request: LLMRequest) -> AsyncIterator[Chunk]:
        index = 0
        finish: FinishReason | None = None
        usage: Usage | None = None
        refusal: list[str] = []  # a refusal streams token by token, like text
        calls = _CallAssembler()
        with _translated_errors(request.model):
            chunks = await self._client.chat.completions.create(
                **self._parameters(request),
                stream=True,
                stream_options={"include_usage": True},
            )
            async with chunks:
                async for piece in chunks:
                    read = _read_chunk(piece, request.model)
                    finish = read.finish_reason or finish
                    usage = read.usage or usage
                    refusal.append(read.refusal)
                    if read.text:
                        yield Chunk(text=read.text, index=index)
                        index += 1
                    for delta in read.tool_calls:
                        yield Chunk(text="", index=index, tool_call_delta=calls.add(delta))
                        index += 1
        if any(refusal):  # raised once it is whole, as the completion's refusal is
            raise _refused("".join(refusal), request.model)
        yield Chunk(
            text="",
            index=index,
            finish_reason=finish or "other",
            usage=usage or Usage(),
            tool_calls=calls.calls(request.model),
        )

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """The Embeddings API: one vector per text, in the request's order (the API numbers its
        items by `index`; they are put back in that order rather than trusted to arrive so)."""
        started = time.perf_counter()
        with _translated_errors(request.model):
            created = await self._client.embeddings.create(
                model=request.model,
                input=list(request.texts),
                encoding_format="float",
                dimensions=openai.omit if request.dimensions is None else request.dimensions,
                extra_headers={"X-Client-Request-Id": request.request_id},
            )
        return _to_embeddings(created, request, (time.perf_counter() - started) * 1000)

    async def aclose(self) -> None:
        await self._client.close()

    def _parameters(self, request: LLMRequest) -> _Parameters:
        """What a completion and a stream both send."""
        limit = self._output_limit(request)
        return _Parameters(
            model=request.model,
            messages=_messages(request),
            max_tokens=limit.max_tokens,
            max_completion_tokens=limit.max_completion_tokens,
            temperature=_omit_none(request.temperature),
            stop=list(request.stop) or openai.omit,
            seed=openai.omit if request.seed is None else request.seed,
            response_format=response_format(request.output),
            tools=_tools(request) or openai.omit,
            tool_choice=request.tool_choice if request.tools else openai.omit,
            extra_headers=_headers(request),
        )

    def _output_limit(self, request: LLMRequest) -> _OutputLimit:
        if self._output_limit_parameter == "max_tokens":
            return _OutputLimit(max_tokens=request.max_tokens)
        return _OutputLimit(max_completion_tokens=request.max_tokens)


def _omit_none(value: float | None) -> float | Omit:
    return openai.omit if value is None else value


class _Parameters(TypedDict):
    """The Chat Completions parameters of a request, common to a completion and a stream."""

    model: str
    messages: list[ChatCompletionMessageParam]
    max_tokens: int | Omit
    max_completion_tokens: int | Omit
    temperature: float | Omit
    stop: list[str] | Omit
    seed: int | Omit
    response_format: ResponseFormat | Omit
    tools: list[ChatCompletionFunctionToolParam] | Omit
    tool_choice: ChatCompletionToolChoiceOptionParam | Omit
    extra_headers: dict[str, str]


class _OutputLimit(NamedTuple):
    """The output limit, under the one name the server is configured to get."""

    max_tokens: int | Omit = openai.omit
    max_completion_tokens: int | Omit = openai.omit


def _headers(request: LLMRequest) -> dict[str, str]:
    """OpenAI logs this id with the request, so one id follows a call across both sides."""
    return {"X-Client-Request-Id": request.request_id}


def _messages(request: LLMRequest) -> list[ChatCompletionMessageParam]:
    messages = [_message(message) for message in request.messages]
    wants_object = request.output.type == "json"
    if wants_object and not any("json" in m.content.lower() for m in request.messages):
        # JSON mode is refused unless the word "JSON" appears in the conversation.
        messages.insert(0, {"role": "system", "content": _JSON_INSTRUCTION})
    return messages


def _message(message: Message) -> ChatCompletionMessageParam:
    if message.role == "system":
        return {"role": "system", "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        # The calls go back as the model wrote them, so it sees its own turn unchanged.
        return {
            "role": "assistant",
            "content": message.content or None,
            "tool_calls": [_tool_call_param(call) for call in message.tool_calls],
        }
    if message.role == "assistant":
        return {"role": "assistant", "content": message.content}
    if message.role == "tool":
        return {
            "role": "tool",
            "tool_call_id": message.tool_call_id or "",
            "content": message.content,
        }
    return {"role": "user", "content": message.content}


def _tool_call_param(call: ToolCall) -> ChatCompletionMessageFunctionToolCallParam:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


def _tools(request: LLMRequest) -> list[ChatCompletionFunctionToolParam]:
    """Function tools (strict only when the schema meets strict mode's rules, as for output)."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": dict(tool.parameters),
                "strict": is_strict_compatible(dict(tool.parameters)),
            },
        }
        for tool in request.tools
    ]


def response_format(output: OutputFormat) -> ResponseFormat | Omit:
    """JSON mode, or Structured Outputs (strict when the schema meets strict mode's rules)."""
    if output.type == "text":
        return openai.omit
    if output.type == "json_schema" and output.json_schema is not None:
        schema = dict(output.json_schema)
        return {
            "type": "json_schema",
            "json_schema": {
                "name": output.schema_name,
                "schema": schema,
                "strict": is_strict_compatible(schema),
            },
        }
    return {"type": "json_object"}


def is_strict_compatible(schema: Any) -> bool:
    """Strict mode needs every object closed (`additionalProperties: false`) and every
    property required; a schema with optional fields is sent non-strict instead of refused."""
    if isinstance(schema, list):
        return all(is_strict_compatible(item) for item in schema)
    if not isinstance(schema, Mapping):
        return True
    if schema.get("type") == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is not False:
            return False
        if set(schema.get("required", [])) != set(properties):
            return False
    return all(is_strict_compatible(value) for value in schema.values())


def _to_response(completion: ChatCompletion, request: LLMRequest, latency_ms: float) -> LLMResponse:
    model = request.model
    with readable_response(PROVIDER, model):
        if not completion.choices:
            raise ServerError("the response has no choices", provider=PROVIDER, model=model)
        choice = completion.choices[0]
        # Typed as always there, but None when Azure's content filter withheld the whole answer.
        message = cast("ChatCompletionMessage | None", choice.message)
        if message is not None and message.refusal:
            raise _refused(text_of(message.refusal, "the message's refusal"), model)
        finish_reason = _finish_reason(choice.finish_reason, model)
        if message is None:
            raise ServerError(
                f"the response's choice has no message (finish_reason {choice.finish_reason!r})",
                provider=PROVIDER,
                model=model,
            )
        return LLMResponse(
            text=text_of(message.content, "the message's content"),
            model=completion.model or model,
            provider=PROVIDER,
            finish_reason=finish_reason,
            usage=_usage(completion.usage) if completion.usage is not None else Usage(),
            response_id=completion.id,
            latency_ms=latency_ms,
            request_id=request.request_id,
            tool_calls=_tool_calls(message, model),
        )


def _tool_calls(message: ChatCompletionMessage, model: str) -> tuple[ToolCall, ...]:
    calls = []
    for call in message.tool_calls or ():
        if call.type != "function":  # custom (free-text) tools are never offered
            raise ServerError(
                f"the response calls a {call.type!r} tool, which was not offered",
                provider=PROVIDER,
                model=model,
            )
        calls.append(
            ToolCall(
                id=text_of(call.id, "a tool call's id"),
                name=text_of(call.function.name, "a tool call's name"),
                arguments=text_of(call.function.arguments, "a tool call's arguments"),
            )
        )
    return tuple(calls)


class _Piece(NamedTuple):
    """What one stream chunk adds."""

    text: str = ""
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    refusal: str = ""
    tool_calls: tuple[ChoiceDeltaToolCall, ...] = ()


def _read_chunk(piece: ChatCompletionChunk, model: str) -> _Piece:
    with readable_response(PROVIDER, model):
        usage = _usage(piece.usage) if piece.usage is not None else None
        # No choices: the usage chunk at the end, or (Azure) the prompt's filter results first.
        if not piece.choices:
            return _Piece(usage=usage)
        choice = piece.choices[0]
        reason = _finish_reason(choice.finish_reason, model) if choice.finish_reason else None
        # Typed as always there, but None in Azure's content-filter annotations of the output.
        delta = cast("ChoiceDelta | None", choice.delta)
        if delta is None:
            return _Piece(finish_reason=reason, usage=usage)
        return _Piece(
            text_of(delta.content, "a chunk's content"),
            reason,
            usage,
            text_of(delta.refusal, "a chunk's refusal"),
            tuple(delta.tool_calls or ()),
        )


class _CallAssembler:
    """Streamed tool calls put back together: the first delta of a call (by its `index`)
    carries its id and name, the next ones pieces of its JSON arguments."""

    def __init__(self) -> None:
        self._ids: dict[int, str] = {}
        self._names: dict[int, str] = {}
        self._arguments: dict[int, list[str]] = {}

    def add(self, delta: ChoiceDeltaToolCall) -> ToolCallDelta:
        position = delta.index
        function = delta.function
        name = function.name if function is not None else None
        arguments = (function.arguments if function is not None else None) or ""
        if delta.id:
            self._ids[position] = delta.id
        if name:
            self._names[position] = self._names.get(position, "") + name
        self._arguments.setdefault(position, []).append(arguments)
        return ToolCallDelta(position=position, id=delta.id, name=name, arguments=arguments)

    def calls(self, model: str) -> tuple[ToolCall, ...]:
        calls = []
        for position in sorted(self._arguments):
            if position not in self._ids or position not in self._names:
                raise ServerError(
                    f"streamed tool call {position} never said its id and name",
                    provider=PROVIDER,
                    model=model,
                )
            calls.append(
                ToolCall(
                    id=self._ids[position],
                    name=self._names[position],
                    arguments="".join(self._arguments[position]) or "{}",
                )
            )
        return tuple(calls)


def _refused(refusal: str, model: str) -> ContentFilteredError:
    return ContentFilteredError(f"the model refused: {refusal}", provider=PROVIDER, model=model)


def _finish_reason(reason: str | None, model: str) -> FinishReason:
    if reason == "content_filter":
        raise ContentFilteredError(
            "the output was stopped by the content filter", provider=PROVIDER, model=model
        )
    return _FINISH_REASONS.get(reason or "", "other")


def _to_embeddings(
    created: CreateEmbeddingResponse, request: EmbeddingRequest, latency_ms: float
) -> EmbeddingResponse:
    model = request.model
    with readable_response(PROVIDER, model):
        items = sorted(created.data, key=lambda item: item.index)
        if [item.index for item in items] != list(range(len(request.texts))):
            raise ServerError(
                f"the response has {len(items)} embeddings for {len(request.texts)} texts",
                provider=PROVIDER,
                model=model,
            )
        vectors = tuple(tuple(float(value) for value in item.embedding) for item in items)
        # Typed as always there; compatible servers (Ollama's older versions) leave it out.
        usage = cast("Any", created).usage
        return EmbeddingResponse(
            vectors=vectors,
            model=created.model or model,
            provider=PROVIDER,
            usage=Usage(input_tokens=usage.prompt_tokens) if usage is not None else Usage(),
            latency_ms=latency_ms,
            request_id=request.request_id,
        )


def _usage(usage: CompletionUsage) -> Usage:
    details = usage.prompt_tokens_details
    cached = details.cached_tokens if details is not None else None
    return Usage(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        cache_read_tokens=cached or 0,
    )


@contextmanager
def _translated_errors(model: str) -> Iterator[None]:
    """Re-raise every SDK or transport exception as the matching `LLMError`."""
    try:
        yield
    except LLMError:
        raise
    except openai.APIError as error:
        raise translate_error(error, model) from error
    except httpx2.TimeoutException as error:
        raise ProviderTimeoutError(str(error), provider=PROVIDER, model=model) from error
    except httpx2.TransportError as error:
        raise ProviderConnectionError(str(error), provider=PROVIDER, model=model) from error
    except json.JSONDecodeError as error:  # a body, or a stream event, that is not JSON
        raise ServerError(
            f"unreadable response: {error}", provider=PROVIDER, model=model
        ) from error
    except openai.OpenAIError as error:
        raise ServerError(str(error), provider=PROVIDER, model=model) from error


def translate_error(error: openai.APIError, model: str) -> LLMError:
    """The taxonomy class of one SDK error."""
    message = _error_message(error)
    if isinstance(error, openai.APITimeoutError):
        return ProviderTimeoutError(message, provider=PROVIDER, model=model)
    if isinstance(error, openai.APIConnectionError):
        return ProviderConnectionError(message, provider=PROVIDER, model=model)
    if isinstance(error, openai.APIStatusError):
        return _error_for(error.status_code, message, error.body, error.response.headers, model)
    # An error object in a stream (whose response was a 200) says itself what it is: a
    # deterministic 400 must not be retried as if the server had failed.
    status = (
        None if isinstance(error, openai.APIResponseValidationError) else _status_of(error.body)
    )
    if status is None:  # unknown, or a response the SDK could not read
        return ServerError(message, provider=PROVIDER, model=model)
    return _error_for(status, message, error.body, {}, model)


def _error_for(
    status: int, message: str, body: object, headers: Mapping[str, str], model: str
) -> LLMError:
    code = _field(body, "code")
    if code == "insufficient_quota":  # a 429 that waiting does not fix
        return AuthenticationError(message, provider=PROVIDER, model=model, status_code=status)
    return error_for_status(
        status,
        message,
        provider=PROVIDER,
        model=model,
        headers=headers,
        retry_hint=_retry_hint(message, body, headers) if status in RATE_LIMIT_STATUSES else None,
        context_length=code == "context_length_exceeded" or bool(_CONTEXT_LENGTH.search(message)),
        content_filtered=code in _CONTENT_POLICY_CODES,
    )


def _retry_hint(message: str, body: object, headers: Mapping[str, str]) -> float | None:
    """A rate limit's wait when it has no Retry-After: the one its message names, else the
    reset of the limit its `type` names ("requests" or "tokens"), of one with nothing left, or
    else the later of the two."""
    said = _WAIT_IN_MESSAGE.search(message)
    if said is not None:
        seconds = said.group("seconds")
        wait = float(seconds) if seconds is not None else parse_duration(said.group("duration"))
        if wait is not None:
            return wait
    windows = [
        LimitWindow(
            name,
            header_int(headers, f"x-ratelimit-remaining-{name}"),
            parse_duration(headers.get(f"x-ratelimit-reset-{name}")),
        )
        for name in _LIMITS
    ]
    kind = _field(body, "type") or ""
    return reset_wait(windows, hit="tokens" if kind.startswith("tokens") else kind)


def _status_of(body: object) -> int | None:
    """The HTTP status an error object stands for: the one it states (`status`, or a numeric
    `code` as vLLM and LiteLLM write it), else the one its OpenAI `code` or `type` implies."""
    if not isinstance(body, Mapping):
        return None
    for key in ("status", "status_code", "code"):
        status = status_in(body.get(key))
        if status is not None:
            return status
    return _STATUS_OF_CODE.get(_field(body, "code") or "") or _STATUS_OF_TYPE.get(
        _field(body, "type") or ""
    )


def _field(body: object, key: str) -> str | None:
    value = body.get(key) if isinstance(body, Mapping) else None
    return value if isinstance(value, str) else None


def _error_message(error: openai.APIError) -> str:
    body = error.body
    if isinstance(body, Mapping) and isinstance(body.get("message"), str):
        return str(body["message"])
    return error.message
