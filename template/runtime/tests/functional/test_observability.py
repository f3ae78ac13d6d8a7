"""Telemetry end to end: OpenTelemetry spans and metric points (in-memory exporters), log
events and the stats table, for a success, a retry, a fallback, a validation failure and a
budget refusal."""

from __future__ import annotations

import json
from collections.abc import Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel

from airuntime.model.mock import MockLLM, Step
from airuntime.model.mock_faults import Fault
from airuntime.observability.logs import configure_logging
from airuntime.observability.metrics import MetricsRegistry
from airuntime.observability.otel import (
    DURATION_BUCKETS,
    TOKEN_BUCKETS,
    GenAIInstruments,
)
from airuntime.observability.telemetry import Telemetry
from airuntime.prompts import load_registry
from airuntime.resilience.budget import Budget, BudgetExceeded
from airuntime.resilience.client import ResilientClient
from airuntime.structured import StructuredGenerator, current
from airuntime.testing import FakeClock, flat_prices, resilient_client
from airuntime.types import LLMRequest, Message, ModelTarget

NS = "airuntime"
PRIMARY = ModelTarget(provider="primary", model="model-a")
SECONDARY = ModelTarget(provider="secondary", model="model-b")
QUESTION = "Summarise the incident report."  # 8 mock tokens
ANSWER = "All systems recovered."  # 6 mock tokens
SUCCESS_COST = Decimal(8 * 1 + 6 * 2) / 1_000_000


@dataclass
class Telemetered:
    telemetry: Telemetry
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    tracer_provider: TracerProvider
    logs: list[MutableMapping[str, Any]]

    def finished_spans(self) -> Sequence[ReadableSpan]:
        return self.spans.get_finished_spans()

    def points(self, name: str) -> list[Any]:
        data = self.metrics.get_metrics_data()
        if data is None:  # nothing was recorded at all
            return []
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]

    def events(self, name: str) -> list[MutableMapping[str, Any]]:
        return [entry for entry in self.logs if entry["event"] == name]


@pytest.fixture
def telemetered() -> Iterator[Telemetered]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    instruments = GenAIInstruments(tracer_provider=tracer_provider, meter_provider=meter_provider)
    with structlog.testing.capture_logs() as logs:
        yield Telemetered(Telemetry(instruments=instruments), spans, reader, tracer_provider, logs)
    meter_provider.shutdown()
    tracer_provider.shutdown()


def stack(
    telemetered: Telemetered,
    primary: Sequence[Step],
    secondary: Sequence[Step] = (),
    *,
    budget: Budget | None = None,
) -> ResilientClient:
    clock = FakeClock()
    return resilient_client(
        {
            "primary": MockLLM(primary, provider="primary", sleep=clock.sleep),
            "secondary": MockLLM(secondary, provider="secondary", sleep=clock.sleep),
        },
        clock=clock,
        fallbacks=[SECONDARY],
        pricing=flat_prices([PRIMARY, SECONDARY]),
        budget=budget,
        observer=telemetered.telemetry,
    )


def request() -> LLMRequest:
    return LLMRequest(
        model=PRIMARY.model,
        messages=(Message(role="user", content=QUESTION),),
        max_tokens=100,
        metadata={"prompt.id": "incident", "prompt.version": "1.0.0", "prompt.hash": "sha256:x"},
    )


def attributes(point_or_span: Any) -> dict[str, Any]:
    return dict(point_or_span.attributes or {})


async def test_success_emits_one_client_span_with_genai_attributes(
    telemetered: Telemetered,
) -> None:
    await stack(telemetered, [ANSWER]).run(request())

    (span,) = telemetered.finished_spans()
    assert span.name == "chat model-a"
    assert span.kind is SpanKind.CLIENT
    assert attributes(span) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "primary",
        "gen_ai.request.model": "model-a",
        "gen_ai.response.model": "model-a",
        "gen_ai.usage.input_tokens": 8,
        "gen_ai.usage.output_tokens": 6,
        "gen_ai.response.finish_reasons": ("stop",),
        f"{NS}.attempt": 1,
        f"{NS}.fallback_index": 0,
        f"{NS}.served_by": "primary",
        f"{NS}.breaker_state": "closed",
        f"{NS}.prompt": "incident@1.0.0",
        f"{NS}.cost_usd": float(SUCCESS_COST),
    }
    assert span.status.status_code is StatusCode.UNSET


async def test_success_records_duration_tokens_and_cost_metrics(
    telemetered: Telemetered,
) -> None:
    await stack(telemetered, [ANSWER]).run(request())

    (duration,) = telemetered.points("gen_ai.client.operation.duration")
    assert isinstance(duration, HistogramDataPoint)
    assert duration.count == 1
    assert tuple(duration.explicit_bounds) == DURATION_BUCKETS
    assert "error.type" not in attributes(duration)
    tokens = {
        attributes(point)["gen_ai.token.type"]: point
        for point in telemetered.points("gen_ai.client.token.usage")
    }
    assert (tokens["input"].sum, tokens["output"].sum) == (8, 6)
    assert tuple(tokens["input"].explicit_bounds) == TOKEN_BUCKETS
    (cost,) = telemetered.points(f"{NS}.llm.cost")
    assert cost.value == pytest.approx(float(SUCCESS_COST))


async def test_success_logs_one_attempt_and_one_call_event(telemetered: Telemetered) -> None:
    await stack(telemetered, [ANSWER]).run(request())

    (attempt,) = telemetered.events("llm.attempt")
    assert {
        key: attempt[key]
        for key in (
            "prompt",
            "prompt_hash",
            "provider",
            "model",
            "attempt",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "outcome",
            "breaker_state",
            "log_level",
        )
    } == {
        "prompt": "incident@1.0.0",
        "prompt_hash": "sha256:x",
        "provider": "primary",
        "model": "model-a",
        "attempt": 1,
        "input_tokens": 8,
        "output_tokens": 6,
        "cost_usd": str(SUCCESS_COST),
        "outcome": "ok",
        "breaker_state": "closed",
        "log_level": "info",
    }
    assert attempt["latency_ms"] >= 0
    assert len(attempt["request_id"]) == 32
    assert "messages" not in attempt  # content is off by default
    (call,) = telemetered.events("llm.call")
    assert (call["outcome"], call["attempts"], call["cost_usd"]) == ("ok", 1, str(SUCCESS_COST))


async def test_retry_then_success_marks_the_failed_attempt(telemetered: Telemetered) -> None:
    await stack(telemetered, [Fault("server_error"), ANSWER]).run(request())

    failed, succeeded = telemetered.finished_spans()
    assert attributes(failed)["error.type"] == "ServerError"
    assert failed.status.status_code is StatusCode.ERROR
    assert (attributes(failed)[f"{NS}.attempt"], attributes(succeeded)[f"{NS}.attempt"]) == (1, 2)
    durations = telemetered.points("gen_ai.client.operation.duration")
    assert sorted(attributes(p).get("error.type", "-") for p in durations) == ["-", "ServerError"]
    events = telemetered.events("llm.attempt")
    outcomes = [(event["attempt"], event["outcome"], event["log_level"]) for event in events]
    assert outcomes == [(1, "server_error", "warning"), (2, "ok", "info")]
    assert telemetered.telemetry.metrics.retries == 1


async def test_fallback_is_counted_and_tagged(telemetered: Telemetered) -> None:
    await stack(telemetered, [Fault("server_error")] * 3, [ANSWER]).run(request())

    spans = telemetered.finished_spans()
    assert [span.name for span in spans] == ["chat model-a"] * 3 + ["chat model-b"]
    assert attributes(spans[-1])[f"{NS}.fallback_index"] == 1
    (fallbacks,) = telemetered.points(f"{NS}.llm.fallbacks")
    assert fallbacks.value == 1
    (call,) = telemetered.events("llm.call")
    assert (call["outcome"], call["fallback_index"], call["attempts"]) == ("fallback", 1, 4)
    assert telemetered.telemetry.metrics.calls_by_outcome["fallback"] == 1


class Verdict(BaseModel):
    label: str


async def test_validation_failure_is_counted_logged_and_nested_in_the_call_span(
    telemetered: Telemetered, tmp_path: Path
) -> None:
    folder = tmp_path / "prompts" / "triage"
    folder.mkdir(parents=True)
    (folder / "1.0.0.yaml").write_text(
        yaml.safe_dump(
            {
                "id": "triage",
                "version": "1.0.0",
                "description": "Sorts a ticket.",
                "model": {"provider": "mock", "name": "mock-model"},
                "input": {"fields": {"ticket": "string"}},
                "output": {"format": "json"},
                "messages": [{"role": "user", "template": "Sort: {{ ticket }}"}],
            }
        )
    )
    clock = FakeClock()
    client = resilient_client(
        {"mock": MockLLM(["not json", '{"label": "billing"}'], sleep=clock.sleep)},
        clock=clock,
        pricing=flat_prices([ModelTarget(provider="mock", model="mock-model")]),
        observer=telemetered.telemetry,
    )
    generator = StructuredGenerator(
        client,
        load_registry(prompts_dir=tmp_path / "prompts"),
        tracer=telemetered.tracer_provider.get_tracer("tests"),
    )

    await generator.generate("triage", {"ticket": "charged twice"}, Verdict)

    (failure,) = telemetered.events("llm.validation_failed")
    assert failure["prompt"] == "triage@1.0.0"
    assert failure["errors"][0].startswith("not valid JSON")
    assert "raw_text" not in failure
    (counted,) = telemetered.points(f"{NS}.llm.validation_failures")
    assert counted.value == 1
    *attempts, parent = telemetered.finished_spans()
    assert parent.name == "generate triage"
    assert attributes(parent)[f"{NS}.outcome"] == "ok"
    assert [span.parent.span_id for span in attempts if span.parent] == [parent.context.span_id] * 2


async def test_budget_refusal_sends_nothing_and_is_logged(telemetered: Telemetered) -> None:
    client = stack(telemetered, [ANSWER], budget=Budget(per_call=Decimal("0.000001")))

    with pytest.raises(BudgetExceeded):
        await client.run(request())

    assert telemetered.finished_spans() == ()  # no attempt was sent: nothing to trace
    assert telemetered.points("gen_ai.client.operation.duration") == []
    (call,) = telemetered.events("llm.call")
    assert (call["outcome"], call["attempts"], call["cost_usd"]) == ("budget_exceeded", 0, "0")
    assert telemetered.telemetry.metrics.calls_by_outcome["budget_exceeded"] == 1


async def test_content_logging_is_redacted(telemetered: Telemetered) -> None:
    telemetered.telemetry.log_content = True
    secret = LLMRequest(
        model=PRIMARY.model,
        messages=(Message(role="user", content="Mail ada@example.com, card 4111 1111 1111 1111"),),
    )

    await stack(telemetered, ["Called +44 20 7946 0958"]).run(secret)

    (attempt,) = telemetered.events("llm.attempt")
    assert attempt["messages"] == [{"role": "user", "content": "Mail [EMAIL], card [CARD]"}]
    assert attempt["response"] == "Called [PHONE]"


async def test_stats_from_the_json_log_match_the_live_metrics(tmp_path: Path) -> None:
    log_file = tmp_path / "run.log"
    configure_logging(level="INFO", log_format="json", log_file=log_file)
    telemetry = Telemetry()
    clock = FakeClock()
    client = resilient_client(
        {
            "primary": MockLLM(
                [Fault("server_error"), ANSWER, ANSWER], provider="primary", sleep=clock.sleep
            ),
        },
        clock=clock,
        pricing=flat_prices([PRIMARY]),
        observer=telemetry,
    )
    try:
        await client.run(request())
        await client.run(request())
    finally:
        configure_logging()

    lines = log_file.read_text().splitlines()
    assert all(json.loads(line)["event"].startswith("llm.") for line in lines)
    replayed, skipped = MetricsRegistry.from_log_lines([*lines, "not json"])
    live = telemetry.metrics
    assert skipped == 1
    assert replayed.calls_by_outcome == live.calls_by_outcome == {"ok": 2}
    assert replayed.errors_by_type == live.errors_by_type == {"ServerError": 1}
    assert replayed.cost == live.cost == 2 * SUCCESS_COST
    assert replayed.retries == live.retries == 1
    table = replayed.render_table()
    assert "primary/model-a" in table
    assert "incident@1.0.0" in table
    assert "errors by type: ServerError 1" in table
    assert f"total cost ${2 * SUCCESS_COST:.6f}" in table


async def test_log_events_follow_the_level_and_a_later_reconfiguration(tmp_path: Path) -> None:
    telemetry = Telemetry()  # made before logging is configured, as a long-lived service may
    clock = FakeClock()
    client = resilient_client(
        {"primary": MockLLM([ANSWER, Fault("server_error"), ANSWER], provider="primary")},
        clock=clock,
        pricing=flat_prices([PRIMARY]),
        observer=telemetry,
    )
    info_log, warning_log = tmp_path / "info.log", tmp_path / "warning.log"
    try:
        configure_logging(level="INFO", log_format="json", log_file=info_log)
        await client.run(request())
        configure_logging(level="WARNING", log_format="json", log_file=warning_log)
        await client.run(request())  # a failed attempt, then a success
    finally:
        configure_logging()

    written = [json.loads(line) for line in info_log.read_text().splitlines()]
    assert [(event["event"], event["level"]) for event in written] == [
        ("llm.attempt", "info"),
        ("llm.call", "info"),
    ]
    kept = [json.loads(line) for line in warning_log.read_text().splitlines()]
    assert [(event["event"], event["outcome"], event["level"]) for event in kept] == [
        ("llm.attempt", "server_error", "warning"),
    ]
    assert telemetry.metrics.calls == 2  # metrics see every call whatever the log level


def test_a_call_span_is_made_current_only_when_it_can_parent_spans() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    recorded = provider.get_tracer("test").start_span("generate recorded")
    unrecorded = trace.NoOpTracer().start_span("generate unrecorded")  # what no SDK gives

    with current(recorded) as entered:
        assert trace.get_current_span() is recorded
        assert entered is recorded
    before = otel_context.get_current()
    with current(unrecorded) as entered:
        assert otel_context.get_current() is before  # nothing attached: nothing to parent
        assert entered is unrecorded  # either way the block gets its span, as it would from
        # start_as_current_span

    assert [span.name for span in exporter.get_finished_spans()] == ["generate recorded"]
    provider.shutdown()
