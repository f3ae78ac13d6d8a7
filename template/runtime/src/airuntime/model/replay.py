"""Serving recorded traffic offline: the replay provider.

`ReplayClient` answers as the provider it replays ("openai", "anthropic", ...), so prices,
fallbacks and reports treat it as that provider, from cassettes alone: no key, no network. A
wire-format recording is served through the real adapter (built on an in-memory HTTP
transport that returns the recorded bytes), so the adapter's parsing, refusal and error
translation run on what the vendor really sent; a native recording is served as it was
recorded. Identical requests recorded more than once are served in turn.

A request that no cassette holds raises `ReplayMissError`: one line naming the prompt
id@version and what differs from the nearest recording. It is a configuration error, not a
model error, so no retry or fallback hides it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airuntime.model.cassettes import (
    NATIVE,
    WIRE_FORMATS,
    Call,
    Cassette,
    CassetteError,
    Interaction,
    ReplayMissError,
    explain_miss,
    match_key,
    normalized,
)
from airuntime.model.client import LLMClient
from airuntime.model.factory import ProviderConfig, build_provider
from airuntime.types import Chunk, LLMRequest, LLMResponse

if TYPE_CHECKING:
    import httpx2

# Never resolved: the in-memory transport answers before any connection is made.
_REPLAY_URLS = {"openai": "http://replay.invalid/v1", "anthropic": "http://replay.invalid"}
_NO_KEY = "replayed-no-key"


class ReplayClient:
    """`LLMClient` serving one provider's recorded interactions."""

    def __init__(self, provider: str, cassettes: Sequence[Cassette]) -> None:
        self._provider = provider
        self._recorded: list[tuple[Path, dict[str, Any]]] = []
        self._served: dict[str, Iterator[Interaction]] = {}
        by_key: dict[str, list[Interaction]] = {}
        for cassette in cassettes:
            for item in cassette.interactions:
                if item.request.get("provider") != provider:
                    continue
                _check_format(cassette.path, provider, item)
                self._recorded.append((cassette.path, item.request))
                by_key.setdefault(match_key(item.request), []).append(item)
        self._served = {key: itertools.cycle(items) for key, items in by_key.items()}

    @property
    def provider(self) -> str:
        return self._provider

    @property
    def recorded(self) -> int:
        """How many interactions this client can serve."""
        return len(self._recorded)

    async def complete(self, request: LLMRequest) -> LLMResponse:
        item = self._find(request, "complete")
        if item.response.get("wire") == NATIVE:
            fields = {k: v for k, v in item.response.items() if k != "wire"}
            return LLMResponse.model_validate(
                {**fields, "request_id": request.request_id, "latency_ms": item.latency_ms}
            )
        adapter = self._adapter(item)
        try:
            response = await adapter.complete(request)
        finally:
            await adapter.aclose()
        # The recorded call's latency, not the in-memory one, so reports show the real figure.
        return response.model_copy(update={"latency_ms": item.latency_ms})

    async def stream(self, request: LLMRequest) -> AsyncIterator[Chunk]:
        item = self._find(request, "stream")
        if item.response.get("wire") == NATIVE:
            for chunk in item.response.get("chunks", []):
                yield Chunk.model_validate(chunk)
            return
        adapter = self._adapter(item)
        try:
            async for chunk in adapter.stream(request):
                yield chunk
        finally:
            await adapter.aclose()

    async def aclose(self) -> None:
        """Nothing to release: each replayed call closes its own adapter."""

    def _find(self, request: LLMRequest, call: Call) -> Interaction:
        wanted = normalized(self._provider, call, request)
        served = self._served.get(match_key(wanted))
        if served is None:
            raise ReplayMissError(explain_miss(wanted, self._recorded))
        return next(served)

    def _adapter(self, item: Interaction) -> LLMClient:
        """The real adapter, on a transport that answers with this interaction's bytes."""
        import httpx2  # with the adapters' extras only: a native recording needs none

        transport = httpx2.MockTransport(lambda _request: served_response(item.response))
        config = ProviderConfig(
            self._provider, api_key=_NO_KEY, base_url=_REPLAY_URLS[self._provider]
        )
        return build_provider(config, http_client=httpx2.AsyncClient(transport=transport))


def _check_format(path: Path, provider: str, item: Interaction) -> None:
    wire = item.response.get("wire")
    if wire != NATIVE and wire != WIRE_FORMATS.get(provider):
        raise CassetteError(
            f"{path}: a {provider} interaction in wire format {wire!r}: use "
            f"{WIRE_FORMATS.get(provider, NATIVE)!r} or {NATIVE!r}, or re-record it."
        )


def served_response(recorded: dict[str, Any]) -> httpx2.Response:
    """The HTTP response a recording stands for: its status, kept headers and body."""
    import httpx2

    headers = dict(recorded.get("headers", {}))
    if "events" in recorded:
        headers["content-type"] = "text/event-stream"
        content = "".join(_event(event) for event in recorded["events"]).encode()
    elif "body" in recorded:
        headers["content-type"] = "application/json"
        content = json.dumps(recorded["body"]).encode()
    else:
        content = str(recorded.get("text", "")).encode()
    return httpx2.Response(int(recorded.get("status", 200)), headers=headers, content=content)


def _event(event: dict[str, Any]) -> str:
    data = event.get("data")
    text = data if isinstance(data, str) else json.dumps(data)
    name = f"event: {event['event']}\n" if event.get("event") else ""
    return name + "".join(f"data: {line}\n" for line in text.split("\n")) + "\n"


def replay_clients(
    providers: Sequence[str], cassettes: Sequence[Cassette]
) -> dict[str, ReplayClient]:
    """A replay client per provider, all serving from the same cassettes."""
    return {name: ReplayClient(name, cassettes) for name in providers}
