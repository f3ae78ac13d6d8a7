"""Concurrency and rate limits around every attempt.

A semaphore caps calls in flight; aiolimiter's leaky buckets cap requests and tokens per
minute, so a burst queues here instead of turning into a wall of 429s at the provider.
"""

from __future__ import annotations

import asyncio

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

    def slot(self, tokens: int) -> Slot:
        """Wait for a concurrency slot and rate-limit capacity, then hold the slot:
        `async with limits.slot(tokens): ...`."""
        return Slot(self, tokens)


class Slot:
    """One attempt's hold on the limits (a class, not a generator-based context manager: it
    is entered on every attempt, and this costs a third as much)."""

    __slots__ = ("_limits", "_tokens")

    def __init__(self, limits: Limits, tokens: int) -> None:
        self._limits = limits
        self._tokens = tokens

    async def __aenter__(self) -> None:
        limits = self._limits
        if limits._requests is not None:
            await limits._requests.acquire()
        if limits._tokens is not None:
            # A request bigger than a whole minute's allowance could never be admitted.
            await limits._tokens.acquire(min(self._tokens, limits._tokens.max_rate))
        await limits._slots.acquire()
        limits.in_flight += 1

    async def __aexit__(self, *exc_info: object) -> None:
        limits = self._limits
        limits.in_flight -= 1
        limits._slots.release()
