"""A response cache and idempotency store in one embedded SQLite file.

The cache key covers everything that determines an answer: the prompt's id, version and content
hash, the rendered messages (so the inputs), the model and every sampling parameter. A hit is
served without calling (or paying) anyone. Only successful responses are stored.

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

from airuntime.observability.events import PROMPT_HASH, PROMPT_ID, PROMPT_VERSION
from airuntime.types import LLMRequest, LLMResponse

_IDEMPOTENCY_PREFIX = "idempotency:"


def cache_key(request: LLMRequest) -> str:
    """A stable digest of what determines the answer (not the request id, not other metadata)."""
    material = {
        "prompt": [request.metadata.get(key) for key in (PROMPT_ID, PROMPT_VERSION, PROMPT_HASH)],
        "messages": [[message.role, message.content] for message in request.messages],
        "model": request.model,
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "stop": list(request.stop),
        "seed": request.seed,
        "output": request.output.model_dump(mode="json"),
    }
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


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

    def get(self, key: str) -> LLMResponse | None:
        row = self._db.execute(
            "SELECT body FROM responses WHERE key = ? AND stored_at >= ?",
            (key, self._clock() - self._ttl),
        ).fetchone()
        return None if row is None else LLMResponse.model_validate_json(row[0])

    def put(self, key: str, response: LLMResponse) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO responses (key, stored_at, body) VALUES (?, ?, ?)",
            (key, self._clock(), response.model_dump_json()),
        )

    def get_idempotent(self, idempotency_key: str) -> LLMResponse | None:
        return self.get(_IDEMPOTENCY_PREFIX + idempotency_key)

    def put_idempotent(self, idempotency_key: str, response: LLMResponse) -> None:
        self.put(_IDEMPOTENCY_PREFIX + idempotency_key, response)

    def purge_expired(self) -> int:
        """Delete entries older than the TTL; returns how many were removed."""
        cursor = self._db.execute(
            "DELETE FROM responses WHERE stored_at < ?", (self._clock() - self._ttl,)
        )
        return cursor.rowcount

    def close(self) -> None:
        self._db.close()

    # The ResponseStore interface (the client's): SQLite answers at once, so these just call.

    async def aget(self, key: str) -> LLMResponse | None:
        return self.get(key)

    async def aput(self, key: str, response: LLMResponse) -> None:
        self.put(key, response)

    async def aget_idempotent(self, idempotency_key: str) -> LLMResponse | None:
        return self.get_idempotent(idempotency_key)

    async def aput_idempotent(self, idempotency_key: str, response: LLMResponse) -> None:
        self.put_idempotent(idempotency_key, response)

    async def aclose(self) -> None:
        self.close()
