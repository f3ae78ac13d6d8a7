"""A response cache and idempotency store in one embedded SQLite file.

The cache key covers everything that determines an answer: the prompt's id, version and content
hash, the rendered messages (so the inputs), the model and every sampling parameter, and who
would answer: the chain's first target (provider and model), the client that serves it (the
provider's adapter, or the offline mock standing in for it) and its endpoint (the base URL). A
hit is served without calling (or paying) anyone. Only successful responses are stored, each
with its provenance: the target that answered, who served it and at which endpoint, so the
resilient client can refuse an answer whose server is no longer the one it would ask (a
stand-in answer is never returned to a call a real provider would serve).

An idempotency key names one unit of work (a job id, a message id). Replaying a request with the
same key returns the stored response, so a retried job neither re-bills nor duplicates its
effect, even when the replay is not byte-for-byte the same request.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from airuntime.observability.events import PROMPT_HASH, PROMPT_ID, PROMPT_VERSION
from airuntime.types import LLMRequest, LLMResponse, Message, ModelTarget

_IDEMPOTENCY_PREFIX = "idempotency:"
# Bumped when the key's material changes, so no entry is found under a key meaning otherwise.
KEY_VERSION = 2


class StoredAnswer(BaseModel):
    """A stored response and its provenance: the target that answered, the client that served
    it (`served_by`: the target's provider, or "mock" standing in) and its endpoint (None: the
    vendor's own, or in-process)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    response: LLMResponse
    target: ModelTarget
    served_by: str
    endpoint: str | None = None


def cache_key(
    request: LLMRequest, *, target: ModelTarget, served_by: str | None, endpoint: str | None
) -> str:
    """A stable digest of what determines the answer (not the request id, not other metadata)
    and of who would give it: `target` is the chain's first, `served_by` the client serving it
    now (None: not configured), `endpoint` its base URL."""
    material = {
        "version": KEY_VERSION,
        "target": [target.provider, target.model],
        "served_by": served_by,
        "endpoint": endpoint,
        "prompt": [request.metadata.get(key) for key in (PROMPT_ID, PROMPT_VERSION, PROMPT_HASH)],
        "messages": [[message.role, message.content] for message in request.messages],
        "model": request.model,
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "stop": list(request.stop),
        "seed": request.seed,
        "output": request.output.model_dump(mode="json"),
    }
    if request.tools or any(_has_tool_parts(message) for message in request.messages):
        # Only then, so the keys of requests without tools stay what they were.
        material["tools"] = [tool.model_dump(mode="json") for tool in request.tools]
        material["tool_choice"] = request.tool_choice
        material["tool_messages"] = [
            [call.model_dump(mode="json") for call in message.tool_calls]
            + [message.tool_call_id, message.is_error]
            for message in request.messages
        ]
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _has_tool_parts(message: Message) -> bool:
    return bool(message.tool_calls) or message.tool_call_id is not None


class ResponseCache:
    def __init__(
        self, path: Path, *, ttl_seconds: float, clock: Callable[[], float] = time.time
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._ttl = ttl_seconds
        self._clock = clock
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS responses "
            "(key TEXT PRIMARY KEY, stored_at REAL NOT NULL, body TEXT NOT NULL)"
        )

    def get(self, key: str) -> StoredAnswer | None:
        """The answer stored under `key` within the TTL. An entry without provenance (written
        by an older runtime) is never served: nobody can tell who answered it."""
        row = self._db.execute(
            "SELECT body FROM responses WHERE key = ? AND stored_at >= ?",
            (key, self._clock() - self._ttl),
        ).fetchone()
        if row is None:
            return None
        try:
            return StoredAnswer.model_validate_json(row[0])
        except ValidationError:
            return None

    def put(self, key: str, answer: StoredAnswer) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO responses (key, stored_at, body) VALUES (?, ?, ?)",
            (key, self._clock(), answer.model_dump_json()),
        )

    def get_idempotent(self, idempotency_key: str) -> StoredAnswer | None:
        return self.get(_IDEMPOTENCY_PREFIX + idempotency_key)

    def put_idempotent(self, idempotency_key: str, answer: StoredAnswer) -> None:
        self.put(_IDEMPOTENCY_PREFIX + idempotency_key, answer)

    def purge_expired(self) -> int:
        """Delete entries older than the TTL; returns how many were removed."""
        cursor = self._db.execute(
            "DELETE FROM responses WHERE stored_at < ?", (self._clock() - self._ttl,)
        )
        return cursor.rowcount

    def close(self) -> None:
        self._db.close()
