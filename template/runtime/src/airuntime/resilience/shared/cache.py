"""The response cache and idempotency records on Redis, for every instance.

Keys are the cache key the client computes (opaque here) under the prefix, each with the
cache's TTL. A Redis failure never fails a call: a read answers a miss, a write is skipped,
and both are counted in `errors["cache"]`.
"""

from __future__ import annotations

import contextlib

from airuntime.resilience.cache import StoredAnswer
from airuntime.resilience.shared.connection import RedisState
from airuntime.resilience.state import SharedStateUnavailableError


class RedisResponseStore:
    """A `ResponseStore` on Redis."""

    def __init__(self, state: RedisState, *, ttl_seconds: float) -> None:
        self._state = state
        self._ttl_ms = max(1, int(ttl_seconds * 1000))

    async def aget(self, key: str) -> StoredAnswer | None:
        return await self._get(self._state.key("cache", key))

    async def aput(self, key: str, answer: StoredAnswer) -> None:
        await self._put(self._state.key("cache", key), answer)

    async def aget_idempotent(self, idempotency_key: str) -> StoredAnswer | None:
        return await self._get(self._state.key("idempotency", idempotency_key))

    async def aput_idempotent(self, idempotency_key: str, answer: StoredAnswer) -> None:
        await self._put(self._state.key("idempotency", idempotency_key), answer)

    async def aclose(self) -> None:
        await self._state.aclose()

    async def _get(self, key: str) -> StoredAnswer | None:
        try:
            body = await self._state.call("cache", self._state.client.get(key))
        except SharedStateUnavailableError:
            return None
        return None if body is None else StoredAnswer.model_validate_json(body)

    async def _put(self, key: str, answer: StoredAnswer) -> None:
        with contextlib.suppress(SharedStateUnavailableError):
            await self._state.call(
                "cache", self._state.client.set(key, answer.model_dump_json(), px=self._ttl_ms)
            )
