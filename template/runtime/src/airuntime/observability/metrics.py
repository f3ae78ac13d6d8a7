"""In-process metrics: everything `stats` prints, with no server to run.

Fed by the Telemetry observer while the process runs, or rebuilt afterwards from the JSON log
of a finished run (`stats --log FILE`), so a batch job can be summarised after it ends.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from airuntime.observability.histogram import LatencyHistogram

ATTEMPT_EVENT = "llm.attempt"
CALL_EVENT = "llm.call"
VALIDATION_EVENT = "llm.validation_failed"
SKIPPED_OUTCOMES = frozenset({"breaker_open", "not_configured", "deadline_exceeded"})


@dataclass(frozen=True, slots=True, order=True)
class SeriesKey:
    """One latency series: a model of a provider, serving one prompt."""

    provider: str
    model: str
    prompt: str


@dataclass
class Series:
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    attempts: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class AttemptSample:
    """What metrics need from one attempt (from a record or from a log line)."""

    provider: str
    model: str
    prompt: str
    attempt: int
    outcome: str
    error_type: str | None
    latency_s: float
    input_tokens: int
    output_tokens: int
    cost: Decimal | None


@dataclass(frozen=True, slots=True)
class CallSample:
    outcome: str
    retries: int
    cost: Decimal
    unknown_cost: bool


class MetricsRegistry:
    def __init__(self) -> None:
        self.series: dict[SeriesKey, Series] = {}
        self.errors_by_type: Counter[str] = Counter()
        self.calls_by_outcome: Counter[str] = Counter()
        self.skips_by_reason: Counter[str] = Counter()
        self.retries = 0
        self.validation_failures = 0
        self.unknown_cost_calls = 0
        self.cost = Decimal(0)
        # The same series by a plain tuple: found without making and hashing a SeriesKey.
        self._series_by_tuple: dict[tuple[str, str, str], Series] = {}

    def observe_attempt(self, sample: AttemptSample) -> None:
        self.count_attempt(
            sample.provider,
            sample.model,
            sample.prompt,
            sample.outcome,
            sample.error_type,
            sample.latency_s,
            sample.input_tokens,
            sample.output_tokens,
            sample.cost,
        )

    def count_attempt(
        self,
        provider: str,
        model: str,
        prompt: str,
        outcome: str,
        error_type: str | None,
        latency_s: float,
        input_tokens: int,
        output_tokens: int,
        cost: Decimal | None,
    ) -> None:
        """`observe_attempt` without making the sample (the live path: once per attempt)."""
        if outcome in SKIPPED_OUTCOMES:
            self.skips_by_reason[outcome] += 1
            return
        found = (provider, model, prompt)
        series = self._series_by_tuple.get(found)
        if series is None:
            key = SeriesKey(*found)
            series = self.series.get(key)
            if series is None:
                series = self.series[key] = Series()
            self._series_by_tuple[found] = series
        series.attempts += 1
        series.latency.record(latency_s)
        series.input_tokens += input_tokens
        series.output_tokens += output_tokens
        if cost is not None:
            series.cost += cost
        if outcome != "ok":
            series.errors += 1
            self.errors_by_type[error_type or outcome] += 1

    def observe_call(self, sample: CallSample) -> None:
        self.count_call(sample.outcome, sample.retries, sample.cost, sample.unknown_cost)

    def count_call(self, outcome: str, retries: int, cost: Decimal, unknown_cost: bool) -> None:
        """`observe_call` without making the sample (the live path: once per call)."""
        self.calls_by_outcome[outcome] += 1
        self.retries += retries
        self.cost += cost
        if unknown_cost:
            self.unknown_cost_calls += 1

    def observe_validation_failure(self) -> None:
        self.validation_failures += 1

    @property
    def calls(self) -> int:
        return sum(self.calls_by_outcome.values())

    def rate(self, count: int) -> float:
        return count / self.calls if self.calls else 0.0

    # -- rebuilding from a JSON log ------------------------------------------------------

    @classmethod
    def from_log_lines(cls, lines: Iterable[str]) -> tuple[MetricsRegistry, int]:
        """Rebuild metrics from JSON log lines; returns the registry and lines skipped."""
        registry = cls()
        skipped = 0
        for line in lines:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                skipped += 1
                continue
            if not isinstance(event, dict):
                skipped += 1
                continue
            name = event.get("event")
            if name == ATTEMPT_EVENT:
                registry.observe_attempt(_attempt_from_log(event))
            elif name == CALL_EVENT:
                registry.observe_call(_call_from_log(event))
            elif name == VALIDATION_EVENT:
                registry.observe_validation_failure()
        return registry, skipped

    # -- the `stats` table ----------------------------------------------------------------

    def render_table(self) -> str:
        """A fixed-width table a person can read in a terminal or paste into a ticket."""
        header = (
            f"{'provider/model':<34} {'prompt':<22} {'attempts':>8} {'errors':>6} "
            f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'tokens in/out':>15} {'cost $':>10}"
        )
        lines = [header, "-" * len(header)]
        for key in sorted(self.series):
            series = self.series[key]
            latency = series.latency
            tokens = f"{series.input_tokens}/{series.output_tokens}"
            lines.append(
                f"{_fit(f'{key.provider}/{key.model}', 34):<34} {_fit(key.prompt, 22):<22} "
                f"{series.attempts:>8} {series.errors:>6} "
                f"{latency.quantile(0.50) * 1000:>8.1f} {latency.quantile(0.95) * 1000:>8.1f} "
                f"{latency.quantile(0.99) * 1000:>8.1f} {tokens:>15} {series.cost:>10.6f}"
            )
        if not self.series:
            lines.append("(no model attempts recorded)")
        outcomes = self.calls_by_outcome
        fallbacks = outcomes["fallback"] + outcomes["degraded"]
        lines += [
            "",
            f"calls {self.calls}: " + _counts(outcomes),
            f"fallback rate {100 * self.rate(fallbacks):.1f}% ({fallbacks} activations, "
            f"{outcomes['degraded']} degraded)",
            f"validation failures {self.validation_failures} "
            f"({100 * self.rate(self.validation_failures):.1f}% of calls)",
            f"cache hits {outcomes['cache_hit']}   retries {self.retries}   "
            f"budget refusals {outcomes['budget_exceeded']}",
            f"errors by type: {_counts(self.errors_by_type) or 'none'}",
            f"targets skipped: {_counts(self.skips_by_reason) or 'none'}",
            f"total cost ${self.cost:.6f}"
            + (
                f" (+{self.unknown_cost_calls} calls of unknown cost)"
                if self.unknown_cost_calls
                else ""
            ),
        ]
        return "\n".join(lines)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counter.items()) if count)


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "~"


def _decimal(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _attempt_from_log(event: dict[str, object]) -> AttemptSample:
    return AttemptSample(
        provider=str(event.get("provider", "?")),
        model=str(event.get("model", "?")),
        prompt=str(event.get("prompt") or "-"),
        attempt=int(str(event.get("attempt", 0))),
        outcome=str(event.get("outcome", "?")),
        error_type=None if event.get("error_type") is None else str(event["error_type"]),
        latency_s=float(str(event.get("latency_ms", 0))) / 1000,
        input_tokens=int(str(event.get("input_tokens") or 0)),
        output_tokens=int(str(event.get("output_tokens") or 0)),
        cost=_decimal(event.get("cost_usd")),
    )


def _call_from_log(event: dict[str, object]) -> CallSample:
    return CallSample(
        outcome=str(event.get("outcome", "?")),
        retries=int(str(event.get("retries", 0))),
        cost=_decimal(event.get("cost_usd")) or Decimal(0),
        unknown_cost=bool(event.get("unknown_cost", False)),
    )
