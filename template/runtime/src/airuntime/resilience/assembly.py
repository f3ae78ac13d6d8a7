"""Assemble the model stack from the settings: provider clients inside the resilient client,
with its budget, breakers, limits, cache and observer, and the structured generator on top.

With no API key configured (LLM_PROVIDER=auto), every provider a prompt names is served by the
mock, so the whole system (fallbacks, budgets, telemetry) runs offline and says so.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from {{ package_name }}.llm.breaker import BreakerBoard
from {{ package_name }}.llm.budget import Budget, DailyLedger
from {{ package_name }}.llm.cache import ResponseCache
from {{ package_name }}.llm.chain import ResilienceConfig
from {{ package_name }}.llm.client import LLMClient
from {{ package_name }}.llm.events import Observer
from {{ package_name }}.llm.factory import PROVIDERS, build_mock, build_provider
from {{ package_name }}.llm.limits import Limits
from {{ package_name }}.llm.mock import Rule
from {{ package_name }}.llm.pricing import PriceTable, PricingError
from {{ package_name }}.llm.resilience import ResilientClient
from {{ package_name }}.llm.retry import RetryPolicy
from {{ package_name }}.settings import ConfigurationError, Settings


@dataclass(frozen=True, slots=True)
class ProviderClients:
    clients: Mapping[str, LLMClient]
    default_provider: str
    offline: bool  # every provider is served by the mock (no API key configured)


def provider_clients(settings: Settings, *, mock_rules: Iterable[Rule] = ()) -> ProviderClients:
    """The client of every provider that can be called with these settings.

    `mock_rules` tell the mock how to answer offline (features pass their offline responders).
    """
    resolved = settings.resolved_provider()
    mock = build_mock(settings, rules=mock_rules)
    if resolved == "mock":
        return ProviderClients(dict.fromkeys(PROVIDERS, mock), "mock", offline=True)
    clients: dict[str, LLMClient] = {"mock": mock, resolved: build_provider(resolved, settings)}
    for name in PROVIDERS:
        if name not in clients:
            try:
                clients[name] = build_provider(name, settings)
            except ConfigurationError:
                continue  # no key for it: a fallback to it is skipped as "not_configured"
    return ProviderClients(clients, resolved, offline=False)


def resilience_config(settings: Settings) -> ResilienceConfig:
    return ResilienceConfig(
        retry=RetryPolicy(
            max_attempts=settings.retry_max_attempts,
            base_delay=settings.retry_base_delay_seconds,
            max_delay=settings.retry_max_delay_seconds,
            retry_after_cap=settings.retry_after_cap_seconds,
        ),
        deadline_seconds=settings.request_deadline_seconds,
        attempt_timeout_seconds=settings.llm_timeout_seconds,
        allow_unknown_cost=settings.allow_unknown_cost,
        extra_fallback_errors=settings.fallback_error_kinds(),
    )


def build_budget(settings: Settings) -> Budget:
    ledger = None
    if settings.budget_per_day_usd is not None:
        ledger = DailyLedger(settings.budget_ledger_path)
    return Budget(
        per_call=settings.budget_per_call_usd,
        per_process=settings.budget_per_process_usd,
        per_day=settings.budget_per_day_usd,
        ledger=ledger,
    )


def build_resilient_client(
    settings: Settings,
    *,
    observer: Observer | None = None,
    clients: ProviderClients | None = None,
    mock_rules: Iterable[Rule] = (),
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: random.Random | None = None,
) -> ResilientClient:
    """The resilient client these settings describe. Bad settings: one-line ConfigurationError.

    `mock_rules` are given to the mock provider (ignored when `clients` are passed)."""
    providers = (
        clients if clients is not None else provider_clients(settings, mock_rules=mock_rules)
    )
    try:
        pricing = PriceTable.load(settings.prices_file)
    except PricingError as error:
        raise ConfigurationError(str(error)) from None
    cache = None
    if settings.cache_enabled:
        cache = ResponseCache(settings.cache_path, ttl_seconds=settings.cache_ttl_seconds)
    return ResilientClient(
        providers.clients,
        default_provider=providers.default_provider,
        config=resilience_config(settings),
        pricing=pricing,
        budget=build_budget(settings),
        breakers=BreakerBoard(
            failure_threshold=settings.breaker_failure_threshold,
            cooldown_seconds=settings.breaker_cooldown_seconds,
            clock=clock,
        ),
        limits=Limits(
            max_concurrency=settings.max_concurrency,
            requests_per_minute=settings.rate_limit_rpm,
            tokens_per_minute=settings.rate_limit_tpm,
        ),
        fallbacks=settings.fallback_targets(),
        cache=cache,
        observer=observer,
        clock=clock,
        sleep=sleep,
        rng=rng,
    )
