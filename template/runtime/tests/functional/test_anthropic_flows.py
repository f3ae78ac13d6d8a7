"""Whole flows over the real Anthropic adapter, its SDK talking to a scripted HTTP transport (no
network): what the resilient client charges for a streamed call, and how it waits on the
Messages API's own rate-limit hints."""

from __future__ import annotations

import pytest

# The adapter needs its vendor's SDK, an extra a project installs only when it chose the vendor.
pytest.importorskip(
    "anthropic",
    reason="the anthropic extra is not installed: this project did not choose Anthropic",
)

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx2

from airuntime.model.factory import ProviderConfig, build_provider
from airuntime.model.mock import MockLLM
from airuntime.model.providers.anthropic import AnthropicClient
from airuntime.observability.events import RecordingObserver
from airuntime.resilience.budget import Budget
from airuntime.resilience.chain import ResilienceConfig
from airuntime.resilience.pricing import PriceTable
from airuntime.resilience.retry import RetryPolicy
from airuntime.testing import FakeClock, resilient_client
from airuntime.types import LLMRequest, Message, ModelTarget, Usage

Reply = Callable[[httpx2.Request], httpx2.Response]
MODEL = "claude-haiku-4-5"
PRIMARY = ModelTarget(provider="anthropic", model=MODEL)
BACKUP = ModelTarget(provider="mock", model="mock-model")  # priced 0 in the packaged table
POLICY = RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=8.0, retry_after_cap=30.0)
MILLION = Decimal(1_000_000)


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

    def stream(self, *events: dict[str, Any]) -> None:
        body = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()
        headers = {"content-type": "text/event-stream"}
        self.replies.append(lambda _: httpx2.Response(200, content=body, headers=headers))

    def client(self) -> AnthropicClient:
        transport = httpx2.MockTransport(self.handle)
        return AnthropicClient(
            api_key="sk-ant-test", http_client=httpx2.AsyncClient(transport=transport)
        )


class Stack:
    """The resilient client over the real adapter, priced from the packaged price table, with
    a mock as its fallback target, on a fake clock (backoff is recorded, never waited)."""

    def __init__(self, api: FakeAnthropic) -> None:
        self.clock = FakeClock()
        self.backup = MockLLM(["The backup answers."], sleep=self.clock.sleep)
        self.observer = RecordingObserver()
        self.budget = Budget()
        self.client = resilient_client(
            {"anthropic": api.client(), "mock": self.backup},
            clock=self.clock,
            fallbacks=[BACKUP],
            config=ResilienceConfig(retry=POLICY),
            pricing=PriceTable.load(),
            budget=self.budget,
            observer=self.observer,
        )


def request() -> LLMRequest:
    return LLMRequest(
        model=MODEL,
        messages=(Message(role="user", content="What happened in quantum computing this week?"),),
        max_tokens=1024,
    )


# A call with the web search tool: one search, so two model iterations, each reading the
# prompt. message_start reports the first iteration; message_delta the totals of both.
SEARCH_ID = "srvtoolu_014hJH82Qum7Td6UV8gDXThB"
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
ANSWER = "Logical qubits now beat physical ones."


def searched_message() -> dict[str, Any]:
    return {
        "id": "msg_01G8qrR1C7VUcKzKqtAbrdMj",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5-20251001",
        "content": [
            {
                "type": "server_tool_use",
                "id": SEARCH_ID,
                "name": "web_search",
                "input": {"query": "quantum computing news"},
            },
            SEARCH_RESULT,
            {"type": "text", "text": ANSWER},
        ],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": WHOLE_CALL,
    }


def searched_stream() -> list[dict[str, Any]]:
    start = {**searched_message(), "content": [], "stop_reason": None, "usage": FIRST_ITERATION}
    tool_use = {"type": "server_tool_use", "id": SEARCH_ID, "name": "web_search", "input": {}}
    query = {"type": "input_json_delta", "partial_json": '{"query": "quantum computing news"}'}
    return [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": tool_use},
        {"type": "content_block_delta", "index": 0, "delta": query},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": SEARCH_RESULT},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": ""}},
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "text_delta", "text": ANSWER},
        },
        {"type": "content_block_stop", "index": 2},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": WHOLE_CALL,
        },
        {"type": "message_stop"},
    ]


async def test_a_streamed_web_search_settles_the_budget_as_the_whole_call_does() -> None:
    whole_api, streamed_api = FakeAnthropic(), FakeAnthropic()
    whole_api.respond(body=searched_message())
    streamed_api.stream(*searched_stream())
    whole, streamed = Stack(whole_api), Stack(streamed_api)

    answer = await whole.client.complete(request())
    text = "".join([piece.text async for piece in streamed.client.stream(request())])

    # claude-haiku-4-5 in the packaged prices: $1 per million input tokens (cache writes
    # included, priced as input), $0.10 per million read from the cache, $5 per million output.
    uncached, read, output = 10682 + 2048, 3072, 510
    cost = (
        uncached * Decimal("1.00") + read * Decimal("0.10") + output * Decimal("5.00")
    ) / MILLION
    assert whole.budget.spent == streamed.budget.spent == cost
    assert (text, answer.text) == (ANSWER, ANSWER)
    expected = Usage(input_tokens=uncached + read, output_tokens=output, cache_read_tokens=read)
    assert [call.usage for call in streamed.observer.calls] == [expected]
    assert [call.usage for call in whole.observer.calls] == [expected]
    assert [call.cost for call in streamed.observer.calls] == [cost]
    assert whole.budget.reserved == streamed.budget.reserved == 0


SERVER_DATE = "Wed, 02 Dec 2026 03:20:00 GMT"


def rate_limited(reset: str) -> tuple[dict[str, Any], dict[str, str]]:
    """A 429 with no retry-after: the input tokens per minute are spent until `reset`."""
    body = {
        "type": "error",
        "error": {
            "type": "rate_limit_error",
            "message": "This request would exceed the rate limit for your organization of "
            "50,000 input tokens per minute.",
        },
        "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
    }
    headers = {
        "date": SERVER_DATE,
        "anthropic-ratelimit-requests-remaining": "49",
        "anthropic-ratelimit-requests-reset": "2026-12-02T03:20:01Z",
        "anthropic-ratelimit-input-tokens-remaining": "0",
        "anthropic-ratelimit-input-tokens-reset": reset,
        "anthropic-ratelimit-tokens-remaining": "0",
        "anthropic-ratelimit-tokens-reset": reset,
    }
    return body, headers


def answer(text: str) -> dict[str, Any]:
    return {
        **searched_message(),
        "content": [{"type": "text", "text": text}],
        "usage": {"input_tokens": 14, "output_tokens": 4},
    }


async def test_a_429_without_retry_after_waits_for_the_spent_limit_to_reset() -> None:
    api = FakeAnthropic()
    body, headers = rate_limited("2026-12-02T03:20:12Z")
    api.respond(429, body, headers)
    api.respond(body=answer("After the wait."))
    stack = Stack(api)

    result = await stack.client.run(request())

    assert result.response.text == "After the wait."
    assert stack.clock.sleeps == [12.0]
    assert (len(api.sent), len(stack.backup.requests)) == (2, 0)


async def test_a_429_whose_reset_is_beyond_the_cap_falls_back_at_once() -> None:
    api = FakeAnthropic()
    body, headers = rate_limited("2026-12-02T03:20:45Z")  # 45 s: beyond the 30 s cap
    api.respond(429, body, headers)
    stack = Stack(api)

    result = await stack.client.run(request())

    assert (result.target, result.response.text) == (BACKUP, "The backup answers.")
    assert stack.clock.sleeps == []
    assert (len(api.sent), len(stack.backup.requests)) == (1, 1)
    assert stack.client.breakers.get(PRIMARY).state.value == "open"


async def test_a_configured_base_url_sends_the_requests_to_the_gateway() -> None:
    """A real HTTP exchange on loopback with a gateway in front of the Messages API, the client
    built from its configuration as a project's wiring builds it."""
    received: list[tuple[bytes, bytes]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        received.append((head.split(b"\r\n")[0], await reader.readexactly(length)))
        body = json.dumps(answer("Hi through the gateway")).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    gateway = f"http://127.0.0.1:{port}/anthropic"
    async with server:
        client = build_provider(ProviderConfig("anthropic", api_key="sk-ant", base_url=gateway))
        response = await client.complete(request())
        await client.aclose()

    assert (response.provider, response.text) == ("anthropic", "Hi through the gateway")
    ((request_line, body),) = received
    assert request_line == b"POST /anthropic/v1/messages HTTP/1.1"
    assert json.loads(body)["model"] == MODEL
