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

from airuntime.errors import ConfigurationError
from airuntime.model.cassette_mode import CassetteSession
from airuntime.model.client import LLMClient
from airuntime.model.factory import MOCK, MockConfig, ProviderConfig, build_mock, build_provider
from airuntime.model.mock import Rule
from airuntime.observability.events import Observer
from airuntime.resilience.breaker import BreakerBoard
from airuntime.resilience.budget import Budget, DailyLedger
from airuntime.resilience.cache import ResponseCache
from airuntime.resilience.chain import ResilienceConfig
from airuntime.resilience.client import ResilientClient
from airuntime.resilience.limits import Limits
from airuntime.resilience.pricing import PriceSource, PriceTable, PricingError
from airuntime.types import ModelTarget


@dataclass(frozen=True, slots=True)
class BudgetConfig:
    """Spending ceilings in US dollars (None: no ceiling) and where the day's spend is kept."""

    per_call: Decimal | None = Decimal("0.50")
    per_process: Decimal | None = Decimal(10)
    per_day: Decimal | None = Decimal(50)
    ledger_path: Path = Path("var/budget.sqlite3")


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


def build_budget(config: BudgetConfig) -> Budget:
    ledger = DailyLedger(config.ledger_path) if config.per_day is not None else None
    return Budget(
        per_call=config.per_call,
        per_process=config.per_process,
        per_day=config.per_day,
        ledger=ledger,
    )


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
    cache = None
    if config.cache is not None:
        cache = ResponseCache(config.cache.path, ttl_seconds=config.cache.ttl_seconds)
    return ResilientClient(
        providers.clients,
        default_provider=providers.default_provider,
        config=config.resilience,
        pricing=pricing,
        budget=build_budget(config.budget),
        breakers=BreakerBoard(
            failure_threshold=config.breaker_failure_threshold,
            cooldown_seconds=config.breaker_cooldown_seconds,
            clock=clock,
        ),
        limits=Limits(
            max_concurrency=config.max_concurrency,
            requests_per_minute=config.requests_per_minute,
            tokens_per_minute=config.tokens_per_minute,
        ),
        fallbacks=config.fallbacks,
        cache=cache,
        observer=observer,
        clock=clock,
        sleep=sleep,
        rng=rng,
        endpoints=providers.endpoints,
    )
