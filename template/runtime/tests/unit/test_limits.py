"""The limits around every attempt: calls in flight, queueing, and rate-limit capacity."""

from __future__ import annotations

import asyncio

import pytest

from airuntime.resilience.limits import Limits


async def test_a_slot_counts_the_call_in_flight_and_frees_itself_even_on_error() -> None:
    limits = Limits(max_concurrency=2)

    async with limits.slot(10), limits.slot(10):
        assert limits.in_flight == 2
    with pytest.raises(RuntimeError, match="boom"):
        async with limits.slot(10):
            raise RuntimeError("boom")

    assert limits.in_flight == 0
    async with limits.slot(10), limits.slot(10):  # both slots were given back
        assert limits.in_flight == 2


async def test_a_full_limit_queues_the_next_call_until_one_finishes() -> None:
    limits = Limits(max_concurrency=1)
    order: list[str] = []

    async def call(name: str) -> None:
        async with limits.slot(1):
            order.append(f"{name} in")
            await asyncio.sleep(0)  # let the other call try to get in
            order.append(f"{name} out")

    await asyncio.gather(call("a"), call("b"))

    assert order == ["a in", "a out", "b in", "b out"]


async def test_a_request_bigger_than_a_minute_of_tokens_is_still_admitted() -> None:
    limits = Limits(max_concurrency=1, requests_per_minute=60, tokens_per_minute=100)

    async with limits.slot(5_000):  # capped at the whole allowance instead of waiting for ever
        assert limits.in_flight == 1
