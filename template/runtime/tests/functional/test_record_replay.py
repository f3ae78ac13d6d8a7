"""Record and replay at the model boundary, over the real adapters: the vendor is a scripted
HTTP transport under the recording tap; the replay serves the cassette through the adapter
again, with no key and no network, and a request it does not hold fails in one line."""

from __future__ import annotations

import pytest

pytest.importorskip("httpx2", reason="no vendor extra is installed: nothing records the wire")

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2

from airuntime.errors import ConfigurationError, RateLimitedError
from airuntime.model.cassette_mode import CassetteSession
from airuntime.model.cassettes import (
    ReplayMissError,
    find_secrets,
    load_cassettes,
)
from airuntime.model.client import LLMClient
from airuntime.model.factory import ProviderConfig
from airuntime.model.mock import MockLLM
from airuntime.model.providers.wire_tap import WireTap
from airuntime.model.recording import CassetteRecorder, RecordingClient
from airuntime.model.replay import ReplayClient
from airuntime.observability.events import RecordingObserver
from airuntime.resilience.assembly import cassette_clients
from airuntime.testing import FakeClock, flat_prices, resilient_client
from airuntime.types import LLMRequest, Message, ModelTarget, OutputFormat

KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"
ANTHROPIC_KEY = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789"
Handler = Callable[[httpx2.Request], httpx2.Response]


def request(text: str = "Reply with the single word: pong", **extra: Any) -> LLMRequest:
    return LLMRequest(
        model="gpt-5.4-mini",
        messages=(Message(role="user", content=text),),
        max_tokens=100,
        metadata={"prompt.id": "classify", "prompt.version": "1.2.0", "trace": "abc"},
        **extra,
    )


def openai_body(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1767225600,
        "model": "gpt-5.4-mini-2026-03-01",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 13, "completion_tokens": 2, "total_tokens": 15},
    }


def openai_chunk(delta: dict[str, Any] | None, finish: str | None = None) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    usage = {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}
    return {
        "id": "chatcmpl-2",
        "object": "chat.completion.chunk",
        "created": 1767225600,
        "model": "gpt-5.4-mini",
        "choices": choices,
        "usage": usage if delta is None else None,
    }


def sse(*events: tuple[str | None, Any]) -> bytes:
    out = ""
    for name, data in events:
        out += (f"event: {name}\n" if name else "") + f"data: {json.dumps(data)}\n\n"
    return out.encode()


class Vendor:
    """A scripted vendor API that insists on the key and answers with cookies and org ids."""

    def __init__(self, *replies: httpx2.Response) -> None:
        self.replies = list(replies)
        self.seen: list[httpx2.Request] = []

    def handle(self, sent: httpx2.Request) -> httpx2.Response:
        self.seen.append(sent)
        sent_keys = sent.headers.get("authorization", "") + sent.headers.get("x-api-key", "")
        assert KEY in sent_keys or ANTHROPIC_KEY in sent_keys
        return self.replies.pop(0)


def vendor_response(status: int, *, json_body: Any = None, content: bytes = b"") -> httpx2.Response:
    headers = {
        "set-cookie": "__cf_bm=secretcookie; path=/",
        "openai-organization": "org-private",
        "x-request-id": "req_123",
        "x-ratelimit-remaining-requests": "99",
    }
    if json_body is not None:
        return httpx2.Response(status, json=json_body, headers=headers)
    return httpx2.Response(
        status, content=content, headers={**headers, "content-type": "text/event-stream"}
    )


def recorded_adapter(provider: str, vendor: Vendor, recorder: CassetteRecorder) -> LLMClient:
    from airuntime.model.factory import build_provider

    key = KEY if provider == "openai" else ANTHROPIC_KEY
    client = httpx2.AsyncClient(transport=WireTap(httpx2.MockTransport(vendor.handle)))
    return RecordingClient(
        build_provider(ProviderConfig(provider, api_key=key), http_client=client), recorder
    )


pytest.importorskip("openai", reason="the openai extra is not installed")


async def test_an_openai_completion_and_stream_replay_as_recorded_with_no_key(
    tmp_path: Path,
) -> None:
    vendor = Vendor(
        vendor_response(200, json_body=openai_body("pong, write to ada@example.com")),
        vendor_response(
            200,
            content=sse(
                (None, openai_chunk({"role": "assistant", "content": ""})),
                (None, openai_chunk({"content": "1, 2"})),
                (None, openai_chunk({"content": ", 3."}, "stop")),
                (None, openai_chunk(None)),
            )
            + b"data: [DONE]\n\n",
        ),
    )
    recorder = CassetteRecorder(tmp_path)
    live = recorded_adapter("openai", vendor, recorder)
    answered = await live.complete(request())
    streamed = [chunk async for chunk in live.stream(request("Count to 3"))]
    await live.aclose()

    assert answered.text == "pong, write to ada@example.com"  # the caller gets it all
    cassette = (tmp_path / "openai-classify.json").read_text(encoding="utf-8")
    assert "ada@example.com" not in cassette  # the cassette holds it redacted
    assert "[EMAIL]" in cassette
    for private in (KEY, "secretcookie", "org-private", "authorization"):
        assert private not in cassette
    assert find_secrets(tmp_path) == []
    document = json.loads(cassette)
    first, second = document["interactions"]
    assert first["request"]["prompt"] == "classify@1.2.0"
    assert "trace" not in json.dumps(first["request"])  # tracing metadata does not match
    assert first["response"]["wire"] == "openai.chat.completions"
    assert first["response"]["headers"] == {
        "content-type": "application/json",
        "x-request-id": "req_123",
        "x-ratelimit-remaining-requests": "99",
    }
    assert second["response"]["events"][-1] == {"data": "[DONE]"}

    replay = ReplayClient("openai", load_cassettes(tmp_path))
    again = await replay.complete(request())
    chunks = [chunk async for chunk in replay.stream(request("Count to 3"))]

    assert again.text == "pong, write to [EMAIL]"
    assert again.usage == answered.usage
    assert again.model == answered.model == "gpt-5.4-mini-2026-03-01"
    assert again.latency_ms == first["latency_ms"]
    assert [chunk.text for chunk in chunks] == [chunk.text for chunk in streamed]
    assert chunks[-1].usage == streamed[-1].usage
    assert chunks[-1].finish_reason == "stop"
    assert len(vendor.seen) == 2  # replay sent nothing


async def test_an_anthropic_stream_replays_through_the_adapter(tmp_path: Path) -> None:
    pytest.importorskip("anthropic", reason="the anthropic extra is not installed")
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-haiku-4-5",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 14, "output_tokens": 1},
        },
    }
    events = sse(
        ("message_start", start),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("ping", {"type": "ping"}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "1, 2, 3."}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "usage": {"output_tokens": 9},
                           "delta": {"stop_reason": "end_turn", "stop_sequence": None}}),
        ("message_stop", {"type": "message_stop"}),
    )  # fmt: skip
    live = recorded_adapter(
        "anthropic", Vendor(vendor_response(200, content=events)), CassetteRecorder(tmp_path)
    )
    asked = request("Count to 3").model_copy(update={"model": "claude-haiku-4-5"})
    recorded = [chunk async for chunk in live.stream(asked)]

    replayed = [
        chunk async for chunk in ReplayClient("anthropic", load_cassettes(tmp_path)).stream(asked)
    ]

    assert [c.text for c in replayed] == [c.text for c in recorded] == ["1, 2, 3.", ""]
    assert replayed[-1].usage == recorded[-1].usage
    assert ANTHROPIC_KEY not in (tmp_path / "anthropic-classify.json").read_text("utf-8")


async def test_a_recorded_rate_limit_replays_as_a_rate_limit(tmp_path: Path) -> None:
    error = {"error": {"message": "Rate limit reached", "type": "requests", "code": None}}
    limited = vendor_response(429, json_body=error)
    limited.headers["retry-after"] = "7"
    live = recorded_adapter("openai", Vendor(limited), CassetteRecorder(tmp_path))
    with pytest.raises(RateLimitedError):
        await live.complete(request())

    with pytest.raises(RateLimitedError) as replayed:
        await ReplayClient("openai", load_cassettes(tmp_path)).complete(request())

    assert replayed.value.retry_after == 7.0


async def test_a_request_with_no_recording_fails_once_naming_the_prompt_and_the_difference(
    tmp_path: Path,
) -> None:
    live = recorded_adapter(
        "openai",
        Vendor(vendor_response(200, json_body=openai_body("a"))),
        CassetteRecorder(tmp_path),
    )
    await live.complete(request("Classify this ticket: the printer is on fire"))
    replay = ReplayClient("openai", load_cassettes(tmp_path))
    observer = RecordingObserver()
    prices = flat_prices([ModelTarget(provider="openai", model="gpt-5.4-mini")])
    client = resilient_client(
        {"openai": replay}, clock=FakeClock(), observer=observer, pricing=prices
    )

    with pytest.raises(ReplayMissError) as missed:
        await client.complete(request("Classify this ticket: the printer is on ice"))

    assert str(missed.value) == (
        "no recording for classify@1.2.0 (openai, complete): messages[0].content differs at "
        "character 40: 'ice' vs recorded 'fire' (nearest recording in openai-classify.json); "
        "re-record with `make record` (real keys), or set LLM_CASSETTES=off."
    )
    assert len(observer.attempts) == 0  # a configuration error: no attempt is counted, none retried
    with pytest.raises(ReplayMissError, match=r"max_tokens is '50', recorded '100'"):
        await replay.complete(
            request("Classify this ticket: the printer is on fire").model_copy(
                update={"max_tokens": 50}
            )
        )
    with pytest.raises(ReplayMissError, match=r"the cassettes hold classify@1.2.0;"):
        await replay.complete(request().model_copy(update={"metadata": {}}))
    with pytest.raises(ReplayMissError, match=r"\(openai, stream\): the cassettes hold nothing"):
        [chunk async for chunk in replay.stream(request())]


async def test_identical_requests_recorded_twice_are_served_in_turn(tmp_path: Path) -> None:
    vendor = Vendor(
        vendor_response(200, json_body=openai_body("first")),
        vendor_response(200, json_body=openai_body("second")),
    )
    live = recorded_adapter("openai", vendor, CassetteRecorder(tmp_path))
    await live.complete(request())
    await live.complete(request())

    replay = ReplayClient("openai", load_cassettes(tmp_path))
    served = [(await replay.complete(request())).text for _ in range(3)]

    assert served == ["first", "second", "first"]
    assert replay.recorded == 2


async def test_any_other_client_records_natively_and_replays(tmp_path: Path) -> None:
    recorder = CassetteRecorder(tmp_path)
    live = RecordingClient(MockLLM(), recorder)
    asked = request(output=OutputFormat(type="json"))
    answered = await live.complete(asked)
    streamed = [chunk async for chunk in live.stream(request("hello there"))]

    replay = ReplayClient("mock", load_cassettes(tmp_path))
    again = await replay.complete(asked)
    chunks = [chunk async for chunk in replay.stream(request("hello there"))]

    assert again.text == answered.text
    assert again.request_id == asked.request_id
    assert chunks == streamed
    recorded = json.loads((tmp_path / "mock-classify.json").read_text("utf-8"))
    assert recorded["interactions"][0]["response"]["wire"] == "airuntime"


async def test_recording_over_an_example_cassette_replaces_it(tmp_path: Path) -> None:
    example = tmp_path / "openai-classify.json"
    example.write_text(
        json.dumps({"cassette": 1, "example": True, "interactions": []}), encoding="utf-8"
    )
    live = recorded_adapter(
        "openai", Vendor(vendor_response(200, json_body=openai_body("real"))),
        CassetteRecorder(tmp_path),
    )  # fmt: skip
    await live.complete(request())

    (cassette,) = load_cassettes(tmp_path)
    assert not cassette.example
    assert len(cassette.interactions) == 1


async def test_cassette_clients_replay_every_provider_without_a_key(tmp_path: Path) -> None:
    live = recorded_adapter(
        "openai", Vendor(vendor_response(200, json_body=openai_body("pong"))),
        CassetteRecorder(tmp_path),
    )  # fmt: skip
    await live.complete(request())
    configs = [ProviderConfig("openai"), ProviderConfig("anthropic")]

    clients = cassette_clients("openai", configs, CassetteSession("replay", tmp_path))

    assert sorted(clients.clients) == ["anthropic", "mock", "openai"]
    assert isinstance(clients.clients["openai"], ReplayClient)
    assert not clients.offline
    assert (await clients.clients["openai"].complete(request())).text == "pong"
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY is not set"):
        cassette_clients("openai", configs, CassetteSession("record", tmp_path))
    recording = cassette_clients(
        "openai", [ProviderConfig("openai", api_key=KEY)], CassetteSession("record", tmp_path)
    )
    assert isinstance(recording.clients["openai"], RecordingClient)
    await recording.clients["openai"].aclose()
    offline = cassette_clients("mock", configs, CassetteSession("replay", tmp_path))
    assert offline.offline
