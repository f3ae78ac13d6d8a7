"""The service's parts on their own: API keys, per-key limits, the error mapping, readiness,
the drain on signals, the SSE reader and the server's options."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the service extra is not installed")

import asyncio
import signal
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from airuntime.errors import (
    AuthenticationError,
    ConfigurationError,
    ContextLengthExceededError,
    RateLimitedError,
    ServerError,
)
from airuntime.guardrails import InputRejectedError
from airuntime.resilience.breaker import BreakerBoard
from airuntime.resilience.budget import Budget, BudgetExceeded
from airuntime.resilience.chain import AllTargetsFailedError, TargetFailure, UnknownCostError
from airuntime.service import server
from airuntime.service.auth import ApiKeyring, hash_api_key, new_api_key
from airuntime.service.errors import ErrorPolicy, ServiceError, seconds_to_utc_midnight
from airuntime.service.mapping import service_error_for
from airuntime.service.quotas import AdmissionGate, KeyRateLimit, KeySpend
from airuntime.service.readiness import (
    Readiness,
    breakers_check,
    budget_check,
    draining_check,
    prompts_lock_check,
)
from airuntime.service.service import ServiceConfig, check_exposure
from airuntime.service.shutdown import Drain, drain_on_signals
from airuntime.service.sse import Signal, StreamReader, sse_event
from airuntime.structured import StructuredOutputError
from airuntime.testing import FakeClock
from airuntime.types import ModelTarget, Usage

TARGET = ModelTarget(provider="openai", model="gpt-5-mini")
POLICY = ErrorPolicy(unavailable_retry_after=30)


# -- API keys ------------------------------------------------------------------------------


def test_a_key_is_stored_hashed_and_identified_by_its_name() -> None:
    key, entry = new_api_key("team-a")
    other, other_entry = new_api_key("team-b")
    keyring = ApiKeyring.parse(f"{entry}, {other_entry}")

    assert entry == f"team-a:{hash_api_key(key)}"
    assert key not in entry
    assert keyring.names == ("team-a", "team-b")
    assert keyring.identify(key) == "team-a"
    assert keyring.identify(other) == "team-b"
    assert keyring.identify(key + "x") is None


def test_authenticate_reads_bearer_or_x_api_key_and_refuses_the_rest() -> None:
    key, entry = new_api_key("ops")
    keyring = ApiKeyring.parse(entry)

    assert keyring.authenticate(f"Bearer {key}", None) == "ops"
    assert keyring.authenticate(None, key) == "ops"
    with pytest.raises(ServiceError) as missing:
        keyring.authenticate("Basic abc", None)
    with pytest.raises(ServiceError) as unknown:
        keyring.authenticate("Bearer ak_nope", None)
    assert (missing.value.status, missing.value.type) == (401, "missing_api_key")
    assert (unknown.value.status, unknown.value.type) == (403, "invalid_api_key")


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("team:md5:abc", "is not name:sha256:<64 hex digits>"),
        ("team:sha256:" + "0" * 63, "is not name:sha256:<64 hex digits>"),
        ("-bad:sha256:" + "0" * 64, "is not usable"),
        (f"a:sha256:{'0' * 64},a:sha256:{'1' * 64}", "the same name"),
    ],
)
def test_bad_key_entries_are_one_line_configuration_errors(spec: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        ApiKeyring.parse(spec)


def test_a_bad_entry_names_the_command_that_makes_one_for_its_setting() -> None:
    with pytest.raises(ConfigurationError, match=r"`api-key NAME` command \(SERVICE_API_KEYS\)"):
        ApiKeyring.parse("garbage")
    with pytest.raises(
        ConfigurationError, match=r"`api-key NAME --admin` command \(SERVICE_ADMIN_KEYS\)"
    ):
        ApiKeyring.parse("garbage", setting="SERVICE_ADMIN_KEYS")


def test_a_key_name_must_be_usable() -> None:
    with pytest.raises(ConfigurationError, match="is not usable"):
        new_api_key("has space")


# -- per-key limits ------------------------------------------------------------------------


def test_the_rate_limit_is_a_token_bucket_per_key() -> None:
    clock = FakeClock()
    limit = KeyRateLimit(60, burst=2, clock=clock)

    limit.admit("a")
    limit.admit("a")
    with pytest.raises(ServiceError) as refused:
        limit.admit("a")
    limit.admit("b")  # another key has its own bucket
    clock.advance(1.0)  # one token a second
    limit.admit("a")

    assert (refused.value.status, refused.value.retry_after) == (429, 1)


def test_spend_holds_the_worst_case_and_settles_at_the_real_cost() -> None:
    days = [date(2026, 1, 1)]
    spend = KeySpend(Decimal("1.00"), hold=Decimal("0.40"), today=lambda: days[0])

    first = spend.reserve("a")
    second = spend.reserve("a")
    with pytest.raises(ServiceError) as refused:
        spend.reserve("a")  # 0.20 left, less than one call's worst case
    spend.settle(first, Decimal("0.10"))
    third = spend.reserve("a")  # 1.00 - 0.10 - 0.40 held = 0.50 left

    assert refused.value.type == "key_spend_exceeded"
    assert (first.amount, third.amount) == (Decimal("0.40"), Decimal("0.40"))
    spend.settle(second, Decimal("0.05"))
    assert spend.spent == {"a": Decimal("0.15")}
    days[0] = date(2026, 1, 2)  # a new day: spend starts again, the total keeps counting
    spend.settle(third, Decimal("0.20"))
    assert spend.spent == {}
    assert spend.total == {"a": Decimal("0.35")}


def test_without_a_per_call_ceiling_a_call_holds_all_that_is_left() -> None:
    spend = KeySpend(Decimal("1.00"), hold=None)

    hold = spend.reserve("a")
    with pytest.raises(ServiceError):
        spend.reserve("a")
    assert hold.amount == Decimal("1.00")


def test_without_a_ceiling_nothing_is_held_and_spend_is_still_counted() -> None:
    spend = KeySpend(None, hold=Decimal("0.5"))
    hold = spend.reserve("a")
    spend.settle(hold, Decimal("2"))

    assert hold.amount == 0
    assert spend.total == {"a": Decimal("2")}


def test_the_admission_gate_refuses_past_its_limit() -> None:
    gate = AdmissionGate(1)
    gate.enter()
    with pytest.raises(ServiceError) as refused:
        gate.enter()
    gate.leave()
    gate.enter()

    assert (refused.value.status, refused.value.type, refused.value.retry_after) == (
        429,
        "overloaded",
        1,
    )


# -- the error mapping ---------------------------------------------------------------------


def failures(*errors: Any) -> AllTargetsFailedError:
    return AllTargetsFailedError([TargetFailure(TARGET, 1, "x", error) for error in errors])


@pytest.mark.parametrize(
    ("error", "status", "kind", "retry_after"),
    [
        (InputRejectedError("the text is empty"), 422, "input_rejected", None),
        (
            BudgetExceeded("per-process", Decimal(1), Decimal(1), Decimal(1)),
            429,
            "budget_exceeded",
            60,
        ),
        (failures(ServerError("x", provider="openai", model="m")), 503, "unavailable", 30),
        (
            failures(RateLimitedError("x", provider="openai", model="m", retry_after=2.5)),
            503,
            "unavailable",
            3,
        ),
        (
            StructuredOutputError(
                "p", "", (), attempts=1, repairs=0, usage=Usage(), cost=Decimal(0)
            ),
            502,
            "invalid_output",
            None,
        ),
        (
            ContextLengthExceededError("x", provider="openai", model="m"),
            422,
            "context_length_exceeded",
            None,
        ),
        (RateLimitedError("x", provider="openai", model="m", retry_after=4), 503, "unavailable", 4),
        (ServerError("x", provider="openai", model="m"), 503, "unavailable", 30),
        (AuthenticationError("bad key", provider="openai", model="m"), 502, "upstream_error", None),
        (UnknownCostError(TARGET), 422, "unknown_model", None),
        (ConfigurationError("/etc/secret is bad"), 500, "configuration_error", None),
        (TimeoutError(), 504, "timeout", None),
    ],
)
def test_runtime_errors_map_to_statuses(
    error: BaseException, status: int, kind: str, retry_after: int | None
) -> None:
    mapped = service_error_for(error, POLICY)

    assert mapped is not None
    assert (mapped.status, mapped.type, mapped.retry_after) == (status, kind, retry_after)
    assert "/etc" not in mapped.message  # never an internal path


def test_a_per_day_refusal_waits_until_utc_midnight_and_a_bug_is_unmapped() -> None:
    mapped = service_error_for(
        BudgetExceeded("per-day", Decimal(1), Decimal(1), Decimal(1)), POLICY
    )

    assert mapped is not None
    assert mapped.retry_after is not None
    assert 1 <= mapped.retry_after <= 86_400
    assert service_error_for(KeyError("bug"), POLICY) is None
    assert seconds_to_utc_midnight(datetime(2026, 1, 1, 23, 59, 30, tzinfo=UTC)) == 30


# -- readiness, exposure and drain ---------------------------------------------------------


def test_readiness_lists_every_problem() -> None:
    clock = FakeClock()
    breakers = BreakerBoard(failure_threshold=1, cooldown_seconds=30, clock=clock)
    budget = Budget(per_process=Decimal(1))
    draining = [False]

    def broken() -> str | None:
        raise RuntimeError("boom")

    readiness = Readiness(
        [
            ("breakers", breakers_check(breakers)),
            ("budget", budget_check(budget)),
            ("shutdown", draining_check(lambda: draining[0])),
            ("custom", broken),
        ]
    )
    breakers.get(TARGET).record_failure(ServerError("x", provider="openai", model="m"))
    budget.spent = Decimal(1)
    draining[0] = True
    ready, checks = readiness.report()

    assert not ready
    assert checks["breakers"].startswith("every model target's circuit breaker is open")
    assert checks["budget"].startswith("the per-process budget is spent")
    assert checks["shutdown"] == "shutting down"
    assert checks["custom"] == "the check failed: RuntimeError"
    assert budget_check(Budget())() is None


def test_exposure_without_keys() -> None:
    open_config = ServiceConfig(title="t", version="1")
    _, entry = new_api_key("a")
    keyed = ServiceConfig(title="t", version="1", keyring=ApiKeyring.parse(entry))

    assert check_exposure(keyed, "0.0.0.0") is None  # noqa: S104 - the point of the test
    assert "open to anyone on this machine" in str(check_exposure(open_config, "127.0.0.1"))
    with pytest.raises(ConfigurationError, match="only on loopback"):
        check_exposure(open_config, "0.0.0.0")  # noqa: S104
    with pytest.raises(ConfigurationError, match="in production the service refuses"):
        check_exposure(ServiceConfig(title="t", version="1", environment="production"), "::1")


async def test_sigterm_begins_the_drain_and_reaches_the_previous_handler() -> None:
    seen: list[int] = []
    before = signal.signal(signal.SIGTERM, lambda signum, _frame: seen.append(signum))
    try:
        drain = Drain()
        undo = drain_on_signals(drain, asyncio.get_running_loop())
        signal.raise_signal(signal.SIGTERM)
        await asyncio.wait_for(drain.event.wait(), 5)
        undo()
        assert drain.draining
        assert seen == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) is not None
        signal.raise_signal(signal.SIGTERM)  # the previous handler is back
        assert len(seen) == 2
    finally:
        signal.signal(signal.SIGTERM, before)


# -- SSE ------------------------------------------------------------------------------------


def test_an_event_is_its_name_and_one_line_of_json() -> None:
    assert sse_event("delta", {"text": "a\nb"}) == b'event: delta\ndata: {"text":"a\\nb"}\n\n'


async def test_the_reader_signals_idle_stop_and_end_without_cancelling_upstream() -> None:
    gate = asyncio.Event()
    closed: list[bool] = []

    async def source() -> AsyncIterator[str]:
        try:
            yield "one"
            await gate.wait()
            yield "two"
        finally:
            closed.append(True)

    stop = asyncio.Event()
    reader: StreamReader[str] = StreamReader(source(), stop)

    assert await reader.next(1) == "one"
    assert await reader.next(0.01) is Signal.IDLE  # quiet: the upstream keeps going
    gate.set()
    assert await reader.next(1) == "two"
    assert await reader.next(1) is Signal.END
    assert await reader.next(1) is Signal.END
    assert closed == [True]
    assert reader.abandon() is None


async def test_the_reader_stops_when_told_and_cleans_up_the_upstream() -> None:
    cancelled: list[bool] = []

    async def source() -> AsyncIterator[str]:
        try:
            await asyncio.Event().wait()
            yield "never"
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    stop = asyncio.Event()
    reader: StreamReader[str] = StreamReader(source(), stop)
    stop.set()

    assert await reader.next(5) is Signal.STOPPED
    await reader.stop()
    assert cancelled == [True]


async def test_abandoning_between_chunks_closes_the_stream() -> None:
    closed: list[bool] = []

    async def source() -> AsyncIterator[str]:
        try:
            yield "one"
            yield "two"
        finally:
            closed.append(True)

    reader: StreamReader[str] = StreamReader(source())
    assert await reader.next(1) == "one"
    await reader.stop()

    assert closed == [True]


async def test_an_upstream_error_reaches_the_reader() -> None:
    async def source() -> AsyncIterator[str]:
        nothing: tuple[str, ...] = ()
        for text in nothing:
            yield text  # pragma: no cover - an async generator that fails at once
        raise ServerError("down", provider="p", model="m")

    reader: StreamReader[str] = StreamReader(source())
    with pytest.raises(ServerError):
        await reader.next(1)


# -- the server ------------------------------------------------------------------------------


def test_serve_runs_uvicorn_with_the_fast_parser_and_a_shutdown_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import uvicorn

    calls: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append((app, options)))
    server.serve("pkg.service:create_app", server.ServerOptions(workers=2, graceful_seconds=7.4))
    server.serve("pkg.service:create_app", server.ServerOptions(workers=2, reload=True))

    (app, options), (_, reloading) = calls
    assert app == "pkg.service:create_app"
    assert options["factory"] is True
    assert (options["workers"], options["http"], options["loop"]) == (2, "httptools", "uvloop")
    assert options["timeout_graceful_shutdown"] == 7
    assert options["access_log"] is False
    assert (reloading["workers"], reloading["reload"]) == (None, True)


def test_readiness_checks_the_prompts_against_their_lock(tmp_path: Path) -> None:
    from airuntime.prompts import load_registry
    from airuntime.prompts.lock import write_lock

    registry = load_registry(Path(__file__).parents[1] / "functional" / "library")
    lock = tmp_path / "prompts.lock"
    check = prompts_lock_check(registry, lock)

    missing = check()
    write_lock(registry, lock)
    in_sync = check()
    text = lock.read_text(encoding="utf-8")
    lock.write_text(text + '"gone@9.9.9" = "sha256:00"\n', "utf-8")
    stale = check()
    lock.write_text("not toml [", "utf-8")

    assert missing is not None
    assert missing.startswith(f"{lock} not found")
    assert in_sync is None
    assert "gone@9.9.9" in str(stale)
    assert "is not valid TOML" in str(check())
