"""The Anthropic adapter drives the real SDK against a mocked HTTP transport (no network).

Payloads are shaped like the Messages API's own; each outcome must map to the right class of
the error taxonomy with the right `retryable` flag, after exactly one HTTP request.
"""

from __future__ import annotations

import pytest

# The adapter needs its vendor's SDK, an extra a project installs only when it chose the vendor.
pytest.importorskip(
    "anthropic",
    reason="the anthropic extra is not installed: this project did not choose Anthropic",
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
from airuntime.model.providers.anthropic import AnthropicClient
from airuntime.types import Chunk, LLMRequest, Message, OutputFormat, ToolCall, ToolSpec

Reply = Callable[[httpx2.Request], httpx2.Response]
MODEL = "claude-haiku-4-5"


class FakeAnthropic:
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

    def stream(self, *events: dict[str, Any], then: Exception | None = None) -> None:
        blocks = [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]

        async def body() -> AsyncIterator[bytes]:
            for block in blocks:
                yield block
            if then is not None:
                raise then

        headers = {"content-type": "text/event-stream"}
        self.replies.append(lambda _: httpx2.Response(200, content=body(), headers=headers))

    def fail(self, error: type[httpx2.TransportError]) -> None:
        def raise_error(request: httpx2.Request) -> httpx2.Response:
            raise error("simulated", request=request)

        self.replies.append(raise_error)

    def body(self) -> dict[str, Any]:
        sent: dict[str, Any] = json.loads(self.sent[-1].content)
        return sent


def message(text: str = "Hello!", stop_reason: str = "end_turn") -> dict[str, Any]:
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5-20251001",
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 12,
            "output_tokens": 6,
            "cache_creation_input_tokens": 20,
            "cache_read_input_tokens": 100,
            "service_tier": "standard",
        },
    }


STREAM_START = {
    "type": "message_start",
    "message": {
        "id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude-haiku-4-5-20251001",
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 25, "output_tokens": 1, "cache_read_input_tokens": 5},
    },
}
BLOCK_START = {
    "type": "content_block_start",
    "index": 0,
    "content_block": {"type": "text", "text": ""},
}
PING = {"type": "ping"}


def text_delta(text: str) -> dict[str, Any]:
    return {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": text},
    }


def message_delta(stop_reason: str, output_tokens: int = 15) -> dict[str, Any]:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": {"output_tokens": output_tokens},
    }


def error_body(error_type: str, message_text: str, code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": error_type, "message": message_text}
    if code is not None:
        error["details"] = {"error_code": code}
    return {"type": "error", "error": error, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}


def ask(**fields: Any) -> LLMRequest:
    defaults: dict[str, Any] = {
        "model": MODEL,
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
def api() -> FakeAnthropic:
    return FakeAnthropic()


@pytest.fixture
async def client(api: FakeAnthropic) -> AsyncIterator[AnthropicClient]:
    transport = httpx2.MockTransport(api.handle)
    built = AnthropicClient(
        api_key="sk-ant-test",
        timeout_seconds=5,
        http_client=httpx2.AsyncClient(transport=transport),
    )
    yield built
    await built.aclose()
    await built.aclose()


async def test_message_maps_text_usage_and_ids(api: FakeAnthropic, client: AnthropicClient) -> None:
    api.respond(body=message())
    request = ask()

    response = await client.complete(request)

    assert response.text == "Hello!"
    assert response.provider == client.provider == "anthropic"
    assert response.model == "claude-haiku-4-5-20251001"
    assert response.finish_reason == "stop"
    assert response.response_id == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert response.request_id == request.request_id
    # Input counts every prompt token, cache reads and writes included, as OpenAI counts them.
    assert response.usage.input_tokens == 12 + 20 + 100
    assert response.usage.cache_read_tokens == 100
    assert response.usage.output_tokens == 6


async def test_request_carries_system_messages_and_stops(
    api: FakeAnthropic, client: AnthropicClient
) -> None:
    api.respond(body=message())
    messages = [
        Message(role="system", content="Be brief."),
        Message(role="user", content="Hi"),
        Message(role="assistant", content="Hello"),
        Message(role="system", content="Use English."),
        Message(role="user", content="Again"),
    ]

    await client.complete(ask(messages=messages, max_tokens=50, stop=["END"], temperature=0.3))

    sent = api.sent[-1]
    assert sent.url == "https://api.anthropic.com/v1/messages"
    assert sent.headers["authorization"] == "Bearer sk-ant-test"
    assert sent.headers["x-stainless-retry-count"] == "0"
    assert api.body() == {
        "model": MODEL,
        "max_tokens": 50,
        "system": "Be brief.\n\nUse English.",
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Again"},
        ],
        "stop_sequences": ["END"],
    }


async def test_json_mode_is_asked_for_in_the_system_prompt(
    api: FakeAnthropic, client: AnthropicClient
) -> None:
    api.respond(body=message('{"greeting": "hi"}'))

    response = await client.complete(ask(output=OutputFormat(type="json")))

    assert json.loads(response.text) == {"greeting": "hi"}
    assert (
        api.body()["system"] == "Be brief.\n\nRespond with a single JSON object and nothing else."
    )
    assert "output_config" not in api.body()


async def test_schema_output_uses_structured_outputs(
    api: FakeAnthropic, client: AnthropicClient
) -> None:
    api.respond(body=message('{"n": 3}'))
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 1}},
        "required": ["n"],
    }

    await client.complete(ask(output=OutputFormat(type="json_schema", json_schema=schema)))

    sent_format = api.body()["output_config"]["format"]
    assert sent_format["type"] == "json_schema"
    assert sent_format["schema"]["required"] == ["n"]
    assert sent_format["schema"]["additionalProperties"] is False
    assert sent_format["schema"]["properties"]["n"]["type"] == "integer"


async def test_stream_yields_text_then_finish_and_usage(
    api: FakeAnthropic, client: AnthropicClient
) -> None:
    api.stream(
        STREAM_START,
        BLOCK_START,
        PING,
        text_delta("Hello"),
        text_delta(" world"),
        {"type": "content_block_stop", "index": 0},
        message_delta("max_tokens", output_tokens=15),
        {"type": "message_stop"},
    )

    chunks = [piece async for piece in client.stream(ask())]

    assert [piece.text for piece in chunks] == ["Hello", " world", ""]
    assert [piece.index for piece in chunks] == [0, 1, 2]
    assert chunks[-1].finish_reason == "length"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.input_tokens == 30
    assert chunks[-1].usage.output_tokens == 15
    assert chunks[-1].usage.cache_read_tokens == 5
    assert api.body()["stream"] is True


async def test_an_overloaded_event_mid_stream_is_a_rate_limit(
    api: FakeAnthropic, client: AnthropicClient
) -> None:
    api.stream(
        STREAM_START,
        text_delta("Hel"),
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    )
    received: list[Chunk] = []

    with pytest.raises(RateLimitedError) as caught:
        await drain(client.stream(ask()), received)

    assert [piece.text for piece in received] == ["Hel"]
    assert caught.value.status_code == 529


async def test_a_connection_dropped_mid_stream_is_a_connection_error(
    api: FakeAnthropic, client: AnthropicClient
) -> None:
    api.stream(STREAM_START, text_delta("Hel"), then=httpx2.ReadError("connection reset"))

    with pytest.raises(ProviderConnectionError):
        await drain(client.stream(ask()), [])


async def test_a_refusal_mid_stream_raises_after_the_text(
    api: FakeAnthropic, client: AnthropicClient
) -> None:
    api.stream(STREAM_START, text_delta("I"), message_delta("refusal"), {"type": "message_stop"})
    received: list[Chunk] = []

    with pytest.raises(ContentFilteredError) as caught:
        await drain(client.stream(ask()), received)

    assert caught.value.message == "the model refused to answer (stop_reason refusal)"
    assert [piece.text for piece in received] == ["I"]


REFUSAL_DETAILS = {
    "type": "refusal",
    "category": "cyber",
    "explanation": "The request asks for a working exploit against a specific system.",
}


async def test_a_streamed_refusal_says_what_the_whole_message_says(
    api: FakeAnthropic, client: AnthropicClient
) -> None:
    api.respond(
        body={**message("I can't help with that.", "refusal"), "stop_details": REFUSAL_DETAILS}
    )
    api.stream(
        STREAM_START,
        BLOCK_START,
        text_delta("I can"),
        text_delta("'t help with that."),
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {
                "stop_reason": "refusal",
                "stop_sequence": None,
                "stop_details": REFUSAL_DETAILS,
            },
            "usage": {"output_tokens": 9},
        },
        {"type": "message_stop"},
    )

    with pytest.raises(ContentFilteredError) as whole:
        await client.complete(ask())
    with pytest.raises(ContentFilteredError) as streamed:
        await drain(client.stream(ask()), [])

    assert streamed.value.message == whole.value.message
    assert whole.value.message == (
        "the model refused to answer (stop_reason refusal, category cyber): The request asks "
        "for a working exploit against a specific system."
    )


@pytest.mark.parametrize(
    ("status", "body", "headers", "error_class", "retryable"),
    [
        (
            429,
            error_body("rate_limit_error", "Number of request tokens has exceeded your rate limit"),
            {"retry-after": "30"},
            RateLimitedError,
            True,
        ),
        (529, error_body("overloaded_error", "Overloaded"), {}, RateLimitedError, True),
        (
            429,
            error_body("rate_limit_error", "Spend limit reached", "enforced_spend_limit_reached"),
            {},
            AuthenticationError,
            False,
        ),
        (500, error_body("api_error", "Internal server error"), {}, ServerError, True),
        (504, error_body("timeout_error", "Gateway timeout"), {}, ServerError, True),
        (
            401,
            error_body("authentication_error", "invalid x-api-key"),
            {},
            AuthenticationError,
            False,
        ),
        (
            402,
            error_body("billing_error", "Your credit balance is too low"),
            {},
            AuthenticationError,
            False,
        ),
        (403, error_body("permission_error", "Not allowed"), {}, AuthenticationError, False),
        (
            400,
            error_body(
                "invalid_request_error", "prompt is too long: 215000 tokens > 200000 maximum"
            ),
            {},
            ContextLengthExceededError,
            False,
        ),
        (
            400,
            error_body("invalid_request_error", "max_tokens: Field required"),
            {},
            BadRequestError,
            False,
        ),
        (
            413,
            error_body("request_too_large", "Request exceeds the maximum size"),
            {},
            BadRequestError,
            False,
        ),
        (404, error_body("not_found_error", "model: claude-nope"), {}, BadRequestError, False),
    ],
)
async def test_http_errors_map_to_the_taxonomy_after_one_request(
    api: FakeAnthropic,
    client: AnthropicClient,
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
    assert (caught.value.provider, caught.value.model) == ("anthropic", MODEL)
    assert caught.value.message == body["error"]["message"]
    assert len(api.sent) == 1, "the SDK must not retry on its own"


async def test_rate_limit_reads_retry_after(api: FakeAnthropic, client: AnthropicClient) -> None:
    api.respond(429, error_body("rate_limit_error", "slow down"), {"retry-after": "30"})

    with pytest.raises(RateLimitedError) as caught:
        await client.complete(ask())

    assert caught.value.retry_after == 30.0


SERVER_DATE = "Wed, 02 Dec 2026 03:20:00 GMT"  # the response's own clock


def ratelimit_headers(**limits: tuple[int, str]) -> dict[str, str]:
    """The anthropic-ratelimit-* headers of a response: for each limit, what is left of it and
    when (RFC 3339) it is whole again; `date` is the server's time."""
    headers = {"date": SERVER_DATE}
    for name, (remaining, reset) in limits.items():
        limit = name.replace("_", "-")
        headers[f"anthropic-ratelimit-{limit}-remaining"] = str(remaining)
        headers[f"anthropic-ratelimit-{limit}-reset"] = reset
    return headers


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        # The requests limit is spent: its reset, measured from the server's date.
        (
            ratelimit_headers(
                requests=(0, "2026-12-02T03:20:12Z"), tokens=(35000, "2026-12-02T03:20:01Z")
            ),
            12.0,
        ),
        # The input tokens are spent (so is "tokens", the most restrictive of the two).
        (
            ratelimit_headers(
                requests=(41, "2026-12-02T03:20:00.400Z"),
                tokens=(0, "2026-12-02T03:20:07.500Z"),
                input_tokens=(0, "2026-12-02T03:20:07.500Z"),
                output_tokens=(7800, "2026-12-02T03:20:00.900Z"),
            ),
            7.5,
        ),
        # Nothing says which: the latest reset.
        (
            ratelimit_headers(
                requests=(41, "2026-12-02T03:20:03Z"), tokens=(1200, "2026-12-02T03:20:09Z")
            ),
            9.0,
        ),
        # A reset already past by the server's clock: no wait beyond the backoff.
        (ratelimit_headers(requests=(0, "2026-12-02T03:19:58Z")), 0.0),
        # retry-after, when sent, beats the reset headers.
        (
            {**ratelimit_headers(requests=(0, "2026-12-02T03:20:12Z")), "retry-after": "4"},
            4.0,
        ),
        ({"date": SERVER_DATE}, None),
    ],
)
async def test_a_rate_limit_without_retry_after_waits_for_the_reset_of_the_spent_limit(
    api: FakeAnthropic,
    client: AnthropicClient,
    headers: dict[str, str],
    retry_after: float | None,
) -> None:
    api.respond(
        429,
        error_body(
            "rate_limit_error",
            "This request would exceed the rate limit for your organization of 50,000 input "
            "tokens per minute.",
        ),
        headers,
    )

    with pytest.raises(RateLimitedError) as caught:
        await client.complete(ask())

    assert caught.value.retry_after == retry_after


async def test_an_overload_inside_a_stream_takes_no_wait_from_the_stream_s_headers(
    api: FakeAnthropic, client: AnthropicClient
) -> None:
    """The headers of a stream that began with a 200 describe the limits before it."""
    transport_headers = ratelimit_headers(requests=(0, "2026-12-02T03:20:12Z"))
    events = [
        STREAM_START,
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    ]
    body = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()
    api.replies.append(
        lambda _: httpx2.Response(
            200, content=body, headers={**transport_headers, "content-type": "text/event-stream"}
        )
    )

    with pytest.raises(RateLimitedError) as caught:
        await drain(client.stream(ask()), [])

    assert (caught.value.status_code, caught.value.retry_after) == (529, None)


@pytest.mark.parametrize(
    ("failure", "error_class"),
    [(httpx2.ReadTimeout, ProviderTimeoutError), (httpx2.ConnectError, ProviderConnectionError)],
)
async def test_transport_failures_are_retryable(
    api: FakeAnthropic,
    client: AnthropicClient,
    failure: type[httpx2.TransportError],
    error_class: type[LLMError],
) -> None:
    api.fail(failure)

    with pytest.raises(error_class) as caught:
        await client.complete(ask())

    assert caught.value.retryable
    assert len(api.sent) == 1


async def test_a_refusal_is_a_content_filter_error(
    api: FakeAnthropic, client: AnthropicClient
) -> None:
    api.respond(body=message("", stop_reason="refusal"))

    with pytest.raises(ContentFilteredError) as caught:
        await client.complete(ask())

    assert not caught.value.retryable


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("pause_turn", "other"),
    ],
)
async def test_stop_reasons_map_to_finish_reasons(
    api: FakeAnthropic, client: AnthropicClient, stop_reason: str, finish_reason: str
) -> None:
    api.respond(body=message("x", stop_reason=stop_reason))

    assert (await client.complete(ask())).finish_reason == finish_reason


def with_content(content: Any) -> dict[str, Any]:
    return {**message(), "content": content}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (with_content(None), "'NoneType' object is not iterable"),
        (with_content("Hello!"), "'str' object has no attribute 'type'"),
        (with_content([{"type": "text", "text": 42}]), "a text block's text is not text: 42"),
        ({**message(), "usage": None}, "'NoneType' object has no attribute"),
        ({**message(), "type": "completion"}, "the response is not a message (type 'completion')"),
    ],
)
async def test_a_response_of_an_unknown_shape_is_a_one_line_server_error(
    api: FakeAnthropic, client: AnthropicClient, body: dict[str, Any], reason: str
) -> None:
    api.respond(body=body)

    with pytest.raises(ServerError) as caught:
        await client.complete(ask())

    assert reason in caught.value.message
    assert "\n" not in str(caught.value)
    assert caught.value.retryable
    assert len(api.sent) == 1


async def test_an_error_object_sent_with_a_200_is_read_by_its_type(
    api: FakeAnthropic, client: AnthropicClient
) -> None:
    """Some gateways in front of the Messages API pass an upstream error on with status 200."""
    api.respond(body=error_body("overloaded_error", "Overloaded"))

    with pytest.raises(RateLimitedError) as caught:
        await client.complete(ask())

    assert (caught.value.status_code, caught.value.message) == (529, "Overloaded")


async def test_a_stream_event_of_an_unknown_shape_is_a_server_error(
    api: FakeAnthropic, client: AnthropicClient
) -> None:
    broken = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": ["not", "text"]},
    }
    api.stream(STREAM_START, BLOCK_START, text_delta("Hel"), broken)
    received: list[Chunk] = []

    with pytest.raises(ServerError, match="a text delta is not text"):
        await drain(client.stream(ask()), received)

    assert [piece.text for piece in received] == ["Hel"]


# A call with the web search tool: the model searches once, so the API reads the prompt (and
# the cached system prompt) again for the second iteration. message_start reports the first
# iteration only; message_delta the cumulative totals of both.
SEARCH_ID = "srvtoolu_014hJH82Qum7Td6UV8gDXThB"
SEARCH_QUERY = {"query": "quantum error correction milestone 2026"}
SEARCH_RESULT = {
    "type": "web_search_tool_result",
    "tool_use_id": SEARCH_ID,
    "content": [
        {
            "type": "web_search_result",
            "title": "Logical qubits cross the break-even point",
            "url": "https://example.org/news/logical-qubits",
            "encrypted_content": "EqgfCioIARgBIiQ3YTAwMjY1Mi1mZjM5LTQ1NGUtODgxNC1kNjNjNTk1ZWI3Y",
            "page_age": "November 28, 2026",
        }
    ],
}
CITATION = {
    "type": "web_search_result_location",
    "cited_text": "the logical error rate fell below the physical one for the first time",
    "url": "https://example.org/news/logical-qubits",
    "title": "Logical qubits cross the break-even point",
    "encrypted_index": "Eo8BCioIAhgBIiQyYjQ0OWJmZi1lNm",
}
FIRST_ITERATION = {
    "input_tokens": 2679,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 1536,
    "output_tokens": 3,
}
WHOLE_CALL = {
    "input_tokens": 10682,
    "cache_creation_input_tokens": 2048,
    "cache_read_input_tokens": 3072,
    "output_tokens": 510,
    "server_tool_use": {"web_search_requests": 1},
}
ANSWER = ["I'll search for that.", "Logical qubits now beat physical ones."]


def searched_message() -> dict[str, Any]:
    return {
        "id": "msg_01G8qrR1C7VUcKzKqtAbrdMj",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5-20251001",
        "content": [
            {"type": "text", "text": ANSWER[0]},
            {
                "type": "server_tool_use",
                "id": SEARCH_ID,
                "name": "web_search",
                "input": SEARCH_QUERY,
            },
            SEARCH_RESULT,
            {"type": "text", "text": ANSWER[1], "citations": [CITATION]},
        ],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {**WHOLE_CALL, "service_tier": "standard"},
    }


def searched_stream() -> list[dict[str, Any]]:
    start = {**searched_message(), "content": [], "stop_reason": None, "usage": FIRST_ITERATION}

    def block(index: int, content_block: dict[str, Any]) -> dict[str, Any]:
        return {"type": "content_block_start", "index": index, "content_block": content_block}

    def delta(index: int, body: dict[str, Any]) -> dict[str, Any]:
        return {"type": "content_block_delta", "index": index, "delta": body}

    def stop(index: int) -> dict[str, Any]:
        return {"type": "content_block_stop", "index": index}

    tool_use = {"type": "server_tool_use", "id": SEARCH_ID, "name": "web_search", "input": {}}
    return [
        {"type": "message_start", "message": start},
        block(0, {"type": "text", "text": ""}),
        delta(0, {"type": "text_delta", "text": ANSWER[0]}),
        stop(0),
        block(1, tool_use),
        delta(1, {"type": "input_json_delta", "partial_json": json.dumps(SEARCH_QUERY)}),
        stop(1),
        block(2, SEARCH_RESULT),
        stop(2),
        block(3, {"type": "text", "text": "", "citations": []}),
        delta(3, {"type": "citations_delta", "citation": CITATION}),
        delta(3, {"type": "text_delta", "text": "Logical qubits now"}),
        delta(3, {"type": "text_delta", "text": " beat physical ones."}),
        stop(3),
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": WHOLE_CALL,
        },
        {"type": "message_stop"},
    ]


async def test_a_streamed_call_with_server_tools_counts_what_the_whole_message_does(
    api: FakeAnthropic, client: AnthropicClient
) -> None:
    api.respond(body=searched_message())
    api.stream(*searched_stream())

    whole = await client.complete(ask())
    chunks = [piece async for piece in client.stream(ask())]

    streamed = chunks[-1].usage
    assert streamed == whole.usage
    # Every prompt token of both iterations: uncached, read from the cache, written to it.
    assert whole.usage.input_tokens == 10682 + 3072 + 2048
    assert (whole.usage.cache_read_tokens, whole.usage.output_tokens) == (3072, 510)
    assert "".join(piece.text for piece in chunks) == whole.text == "".join(ANSWER)
    assert chunks[-1].finish_reason == whole.finish_reason == "stop"


async def test_a_gateway_base_url_receives_the_requests(api: FakeAnthropic) -> None:
    api.respond(body=message())
    transport = httpx2.MockTransport(api.handle)
    gateway = AnthropicClient(
        api_key="sk-ant-test",
        base_url="https://llm-gateway.internal.example/anthropic",
        http_client=httpx2.AsyncClient(transport=transport),
    )

    response = await gateway.complete(ask())
    await gateway.aclose()

    assert response.text == "Hello!"
    assert api.sent[0].url == "https://llm-gateway.internal.example/anthropic/v1/messages"


# -- tools: payloads as the Messages API's tool use and streaming pages document them --------

WEATHER = ToolSpec(
    name="get_weather",
    description="The current weather in a city.",
    parameters={
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
)


def tool_use_message() -> dict[str, Any]:
    body = message(stop_reason="tool_use")
    body["content"] = [
        {"type": "text", "text": "I'll check the weather."},
        {
            "type": "tool_use",
            "id": "toolu_01A09q90qw90lq917835lq9",
            "name": "get_weather",
            "input": {"location": "San Francisco, CA"},
        },
    ]
    return body


async def test_a_message_carries_its_tool_use_blocks_as_calls(
    api: FakeAnthropic, client: AnthropicClient
) -> None:
    api.respond(body=tool_use_message())

    response = await client.complete(ask(tools=(WEATHER,), tool_choice="required"))

    assert response.finish_reason == "tool_calls"
    assert response.text == "I'll check the weather."
    assert response.tool_calls == (
        ToolCall(
            id="toolu_01A09q90qw90lq917835lq9",
            name="get_weather",
            arguments='{"location": "San Francisco, CA"}',
        ),
    )
    sent = api.body()
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": "The current weather in a city.",
            "input_schema": dict(WEATHER.parameters),
        }
    ]
    assert sent["tool_choice"] == {"type": "any"}


async def test_results_of_one_turn_go_back_in_one_user_message(
    api: FakeAnthropic, client: AnthropicClient
) -> None:
    api.respond(body=message("Sunny in Paris, rain in Lyon."))
    calls = (
        ToolCall(id="toolu_1", name="get_weather", arguments='{"location": "Paris"}'),
        ToolCall(id="toolu_2", name="get_weather", arguments="not json"),
    )
    messages = (
        Message(role="system", content="Be brief."),
        Message(role="user", content="Weather in Paris and Lyon?"),
        Message(role="assistant", content="Checking.", tool_calls=calls),
        Message(role="tool", content='{"sky": "sunny"}', tool_call_id="toolu_1"),
        Message(role="tool", content="bad arguments", tool_call_id="toolu_2", is_error=True),
        Message(role="user", content="And tomorrow?"),
    )

    await client.complete(ask(messages=messages, tools=(WEATHER,)))

    sent = api.body()
    assert sent["system"] == "Be brief."
    assert sent["tool_choice"] == {"type": "auto"}
    assert sent["messages"] == [
        {"role": "user", "content": "Weather in Paris and Lyon?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"location": "Paris"},
                },
                # Arguments that were not an object were answered as an error already.
                {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": '{"sky": "sunny"}',
                    "is_error": False,
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": "bad arguments",
                    "is_error": True,
                },
            ],
        },
        {"role": "user", "content": "And tomorrow?"},
    ]


async def test_a_request_without_tools_sends_no_tool_fields(
    api: FakeAnthropic, client: AnthropicClient
) -> None:
    api.respond(body=message())

    await client.complete(ask(tool_choice="none"))

    assert "tools" not in api.body()
    assert "tool_choice" not in api.body()


def json_delta(index: int, partial_json: str) -> dict[str, Any]:
    return {
        "type": "content_block_delta",
        "index": index,
        "delta": {"type": "input_json_delta", "partial_json": partial_json},
    }


async def test_a_stream_yields_input_json_deltas_then_the_assembled_calls(
    api: FakeAnthropic, client: AnthropicClient
) -> None:
    # The streaming page's tool-use example: text, then a tool_use block whose input arrives
    # as partial JSON (the first piece empty), then stop_reason tool_use.
    tool_block = {
        "type": "content_block_start",
        "index": 1,
        "content_block": {
            "type": "tool_use",
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "name": "get_weather",
            "input": {},
        },
    }
    no_input_block = {
        "type": "content_block_start",
        "index": 2,
        "content_block": {"type": "tool_use", "id": "toolu_2", "name": "now", "input": {}},
    }
    api.stream(
        STREAM_START,
        BLOCK_START,
        text_delta("Okay, let's check."),
        {"type": "content_block_stop", "index": 0},
        tool_block,
        json_delta(1, ""),
        PING,
        json_delta(1, '{"location":'),
        json_delta(1, ' "San Francisco, CA"}'),
        {"type": "content_block_stop", "index": 1},
        no_input_block,
        {"type": "content_block_stop", "index": 2},
        message_delta("tool_use", output_tokens=89),
        {"type": "message_stop"},
    )

    chunks = [piece async for piece in client.stream(ask(tools=(WEATHER,)))]

    assert "".join(piece.text for piece in chunks) == "Okay, let's check."
    deltas = [piece.tool_call_delta for piece in chunks if piece.tool_call_delta is not None]
    assert [(d.position, d.id, d.name, d.arguments) for d in deltas] == [
        (0, "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather", ""),
        (0, None, None, ""),
        (0, None, None, '{"location":'),
        (0, None, None, ' "San Francisco, CA"}'),
        (1, "toolu_2", "now", ""),
    ]
    last = chunks[-1]
    assert last.finish_reason == "tool_calls"
    assert last.usage is not None
    assert last.usage.output_tokens == 89
    assert last.tool_calls == (
        ToolCall(
            id="toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            name="get_weather",
            arguments='{"location": "San Francisco, CA"}',
        ),
        ToolCall(id="toolu_2", name="now", arguments="{}"),
    )
