from __future__ import annotations

import os
import uuid

import pytest
from pydantic import ValidationError

from airuntime.types import (
    Chunk,
    LLMRequest,
    LLMResponse,
    Message,
    ModelTarget,
    OutputFormat,
    Usage,
    model_target,
    new_request_id,
)


def request(*messages: Message, **fields: object) -> LLMRequest:
    return LLMRequest.model_validate({"model": "m", "messages": messages, **fields})


def test_request_defaults_are_safe() -> None:
    built = request(Message(role="user", content="hi"))

    assert built.max_tokens == 1024
    assert built.output.type == "text"
    assert built.stop == ()
    assert len(built.request_id) == 32


def test_every_request_gets_its_own_id() -> None:
    first = request(Message(role="user", content="a"))
    second = request(Message(role="user", content="a"))

    assert first.request_id != second.request_id


def test_last_user_message_skips_other_roles() -> None:
    built = request(
        Message(role="system", content="rules"),
        Message(role="user", content="first"),
        Message(role="assistant", content="answer"),
        Message(role="user", content="second"),
        Message(role="assistant", content="more"),
    )

    assert built.last_user_message == "second"
    assert request(Message(role="system", content="x")).last_user_message == ""


@pytest.mark.parametrize(
    "fields",
    [
        {"messages": ()},
        {"model": ""},
        {"temperature": 2.5},
        {"max_tokens": 0},
        {"unknown": 1},
    ],
)
def test_invalid_requests_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        LLMRequest.model_validate(
            {"model": "m", "messages": [{"role": "user", "content": "x"}], **fields}
        )


def test_models_are_immutable() -> None:
    message = Message(role="user", content="x")

    with pytest.raises(ValidationError):
        message.content = "changed"  # type: ignore[misc]


def test_usage_totals_input_and_output() -> None:
    assert Usage(input_tokens=3, output_tokens=4, cache_read_tokens=2).total_tokens == 7


def test_response_and_chunk_carry_what_callers_need() -> None:
    response = LLMResponse(text="ok", model="m", provider="mock", usage=Usage(input_tokens=1))
    chunk = Chunk(text="o", index=0)
    schema = OutputFormat(type="json_schema", json_schema={"type": "object"})

    assert response.finish_reason == "stop"
    assert response.usage.input_tokens == 1
    assert chunk.finish_reason is None
    assert schema.schema_name == "output"


def test_model_targets_are_shared_per_provider_and_model() -> None:
    target = model_target("openai", "gpt-5-mini")

    assert target == ModelTarget(provider="openai", model="gpt-5-mini")
    assert model_target("openai", "gpt-5-mini") is target
    assert model_target("openai", "gpt-4.1-mini") != target
    with pytest.raises(ValidationError):
        model_target("", "gpt-5-mini")


@pytest.mark.parametrize(
    "seed", [b"\x00" * 16, b"\xff" * 16, bytes(range(16)), bytes(range(16, 0, -1))]
)
def test_request_ids_are_uuid4_hex(monkeypatch: pytest.MonkeyPatch, seed: bytes) -> None:
    monkeypatch.setattr(os, "urandom", lambda size: seed[:size])

    made = new_request_id()

    assert made == uuid.UUID(bytes=seed, version=4).hex
    assert uuid.UUID(hex=made).version == 4


def test_requests_made_while_serving_a_request_carry_its_id() -> None:
    from airuntime.types import CURRENT_REQUEST_ID

    token = CURRENT_REQUEST_ID.set("req-42")
    try:
        inside = LLMRequest(model="m", messages=(Message(role="user", content="hi"),))
    finally:
        CURRENT_REQUEST_ID.reset(token)
    outside = LLMRequest(model="m", messages=(Message(role="user", content="hi"),))

    assert inside.request_id == "req-42"
    assert outside.request_id != "req-42"
    assert len(outside.request_id) == 32
