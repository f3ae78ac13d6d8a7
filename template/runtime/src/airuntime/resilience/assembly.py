"""Assemble the model stack from configuration objects: provider clients inside the resilient
client, with its budget, breakers, limits, cache and observer.

The project's wiring module reads its settings once and hands the values over as these
objects; nothing here reads the environment. With every provider served by the mock (no API
key configured), the whole system (fallbacks, budgets, telemetry) runs offline and says so.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from airuntime.errors import ConfigurationError
from airuntime.model.cassette_mode import CassetteSession
from airuntime.model.client import LLMClient
from airuntime.model.factory import MOCK, MockConfig, ProviderConfig, build_mock, build_provider
from airuntime.model.mock import Rule
from airuntime.observability.events import Observer
from airuntime.resilience.breaker import BreakerBoard
from airuntime.resilience.budget import DEFAULT_LEASE_SECONDS, Budget, DailyLedger
from airuntime.resilience.cache import ResponseCache, ResponseStore
from airuntime.resilience.chain import ResilienceConfig
from airuntime.resilience.client import ResilientClient
from airuntime.resilience.limits import Limits
from airuntime.resilience.pricing import PriceSource, PriceTable, PricingError
from airuntime.resilience.state import LocalLedger, RedisConfig, SharedLedger
from airuntime.resilience.switch import KillSwitch
from airuntime.types import ModelTarget

if TYPE_CHECKING:
    from airuntime.resilience.shared.connection import RedisState


@dataclass(frozen=True, slots=True)
class BudgetConfig:
    """Spending ceilings in US dollars (None: no ceiling) and where the day's spend is kept."""

    per_call: Decimal | None = Decimal("0.50")
    per_process: Decimal | None = Decimal(10)
    per_day: Decimal | None = Decimal(50)
    ledger_path: Path = Path("var/budget.sqlite3")
    # A lease not renewed for this long comes back to the others: the time in which a killed
    # process's unused budget is recovered.
    lease_seconds: float = DEFAULT_LEASE_SECONDS


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """The response cache: an SQLite file and how long an answer is served from it."""

    path: Path = Path("var/cache.sqlite3")
    ttl_seconds: float = 86_400.0


@dataclass(frozen=True, slots=True)
class StackConfig:
    """Everything the resilient client needs besides its provider clients."""

    resilience: ResilienceConfig = field(default_factory=ResilienceConfig)
    breaker_failure_threshold: int = 5
    breaker_cooldown_seconds: float = 30.0
    max_concurrency: int = 20
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    prices_file: Path | None = None  # None: the packaged price table
    # A price source of your own (a table built in code): used instead of any file.
    prices: PriceTable | None = None
    # Asked for the models the table has no price for (e.g. genai_prices_source()).
    price_fallback: PriceSource | None = None
    cache: CacheConfig | None = field(default_factory=CacheConfig)  # None: no cache
    fallbacks: tuple[ModelTarget, ...] = ()
    # Budget, breakers, rate limits and cache shared by every instance on one Redis; None:
    # this process's own (memory and SQLite).
    shared: RedisConfig | None = None


@dataclass(frozen=True, slots=True)
class ProviderClients:
    clients: Mapping[str, LLMClient]
    default_provider: str
    offline: bool  # every provider is served by the mock (no API key configured)
    # Each real provider's base URL (None: the vendor's own); the mock's is in-process.
    endpoints: Mapping[str, str | None] = field(default_factory=dict)


def provider_clients(
    default_provider: str,
    providers: Sequence[ProviderConfig],
    *,
    mock: MockConfig | None = None,
    mock_rules: Iterable[Rule] = (),
) -> ProviderClients:
    """The client of every provider that can be called.

    `default_provider` is the provider requests go to (`mock` runs everything offline: the mock
    then answers for every provider a prompt names). `mock_rules` tell the mock how to answer
    offline (features pass their offline responders).
    """
    mock_client = build_mock(mock or MockConfig(), rules=mock_rules)
    names = [MOCK, *(config.name for config in providers)]
    if default_provider == MOCK:
        return ProviderClients(dict.fromkeys(names, mock_client), MOCK, offline=True)
    by_name = {config.name: config for config in providers}
    if default_provider not in by_name:
        raise ConfigurationError(
            f"unknown LLM provider {default_provider!r}: use one of {', '.join(names)} "
            "(LLM_PROVIDER)."
        )
    clients: dict[str, LLMClient] = {
        MOCK: mock_client,
        default_provider: build_provider(by_name[default_provider]),
    }
    for config in providers:
        if config.name not in clients and config.configured:
            # Without a key a provider is left out: a fallback to it is skipped as
            # "not_configured" rather than failing every call.
            clients[config.name] = build_provider(config)
    endpoints = {name: by_name[name].base_url for name in clients if name in by_name}
    return ProviderClients(clients, default_provider, offline=False, endpoints=endpoints)


def cassette_clients(
    default_provider: str,
    providers: Sequence[ProviderConfig],
    cassettes: CassetteSession,
    *,
    mock: MockConfig | None = None,
    mock_rules: Iterable[Rule] = (),
) -> ProviderClients:
    """`provider_clients` with cassettes on: every real provider records its traffic
    (`record`, keys needed) or is served from the recordings (`replay`, no key: every provider
    the project has is replayed, configured or not)."""
    if cassettes.mode == "off" or default_provider == MOCK:
        return provider_clients(default_provider, providers, mock=mock, mock_rules=mock_rules)
    by_name = {config.name: config for config in providers}
    if default_provider not in by_name:
        raise ConfigurationError(
            f"unknown LLM provider {default_provider!r}: use one of "
            f"{', '.join([MOCK, *by_name])} (LLM_PROVIDER)."
        )
    chosen = [
        config
        for config in providers
        if cassettes.mode == "replay" or config.configured or config.name == default_provider
    ]
    clients: dict[str, LLMClient] = {
        MOCK: build_mock(mock or MockConfig(), rules=mock_rules),
        **{config.name: cassettes.client(config) for config in chosen},
    }
    return ProviderClients(clients, default_provider, offline=False)


def build_budget(config: BudgetConfig, shared: SharedParts | None = None) -> Budget:
    """The budget; with shared state its day ledger is on Redis (and, when configured, an
    SQLite ledger is the fallback if Redis goes away)."""
    ledger: LocalLedger | SharedLedger | None = None
    fallback = None
    if config.per_day is not None:
        if shared is None:
            ledger = DailyLedger(config.ledger_path, lease_seconds=config.lease_seconds)
        else:
            ledger = shared.ledger(config.lease_seconds)
            if shared.state.config.budget_fallback_local:
                fallback = DailyLedger(config.ledger_path, lease_seconds=config.lease_seconds)
    return Budget(
        per_call=config.per_call,
        per_process=config.per_process,
        per_day=config.per_day,
        ledger=ledger,
        fallback=fallback,
    )


class SharedParts:
    """The Redis-backed parts, made on one connection (imported only when REDIS_URL is set,
    so a project without the `redis` extra never needs the package)."""

    def __init__(self, state: RedisState) -> None:
        self.state = state

    @classmethod
    def connect(cls, config: RedisConfig) -> SharedParts:
        try:
            from airuntime.resilience.shared.connection import connect
        except ImportError:
            raise ConfigurationError(
                "REDIS_URL is set but the redis package is not installed: install the "
                "runtime's `redis` extra (airuntime[redis]), or unset REDIS_URL."
            ) from None
        return cls(connect(config))

    def ledger(self, lease_seconds: float) -> SharedLedger:
        from airuntime.resilience.shared.ledger import RedisLedger

        return RedisLedger(self.state, lease_seconds=lease_seconds)

    def cache(self, ttl_seconds: float) -> ResponseStore:
        from airuntime.resilience.shared.cache import RedisResponseStore

        return RedisResponseStore(self.state, ttl_seconds=ttl_seconds)

    def breakers(
        self, *, failure_threshold: int, cooldown_seconds: float, clock: Callable[[], float]
    ) -> BreakerBoard:
        from airuntime.resilience.shared.breaker import SharedBreakerBoard

        return SharedBreakerBoard(
            self.state,
            failure_threshold=failure_threshold,
            cooldown_seconds=cooldown_seconds,
            clock=clock,
        )

    def limits(
        self,
        *,
        max_concurrency: int,
        requests_per_minute: int | None,
        tokens_per_minute: int | None,
    ) -> Limits:
        from airuntime.resilience.shared.limits import SharedLimits

        return SharedLimits(
            self.state,
            max_concurrency=max_concurrency,
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
        )


def build_breakers(
    config: StackConfig, shared: SharedParts | None, clock: Callable[[], float]
) -> BreakerBoard:
    if shared is not None:
        return shared.breakers(
            failure_threshold=config.breaker_failure_threshold,
            cooldown_seconds=config.breaker_cooldown_seconds,
            clock=clock,
        )
    return BreakerBoard(
        failure_threshold=config.breaker_failure_threshold,
        cooldown_seconds=config.breaker_cooldown_seconds,
        clock=clock,
    )


def build_limits(config: StackConfig, shared: SharedParts | None) -> Limits:
    if shared is not None:
        return shared.limits(
            max_concurrency=config.max_concurrency,
            requests_per_minute=config.requests_per_minute,
            tokens_per_minute=config.tokens_per_minute,
        )
    return Limits(
        max_concurrency=config.max_concurrency,
        requests_per_minute=config.requests_per_minute,
        tokens_per_minute=config.tokens_per_minute,
    )


def build_kill_switch(
    seed: Iterable[str] = (),
    *,
    known: Iterable[str] | None = None,
    shared: RedisConfig | None = None,
    refresh_seconds: float = 2.0,
) -> KillSwitch:
    """The kill switch: `seed` (AI_SWITCHED_OFF) off at start, changes checked against
    `known` (the prompt ids). With `shared` (REDIS_URL) every instance obeys the changes made
    on any of them, each reading them again every `refresh_seconds`; without, this process's
    own. A seed naming an unknown prompt is a one-line ConfigurationError."""
    from airuntime.resilience.switch import UnknownFeatureError

    known_ids = None if known is None else frozenset(known)
    try:
        if shared is None:
            return KillSwitch(seed, known=known_ids)
        parts = SharedParts.connect(shared)
        from airuntime.resilience.shared.switch import SharedKillSwitch

        return SharedKillSwitch(parts.state, seed, known=known_ids, refresh_seconds=refresh_seconds)
    except UnknownFeatureError as error:
        raise ConfigurationError(f"AI_SWITCHED_OFF: {error}") from None


def load_prices(path: Path | None) -> PriceTable:
    """The price table, or a one-line ConfigurationError naming what is wrong with the file."""
    try:
        return PriceTable.load(path)
    except PricingError as error:
        raise ConfigurationError(str(error)) from None


def build_resilient_client(
    config: StackConfig,
    providers: ProviderClients,
    *,
    observer: Observer | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: random.Random | None = None,
) -> ResilientClient:
    """The resilient client this configuration describes. Bad configuration: a one-line
    ConfigurationError, before anything is called."""
    pricing = config.prices if config.prices is not None else load_prices(config.prices_file)
    if config.price_fallback is not None:
        pricing = pricing.with_fallback(config.price_fallback)
    shared = None if config.shared is None else SharedParts.connect(config.shared)
    cache: ResponseStore | None = None
    if config.cache is not None:
        cache = (
            ResponseCache(config.cache.path, ttl_seconds=config.cache.ttl_seconds)
            if shared is None
            else shared.cache(config.cache.ttl_seconds)
        )
    return ResilientClient(
        providers.clients,
        default_provider=providers.default_provider,
        config=config.resilience,
        pricing=pricing,
        budget=build_budget(config.budget, shared),
        breakers=build_breakers(config, shared, clock),
        limits=build_limits(config, shared),
        fallbacks=config.fallbacks,
        cache=cache,
        observer=observer,
        clock=clock,
        sleep=sleep,
        rng=rng,
        endpoints=providers.endpoints,
        shared_errors=None if shared is None else shared.state.errors,
    )
