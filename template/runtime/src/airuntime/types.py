"""The vocabulary of the model boundary: what goes into a model call and what comes out.

Every provider adapter, the mock and the resilience layer speak these types, so code above the
boundary never sees a vendor SDK object. All models are immutable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "content_filter", "tool_calls", "other"]
ToolChoice = Literal["auto", "required", "none"]
# What both vendors accept as a function's name.
TOOL_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ToolCall(_Frozen):
    """A model's request to run one tool.

    `arguments` is the JSON text the model wrote (OpenAI sends it as text, Anthropic as an
    object the adapter serialises): the caller validates it, so a model that writes broken
    JSON gets the error back instead of crashing the adapter.
    """

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: str = "{}"

    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as a JSON object; ValueError when they are not one."""
        value = json.loads(self.arguments or "{}")
        if not isinstance(value, dict):
            raise ValueError(f"the arguments of {self.name} are not a JSON object")
        return value


class ToolSpec(_Frozen):
    """A tool offered to the model: its name, what it does, and its arguments' JSON Schema
    (an object schema, as both vendors require)."""

    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: str
    parameters: Mapping[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )


class Message(_Frozen):
    """One role-tagged message of a conversation.

    An assistant message may carry the tool calls the model made (`tool_calls`); a `tool`
    message carries one call's result, naming the call it answers (`tool_call_id`), and
    `is_error` when the result is an error the model should see as one.
    """

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    is_error: bool = False


class OutputFormat(_Frozen):
    """What shape of output the request asks for.

    `text` is free text; `json` asks for any JSON object; `json_schema` asks for JSON that
    matches `json_schema` (providers that support it enforce the schema server-side).
    """

    type: Literal["text", "json", "json_schema"] = "text"
    json_schema: Mapping[str, Any] | None = None
    schema_name: str = "output"


TEXT_OUTPUT = OutputFormat()


def new_request_id() -> str:
    """A random id that follows one logical request through retries, fallbacks and logs: the
    hex of a random (version 4) UUID, `uuid.uuid4().hex`, made without the UUID object (its
    checks cost more than the random bytes)."""
    value = int.from_bytes(os.urandom(16), "big")
    value = (value & _UUID4_CLEAR) | _UUID4_SET  # the variant (RFC 4122) and version 4 bits
    return f"{value:032x}"


# What uuid.UUID(bytes=..., version=4) clears and sets in the 128-bit value.
_UUID4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64)) & ((1 << 128) - 1)
_UUID4_SET = (0x8000 << 48) | (4 << 76)


class LLMRequest(_Frozen):
    """One model call, independent of the provider that will serve it."""

    model: str = Field(min_length=1)
    messages: tuple[Message, ...] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: PositiveInt = 1024
    stop: tuple[str, ...] = ()
    seed: int | None = None
    output: OutputFormat = TEXT_OUTPUT
    # Tools the model may call; `tool_choice` only matters when there are some.
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = "auto"
    request_id: str = Field(default_factory=new_request_id)
    metadata: Mapping[str, str] = Field(default_factory=dict)

    @property
    def last_user_message(self) -> str:
        """The content of the last user message, or an empty string when there is none."""
        for message in reversed(self.messages):
            if message.role == "user":
                return message.content
        return ""


class ModelTarget(_Frozen):
    """One (provider, model) a request can be sent to: a primary or a fallback."""

    provider: str = Field(min_length=1)
    model: str = Field(min_length=1)

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


_MODEL_TARGETS: dict[tuple[str, str], ModelTarget] = {}
_MODEL_TARGETS_KEPT = 1024


def model_target(provider: str, model: str) -> ModelTarget:
    """One shared ModelTarget per (provider, model), made on first use: every call asks for its
    targets, and the breakers find their entries by identity before comparing fields. (Shared
    safely: a ModelTarget is immutable; a fresh one would be equal.)"""
    key = (provider, model)
    found = _MODEL_TARGETS.get(key)
    if found is None:
        if len(_MODEL_TARGETS) >= _MODEL_TARGETS_KEPT:
            _MODEL_TARGETS.clear()
        found = _MODEL_TARGETS[key] = ModelTarget(provider=provider, model=model)
    return found


class Usage(_Frozen):
    """Tokens a call consumed, as the provider reported them (or the mock estimated them).

    `input_tokens` counts every prompt token, including the `cache_read_tokens` served from the
    provider's prompt cache (adapters add them up where a vendor reports them apart).
    """

    input_tokens: NonNegativeInt = 0
    output_tokens: NonNegativeInt = 0
    cache_read_tokens: NonNegativeInt = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class LLMResponse(_Frozen):
    """A completed model call."""

    text: str
    model: str
    provider: str
    finish_reason: FinishReason = "stop"
    usage: Usage = Field(default_factory=Usage)
    response_id: str | None = None
    latency_ms: float = Field(default=0.0, ge=0)
    request_id: str | None = None
    # The tools the model asked to run (finish_reason "tool_calls"), in its order.
    tool_calls: tuple[ToolCall, ...] = ()


class ToolCallDelta(_Frozen):
    """A piece of a tool call as it streams: the first piece of a call names it (`id`, `name`),
    the next ones add to its JSON arguments. `position` tells the calls of one answer apart."""

    position: NonNegativeInt
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class Chunk(_Frozen):
    """One piece of a streamed response. The last chunk carries the finish reason and usage,
    and the whole tool calls assembled from the deltas that streamed before it."""

    text: str
    index: NonNegativeInt
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    tool_call_delta: ToolCallDelta | None = None
    tool_calls: tuple[ToolCall, ...] = ()


class EmbeddingRequest(_Frozen):
    """Texts to turn into vectors with one embedding model, in one call.

    `dimensions` asks models that support it (OpenAI's text-embedding-3 family) for shorter
    vectors; None leaves the model's own size.
    """

    model: str = Field(min_length=1)
    texts: tuple[str, ...] = Field(min_length=1)
    dimensions: PositiveInt | None = None
    request_id: str = Field(default_factory=new_request_id)
    metadata: Mapping[str, str] = Field(default_factory=dict)


class EmbeddingResponse(_Frozen):
    """One vector per text of the request, in the request's order."""

    vectors: tuple[tuple[float, ...], ...]
    model: str
    provider: str
    usage: Usage = Field(default_factory=Usage)
    latency_ms: float = Field(default=0.0, ge=0)
    request_id: str | None = None
