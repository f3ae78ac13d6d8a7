"""/metrics in Prometheus' text format (prometheus-client): the HTTP side (requests by route
and status, latency, in flight, open streams, refusals, spend per API key) and every metric
`stats` shows of the model calls (calls by outcome, attempts, errors, latency quantiles,
tokens, cost, retries, validation failures, breaker states, budget).

One registry per app, not the library's global one: two apps in a process (tests) stay apart.
With several uvicorn workers each has its own; run one worker per replica and let Prometheus
scrape each replica (how the README scales the service out).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from airuntime.observability.metrics import MetricsRegistry
from airuntime.resilience.breaker import BreakerBoard
from airuntime.resilience.budget import Budget
from airuntime.resilience.switch import KillSwitch
from airuntime.service.quotas import KeySpend

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Latency buckets in seconds: fine below 10 ms (the service's own overhead), coarse above
# (model calls take seconds).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True, slots=True)
class ModelStack:
    """What the model-call metrics are read from, at scrape time."""

    metrics: MetricsRegistry
    breakers: BreakerBoard
    budget: Budget
    # Redis failures by part (budget, breaker, limits, cache, ...); None without Redis.
    shared_errors: Mapping[str, int] | None = None


class ServiceMetrics:
    def __init__(
        self,
        stack: ModelStack | None = None,
        spend: KeySpend | None = None,
        *,
        switch: KillSwitch | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "http_requests",
            "HTTP requests served, by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time to serve a request (to its last byte), by route.",
            ["route"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "http_requests_in_flight", "Requests being served now.", registry=self.registry
        )
        self.open_streams = Gauge(
            "http_open_streams", "Server-Sent Event streams open now.", registry=self.registry
        )
        self.refusals = Counter(
            "http_refusals",
            "Requests refused by the service's own limits, by error type.",
            ["type"],
            registry=self.registry,
        )
        # Counted by the replica that took the change (POST /admin/switch); `kill_switch_off`
        # is what this replica obeys now, whoever changed it.
        self.switch_changes = Counter(
            "kill_switch_changes",
            "Kill switch changes made here, by feature and new state (off: true or false).",
            ["feature", "off"],
            registry=self.registry,
        )
        self._observers: dict[tuple[str, str, str], Callable[[float], None]] = {}
        if stack is not None or spend is not None or switch is not None:
            self.registry.register(_StackCollector(stack, spend, switch))

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, str(status))
        record = self._observers.get(key)
        if record is None:  # label lookups cost more than the counting: once per series
            counter = self.requests.labels(*key)
            histogram = self.latency.labels(route)

            def record(value: float) -> None:
                counter.inc()
                histogram.observe(value)

            self._observers[key] = record
        record(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StackCollector(Collector):
    """Reads the runtime's in-process metrics when Prometheus scrapes (nothing on the hot path)."""

    def __init__(
        self, stack: ModelStack | None, spend: KeySpend | None, switch: KillSwitch | None = None
    ) -> None:
        self._stack = stack
        self._spend = spend
        self._switch = switch

    def collect(self) -> Iterator[Metric]:
        if self._switch is not None:
            switch = self._switch
            off = GaugeMetricFamily(
                "kill_switch_off",
                "1 when the feature's AI path is switched off (its degraded answer serves).",
                labels=["feature"],
            )
            for feature in switch.features():
                off.add_metric([feature], 1.0 if switch.is_off(feature) else 0.0)
            yield off
        if self._spend is not None:
            spend = CounterMetricFamily(
                "api_key_spend_usd", "Model spend by API key (US dollars).", labels=["key"]
            )
            for key, amount in sorted(self._spend.total.items()):
                spend.add_metric([key], float(amount))
            yield spend
        if self._stack is not None:
            yield from _model_metrics(self._stack)


def _model_metrics(stack: ModelStack) -> Iterator[Metric]:
    registry = stack.metrics
    calls = CounterMetricFamily("llm_calls", "Model calls by outcome.", labels=["outcome"])
    for outcome, count in sorted(registry.calls_by_outcome.items()):
        calls.add_metric([outcome], count)
    yield calls
    errors = CounterMetricFamily("llm_errors", "Failed attempts by error type.", labels=["type"])
    for kind, count in sorted(registry.errors_by_type.items()):
        errors.add_metric([kind], count)
    yield errors
    skips = CounterMetricFamily("llm_skips", "Targets passed over, by reason.", labels=["reason"])
    for reason, count in sorted(registry.skips_by_reason.items()):
        skips.add_metric([reason], count)
    yield skips
    yield CounterMetricFamily("llm_retries", "Retried attempts.", value=registry.retries)
    yield CounterMetricFamily(
        "llm_validation_failures",
        "Answers that failed to parse or validate.",
        value=registry.validation_failures,
    )
    yield CounterMetricFamily(
        "llm_cost_usd", "Model spend (US dollars).", value=float(registry.cost)
    )
    yield from _series_metrics(registry)
    breakers = GaugeMetricFamily(
        "llm_breaker_open", "1 when a target's circuit breaker is open.", labels=["target", "state"]
    )
    for target, state in sorted(stack.breakers.states().items()):
        breakers.add_metric([target, state], 1.0 if state == "open" else 0.0)
    yield breakers
    yield GaugeMetricFamily(
        "budget_spent_usd", "Spent by this process (US dollars).", value=float(stack.budget.spent)
    )
    yield GaugeMetricFamily(
        "budget_reserved_usd",
        "Reserved by calls in flight (US dollars).",
        value=float(stack.budget.reserved),
    )
    if stack.shared_errors is not None:
        shared = CounterMetricFamily(
            "shared_state_errors",
            "Failed operations on the shared state (Redis), by part: each fell back or refused.",
            labels=["part"],
        )
        for part, count in sorted(stack.shared_errors.items()):
            shared.add_metric([part], count)
        yield shared


def _series_metrics(registry: MetricsRegistry) -> Iterator[Metric]:
    labels = ["provider", "model", "prompt"]
    attempts = CounterMetricFamily("llm_attempts", "Attempts sent.", labels=labels)
    failed = CounterMetricFamily("llm_attempt_errors", "Attempts that failed.", labels=labels)
    tokens = CounterMetricFamily("llm_tokens", "Tokens.", labels=[*labels, "direction"])
    latency = GaugeMetricFamily(
        "llm_attempt_latency_seconds",
        "Attempt latency quantiles since start.",
        labels=[*labels, "quantile"],
    )
    for key, series in sorted(registry.series.items()):
        names = [key.provider, key.model, key.prompt]
        attempts.add_metric(names, series.attempts)
        failed.add_metric(names, series.errors)
        tokens.add_metric([*names, "input"], series.input_tokens)
        tokens.add_metric([*names, "output"], series.output_tokens)
        for q in QUANTILES:
            latency.add_metric([*names, str(q)], series.latency.quantile(q))
    yield from (attempts, failed, tokens, latency)
