"""The OpenAI Chat Completions wire format, as the openai SDK sends and parses it: the request
(pydantic, so FastAPI validates it and documents it), the answers, chunks and error objects
(built as plain dicts on the hot path; the models below document them), and the conversion
to and from the runtime's own request types.

What the gateway cannot honour is refused with a 400 naming the parameter (`tools`, `n`,
`logprobs`...), never silently dropped: a client that asked for three choices and got one
would not know.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import jsonschema_rs
import orjson
from pydantic import BaseModel, ConfigDict, Field

from airuntime.features import FeatureSystem
from airuntime.service.errors import ServiceError
from airuntime.types import (
    TEXT_OUTPUT,
    LLMRequest,
    Message,
    ModelTarget,
    OutputFormat,
    Role,
    Usage,
)

CHAT_OBJECT = "chat.completion"
CHUNK_OBJECT = "chat.completion.chunk"
# OpenAI's own limit on stop sequences.
MAX_STOP_SEQUENCES = 4
ROLES: Mapping[str, Role] = {
    "system": "system",
    "developer": "system",  # what OpenAI's newer models call the system message
    "user": "user",
    "assistant": "assistant",
}
# The OpenAI error `type` of each status (their SDKs and tools read it; `code` carries the
# service's own stable error type).
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}
SERVER_ERROR = "server_error"
# The runtime's finish reasons that OpenAI's wire format has no name for.
FINISH_REASONS = {"other": "stop"}


class OpenAIError(ServiceError):
    """A refusal of an OpenAI-style request, naming the parameter at fault (`param`)."""

    def __init__(self, status: int, code: str, message: str, *, param: str | None = None) -> None:
        super().__init__(status, code, message)
        self.param = param


# -- the request -------------------------------------------------------------------------------


class ContentPart(BaseModel):
    """One part of a message's content: only text parts are served."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    # Extra keys are allowed: a client sends back the assistant message it was given, with
    # `refusal`, `annotations`, `audio`: null. A tool call in it is refused (see below).
    model_config = ConfigDict(extra="allow")

    role: str = Field(description="system, developer, user or assistant.")
    content: str | list[ContentPart] | None = None
    name: str | None = None


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool | None = None


class ChatCompletionRequest(BaseModel):
    """The body of `POST /v1/chat/completions`. Fields OpenAI has that this gateway does not
    serve are listed so a request using them gets a 400 naming them."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, description="A name from GET /v1/models.")
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    response_format: ResponseFormat | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    user: str | None = Field(default=None, description="Accepted; not used.")
    metadata: dict[str, str] | None = Field(default=None, description="Accepted; not used.")
    # Served only at their neutral value (refused with a 400 otherwise).
    n: int | None = Field(default=None, ge=1, description="Only 1.")
    top_p: float | None = Field(default=None, description="Only 1.")
    presence_penalty: float | None = Field(default=None, description="Only 0.")
    frequency_penalty: float | None = Field(default=None, description="Only 0.")
    logprobs: bool | None = Field(default=None, description="Only false.")
    top_logprobs: int | None = Field(default=None, description="Not served.")
    logit_bias: dict[str, float] | None = Field(default=None, description="Only empty.")
    tools: list[dict[str, Any]] | None = Field(default=None, description="Not served.")
    tool_choice: str | dict[str, Any] | None = Field(default=None, description='Only "none".')
    parallel_tool_calls: bool | None = None
    functions: list[dict[str, Any]] | None = Field(default=None, description="Not served.")
    function_call: str | dict[str, Any] | None = Field(default=None, description="Not served.")
    store: bool | None = Field(default=None, description="Only false: nothing is stored.")


def unsupported(param: str, what: str) -> OpenAIError:
    return OpenAIError(
        400,
        "unsupported_parameter",
        f"'{param}' is not supported by this gateway: {what}.",
        param=param,
    )


def check_supported(body: ChatCompletionRequest) -> None:
    """A 400 naming the first parameter asked for that the gateway cannot honour."""
    neutral: tuple[tuple[str, object, object, str], ...] = (
        ("n", body.n, 1, "it answers with one choice; leave n out or set it to 1"),
        ("top_p", body.top_p, 1, "use temperature instead"),
        ("presence_penalty", body.presence_penalty, 0, "leave it out"),
        ("frequency_penalty", body.frequency_penalty, 0, "leave it out"),
        ("logprobs", body.logprobs, False, "no log probabilities are returned"),
        ("store", body.store, False, "no completion is stored"),
    )
    for param, value, allowed, what in neutral:
        if value is not None and value != allowed:
            raise unsupported(param, what)
    if body.top_logprobs is not None:
        raise unsupported("top_logprobs", "no log probabilities are returned")
    if body.logit_bias:
        raise unsupported("logit_bias", "leave it out")
    if body.tools or body.functions or body.function_call is not None:
        param = "tools" if body.tools else "functions" if body.functions else "function_call"
        raise unsupported(param, "tool calling is not served here; call the model without tools")
    if body.tool_choice is not None and body.tool_choice != "none":
        raise unsupported("tool_choice", "tool calling is not served here")


def message_text(message: ChatMessage, index: int) -> str:
    """A message's text: its string content, or its text parts joined."""
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    pieces: list[str] = []
    for position, part in enumerate(content):
        if part.type != "text" or part.text is None:
            raise unsupported(
                f"messages[{index}].content[{position}].type",
                f"only text parts are served, not {part.type!r}",
            )
        pieces.append(part.text)
    return "".join(pieces)


def conversation(system: FeatureSystem, messages: Sequence[ChatMessage]) -> tuple[Message, ...]:
    """The messages as the runtime's, each through the input guardrails (a 422 naming it)."""
    converted: list[Message] = []
    for index, message in enumerate(messages):
        role = ROLES.get(message.role)
        if role is None:
            raise unsupported(
                f"messages[{index}].role",
                f"role {message.role!r} is not served (use system, developer, user or "
                "assistant; tool messages need tool calling)",
            )
        extra = message.model_extra or {}
        for key in ("tool_calls", "function_call", "audio"):
            if extra.get(key):
                raise unsupported(f"messages[{index}].{key}", "tool calling is not served here")
        text = message_text(message, index)
        cleaned = system.clean(text, (), what=f"content of messages[{index}]")
        converted.append(Message(role=role, content=cleaned))
    return tuple(converted)


def stop_sequences(stop: str | list[str] | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    sequences = (stop,) if isinstance(stop, str) else tuple(stop)
    if len(sequences) > MAX_STOP_SEQUENCES or not all(sequences):
        raise OpenAIError(
            400,
            "invalid_value",
            f"'stop' takes up to {MAX_STOP_SEQUENCES} non-empty strings.",
            param="stop",
        )
    return sequences


@functools.lru_cache(maxsize=64)
def _compiled(schema_json: str) -> jsonschema_rs.Validator:
    """A schema compiled once (clients send the same one on every call). Offline: a `$ref`
    in a client's schema never makes the service fetch a URL."""
    schema = json.loads(schema_json)
    jsonschema_rs.meta.validate(schema)
    return jsonschema_rs.Draft202012Validator(schema, offline=True)


@dataclass(frozen=True, slots=True)
class Shape:
    """What the answer must be: any text, a JSON object, or JSON valid against a schema."""

    output: OutputFormat = TEXT_OUTPUT
    validator: jsonschema_rs.Validator | None = None

    @property
    def checked(self) -> bool:
        return self.output.type != "text"

    def problem(self, text: str) -> str | None:
        """Why `text` is not the answer asked for; None when it is."""
        if not self.checked:
            return None
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            return "the answer is not JSON"
        if self.validator is None:
            return None if isinstance(value, dict) else "the answer is not a JSON object"
        error = next(iter(self.validator.iter_errors(value)), None)
        return None if error is None else f"the answer does not match the schema: {error.message}"


def answer_shape(response_format: ResponseFormat | None) -> Shape:
    if response_format is None or response_format.type == "text":
        return Shape()
    if response_format.type == "json_object":
        return Shape(OutputFormat(type="json"))
    spec = response_format.json_schema
    if spec is None or spec.schema_ is None:
        raise OpenAIError(
            400,
            "invalid_value",
            "'response_format.json_schema.schema' is required with type json_schema.",
            param="response_format.json_schema.schema",
        )
    try:
        validator = _compiled(orjson.dumps(spec.schema_, option=orjson.OPT_SORT_KEYS).decode())
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as error:
        raise OpenAIError(
            400,
            "invalid_value",
            f"'response_format.json_schema.schema' is not a valid JSON Schema: "
            f"{' '.join(str(error).split())[:200]}",
            param="response_format.json_schema.schema",
        ) from None
    output = OutputFormat(type="json_schema", json_schema=spec.schema_, schema_name=spec.name)
    return Shape(output, validator)


def to_llm_request(
    system: FeatureSystem, body: ChatCompletionRequest, chain: Sequence[ModelTarget], shape: Shape
) -> LLMRequest:
    """The runtime's request for the chain's primary (the client swaps in each target's
    model as it goes down the chain)."""
    check_supported(body)
    limit = body.max_completion_tokens or body.max_tokens
    request = LLMRequest(
        model=chain[0].model,
        messages=conversation(system, body.messages),
        temperature=body.temperature,
        stop=stop_sequences(body.stop),
        seed=body.seed,
        output=shape.output,
    )
    # Without a limit the runtime's own default applies (as for /v1/ask).
    return request if limit is None else request.model_copy(update={"max_tokens": limit})


# -- the answers -------------------------------------------------------------------------------


def finish_reason(reason: str | None) -> str:
    return "stop" if reason is None else FINISH_REASONS.get(reason, reason)


def usage_body(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
    }


def completion_body(
    completion_id: str, created: int, model: str, text: str, reason: str | None, usage: Usage
) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": CHAT_OBJECT,
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "finish_reason": finish_reason(reason),
                "logprobs": None,
            }
        ],
        "usage": usage_body(usage),
    }


def chunk_body(
    completion_id: str,
    created: int,
    model: str,
    delta: Mapping[str, Any] | None,
    reason: str | None = None,
    *,
    usage: Usage | None = None,
    with_usage: bool = False,
) -> dict[str, Any]:
    """One chunk: a delta of the one choice (with its finish reason at the end), or, with
    `usage`, the last chunk that `stream_options.include_usage` asks for (no choices)."""
    body: dict[str, Any] = {
        "id": completion_id,
        "object": CHUNK_OBJECT,
        "created": created,
        "model": model,
        "choices": []
        if delta is None
        else [{"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}],
    }
    if with_usage:  # as OpenAI does: every chunk has the key, only the last a value
        body["usage"] = None if usage is None else usage_body(usage)
    return body


def error_body(error: ServiceError) -> dict[str, Any]:
    """An OpenAI error object for any of the service's errors."""
    param = error.param if isinstance(error, OpenAIError) else None
    return {
        "error": {
            "message": error.message,
            "type": ERROR_TYPES.get(error.status, SERVER_ERROR),
            "param": param,
            "code": error.type,
        }
    }


# -- the documented shapes (OpenAPI) -----------------------------------------------------------


class ErrorObject(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    """An OpenAI-style error: the SDKs raise their usual exception class for its status."""

    error: ErrorObject


class AssistantMessage(BaseModel):
    role: Literal["assistant"]
    content: str | None
    refusal: str | None = None


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop", "length", "content_filter", "tool_calls"]
    logprobs: None = None


class PromptTokensDetails(BaseModel):
    cached_tokens: int


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | None = None


class ChatCompletion(BaseModel):
    id: str = Field(description="chatcmpl-<request id>")
    object: Literal["chat.completion"]
    created: int
    model: str = Field(description="The model that answered (a fallback's when one did).")
    choices: list[Choice]
    usage: CompletionUsage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str = Field(description="The provider of the name's primary target.")


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelCard]
