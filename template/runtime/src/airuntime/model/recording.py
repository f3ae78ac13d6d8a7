"""Recording real model traffic into cassettes, at the model boundary.

`RecordingClient` wraps any `LLMClient` and records each call: the normalized request and
the response. For the OpenAI and Anthropic adapters it records the vendor's wire response
(captured by the wire tap, the HTTP transport the adapter is built with), so replay runs the
adapter's own parsing on real bytes; for any other client it records airuntime's response
types. Keys never reach a cassette: request headers are not recorded at all, response headers
only from a short allow-list, and every string passes through the redaction rules.

A stream is buffered whole while recording (the tap reads it before the adapter does): a
recording run is a test run, where first-token latency does not matter.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airuntime.model.cassettes import (
    NATIVE,
    WIRE_FORMATS,
    Call,
    Cassette,
    Interaction,
    cassette_name,
    load_cassette,
    normalized,
    redacted,
)
from airuntime.model.client import LLMClient
from airuntime.types import Chunk, LLMRequest, LLMResponse


@dataclass(frozen=True, slots=True)
class WireExchange:
    """One HTTP response as the vendor sent it, headers already filtered."""

    status: int
    headers: dict[str, str]
    body: bytes


# The exchanges of the call the current task is recording (None: not recording); the wire tap
# (providers/wire_tap.py, the HTTP transport of a recorded adapter) appends to it.
TAPE: ContextVar[list[WireExchange] | None] = ContextVar("airuntime_wire_tape", default=None)


def parse_events(body: bytes) -> list[dict[str, Any]]:
    """Server-sent events as `{"event": name, "data": JSON or text}` (comments dropped)."""
    events = []
    for block in body.decode("utf-8").replace("\r\n", "\n").split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if not data and name is None:
            continue
        text = "\n".join(data)
        try:
            value: Any = json.loads(text)
        except json.JSONDecodeError:
            value = text
        events.append({"event": name, "data": value} if name else {"data": value})
    return events


def wire_response(provider: str, exchange: WireExchange, call: Call) -> dict[str, Any]:
    """The recorded form of a vendor response: its JSON body, or its events for a stream."""
    recorded: dict[str, Any] = {
        "wire": WIRE_FORMATS[provider],
        "status": exchange.status,
        "headers": exchange.headers,
    }
    if call == "stream" and exchange.status < 400:
        recorded["events"] = redacted(parse_events(exchange.body))
        return recorded
    try:
        recorded["body"] = redacted(json.loads(exchange.body))
    except (json.JSONDecodeError, UnicodeDecodeError):
        recorded["text"] = redacted(exchange.body.decode("utf-8", "replace"))
    return recorded


class CassetteRecorder:
    """Where recordings go: one cassette per provider and prompt under `directory`, each
    rewritten whole after every call (so an interrupted run keeps what it recorded)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._open: dict[Path, Cassette] = {}

    def add(self, interaction: Interaction) -> Path:
        path = self.directory / cassette_name(interaction.request)
        cassette = self._open.get(path)
        if cassette is None:
            # A cassette an earlier run recorded is added to; an example one is replaced.
            cassette = load_cassette(path) if path.is_file() else Cassette(path)
            if cassette.example:
                cassette = Cassette(path)
            self._open[path] = cassette
        cassette.interactions.append(interaction)
        cassette.save()
        return path


class RecordingClient:
    """`LLMClient` that records every call of the client it wraps into cassettes."""

    def __init__(self, inner: LLMClient, recorder: CassetteRecorder) -> None:
        self._inner = inner
        self._recorder = recorder
        self._wire = inner.provider in WIRE_FORMATS

    @property
    def provider(self) -> str:
        return self._inner.provider

    async def complete(self, request: LLMRequest) -> LLMResponse:
        tape: list[WireExchange] = []
        token = TAPE.set(tape)
        started = time.perf_counter()
        try:
            response = await self._inner.complete(request)
        except Exception:
            self._record_failure(request, "complete", tape, started)
            raise
        finally:
            TAPE.reset(token)
        if self._wire and tape:
            recorded = wire_response(self.provider, tape[-1], "complete")
        else:
            recorded = {"wire": NATIVE, **redacted(response.model_dump(mode="json"))}
        self._add(request, "complete", recorded, started)
        return response

    async def stream(self, request: LLMRequest) -> AsyncIterator[Chunk]:
        tape: list[WireExchange] = []
        chunks: list[Chunk] = []
        started = time.perf_counter()
        iterator = aiter(self._inner.stream(request))
        try:
            # The adapter sends the request, and the tap reads the whole response, during the
            # first step: the tape is set and reset within it, in one context (later steps may
            # run in another, under a timeout's task).
            token = TAPE.set(tape)
            try:
                first = await anext(iterator, None)
            finally:
                TAPE.reset(token)
            if first is not None:
                chunks.append(first)
                yield first
                async for chunk in iterator:
                    chunks.append(chunk)
                    yield chunk
        except Exception:
            self._record_failure(request, "stream", tape, started)
            raise
        if self._wire and tape:
            recorded = wire_response(self.provider, tape[-1], "stream")
        else:
            recorded = {
                "wire": NATIVE,
                "chunks": [redacted(chunk.model_dump(mode="json")) for chunk in chunks],
            }
        self._add(request, "stream", recorded, started)

    async def aclose(self) -> None:
        await self._inner.aclose()

    def _record_failure(
        self, request: LLMRequest, call: Call, tape: list[WireExchange], started: float
    ) -> None:
        """A vendor's error response is recorded too (a 429 replays as a 429); a failure
        with no response (a timeout, a refused connection) has nothing to replay."""
        if self._wire and tape:
            self._add(request, call, wire_response(self.provider, tape[-1], call), started)

    def _add(
        self, request: LLMRequest, call: Call, recorded: dict[str, Any], started: float
    ) -> None:
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        self._recorder.add(
            Interaction(normalized(self.provider, call, request), recorded, latency_ms)
        )
