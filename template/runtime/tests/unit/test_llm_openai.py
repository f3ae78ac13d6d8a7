"""The OpenAI adapter drives the real SDK against a mocked HTTP transport (no network).

Payloads are shaped like the API's own; each outcome must map to the right class of the error
taxonomy with the right `retryable` flag, after exactly one HTTP request (SDK retries are off).
"""

from __future__ import annotations

import pytest

# The adapter needs its vendor's SDK, an extra a project installs only when it chose the vendor.
pytest.importorskip(
    "openai", reason="the openai extra is not installed: this project did not choose OpenAI"
)

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2

from airuntime.errors import (
    AuthenticationError,
    BadRequestError,
    ContentFilteredError,
    ContextLengthExceededError,
    LLMError,
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitedError,
    ServerError,
)
from airuntime.model.providers.openai import OpenAIClient, is_strict_compatible
from airuntime.types import Chunk, LLMRequest, Message, OutputFormat

Reply = Callable[[httpx2.Request], httpx2.Response]


class FakeOpenAI:
    """Answers the SDK's HTTP requests from a queue and keeps what was sent."""

    def __init__(self) -> None:
        self.sent: list[httpx2.Request] = []
        self.replies: list[Reply] = []

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.sent.append(request)
        return self.replies.pop(0)(request)

    def respond(
        self, status: int = 200, body: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        self.replies.append(lambda _: httpx2.Response(status, json=body, headers=headers))

    def stream(self, *events: dict[str, Any]) -> None:
        lines = [f"data: {json.dumps(event)}\n\n" for event in events] + ["data: [DONE]\n\n"]
        body = "".join(lines).encode()
        headers = {"content-type": "text/event-stream"}
        self.replies.append(lambda _: httpx2.Response(200, content=body, headers=headers))

    def fail(self, error: type[httpx2.TransportError]) -> None:
        def raise_error(request: httpx2.Request) -> httpx2.Response:
            raise error("simulated", request=request)

        self.replies.append(raise_error)

    def body(self) -> dict[str, Any]:
        sent: dict[str, Any] = json.loads(self.sent[-1].content)
        return sent


def completion(
    content: str | None = "Hello!", finish_reason: str = "stop", refusal: str | None = None
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1767225600,
        "model": "gpt-5.4-mini-2026-03-17",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": content,
                    "refusal": refusal,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": 19,
            "completion_tokens": 10,
            "total_tokens": 29,
            "prompt_tokens_details": {"cached_tokens": 8, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
        "service_tier": "default",
        "system_fingerprint": "fp_44709d6fcb",
    }


def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-123",
        "object": "chat.completion.chunk",
        "created": 1767225600,
        "model": "gpt-5.4-mini-2026-03-17",
        "system_fingerprint": "fp_44709d6fcb",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        "usage": None,
    }


USAGE_CHUNK = {
    "id": "chatcmpl-123",
    "object": "chat.completion.chunk",
    "created": 1767225600,
    "model": "gpt-5.4-mini-2026-03-17",
    "choices": [],
    "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
}


def error_body(message: str, error_type: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


def ask(**fields: Any) -> LLMRequest:
    defaults: dict[str, Any] = {
        "model": "gpt-5.4-mini",
        "messages": [
            Message(role="system", content="Be brief."),
            Message(role="user", content="Say hello."),
        ],
    }
    return LLMRequest.model_validate({**defaults, **fields})


async def drain(chunks: AsyncIterator[Chunk], into: list[Chunk]) -> None:
    """Keep every chunk a stream yields before it fails."""
    async for chunk in chunks:
        into.append(chunk)


@pytest.fixture
def api() -> FakeOpenAI:
    return FakeOpenAI()


def adapter(api: FakeOpenAI, base_url: str | None = None) -> OpenAIClient:
    transport = httpx2.MockTransport(api.handle)
    return OpenAIClient(
        api_key="sk-test",
        base_url=base_url,
        timeout_seconds=5,
        http_client=httpx2.AsyncClient(transport=transport),
    )


@pytest.fixture
async def client(api: FakeOpenAI) -> AsyncIterator[OpenAIClient]:
    built = adapter(api)
    yield built
    await built.aclose()


async def test_completion_maps_text_usage_and_ids(api: FakeOpenAI, client: OpenAIClient) -> None:
    api.respond(body=completion())
    request = ask()

    response = await client.complete(request)

    assert response.text == "Hello!"
    assert response.provider == client.provider == "openai"
    assert response.model == "gpt-5.4-mini-2026-03-17"
    assert response.finish_reason == "stop"
    assert response.response_id == "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"
    assert response.request_id == request.request_id
    assert (response.usage.input_tokens, response.usage.output_tokens) == (19, 10)
    assert response.usage.cache_read_tokens == 8
    assert response.latency_ms >= 0


async def test_request_carries_every_parameter(api: FakeOpenAI, client: OpenAIClient) -> None:
    api.respond(body=completion())
    request = ask(temperature=0.2, max_tokens=50, stop=["\n\n"], seed=7)

    await client.complete(request)

    sent = api.sent[-1]
    assert sent.url == "https://api.openai.com/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.headers["x-client-request-id"] == request.request_id
    assert sent.headers["x-stainless-retry-count"] == "0"
    assert api.body() == {
        "model": "gpt-5.4-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello."},
        ],
        "max_completion_tokens": 50,
        "temperature": 0.2,
        "stop": ["\n\n"],
        "seed": 7,
    }


async def test_a_compatible_server_gets_max_tokens_at_its_base_url(api: FakeOpenAI) -> None:
    api.respond(body=completion())
    local = adapter(api, base_url="http://localhost:8000/v1")

    await local.complete(ask(max_tokens=64))
    await local.aclose()

    assert api.sent[-1].url == "http://localhost:8000/v1/chat/completions"
    assert api.body()["max_tokens"] == 64
    assert "max_completion_tokens" not in api.body()


async def test_json_mode_asks_for_a_json_object(api: FakeOpenAI, client: OpenAIClient) -> None:
    api.respond(body=completion('{"greeting": "hi"}'))

    response = await client.complete(ask(output=OutputFormat(type="json")))

    assert json.loads(response.text) == {"greeting": "hi"}
    assert api.body()["response_format"] == {"type": "json_object"}
    # JSON mode is refused unless the conversation mentions JSON, so the adapter says it.
    assert api.body()["messages"][0] == {
        "role": "system",
        "content": "Respond with a single JSON object.",
    }


async def test_json_mode_adds_no_instruction_when_json_is_mentioned(
    api: FakeOpenAI, client: OpenAIClient
) -> None:
    api.respond(body=completion("{}"))
    messages = [Message(role="user", content="Answer in JSON.")]

    await client.complete(ask(messages=messages, output=OutputFormat(type="json")))

    assert api.body()["messages"] == [{"role": "user", "content": "Answer in JSON."}]


CLOSED_SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"type": "string"},
        "items": {"type": "array", "items": {"$ref": "#/$defs/I"}},
    },
    "required": ["answer", "items"],
    "additionalProperties": False,
    "$defs": {
        "I": {
            "type": "object",
            "properties": {"n": {"type": "integer"}},
            "required": ["n"],
            "additionalProperties": False,
        }
    },
}
OPEN_SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}}


@pytest.mark.parametrize(("schema", "strict"), [(CLOSED_SCHEMA, True), (OPEN_SCHEMA, False)])
async def test_schema_output_uses_structured_outputs_strict_when_it_can(
    api: FakeOpenAI, client: OpenAIClient, schema: dict[str, Any], strict: bool
) -> None:
    api.respond(body=completion('{"answer": "x", "items": []}'))
    output = OutputFormat(type="json_schema", json_schema=schema, schema_name="reply")

    await client.complete(ask(output=output))

    assert api.body()["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": schema, "strict": strict},
    }


@pytest.mark.parametrize(
    ("schema", "strict"),
    [
        ({"type": "object", "properties": {}, "additionalProperties": False}, True),
        ({"type": "object", "properties": {"a": {}}, "additionalProperties": False}, False),
        ({"type": "array", "items": {"type": "object"}}, False),
        ({"type": "string"}, True),
    ],
)
def test_strict_mode_needs_closed_objects_with_every_property_required(
    schema: dict[str, Any], strict: bool
) -> None:
    assert is_strict_compatible(schema) is strict


async def test_stream_yields_text_then_finish_and_usage(
    api: FakeOpenAI, client: OpenAIClient
) -> None:
    api.stream(
        chunk({"role": "assistant", "content": "", "refusal": None}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo there"}),
        chunk({}, finish_reason="length"),
        USAGE_CHUNK,
    )

    chunks = [piece async for piece in client.stream(ask())]

    assert [piece.text for piece in chunks] == ["Hel", "lo there", ""]
    assert [piece.index for piece in chunks] == [0, 1, 2]
    assert chunks[-1].finish_reason == "length"
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.input_tokens, chunks[-1].usage.output_tokens) == (12, 3)
    assert api.body()["stream"] is True
    assert api.body()["stream_options"] == {"include_usage": True}


async def test_stream_stopped_by_the_content_filter_raises_after_the_text(
    api: FakeOpenAI, client: OpenAIClient
) -> None:
    api.stream(chunk({"content": "Partial"}), chunk({}, finish_reason="content_filter"))
    received: list[Chunk] = []

    with pytest.raises(ContentFilteredError):
        await drain(client.stream(ask()), received)

    assert [piece.text for piece in received] == ["Partial"]


async def test_an_error_event_mid_stream_is_a_server_error(
    api: FakeOpenAI, client: OpenAIClient
) -> None:
    api.stream(
        chunk({"content": "Hi"}), error_body("The server had an error", "server_error", None)
    )

    with pytest.raises(ServerError, match="The server had an error"):
        await drain(client.stream(ask()), [])


@pytest.mark.parametrize(
    ("status", "body", "headers", "error_class", "retryable"),
    [
        (
            429,
            error_body("Rate limit reached for gpt-5.4-mini", "tokens", "rate_limit_exceeded"),
            {"retry-after": "7"},
            RateLimitedError,
            True,
        ),
        (
            429,
            error_body(
                "You exceeded your current quota", "insufficient_quota", "insufficient_quota"
            ),
            {},
            AuthenticationError,
            False,
        ),
        (500, error_body("The server had an error", "server_error", None), {}, ServerError, True),
        (503, error_body("The engine is overloaded", "server_error", None), {}, ServerError, True),
        (409, error_body("Conflict", "invalid_request_error", None), {}, ServerError, True),
        (408, error_body("Request timed out", "timeout", None), {}, ProviderTimeoutError, True),
        (
            401,
            error_body(
                "Incorrect API key provided: sk-test", "invalid_request_error", "invalid_api_key"
            ),
            {},
            AuthenticationError,
            False,
        ),
        (
            403,
            error_body("Country not supported", "request_forbidden", None),
            {},
            AuthenticationError,
            False,
        ),
        (
            400,
            error_body(
                "This model's maximum context length is 128000 tokens. However, your messages "
                "resulted in 130017 tokens.",
                "invalid_request_error",
                "context_length_exceeded",
            ),
            {},
            ContextLengthExceededError,
            False,
        ),
        (
            400,
            error_body(
                "Invalid prompt: flagged", "invalid_request_error", "content_policy_violation"
            ),
            {},
            ContentFilteredError,
            False,
        ),
        (
            400,
            error_body("Unsupported value: 'temperature'", "invalid_request_error", None),
            {},
            BadRequestError,
            False,
        ),
        (
            404,
            error_body("The model does not exist", "invalid_request_error", "model_not_found"),
            {},
            BadRequestError,
            False,
        ),
    ],
)
async def test_http_errors_map_to_the_taxonomy_after_one_request(
    api: FakeOpenAI,
    client: OpenAIClient,
    status: int,
    body: dict[str, Any],
    headers: dict[str, str],
    error_class: type[LLMError],
    retryable: bool,
) -> None:
    api.respond(status, body, headers)

    with pytest.raises(LLMError) as caught:
        await client.complete(ask())

    assert type(caught.value) is error_class
    assert caught.value.retryable is retryable
    assert caught.value.status_code == status
    assert (caught.value.provider, caught.value.model) == ("openai", "gpt-5.4-mini")
    assert caught.value.message == body["error"]["message"]
    assert len(api.sent) == 1, "the SDK must not retry on its own"


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after-ms": "1500", "retry-after": "7"}, 1.5),
        ({"retry-after": "Thu, 01 Jan 2099 00:00:00 GMT"}, None),
        ({}, None),
    ],
)
async def test_rate_limit_reads_the_retry_after_headers(
    api: FakeOpenAI, client: OpenAIClient, headers: dict[str, str], retry_after: float | None
) -> None:
    api.respond(429, error_body("Rate limit reached", "requests", "rate_limit_exceeded"), headers)

    with pytest.raises(RateLimitedError) as caught:
        await client.complete(ask())

    if "Thu" in headers.get("retry-after", ""):
        assert caught.value.retry_after is not None
        assert caught.value.retry_after > 1_000_000
    else:
        assert caught.value.retry_after == retry_after


@pytest.mark.parametrize(
    ("failure", "error_class"),
    [(httpx2.ReadTimeout, ProviderTimeoutError), (httpx2.ConnectError, ProviderConnectionError)],
)
async def test_transport_failures_are_retryable(
    api: FakeOpenAI,
    client: OpenAIClient,
    failure: type[httpx2.TransportError],
    error_class: type[LLMError],
) -> None:
    api.fail(failure)

    with pytest.raises(error_class) as caught:
        await client.complete(ask())

    assert caught.value.retryable
    assert len(api.sent) == 1


async def test_content_filter_finish_reason_is_an_error(
    api: FakeOpenAI, client: OpenAIClient
) -> None:
    api.respond(body=completion("partial", finish_reason="content_filter"))

    with pytest.raises(ContentFilteredError) as caught:
        await client.complete(ask())

    assert not caught.value.retryable


async def test_a_refusal_is_a_content_filter_error(api: FakeOpenAI, client: OpenAIClient) -> None:
    api.respond(body=completion(None, refusal="I can't help with that."))

    with pytest.raises(ContentFilteredError, match="I can't help with that"):
        await client.complete(ask())


async def test_length_and_tool_calls_finish_reasons_map(
    api: FakeOpenAI, client: OpenAIClient
) -> None:
    api.respond(body=completion("cut", finish_reason="length"))
    api.respond(body=completion(None, finish_reason="tool_calls"))

    assert (await client.complete(ask())).finish_reason == "length"
    called = await client.complete(ask())
    assert (called.finish_reason, called.text) == ("tool_calls", "")


async def test_a_response_without_choices_is_a_server_error(
    api: FakeOpenAI, client: OpenAIClient
) -> None:
    api.respond(body={**completion(), "choices": []})

    with pytest.raises(ServerError, match="no choices"):
        await client.complete(ask())


async def test_aclose_can_be_called_twice(api: FakeOpenAI) -> None:
    built = adapter(api)

    await built.aclose()
    await built.aclose()
