"""Whole flows over the real OpenAI adapter, its SDK talking to a scripted HTTP transport (no
network): `ask` on a response of an unexpected shape, and the resilient client's retries and
fallbacks on what OpenAI and OpenAI-compatible servers really send."""

from __future__ import annotations

import pytest

# The adapter needs its vendor's SDK, an extra a project installs only when it chose the vendor.
pytest.importorskip(
    "openai", reason="the openai extra is not installed: this project did not choose OpenAI"
)

import json
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2
import typer
from typer.testing import CliRunner

from airuntime.cli.ask import AskSetup, ask_command
from airuntime.cli.exits import ExitCode
from airuntime.errors import BadRequestError
from airuntime.model.mock import MockLLM, Step
from airuntime.model.providers.openai import OpenAIClient
from airuntime.observability.events import RecordingObserver
from airuntime.resilience.budget import Budget
from airuntime.resilience.chain import ResilienceConfig
from airuntime.resilience.retry import RetryPolicy
from airuntime.testing import FakeClock, flat_prices, resilient_client
from airuntime.types import Chunk, LLMRequest, Message, ModelTarget

Reply = Callable[[httpx2.Request], httpx2.Response]
MODEL = "gpt-5-mini"
PRIMARY = ModelTarget(provider="openai", model=MODEL)
BACKUP = ModelTarget(provider="backup", model="backup-model")
POLICY = RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=8.0, retry_after_cap=30.0)


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

    def client(self, **options: Any) -> OpenAIClient:
        transport = httpx2.MockTransport(self.handle)
        return OpenAIClient(
            api_key="sk-test", http_client=httpx2.AsyncClient(transport=transport), **options
        )


def completion(text: str = "Hello!") -> dict[str, Any]:
    return {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1767225600,
        "model": "gpt-5-mini-2025-08-07",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29},
    }


def azure_filtered_completion() -> dict[str, Any]:
    """Azure OpenAI withholding an answer its output filter flagged: no message in the choice."""
    safe = {"filtered": False, "severity": "safe"}
    verdicts = {"hate": safe, "self_harm": safe, "sexual": safe, "violence": safe}
    return {
        "id": "chatcmpl-AzF1GxkqX9mJ2bVn8pQ4sT6uW0yZ",
        "object": "chat.completion",
        "created": 1767225600,
        "model": "gpt-4o-2024-11-20",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": verdicts}],
        "choices": [
            {
                "index": 0,
                "finish_reason": "content_filter",
                "content_filter_results": {
                    **verdicts,
                    "violence": {"filtered": True, "severity": "medium"},
                },
            }
        ],
        "usage": {"prompt_tokens": 31, "completion_tokens": 12, "total_tokens": 43},
    }


def ask_app(api: FakeOpenAI) -> typer.Typer:
    """`ask` composed as a project composes it, its bare provider the real adapter."""

    def setup() -> AskSetup:
        def resilient() -> Any:
            raise AssertionError("these tests call the bare provider (--raw)")

        return AskSetup("openai", resilient, api.client)

    app = typer.Typer()
    app.command("ask")(ask_command(setup))

    @app.command()
    def other() -> None:
        """A second command, so `ask` is a sub-command as in a project."""

    return app


@pytest.mark.parametrize(
    ("body", "code", "expected"),
    [
        (
            azure_filtered_completion(),
            ExitCode.MODEL_REFUSED,
            "error: the model refused the request (ContentFilteredError): openai/gpt-5-mini: "
            "content_filtered: the output was stopped by the content filter. To fix: rephrase "
            "the input, or add a fallback model with another content policy.\n",
        ),
        (
            {**completion(), "choices": [{"index": 0, "finish_reason": "stop"}]},
            ExitCode.PROVIDER_UNAVAILABLE,
            "error: openai/gpt-5-mini: server_error: the response's choice has no message "
            "(finish_reason 'stop')\n",
        ),
    ],
)
def test_ask_raw_reports_a_response_without_a_message_in_one_line(
    body: dict[str, Any], code: ExitCode, expected: str
) -> None:
    api = FakeOpenAI()
    api.respond(body=body)

    result = CliRunner().invoke(ask_app(api), ["ask", "--raw", "Describe the fight."])

    assert result.exit_code == code
    assert (result.stdout, result.stderr) == ("", expected)
    assert len(api.sent) == 1


class Stack:
    """The resilient client over the real OpenAI adapter, with a mock as its fallback target,
    on a fake clock (backoff is recorded, never waited)."""

    def __init__(
        self,
        api: FakeOpenAI,
        backup: tuple[Step, ...] = ("The backup answers.",),
        *,
        fallback_on: frozenset[str] = frozenset(),
    ) -> None:
        self.clock = FakeClock()
        self.backup = MockLLM(backup, provider="backup", sleep=self.clock.sleep)
        self.observer = RecordingObserver()
        self.budget = Budget()
        self.client = resilient_client(
            {"openai": api.client(), "backup": self.backup},
            clock=self.clock,
            fallbacks=[BACKUP],
            config=ResilienceConfig(retry=POLICY, extra_fallback_errors=fallback_on),
            pricing=flat_prices([PRIMARY, BACKUP]),
            budget=self.budget,
            observer=self.observer,
        )

    def outcomes(self) -> list[tuple[str, int, str]]:
        return [(r.target.provider, r.attempt, r.outcome) for r in self.observer.attempts]


def request() -> LLMRequest:
    return LLMRequest(
        model=MODEL, messages=(Message(role="user", content="Summarise the report."),)
    )


def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-123",
        "object": "chat.completion.chunk",
        "created": 1767225600,
        "model": "gpt-5-mini-2025-08-07",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }


def ran_out_of_room(error: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """An OpenAI-compatible server that stops with "length" before any text, then says why."""
    return (
        chunk({"role": "assistant", "content": ""}),
        chunk({}, finish_reason="length"),
        {"error": error},
    )


async def drain(chunks: AsyncIterator[Chunk], into: list[Chunk]) -> None:
    async for piece in chunks:
        into.append(piece)


async def test_a_400_inside_a_stream_is_sent_once_and_raised() -> None:
    api = FakeOpenAI()
    api.stream(*ran_out_of_room({"code": 400, "message": "Token limit reached"}))
    stack = Stack(api)
    received: list[Chunk] = []

    with pytest.raises(BadRequestError, match="Token limit reached") as caught:
        await drain(stack.client.stream(request()), received)

    assert caught.value.status_code == 400
    assert len(api.sent) == 1
    assert stack.backup.requests == []
    assert stack.clock.sleeps == []
    assert received == []
    assert stack.outcomes() == [("openai", 1, "bad_request")]
    assert [call.outcome for call in stack.observer.calls] == ["error"]


async def test_a_400_inside_a_stream_falls_back_at_once_when_bad_requests_may() -> None:
    api = FakeOpenAI()
    api.stream(*ran_out_of_room({"code": 400, "message": "Token limit reached"}))
    stack = Stack(api, fallback_on=frozenset({"bad_request"}))

    chunks = [piece async for piece in stack.client.stream(request())]

    assert "".join(piece.text for piece in chunks) == "The backup answers."
    assert (len(api.sent), len(stack.backup.requests)) == (1, 1)
    assert stack.clock.sleeps == []
    assert stack.outcomes() == [("openai", 1, "bad_request"), ("backup", 1, "ok")]


async def test_a_server_error_inside_a_stream_is_still_retried_then_falls_back() -> None:
    api = FakeOpenAI()
    failed = {
        "message": "The server had an error while processing your request.",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    for _ in range(3):
        api.stream(*ran_out_of_room(failed))
    stack = Stack(api)

    chunks = [piece async for piece in stack.client.stream(request())]

    assert "".join(piece.text for piece in chunks) == "The backup answers."
    assert (len(api.sent), len(stack.backup.requests)) == (3, 1)
    rng = random.Random(0)  # the stack's seeded jitter: two waits, none after the third failure
    assert stack.clock.sleeps == [POLICY.backoff(1, rng), POLICY.backoff(2, rng)]
    assert stack.outcomes() == [
        ("openai", 1, "server_error"),
        ("openai", 2, "server_error"),
        ("openai", 3, "server_error"),
        ("backup", 1, "ok"),
    ]


def rate_limited(wait: str | None = None) -> dict[str, Any]:
    """OpenAI's 429 body: the wait for this request in the message text, when it knows it."""
    message = (
        "Rate limit reached for gpt-5-mini in organization org-3kXvQ2 on tokens per min (TPM): "
        "Limit 200000, Used 199412, Requested 1260."
    )
    if wait is not None:
        message += f" Please try again in {wait}."
    return {
        "error": {
            "message": message + " Visit https://platform.openai.com/account/rate-limits.",
            "type": "tokens",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }


def limits(requests: tuple[int, str], tokens: tuple[int, str]) -> dict[str, str]:
    return {
        "x-ratelimit-remaining-requests": str(requests[0]),
        "x-ratelimit-reset-requests": requests[1],
        "x-ratelimit-remaining-tokens": str(tokens[0]),
        "x-ratelimit-reset-tokens": tokens[1],
    }


async def test_a_429_without_retry_after_waits_the_time_its_message_names() -> None:
    api = FakeOpenAI()
    api.respond(429, rate_limited("2.5s"), limits((4999, "12ms"), (588, "1.2s")))
    api.respond(body=completion("After the wait."))
    stack = Stack(api)

    result = await stack.client.run(request())

    assert result.response.text == "After the wait."
    assert stack.clock.sleeps == [2.5]  # the hint beats the jitter (at most 0.5 s here)
    assert (len(api.sent), len(stack.backup.requests)) == (2, 0)
    assert stack.outcomes() == [("openai", 1, "rate_limited"), ("openai", 2, "ok")]


async def test_a_429_whose_reset_is_beyond_the_cap_falls_back_at_once() -> None:
    """Requests per day spent: the requests limit is whole again in six minutes."""
    api = FakeOpenAI()
    body = rate_limited()
    body["error"]["type"] = "requests"
    api.respond(429, body, limits((0, "6m0s"), (199000, "20ms")))
    stack = Stack(api)

    result = await stack.client.run(request())

    assert (result.target, result.response.text) == (BACKUP, "The backup answers.")
    assert stack.clock.sleeps == []
    assert (len(api.sent), len(stack.backup.requests)) == (1, 1)
    assert stack.client.breakers.get(PRIMARY).state.value == "open"
