"""`run_until` behaves as `await` under `asyncio.timeout_at`, and arms no timer for a call that
never waits; the resilient client turns an attempt that outlives its timeout into a timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from decimal import Decimal
from typing import Any

import pytest

from airuntime.errors import ProviderTimeoutError, RateLimitedError
from airuntime.observability.events import RecordingObserver
from airuntime.resilience.chain import ResilienceConfig
from airuntime.resilience.retry import RetryPolicy
from airuntime.resilience.timeouts import run_until
from airuntime.testing import FakeClock, flat_prices, resilient_client
from airuntime.types import LLMRequest, LLMResponse, Message, ModelTarget, Usage

Scenario = Callable[[list[str]], Coroutine[Any, Any, str]]
SHORT = 0.05  # seconds: the deadline of the scenarios that wait for longer


async def at_once(seen: list[str]) -> str:
    seen.append("ran")
    return "answer"


async def raises_at_once(seen: list[str]) -> str:
    seen.append("ran")
    raise RateLimitedError("slow down", provider="p", model="m")


async def yields_then_answers(seen: list[str]) -> str:
    await asyncio.sleep(0)
    seen.append("resumed")
    return "answer"


async def waits_on_a_future(seen: list[str]) -> str:
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(future.set_result, "from the future")
    value = await future
    seen.append(value)
    return value


async def yields_then_raises(seen: list[str]) -> str:
    await asyncio.sleep(0)
    seen.append("resumed")
    raise KeyError("late")


async def waits_too_long(seen: list[str]) -> str:
    try:
        await asyncio.sleep(10 * SHORT)
    except asyncio.CancelledError:
        seen.append("cancelled")
        raise
    finally:
        seen.append("cleaned up")
    return "never"


async def swallows_the_cancellation(seen: list[str]) -> str:
    try:
        await asyncio.sleep(10 * SHORT)
    except asyncio.CancelledError:
        seen.append("swallowed")
    return "kept going"


async def catches_and_raises_its_own(seen: list[str]) -> str:
    try:
        await asyncio.sleep(10 * SHORT)
    except asyncio.CancelledError:
        seen.append("replaced")
        raise ValueError("instead") from None
    return "never"


SCENARIOS = [
    at_once,
    raises_at_once,
    yields_then_answers,
    waits_on_a_future,
    yields_then_raises,
    waits_too_long,
    swallows_the_cancellation,
    catches_and_raises_its_own,
]


async def plain(call: Coroutine[Any, Any, str], when: float) -> str:
    """The reference: what the client did before `run_until`."""
    async with asyncio.timeout_at(when):
        return await call


async def outcome(
    runner: Callable[[Coroutine[Any, Any, str], float], Awaitable[str]],
    scenario: Scenario,
    delay: float,
) -> tuple[str, list[str]]:
    seen: list[str] = []
    when = asyncio.get_running_loop().time() + delay
    try:
        result = await runner(scenario(seen), when)
    except BaseException as error:  # noqa: BLE001 - the outcome is what is compared
        return f"{type(error).__name__}({error})", seen
    return result, seen


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.__name__)
@pytest.mark.parametrize("delay", [SHORT, 0.0, -1.0], ids=["ahead", "now", "passed"])
async def test_the_outcome_is_the_one_asyncio_timeout_gives(
    scenario: Scenario, delay: float
) -> None:
    assert await outcome(run_until, scenario, delay) == await outcome(plain, scenario, delay)


async def test_a_call_that_never_waits_arms_no_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_timer(when: float) -> asyncio.Timeout:
        raise AssertionError(f"a timer was armed for {when}")

    monkeypatch.setattr(asyncio, "timeout_at", no_timer)

    assert await run_until(at_once([]), when=0.0) == "answer"


async def test_a_cancelled_task_is_cancelled_not_timed_out() -> None:
    seen: list[str] = []
    when = asyncio.get_running_loop().time() + 60
    task = asyncio.create_task(run_until(waits_too_long(seen), when))
    await asyncio.sleep(0)

    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled", "cleaned up"]


async def test_other_awaitables_are_timed_out_too() -> None:
    loop = asyncio.get_running_loop()
    never: asyncio.Future[str] = loop.create_future()
    done: asyncio.Future[str] = loop.create_future()
    done.set_result("done")

    assert await run_until(done, loop.time() + SHORT) == "done"  # type: ignore[arg-type]
    with pytest.raises(TimeoutError):
        await run_until(never, loop.time() + SHORT)  # type: ignore[arg-type]


class HangingClient:
    """A provider whose first `hangs` calls never answer, then answers."""

    def __init__(self, hangs: int) -> None:
        self.hangs = hangs
        self.calls = 0

    @property
    def provider(self) -> str:
        return "primary"

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.calls += 1
        if self.calls <= self.hangs:
            await asyncio.Event().wait()
        return LLMResponse(
            text="ok",
            model=request.model,
            provider="primary",
            usage=Usage(input_tokens=1, output_tokens=1),
        )

    def stream(self, request: LLMRequest) -> Any:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass


async def test_an_attempt_that_outlives_its_timeout_is_a_timeout_and_retried() -> None:
    primary = ModelTarget(provider="primary", model="model-a")
    provider = HangingClient(hangs=1)
    observer = RecordingObserver()
    client = resilient_client(
        {"primary": provider},
        clock=FakeClock(),
        config=ResilienceConfig(retry=RetryPolicy(max_attempts=2), attempt_timeout_seconds=SHORT),
        pricing=flat_prices([primary]),
        observer=observer,
    )
    request = LLMRequest(
        model="model-a", messages=(Message(role="user", content="hi"),), max_tokens=10
    )

    result = await client.run(request)

    assert result.response.text == "ok"
    assert provider.calls == 2
    assert [(record.attempt, record.outcome) for record in observer.attempts] == [
        (1, "timeout"),
        (2, "ok"),
    ]
    assert observer.attempts[0].error_type == ProviderTimeoutError.__name__
    assert observer.attempts[0].cost == Decimal(2 * 1 + 8 + 10 * 2) / 1_000_000  # reserved
