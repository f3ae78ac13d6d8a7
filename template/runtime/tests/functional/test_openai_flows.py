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
from collections.abc import Callable
from typing import Any

import httpx2
import typer
from typer.testing import CliRunner

from airuntime.cli.ask import AskSetup, ask_command
from airuntime.cli.exits import ExitCode
from airuntime.model.providers.openai import OpenAIClient

Reply = Callable[[httpx2.Request], httpx2.Response]
MODEL = "gpt-5-mini"


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
    ("body", "expected"),
    [
        (
            azure_filtered_completion(),
            "error: openai/gpt-5-mini: content_filtered: the output was stopped by the content "
            "filter\n",
        ),
        (
            {**completion(), "choices": [{"index": 0, "finish_reason": "stop"}]},
            "error: openai/gpt-5-mini: server_error: the response's choice has no message "
            "(finish_reason 'stop')\n",
        ),
    ],
)
def test_ask_raw_reports_a_response_without_a_message_in_one_line(
    body: dict[str, Any], expected: str
) -> None:
    api = FakeOpenAI()
    api.respond(body=body)

    result = CliRunner().invoke(ask_app(api), ["ask", "--raw", "Describe the fight."])

    assert result.exit_code == ExitCode.PROVIDER_UNAVAILABLE
    assert (result.stdout, result.stderr) == ("", expected)
    assert len(api.sent) == 1
