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
from airuntime.types import Chunk, LLMRequest, Message, OutputFormat, ToolCall, ToolSpec

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

    def respond_bytes(self, content: bytes, content_type: str) -> None:
        headers = {"content-type": content_type}
        self.replies.append(lambda _: httpx2.Response(200, content=content, headers=headers))

    def stream(self, *events: dict[str, Any] | str) -> None:
        """Server-sent events: each a JSON payload (or, as a string, a raw `data:` value)."""
        data = [event if isinstance(event, str) else json.dumps(event) for event in events]
        lines = [f"data: {value}\n\n" for value in data] + ["data: [DONE]\n\n"]
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


SAFE = {"filtered": False, "severity": "safe"}


def azure_filter_results(**flagged: str) -> dict[str, Any]:
    """Azure OpenAI's content filter verdicts, with `flagged` categories at their severity."""
    categories = ("hate", "self_harm", "sexual", "violence")
    return {
        category: {"filtered": True, "severity": flagged[category]} if category in flagged else SAFE
        for category in categories
    }


def azure_filtered_completion() -> dict[str, Any]:
    """Azure OpenAI withholding an answer its output filter flagged: the choice has only the
    finish reason and the verdicts, no message."""
    return {
        "id": "chatcmpl-AzF1GxkqX9mJ2bVn8pQ4sT6uW0yZ",
        "object": "chat.completion",
        "created": 1767225600,
        "model": "gpt-4o-2024-11-20",
        "prompt_filter_results": [
            {"prompt_index": 0, "content_filter_results": azure_filter_results()}
        ],
        "choices": [
            {
                "index": 0,
                "finish_reason": "content_filter",
                "logprobs": None,
                "content_filter_results": azure_filter_results(violence="medium"),
            }
        ],
        "usage": {"prompt_tokens": 31, "completion_tokens": 12, "total_tokens": 43},
        "system_fingerprint": "fp_b705f0c291",
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


def adapter(api: FakeOpenAI, base_url: str | None = None, **options: Any) -> OpenAIClient:
    transport = httpx2.MockTransport(api.handle)
    return OpenAIClient(
        api_key="sk-test",
        base_url=base_url,
        timeout_seconds=5,
        http_client=httpx2.AsyncClient(transport=transport),
        **options,
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


async def test_a_proxy_in_front_of_openai_gets_max_completion_tokens_at_its_base_url(
    api: FakeOpenAI,
) -> None:
    """A base URL alone says nothing about the API behind it: a gateway in front of OpenAI's
    reasoning models needs the API's own parameter, which they require."""
    api.respond(body=completion())
    api.stream(chunk({"content": "Hi"}), chunk({}, finish_reason="stop"), USAGE_CHUNK)
    proxy = adapter(api, base_url="https://llm-gateway.internal.example/openai/v1")

    await proxy.complete(ask(model="gpt-5.4-mini", max_tokens=64))
    sent = [api.body()]
    await drain(proxy.stream(ask(model="gpt-5.4-mini", max_tokens=64)), [])
    sent.append(api.body())
    await proxy.aclose()

    assert api.sent[0].url == "https://llm-gateway.internal.example/openai/v1/chat/completions"
    for body in sent:
        assert body["max_completion_tokens"] == 64
        assert "max_tokens" not in body


async def test_a_server_that_knows_only_max_tokens_gets_it_when_configured(
    api: FakeOpenAI,
) -> None:
    api.respond(body=completion())
    api.stream(chunk({"content": "Hi"}), chunk({}, finish_reason="stop"), USAGE_CHUNK)
    local = adapter(api, base_url="http://localhost:11434/v1", output_limit_parameter="max_tokens")

    await local.complete(ask(model="llama3.2", max_tokens=64))
    sent = [api.body()]
    await drain(local.stream(ask(model="llama3.2", max_tokens=64)), [])
    sent.append(api.body())
    await local.aclose()

    assert api.sent[0].url == "http://localhost:11434/v1/chat/completions"
    for body in sent:
        assert body["max_tokens"] == 64
        assert "max_completion_tokens" not in body


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


@pytest.mark.parametrize(
    ("error", "error_class", "status"),
    [
        # An OpenAI-compatible server that ran out of room after finish_reason "length".
        ({"code": 400, "message": "Token limit reached"}, BadRequestError, 400),
        # vLLM's error object: the status as a number in `code`.
        (
            {
                "object": "error",
                "message": "This model's maximum context length is 8192 tokens. However, you "
                "requested 8300 tokens (8044 in the messages, 256 in the completion).",
                "type": "BadRequestError",
                "param": None,
                "code": 400,
            },
            ContextLengthExceededError,
            400,
        ),
        # LiteLLM's: the status as a string.
        (
            {"message": "litellm.RateLimitError: quota hit", "type": "None", "code": "429"},
            RateLimitedError,
            429,
        ),
        # Azure's: an explicit status, and its content filter's code.
        (
            {
                "message": "The response was filtered due to the prompt triggering Azure "
                "OpenAI's content management policy.",
                "type": None,
                "param": "prompt",
                "code": "content_filter",
                "status": 400,
            },
            ContentFilteredError,
            400,
        ),
        # OpenAI's own: no status, a code or a type that implies one.
        (
            {
                "message": "Rate limit reached for gpt-5.4-mini on tokens per min (TPM)",
                "type": "tokens",
                "param": None,
                "code": "rate_limit_exceeded",
            },
            RateLimitedError,
            429,
        ),
        (
            {
                "message": "The server had an error while processing your request.",
                "type": "server_error",
                "param": None,
                "code": None,
            },
            ServerError,
            500,
        ),
        ({"message": "Something went wrong"}, ServerError, None),
    ],
)
async def test_an_error_object_mid_stream_is_read_by_its_status_or_code(
    api: FakeOpenAI,
    client: OpenAIClient,
    error: dict[str, Any],
    error_class: type[LLMError],
    status: int | None,
) -> None:
    api.stream(
        chunk({"role": "assistant", "content": "Hi"}),
        chunk({}, finish_reason="length"),
        {"error": error},
    )
    received: list[Chunk] = []

    with pytest.raises(LLMError) as caught:
        await drain(client.stream(ask()), received)

    assert type(caught.value) is error_class
    assert caught.value.retryable is (error_class in (RateLimitedError, ServerError))
    assert caught.value.status_code == status
    assert caught.value.message == error["message"]
    assert [piece.text for piece in received] == ["Hi"]
    assert len(api.sent) == 1


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


async def test_an_error_mid_stream_that_is_only_a_string_is_a_server_error(
    api: FakeOpenAI, client: OpenAIClient
) -> None:
    api.stream(chunk({"content": "Hi"}), {"error": "upstream connection lost"})

    with pytest.raises(ServerError) as caught:
        await drain(client.stream(ask()), [])

    assert caught.value.status_code is None
    assert len(api.sent) == 1


def rate_limited(wait: str | None = None, per: str = "tokens per min (TPM)") -> str:
    """OpenAI's 429 message, which names the wait for this request when it knows it."""
    message = (
        f"Rate limit reached for gpt-5.4-mini in organization org-3kXvQ2 on {per}: "
        "Limit 200000, Used 199412, Requested 1260."
    )
    if wait is not None:
        message += f" Please try again in {wait}."
    return message + " Visit https://platform.openai.com/account/rate-limits to learn more."


def limits(
    requests: tuple[int, str] = (4999, "12ms"), tokens: tuple[int, str] = (0, "378ms")
) -> dict[str, str]:
    """The x-ratelimit-* headers every response carries: what is left of each limit and when
    it is whole again."""
    return {
        "x-ratelimit-limit-requests": "5000",
        "x-ratelimit-remaining-requests": str(requests[0]),
        "x-ratelimit-reset-requests": requests[1],
        "x-ratelimit-limit-tokens": "200000",
        "x-ratelimit-remaining-tokens": str(tokens[0]),
        "x-ratelimit-reset-tokens": tokens[1],
    }


@pytest.mark.parametrize(
    ("message", "error_type", "headers", "retry_after"),
    [
        # The message's wait, which knows the request's own size, beats the reset headers.
        (rate_limited("26.604s"), "tokens", limits(tokens=(588, "1.2s")), 26.604),
        (rate_limited("644ms"), "tokens", limits(), 0.644),
        (rate_limited("1m9.696s", "tokens per day (TPD)"), "tokens", limits(), 69.696),
        # Retry-After, when there is one, beats everything.
        (rate_limited("26.604s"), "tokens", {**limits(), "retry-after": "7"}, 7.0),
        # Without a wait in the message: the reset of the limit the error's type names...
        (rate_limited(), "requests", limits((0, "6m0s"), (149000, "20ms")), 360.0),
        (rate_limited(), "tokens", limits((4999, "1s"), (3200, "20ms")), 0.02),
        # ...else the one with nothing left, else the later of the two.
        (rate_limited(), None, limits((4999, "1s"), (0, "8.5s")), 8.5),
        (rate_limited(), None, limits((4999, "1s"), (3200, "20ms")), 1.0),
        (rate_limited(), "tokens", {}, None),
        # Azure OpenAI words it differently.
        (
            "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
            "2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. "
            "Please retry after 6 seconds.",
            None,
            {},
            6.0,
        ),
    ],
)
async def test_a_rate_limit_without_retry_after_waits_what_openai_says(
    api: FakeOpenAI,
    client: OpenAIClient,
    message: str,
    error_type: str | None,
    headers: dict[str, str],
    retry_after: float | None,
) -> None:
    api.respond(429, error_body(message, error_type or "", "rate_limit_exceeded"), headers)

    with pytest.raises(RateLimitedError) as caught:
        await client.complete(ask())

    assert caught.value.retry_after == pytest.approx(retry_after)
    assert caught.value.message == message


async def test_a_rate_limit_inside_a_stream_waits_what_its_message_says(
    api: FakeOpenAI, client: OpenAIClient
) -> None:
    api.stream(
        chunk({"role": "assistant", "content": ""}),
        {
            "error": {
                "message": rate_limited("2.5s"),
                "type": "tokens",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        },
    )

    with pytest.raises(RateLimitedError) as caught:
        await drain(client.stream(ask()), [])

    assert caught.value.retry_after == 2.5


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


async def test_azure_withholding_the_message_for_its_content_filter_is_a_content_filter_error(
    api: FakeOpenAI, client: OpenAIClient
) -> None:
    api.respond(body=azure_filtered_completion())

    with pytest.raises(ContentFilteredError) as caught:
        await client.complete(ask())

    assert not caught.value.retryable
    assert caught.value.message == "the output was stopped by the content filter"
    assert len(api.sent) == 1


def without_message(finish_reason: str) -> dict[str, Any]:
    body = completion(finish_reason=finish_reason)
    del body["choices"][0]["message"]
    return body


def with_message(message: Any) -> dict[str, Any]:
    body = completion()
    body["choices"][0]["message"] = message
    return body


def with_usage(usage: Any) -> dict[str, Any]:
    return {**completion(), "usage": usage}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (without_message("stop"), "the response's choice has no message (finish_reason 'stop')"),
        (with_message("Hello!"), "'str' object has no attribute 'refusal'"),
        (
            with_message({"role": "assistant", "content": [{"type": "text", "text": "Hi"}]}),
            "the message's content is not text: [{'type': 'text', 'text': 'Hi'}]",
        ),
        (
            with_usage({"prompt_tokens": "19", "completion_tokens": None}),
            "Usage.output_tokens: Input should be a valid integer",
        ),
        ({**completion(), "choices": None}, "the response has no choices"),
        ([completion()], "'list' object has no attribute 'choices'"),
    ],
)
async def test_a_response_of_an_unknown_shape_is_a_one_line_server_error(
    api: FakeOpenAI, client: OpenAIClient, body: Any, reason: str
) -> None:
    api.respond(body=body)

    with pytest.raises(ServerError) as caught:
        await client.complete(ask())

    assert reason in caught.value.message
    assert "\n" not in str(caught.value)
    assert caught.value.retryable
    assert len(api.sent) == 1


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"id": "chatcmpl-1", "choices": [', "application/json"),
        (b"<html><body>502 Bad Gateway</body></html>", "text/html"),
    ],
)
async def test_a_body_that_is_not_a_completion_is_a_server_error(
    api: FakeOpenAI, client: OpenAIClient, content: bytes, content_type: str
) -> None:
    api.respond_bytes(content, content_type)

    with pytest.raises(ServerError) as caught:
        await client.complete(ask())

    assert "\n" not in str(caught.value)
    assert len(api.sent) == 1


def annotation_chunk(**flagged: str) -> dict[str, Any]:
    """Azure's asynchronous filter: verdicts on text already streamed, in a choice with no delta."""
    return {
        "id": "chatcmpl-123",
        "object": "chat.completion.chunk",
        "created": 1767225600,
        "model": "gpt-4o-2024-11-20",
        "choices": [
            {
                "index": 0,
                "finish_reason": None,
                "content_filter_results": azure_filter_results(**flagged),
                "content_filter_offsets": {
                    "check_offset": 0,
                    "start_offset": 0,
                    "end_offset": 12,
                },
            }
        ],
    }


async def test_azure_stream_annotations_without_a_delta_add_no_text(
    api: FakeOpenAI, client: OpenAIClient
) -> None:
    prompt_results = {
        "id": "",
        "object": "",
        "created": 0,
        "model": "",
        "choices": [],
        "prompt_filter_results": [
            {"prompt_index": 0, "content_filter_results": azure_filter_results()}
        ],
    }
    api.stream(
        prompt_results,
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hello"}),
        chunk({"content": " there"}),
        annotation_chunk(),
        chunk({}, finish_reason="stop"),
        USAGE_CHUNK,
    )

    chunks = [piece async for piece in client.stream(ask())]

    assert "".join(piece.text for piece in chunks) == "Hello there"
    assert chunks[-1].finish_reason == "stop"


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (chunk({"content": 42}), "a chunk's content is not text: 42"),
        ('{"id": "chatcmpl-123", "choices": [{"delta": ', "unreadable response"),
    ],
)
async def test_a_stream_chunk_of_an_unknown_shape_is_a_server_error(
    api: FakeOpenAI, client: OpenAIClient, event: dict[str, Any] | str, reason: str
) -> None:
    api.stream(chunk({"content": "Hi"}), event)
    received: list[Chunk] = []

    with pytest.raises(ServerError, match=reason):
        await drain(client.stream(ask()), received)

    assert [piece.text for piece in received] == ["Hi"]


REFUSAL = "I'm sorry, but I can't help with that request."


async def test_a_streamed_refusal_is_raised_whole_as_the_completion_s_is(
    api: FakeOpenAI, client: OpenAIClient
) -> None:
    api.respond(body=completion(None, refusal=REFUSAL))
    tokens = ["I'm", " sorry", ",", " but", " I", " can't", " help", " with", " that", " request."]
    api.stream(
        chunk({"role": "assistant", "content": None, "refusal": ""}),
        *(chunk({"content": None, "refusal": token}) for token in tokens),
        chunk({}, finish_reason="stop"),
        USAGE_CHUNK,
    )
    received: list[Chunk] = []

    with pytest.raises(ContentFilteredError) as whole:
        await client.complete(ask())
    with pytest.raises(ContentFilteredError) as streamed:
        await drain(client.stream(ask()), received)

    assert streamed.value.message == whole.value.message == f"the model refused: {REFUSAL}"
    assert not streamed.value.retryable
    assert received == []


# -- tools: payloads as the Chat Completions reference documents them ----------------------

WEATHER = ToolSpec(
    name="get_weather",
    description="The current weather in a city.",
    parameters={
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
        "additionalProperties": False,
    },
)


def tool_call_completion() -> dict[str, Any]:
    body = completion(content=None, finish_reason="tool_calls")
    body["choices"][0]["message"]["tool_calls"] = [
        {
            "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"location": "Paris, France"}'},
        },
        {
            "id": "call_8sKQOY4TVKSfS6HO0p4Ly3wC",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"location": "Lyon"}'},
        },
    ]
    return body


async def test_a_completion_carries_the_tool_calls_the_model_made(
    api: FakeOpenAI, client: OpenAIClient
) -> None:
    api.respond(body=tool_call_completion())

    response = await client.complete(ask(tools=(WEATHER,), tool_choice="required"))

    assert response.finish_reason == "tool_calls"
    assert response.text == ""
    assert response.tool_calls == (
        ToolCall(
            id="call_DdmO9pD3xa9XTPNJ32zg2hcA",
            name="get_weather",
            arguments='{"location": "Paris, France"}',
        ),
        ToolCall(
            id="call_8sKQOY4TVKSfS6HO0p4Ly3wC", name="get_weather", arguments='{"location": "Lyon"}'
        ),
    )
    sent = api.body()
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The current weather in a city.",
                "parameters": dict(WEATHER.parameters),
                "strict": True,
            },
        }
    ]
    assert sent["tool_choice"] == "required"


async def test_tool_calls_and_results_go_back_in_the_conversation(
    api: FakeOpenAI, client: OpenAIClient
) -> None:
    api.respond(body=completion("It is sunny in Paris."))
    call = ToolCall(id="call_1", name="get_weather", arguments='{"location": "Paris"}')
    messages = (
        Message(role="user", content="Weather in Paris?"),
        Message(role="assistant", content="", tool_calls=(call,)),
        Message(role="tool", content='{"sky": "sunny"}', tool_call_id="call_1"),
    )

    await client.complete(ask(messages=messages, tools=(WEATHER,)))

    assert api.body()["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"sky": "sunny"}'},
    ]
    assert api.body()["tool_choice"] == "auto"


async def test_a_request_without_tools_sends_no_tool_fields(
    api: FakeOpenAI, client: OpenAIClient
) -> None:
    api.respond(body=completion())

    await client.complete(ask())

    assert "tools" not in api.body()
    assert "tool_choice" not in api.body()


def tool_delta(
    index: int, *, id: str | None = None, name: str | None = None, arguments: str = ""
) -> dict[str, Any]:
    function: dict[str, Any] = {"arguments": arguments}
    if name is not None:
        function["name"] = name
    call: dict[str, Any] = {"index": index, "function": function}
    if id is not None:
        call["id"], call["type"] = id, "function"
    return chunk({"tool_calls": [call]})


async def test_a_stream_yields_argument_deltas_then_the_assembled_calls(
    api: FakeOpenAI, client: OpenAIClient
) -> None:
    # As the streaming guide shows: the first delta of a call has its id and name, the
    # arguments follow in pieces; two calls in one answer are told apart by `index`.
    api.stream(
        chunk({"role": "assistant", "content": None}),
        tool_delta(0, id="call_DdmO9pD3xa9XTPNJ32zg2hcA", name="get_weather"),
        tool_delta(0, arguments='{"loca'),
        tool_delta(0, arguments='tion": "Paris"}'),
        tool_delta(1, id="call_2", name="get_weather"),
        tool_delta(1, arguments='{"location": "Lyon"}'),
        chunk({}, finish_reason="tool_calls"),
        USAGE_CHUNK,
    )

    chunks = [piece async for piece in client.stream(ask(tools=(WEATHER,)))]

    deltas = [piece.tool_call_delta for piece in chunks if piece.tool_call_delta is not None]
    assert [(d.position, d.id, d.name, d.arguments) for d in deltas] == [
        (0, "call_DdmO9pD3xa9XTPNJ32zg2hcA", "get_weather", ""),
        (0, None, None, '{"loca'),
        (0, None, None, 'tion": "Paris"}'),
        (1, "call_2", "get_weather", ""),
        (1, None, None, '{"location": "Lyon"}'),
    ]
    last = chunks[-1]
    assert last.finish_reason == "tool_calls"
    assert last.tool_calls == (
        ToolCall(
            id="call_DdmO9pD3xa9XTPNJ32zg2hcA",
            name="get_weather",
            arguments='{"location": "Paris"}',
        ),
        ToolCall(id="call_2", name="get_weather", arguments='{"location": "Lyon"}'),
    )
    assert [index for index, piece in enumerate(chunks) if piece.index != index] == []
    assert api.body()["stream"] is True


async def test_a_streamed_call_that_never_names_itself_is_a_server_error(
    api: FakeOpenAI, client: OpenAIClient
) -> None:
    api.stream(tool_delta(0, arguments='{"location": "Paris"}'), chunk({}, "tool_calls"))

    with pytest.raises(ServerError, match="never said its id and name"):
        _ = [piece async for piece in client.stream(ask(tools=(WEATHER,)))]


async def test_a_custom_tool_call_that_was_never_offered_is_a_server_error(
    api: FakeOpenAI, client: OpenAIClient
) -> None:
    body = completion(content=None, finish_reason="tool_calls")
    body["choices"][0]["message"]["tool_calls"] = [
        {"id": "call_1", "type": "custom", "custom": {"name": "grammar", "input": "x"}}
    ]
    api.respond(body=body)

    with pytest.raises(ServerError, match="'custom' tool"):
        await client.complete(ask(tools=(WEATHER,)))
