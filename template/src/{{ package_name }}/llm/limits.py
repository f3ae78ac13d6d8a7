"""Concurrency and rate limits around every attempt.

A semaphore caps calls in flight; aiolimiter's leaky buckets cap requests and tokens per
minute, so a burst queues here instead of turning into a wall of 429s at the provider.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiolimiter import AsyncLimiter

SECONDS_PER_MINUTE = 60.0


class Limits:
    def __init__(
        self,
        *,
        max_concurrency: int,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
    ) -> None:
        self.max_concurrency = max_concurrency
        self._slots = asyncio.Semaphore(max_concurrency)
        self._requests = (
            AsyncLimiter(requests_per_minute, SECONDS_PER_MINUTE) if requests_per_minute else None
        )
        self._tokens = (
            AsyncLimiter(tokens_per_minute, SECONDS_PER_MINUTE) if tokens_per_minute else None
        )
        self.in_flight = 0

    @asynccontextmanager
    async def slot(self, tokens: int) -> AsyncIterator[None]:
        """Wait for a concurrency slot and rate-limit capacity, then hold the slot."""
        if self._requests is not None:
            await self._requests.acquire()
        if self._tokens is not None:
            # A request bigger than a whole minute's allowance could never be admitted.
            await self._tokens.acquire(min(tokens, self._tokens.max_rate))
        async with self._slots:
            self.in_flight += 1
            try:
                yield
            finally:
                self.in_flight -= 1
