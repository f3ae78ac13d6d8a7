"""Who really answered (issue 13, items 1 and 2), on whole flows: the test library's summarize
prompt (its primary target openai/gpt-5-mini), the stack as a project's wiring assembles it
(`provider_clients`, `build_resilient_client`, the structured generator, the feature system),
and, online, the real OpenAI adapter talking to an OpenAI-compatible server on loopback.

Every result records the client that served it (`served_by`) apart from the target it stands
in for, and the response cache never hands an offline stand-in's answer to a call a real
provider serves: it is sent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from airuntime.features import FeatureOutput, FeatureResult, FeatureSystem
from airuntime.model.factory import ProviderConfig
from airuntime.model.mock import Rule
from airuntime.observability.logs import configure_logging
from airuntime.observability.telemetry import Telemetry
from airuntime.prompts import load_registry
from airuntime.resilience.assembly import (
    BudgetConfig,
    CacheConfig,
    ProviderClients,
    StackConfig,
    build_resilient_client,
    provider_clients,
)
from airuntime.review import ReviewQueue
from airuntime.structured import StructuredGenerator
from airuntime.types import ModelTarget

LIBRARY = Path(__file__).parent / "library"
PRIMARY = ModelTarget(provider="openai", model="gpt-5-mini")
DOCUMENT = (
    "Incident report: checkout outage on 14 March. Card payments failed for 42 minutes after a "
    "certificate expired on the payment gateway. Engineers rotated the certificate and added an "
    "expiry alert. No data was lost."
)
OFFLINE_SUMMARY = {
    "summary": "Card payments failed for 42 minutes after a certificate expired.",
    "key_points": ["A certificate expired."],
    "confidence": 0.5,  # below the review threshold: the answer is queued for review
}
REAL_SUMMARY = {
    "summary": "An expired gateway certificate stopped card payments for 42 minutes.",
    "key_points": ["Certificate rotated", "Expiry alert added"],
    "confidence": 0.93,
}


class Summary(FeatureOutput):
    summary: str
    key_points: list[str]


async def summarize(system: FeatureSystem, text: str) -> FeatureResult[Summary]:
    """The feature as a project writes it: guardrails, the prompt (cache on), review flags."""
    generated = await system.generator.generate(
        "summarize", {"text": system.clean(text, ("document",)), "max_words": 40}, Summary
    )
    return system.finish("summarize", text, generated)


def system_on(providers: ProviderClients, var: Path) -> FeatureSystem:
    """The features' runtime as wiring builds it, with the cache and review queue in `var`."""
    telemetry = Telemetry()
    client = build_resilient_client(
        StackConfig(budget=BudgetConfig(per_day=None), cache=CacheConfig(var / "cache.sqlite3")),
        providers,
        observer=telemetry,
    )
    return FeatureSystem(
        telemetry=telemetry,
        client=client,
        generator=StructuredGenerator(client, load_registry(LIBRARY)),
        offline=providers.offline,
        review_queue=ReviewQueue(var / "review.jsonl"),
    )


def offline_providers() -> ProviderClients:
    """No key configured, in development: the mock stands in for every provider."""
    return provider_clients(
        "mock",
        [ProviderConfig("openai"), ProviderConfig("anthropic")],
        mock_rules=[Rule("Summarise this document", json.dumps(OFFLINE_SUMMARY))],
    )


def events(log_file: Path, name: str) -> list[dict[str, Any]]:
    lines = log_file.read_text(encoding="utf-8").splitlines()
    return [event for event in map(json.loads, lines) if event["event"] == name]


async def test_offline_every_record_names_the_mock_apart_from_the_target(tmp_path: Path) -> None:
    log_file = tmp_path / "run.log"
    configure_logging(level="INFO", log_format="json", log_file=log_file)
    system = system_on(offline_providers(), tmp_path / "var")
    try:
        result = await summarize(system, DOCUMENT)
    finally:
        await system.aclose()
        configure_logging()

    # The result, as the command line prints it with --json and a service would serialise it.
    assert (result.generated.target, result.generated.served_by) == (PRIMARY, "mock")
    answer = result.to_dict()
    assert (answer["model"], answer["served_by"], answer["degraded"]) == (
        "openai/gpt-5-mini",
        "mock",
        False,
    )
    # The call's record and its log event; each attempt's event.
    (call,) = events(log_file, "llm.call")
    assert (call["provider"], call["model"], call["served_by"]) == ("openai", "gpt-5-mini", "mock")
    assert [attempt["served_by"] for attempt in events(log_file, "llm.attempt")] == ["mock"]
    # The review item (its confidence is below the threshold).
    (item,), _ = ReviewQueue(tmp_path / "var" / "review.jsonl").items()
    assert (item.model, item.served_by) == ("openai/gpt-5-mini", "mock")


class FakeOpenAI:
    """An OpenAI-compatible server on loopback that answers every chat completion with
    `reply` (as JSON text) and keeps what it was sent."""

    def __init__(self, reply: dict[str, Any]) -> None:
        self.reply = reply
        self.received: list[dict[str, Any]] = []
        self.port = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        self.received.append(json.loads(await reader.readexactly(length)))
        body = json.dumps(
            {
                "id": f"chatcmpl-{len(self.received)}",
                "object": "chat.completion",
                "created": 1767225600,
                "model": "gpt-5-mini-2025-08-07",
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": json.dumps(self.reply),
                            "refusal": None,
                        },
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 180, "completion_tokens": 40, "total_tokens": 220},
            }
        ).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @asynccontextmanager
    async def running(self) -> AsyncIterator[FakeOpenAI]:
        server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        async with server:
            yield self


def online_providers(base_url: str) -> ProviderClients:
    """A key configured (OPENAI_API_KEY, OPENAI_BASE_URL), as in production."""
    return provider_clients(
        "openai",
        [ProviderConfig("openai", api_key="sk-test-not-a-real-key", base_url=base_url)],
    )


async def run_once(providers: ProviderClients, var: Path) -> FeatureResult[Summary]:
    system = system_on(providers, var)
    try:
        return await summarize(system, DOCUMENT)
    finally:
        await system.aclose()


def provenance(result: FeatureResult[Summary]) -> Sequence[object]:
    answer = result.to_dict()
    return (answer["model"], answer["served_by"], answer["cache_hit"], answer["summary"])


async def test_an_answer_cached_offline_is_never_served_once_a_key_is_configured(
    tmp_path: Path,
) -> None:
    pytest.importorskip("openai", reason="the openai extra is not installed")
    var = tmp_path / "var"  # one cache file, as a project keeps it across runs

    # Development, no key: the mock stands in, its answer is cached, and served from there.
    offline = await run_once(offline_providers(), var)
    offline_again = await run_once(offline_providers(), var)
    stand_in = ("openai/gpt-5-mini", "mock")
    assert provenance(offline) == (*stand_in, False, OFFLINE_SUMMARY["summary"])
    assert provenance(offline_again) == (*stand_in, True, OFFLINE_SUMMARY["summary"])

    # Then a key is configured: the same document, the same prompt and model, the same cache.
    async with FakeOpenAI(REAL_SUMMARY).running() as api:
        online = await run_once(online_providers(api.base_url), var)
        assert len(api.received) == 1  # the request was sent: no stand-in answer came back
        online_again = await run_once(online_providers(api.base_url), var)

    real = ("openai/gpt-5-mini", "openai")
    assert provenance(online) == (*real, False, REAL_SUMMARY["summary"])
    assert api.received[0]["model"] == "gpt-5-mini"
    assert DOCUMENT in api.received[0]["messages"][-1]["content"]
    # The real answer is cached in its turn, for the real provider only.
    assert provenance(online_again) == (*real, True, REAL_SUMMARY["summary"])
    assert len(api.received) == 1
    assert online.generated.cost > 0 == online_again.generated.cost

    # Another endpoint (another server behind the same provider name) is someone else again.
    async with FakeOpenAI(REAL_SUMMARY).running() as other:
        elsewhere = await run_once(online_providers(other.base_url), var)
    assert (elsewhere.generated.cache_hit, len(other.received)) == (False, 1)
