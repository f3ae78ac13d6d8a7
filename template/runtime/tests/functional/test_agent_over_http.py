"""An agent run through every layer: the loop, the resilient client, a real vendor adapter and
its SDK, against a scripted HTTP transport answering with the vendor's documented payloads. The
tool call goes out as the vendor's tool definition, comes back in its format, and its result
goes back to the model in the next request as the vendor wants it (a `tool` message for
OpenAI, a `tool_result` block of a user message for Anthropic)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import pytest

from airuntime.agents.loop import Agent, AgentConfig
from airuntime.agents.store import RunStore
from airuntime.agents.tools import tool
from airuntime.model.client import LLMClient
from airuntime.testing import FakeClock, flat_prices, resilient_client
from airuntime.types import ModelTarget


class Transport:
    """Answers each HTTP request with the next body, and keeps what was sent."""

    def __init__(self, *bodies: dict[str, Any]) -> None:
        self.bodies = list(bodies)
        self.sent: list[dict[str, Any]] = []

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.sent.append(json.loads(request.content))
        return httpx2.Response(200, json=self.bodies.pop(0))

    def http(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=httpx2.MockTransport(self.handle))


@tool
def lookup_order(order_id: str) -> dict[str, str]:
    """Look up an order's status."""
    return {"order_id": order_id, "status": "shipped"}


def agent_on(tmp_path: Path, provider: str, model: str, adapter: LLMClient) -> Agent:
    target = ModelTarget(provider=provider, model=model)
    client = resilient_client({provider: adapter}, clock=FakeClock(), pricing=flat_prices([target]))
    return Agent(
        client,
        [lookup_order],
        AgentConfig(name="triage", model=model, instructions="Help.", targets=(target,)),
        store=RunStore(tmp_path / "runs"),
    )


def openai_body(message: dict[str, Any], finish_reason: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-abc123",
        "object": "chat.completion",
        "created": 1767225600,
        "model": "gpt-5-mini-2025-08-07",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 80, "completion_tokens": 20, "total_tokens": 100},
    }


async def test_an_openai_agent_run_carries_the_call_and_its_result(tmp_path: Path) -> None:
    pytest.importorskip("openai", reason="the openai extra is not installed")
    from airuntime.model.providers.openai import OpenAIClient

    call = {
        "id": "call_abc123",
        "type": "function",
        "function": {"name": "lookup_order", "arguments": '{"order_id":"A1001"}'},
    }
    transport = Transport(
        openai_body({"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"),
        openai_body({"role": "assistant", "content": "A1001 has shipped."}, "stop"),
    )
    adapter = OpenAIClient(api_key="sk-test", http_client=transport.http())
    agent = agent_on(tmp_path, "openai", "gpt-5-mini", adapter)

    run = await agent.run("Where is A1001?")
    await agent.aclose()

    assert (run.stop_reason, run.answer) == ("completed", "A1001 has shipped.")
    first, second = transport.sent
    assert first["tools"][0]["function"]["name"] == "lookup_order"
    assert second["messages"][-2:] == [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {
            "role": "tool",
            "tool_call_id": "call_abc123",
            "content": '{"order_id": "A1001", "status": "shipped"}',
        },
    ]
    assert [step.cost for step in run.steps] == [priced(80, 20)] * 2


def priced(tokens_in: int, tokens_out: int) -> Decimal:
    """The cost of a step at $1 per million input tokens and $2 per million output tokens."""
    return (Decimal(tokens_in) * 1 + Decimal(tokens_out) * 2) / Decimal(1_000_000)


def anthropic_body(content: list[dict[str, Any]], stop_reason: str) -> dict[str, Any]:
    return {
        "id": "msg_01Aq9w938a90dw8q",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5-20251001",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 80, "output_tokens": 20},
    }


async def test_an_anthropic_agent_run_carries_the_call_and_its_result(tmp_path: Path) -> None:
    pytest.importorskip("anthropic", reason="the anthropic extra is not installed")
    from airuntime.model.providers.anthropic import AnthropicClient

    use: dict[str, Any] = {
        "type": "tool_use",
        "id": "toolu_01A09q90qw90lq917835lq9",
        "name": "lookup_order",
        "input": {"order_id": "A1001"},
    }
    transport = Transport(
        anthropic_body([{"type": "text", "text": "Checking."}, use], "tool_use"),
        anthropic_body([{"type": "text", "text": "A1001 has shipped."}], "end_turn"),
    )
    adapter = AnthropicClient(api_key="sk-ant-test", http_client=transport.http())
    agent = agent_on(tmp_path, "anthropic", "claude-haiku-4-5", adapter)

    run = await agent.run("Where is A1001?")
    await agent.aclose()

    assert (run.stop_reason, run.answer) == ("completed", "A1001 has shipped.")
    first, second = transport.sent
    assert first["system"] == "Help."
    assert first["tools"][0]["name"] == "lookup_order"
    assert second["messages"][-2:] == [
        {"role": "assistant", "content": [{"type": "text", "text": "Checking."}, use]},
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
                    "content": '{"order_id": "A1001", "status": "shipped"}',
                    "is_error": False,
                }
            ],
        },
    ]
    assert [step.cost for step in run.steps] == [priced(80, 20)] * 2
