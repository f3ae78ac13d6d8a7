"""Budget, breakers, rate limits and cache shared by several instances on a real Redis.

Each "instance" here is its own connection and its own parts, as another process would have;
the multi-process runs (8 processes, SIGKILL, a 429 seen by one) are in
test_shared_state_processes.py.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
import structlog

from airuntime.errors import ConfigurationError, RateLimitedError
from airuntime.model.mock import MockLLM
from airuntime.resilience.assembly import (
    BudgetConfig,
    CacheConfig,
    ProviderClients,
    StackConfig,
    build_resilient_client,
)
from airuntime.resilience.breaker import BreakerState
from airuntime.resilience.budget import Budget, BudgetExceeded, BudgetUnavailableError, CallBudget
from airuntime.resilience.cache import StoredAnswer
from airuntime.resilience.chain import ResilienceConfig
from airuntime.resilience.client import ResilientClient
from airuntime.resilience.retry import RetryPolicy
from airuntime.resilience.shared.breaker import SharedBreaker, SharedBreakerBoard
from airuntime.resilience.shared.cache import RedisResponseStore
from airuntime.resilience.shared.connection import RedisState, connect, redacted
from airuntime.resilience.shared.ledger import RedisLedger
from airuntime.resilience.shared.limits import SharedLimits
from airuntime.resilience.state import RedisConfig
from airuntime.testing import RedisServer, flat_prices, free_port
from airuntime.types import LLMRequest, LLMResponse, Message, ModelTarget, Usage

D = Decimal
TARGET = ModelTarget(provider="mock", model="m")
BACKUP = ModelTarget(provider="mock", model="backup")


Instance = Callable[[], RedisState]


@pytest.fixture
async def instance(redis_url: str) -> AsyncIterator[Instance]:
    """Connections to the test's Redis, as separate instances would have; closed after."""
    made: list[RedisState] = []

    def make() -> RedisState:
        made.append(connect(RedisConfig(url=redis_url)))
        return made[-1]

    yield make
    for state in made:
        await state.aclose()


def ask(text: str = "hello") -> LLMRequest:
    return LLMRequest(model=TARGET.model, messages=(Message(role="user", content=text),))


def stack(url: str, mock: MockLLM, tmp_path: Path, **budget: object) -> ResilientClient:
    config = StackConfig(
        resilience=ResilienceConfig(retry=RetryPolicy(max_attempts=1)),
        budget=BudgetConfig(
            per_call=None,
            per_process=None,
            ledger_path=tmp_path / "budget.sqlite3",
            **budget,  # type: ignore[arg-type]
        ),
        prices=flat_prices([TARGET, BACKUP]),
        cache=CacheConfig(path=tmp_path / "cache.sqlite3"),
        shared=RedisConfig(url=url, socket_timeout_seconds=0.2, connect_timeout_seconds=0.2),
    )
    return build_resilient_client(config, ProviderClients({"mock": mock}, "mock", offline=True))


# -- configuration -------------------------------------------------------------------------------


def test_redis_unreachable_at_start_is_one_configuration_line() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"

    with pytest.raises(ConfigurationError) as caught:
        connect(RedisConfig(url=url, connect_timeout_seconds=0.2))

    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"Redis at {url} (REDIS_URL) cannot be reached (ConnectionError")
    assert message.endswith(
        "start it, fix REDIS_URL, or unset REDIS_URL to keep this instance's state local."
    )


def test_a_url_that_is_not_redis_is_one_configuration_line() -> None:
    with pytest.raises(ConfigurationError, match=r"^REDIS_URL 'http://x' is not a Redis URL"):
        connect(RedisConfig(url="http://x"))


def test_messages_never_show_the_password() -> None:
    assert redacted("redis://user:secret@cache.internal:6380/2") == (
        "redis://user:***@cache.internal:6380/2"
    )
    assert redacted("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


# -- the day ledger ------------------------------------------------------------------------------


async def test_instances_holding_leases_never_commit_more_than_the_ceiling_together(
    instance: Instance,
) -> None:
    first = Budget(per_day=D("1.00"), ledger=RedisLedger(instance()), daily_lease=D("0.4"))
    second = Budget(per_day=D("1.00"), ledger=RedisLedger(instance()), daily_lease=D("0.4"))

    await first.areserve(D("0.10"), CallBudget())  # leases 0.40
    await second.areserve(D("0.10"), CallBudget())  # leases 0.40
    await first.areserve(D("0.30"), CallBudget())  # within its lease
    held = await second.areserve(D("0.35"), CallBudget())  # needs 0.05 more: gets the last 0.20

    with pytest.raises(BudgetExceeded, match="per-day") as caught:
        await first.areserve(D("0.01"), CallBudget())
    assert caught.value.committed == D("1.00")

    second.release(held)
    await second.aclose()  # gives back its unused 0.50 (its first 0.10 stays reserved)
    await first.areserve(D("0.01"), CallBudget())
    await first.aclose()


async def test_the_ledger_equals_what_was_settled_to_the_nanodollar(
    instance: Instance, redis_url: str
) -> None:
    ledgers = [RedisLedger(instance()) for _ in range(3)]
    budgets = [Budget(per_day=D(5), ledger=ledger) for ledger in ledgers]
    costs = [D("0.000123456"), D("0.001"), D("0.000000007")]

    for _ in range(50):
        for budget, cost in zip(budgets, costs, strict=True):
            budget.settle(await budget.areserve(D("0.002"), CallBudget()), cost)
    for budget in budgets:
        await budget.aclose()

    reader = RedisLedger(instance())
    assert await reader.acommitted(reader.today()) == 50 * sum(costs)
    await reader.aclose()


async def test_a_lease_its_holder_stops_renewing_comes_back_to_the_others(
    instance: Instance, redis_url: str
) -> None:
    dead = Budget(
        per_day=D("1.00"),
        ledger=RedisLedger(instance(), lease_seconds=0.3),
        daily_lease=D("0.60"),
    )
    await dead.areserve(D("0.10"), CallBudget())  # holds 0.60, then is never heard of again
    alive = Budget(per_day=D("1.00"), ledger=RedisLedger(instance(), lease_seconds=0.3))

    with pytest.raises(BudgetExceeded):
        await alive.areserve(D("0.50"), CallBudget())
    await asyncio.sleep(0.4)
    await alive.areserve(D("0.90"), CallBudget())  # the dead lease came back

    assert alive.reserved == D("0.90")
    await alive.aclose()


async def test_a_holder_whose_lease_expired_stops_using_it(
    instance: Instance, redis_url: str
) -> None:
    stalled = Budget(
        per_day=D("1.00"),
        ledger=RedisLedger(instance(), lease_seconds=0.3),
        daily_lease=D("0.60"),
    )
    await stalled.areserve(D("0.10"), CallBudget())  # 0.50 left in its lease
    await asyncio.sleep(0.4)  # stalled past its lease: the others may take it back
    other = Budget(per_day=D("1.00"), ledger=RedisLedger(instance(), lease_seconds=30))
    await other.areserve(D("1.00"), CallBudget())  # everything

    with pytest.raises(BudgetExceeded):  # not the 0.50 it thought it still had
        await stalled.areserve(D("0.20"), CallBudget())
    assert stalled.reserved == D("0.10")


async def test_every_key_the_shared_parts_write_has_a_ttl(
    instance: Instance, redis_url: str, tmp_path: Path
) -> None:
    client = stack(redis_url, MockLLM(), tmp_path)
    await client.complete(ask())
    breaker = client.breakers.get(TARGET)
    breaker.record_failure(RateLimitedError("slow down", provider="mock", model="m"))
    assert isinstance(client.breakers, SharedBreakerBoard)
    await client.breakers.flush()
    limits = SharedLimits(instance(), max_concurrency=2, requests_per_minute=60)
    async with limits.slot(10):
        pass
    await client.budget.flush()

    with redis.Redis.from_url(redis_url) as connection:
        keys = list(connection.scan_iter("*"))
        assert {key.decode().split(":")[1] for key in keys} == {
            "budget",
            "breaker",
            "cache",
            "limit",
        }
        assert all(connection.ttl(key) > 0 for key in keys), {
            key: connection.ttl(key) for key in keys
        }
    await client.aclose()


# -- breakers ------------------------------------------------------------------------------------


async def test_a_breaker_opened_by_one_instance_is_open_for_all(
    instance: Instance, redis_url: str
) -> None:
    one = SharedBreakerBoard(instance(), failure_threshold=5, cooldown_seconds=0.3)
    other = SharedBreakerBoard(instance(), failure_threshold=5, cooldown_seconds=0.3)

    one.get(TARGET).record_failure(
        RateLimitedError("slow down", provider="mock", model="m", retry_after=0.5)
    )
    await one.flush()

    assert not await other.get(TARGET).aallow()  # the other never saw the 429 itself
    assert await other.get(BACKUP).aallow()  # other targets are not affected
    await asyncio.sleep(0.55)  # the hold learned from Retry-After, longer than the cooldown
    probes = [await other.get(TARGET).aallow(), await one.get(TARGET).aallow()]
    assert probes == [True, False]  # one probe for everyone
    other.get(TARGET).record_success()
    await other.flush()
    assert await one.get(TARGET).aallow()


async def test_a_failed_shared_probe_opens_the_breaker_again_for_all(
    instance: Instance, redis_url: str
) -> None:
    one = SharedBreakerBoard(instance(), failure_threshold=1, cooldown_seconds=0.2)
    other = SharedBreakerBoard(instance(), failure_threshold=5, cooldown_seconds=0.2)
    one.get(TARGET).record_failure(RateLimitedError("slow down", provider="mock", model="m"))
    await one.flush()
    await asyncio.sleep(0.25)

    assert await other.get(TARGET).aallow()  # the probe
    other.get(TARGET).record_failure(RateLimitedError("still", provider="mock", model="m"))
    await other.flush()

    assert not await one.get(TARGET).aallow()
    assert other.get(TARGET).state is BreakerState.OPEN


async def eventually(condition: Callable[[], bool]) -> None:
    """A bounded poll for what another connection makes true (a pub/sub message)."""
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not within 2 s")


def opened(board: SharedBreakerBoard) -> None:
    board.get(TARGET).record_failure(RateLimitedError("slow down", provider="mock", model="m"))


async def kept_closed(
    redis_url: str, cache_seconds: float
) -> tuple[RedisState, SharedBreakerBoard]:
    state = connect(RedisConfig(url=redis_url, breaker_closed_cache_seconds=cache_seconds))
    board = SharedBreakerBoard(state, failure_threshold=5, cooldown_seconds=30)
    assert await board.get(TARGET).aallow()  # starts listening; not kept (not yet subscribed)
    await eventually(board.subscribed)
    assert await board.get(TARGET).aallow()  # kept from here, for cache_seconds
    return state, board


async def test_an_opening_elsewhere_drops_the_kept_closed_answer_at_once(
    instance: Instance, redis_url: str
) -> None:
    state, kept = await kept_closed(redis_url, cache_seconds=30.0)
    other = SharedBreakerBoard(instance(), failure_threshold=5, cooldown_seconds=30)
    breaker = kept.get(TARGET)
    assert isinstance(breaker, SharedBreaker)
    assert breaker._closed_until > 0

    opened(other)
    await other.flush()
    await eventually(lambda: breaker._closed_until == 0)  # the message, not the 30 s

    assert not await breaker.aallow()
    await kept.aclose()
    await state.aclose()


async def test_with_the_subscription_lost_nothing_kept_is_used(
    instance: Instance, redis_url: str
) -> None:
    state, kept = await kept_closed(redis_url, cache_seconds=30.0)
    other = SharedBreakerBoard(instance(), failure_threshold=5, cooldown_seconds=30)
    with redis.Redis.from_url(redis_url) as admin:
        assert admin.client_kill_filter(_type="pubsub") == 1
    await eventually(lambda: not kept._subscribed)

    opened(other)  # published while nobody hears it
    await other.flush()

    assert not await kept.get(TARGET).aallow()  # it asked Redis
    assert state.errors["breaker_events"] == 1
    await kept.aclose()
    await state.aclose()


async def test_no_kept_answer_asks_redis_before_every_attempt(
    instance: Instance, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = connect(RedisConfig(url=redis_url, breaker_closed_cache_seconds=0))
    board = SharedBreakerBoard(state, failure_threshold=5, cooldown_seconds=30)
    asked: list[str] = []
    call = state.call

    async def counted(part: str, operation: Any) -> Any:
        asked.append(part)
        return await call(part, operation)

    monkeypatch.setattr(state, "call", counted)
    assert [await board.get(TARGET).aallow() for _ in range(3)] == [True, True, True]
    assert asked == ["breaker"] * 3
    assert board._listener is None  # nothing kept, nothing to hear

    other = SharedBreakerBoard(instance(), failure_threshold=5, cooldown_seconds=30)
    opened(other)
    await other.flush()
    assert not await board.get(TARGET).aallow()
    await board.aclose()
    await state.aclose()


# -- cache and limits ----------------------------------------------------------------------------


async def test_the_cache_and_idempotency_records_are_shared(
    instance: Instance, redis_url: str
) -> None:
    answer = StoredAnswer(
        response=LLMResponse(
            text="hi", model="m", provider="mock", usage=Usage(input_tokens=1, output_tokens=1)
        ),
        target=TARGET,
        served_by="mock",
    )
    one = RedisResponseStore(instance(), ttl_seconds=60)
    other = RedisResponseStore(instance(), ttl_seconds=60)

    await one.aput("key", answer)
    await one.aput_idempotent("job-1", answer)

    assert await other.aget("key") == answer
    assert await other.aget_idempotent("job-1") == answer
    assert await other.aget("job-1") is None  # the two kinds of record never mix
    await one.aclose()
    await other.aclose()


async def test_rate_limits_count_every_instance(instance: Instance, redis_url: str) -> None:
    one = SharedLimits(instance(), max_concurrency=5, requests_per_minute=2)
    other = SharedLimits(instance(), max_concurrency=5, requests_per_minute=2)
    async with one.slot(1):
        pass
    async with one.slot(1):
        pass

    with pytest.raises(TimeoutError):  # the minute's two requests are spent, by the other
        await asyncio.wait_for(other.slot(1).__aenter__(), 0.3)


# -- Redis lost mid-run --------------------------------------------------------------------------


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    missing = RedisServer.missing()
    if missing is not None:
        pytest.skip(missing)
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


async def test_redis_lost_mid_run_fails_the_budget_closed_with_one_clear_error(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    mock = MockLLM()
    client = stack(own_redis.url, mock, tmp_path, per_day=D(5))
    await client.complete(ask("before"))
    sent_before = len(mock.requests)

    own_redis.stop()
    with structlog.testing.capture_logs() as logs:
        with pytest.raises(BudgetUnavailableError) as caught:
            # A new lease is needed: the first call to reserve more than the lease has left.
            await client.complete(ask("x" * 40_000))
        with pytest.raises(BudgetUnavailableError):
            await client.complete(ask("x" * 40_000))

    assert len(mock.requests) == sent_before  # nothing was sent
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"budget unavailable: the shared day ledger at {own_redis.url}")
    assert message.endswith(
        "the call was not sent. Bring Redis back, or set SHARED_STATE_FALLBACK=local to "
        "fall back to this instance's own ceilings while it is down."
    )
    warnings = [entry["event"] for entry in logs if entry["log_level"] == "warning"]
    assert len([w for w in warnings if "for the budget" in w]) == 1  # logged once, not per call
    await client.aclose()


async def test_redis_lost_mid_run_falls_back_to_local_ceilings_when_configured(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    mock = MockLLM()
    config = StackConfig(
        resilience=ResilienceConfig(retry=RetryPolicy(max_attempts=1)),
        budget=BudgetConfig(
            per_call=None, per_process=None, per_day=D(5), ledger_path=tmp_path / "b.sqlite3"
        ),
        prices=flat_prices([TARGET]),
        cache=CacheConfig(path=tmp_path / "cache.sqlite3"),
        shared=RedisConfig(
            url=own_redis.url,
            socket_timeout_seconds=0.2,
            connect_timeout_seconds=0.2,
            budget_fallback_local=True,
        ),
    )
    client = build_resilient_client(config, ProviderClients({"mock": mock}, "mock", offline=True))
    await client.complete(ask("before"))

    own_redis.stop()
    with structlog.testing.capture_logs() as logs:
        answers = [await client.complete(ask(f"after {n} " + "x" * 40_000)) for n in range(3)]

    assert len(answers) == 3
    events = [entry["event"] for entry in logs]
    assert sum("falling back to this instance's local ledger" in event for event in events) == 1
    assert sum("answered as a cache miss" in event for event in events) == 1
    await client.aclose()


async def test_cache_errors_are_a_miss_and_counted_never_a_failed_call(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    mock = MockLLM()
    client = stack(own_redis.url, mock, tmp_path, per_day=None)
    assert isinstance(client.cache, RedisResponseStore)
    state = client.cache._state

    own_redis.stop()
    first = await client.complete(ask())
    second = await client.complete(ask())

    assert first.text == second.text
    assert len(mock.requests) == 2  # no cache while it is down: both were answered afresh
    assert state.errors["cache"] == 4  # two misses, two skipped writes
    assert state.errors["breaker"] == 2  # the breakers fell back to this instance's own
    assert client.shared_errors is state.errors  # what /metrics reads, live
    await client.aclose()


def test_metrics_show_the_shared_states_errors_by_part() -> None:
    pytest.importorskip("prometheus_client", reason="the service extra is not installed")
    from prometheus_client.exposition import generate_latest

    from airuntime.observability.metrics import MetricsRegistry
    from airuntime.resilience.breaker import BreakerBoard
    from airuntime.service.metrics import ModelStack, ServiceMetrics

    errors: Counter[str] = Counter({"cache": 4, "breaker": 2})
    stack = ModelStack(
        MetricsRegistry(), BreakerBoard(failure_threshold=2, cooldown_seconds=1.0), Budget(), errors
    )
    text = generate_latest(ServiceMetrics(stack).registry).decode()

    assert 'shared_state_errors_total{part="cache"} 4.0' in text
    assert 'shared_state_errors_total{part="breaker"} 2.0' in text
    errors["limits"] += 1  # read when Prometheus scrapes, not copied at start
    assert 'shared_state_errors_total{part="limits"} 1.0' in (
        generate_latest(ServiceMetrics(stack).registry).decode()
    )
    local = generate_latest(
        ServiceMetrics(
            ModelStack(
                MetricsRegistry(), BreakerBoard(failure_threshold=2, cooldown_seconds=1.0), Budget()
            )
        ).registry
    )
    assert b"shared_state_errors" not in local
