"""OpenTelemetry GenAI spans and metrics for model attempts.

Only `opentelemetry-api` is a base dependency: without an SDK every call here is a cheap no-op.
Install the `otel` extra and set the standard OTEL_* variables to export (see the README).
Names follow the GenAI semantic conventions: a CLIENT span `chat {model}` per attempt,
`gen_ai.client.operation.duration` (s) and `gen_ai.client.token.usage` ({token}) with the
conventions' bucket boundaries; project metrics live under the package's namespace.
"""

from __future__ import annotations

from opentelemetry import metrics, trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider

from airuntime.observability.events import AttemptRecord

NAMESPACE = "airuntime"
DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip


class GenAIInstruments:
    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self.tracer = trace.get_tracer(NAMESPACE, tracer_provider=tracer_provider)
        meter = metrics.get_meter(NAMESPACE, meter_provider=meter_provider)
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self.cost = meter.create_counter(
            f"{NAMESPACE}.llm.cost", unit="USD", description="Cost of model calls."
        )
        self.fallbacks = meter.create_counter(
            f"{NAMESPACE}.llm.fallbacks",
            unit="{call}",
            description="Calls answered by a fallback target or a degraded answer.",
        )
        self.validation_failures = meter.create_counter(
            f"{NAMESPACE}.llm.validation_failures",
            unit="{response}",
            description="Model outputs that failed to parse or validate.",
        )

    def record_attempt(self, record: AttemptRecord) -> None:
        """One CLIENT span and the duration/token metrics for an attempt that was sent."""
        target = record.target
        attributes: dict[str, str | int] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": target.provider,
            "gen_ai.request.model": target.model,
        }
        if record.response_model is not None:
            attributes["gen_ai.response.model"] = record.response_model
        if record.error_type is not None:
            attributes["error.type"] = record.error_type
        self.duration.record(record.duration_s, attributes)
        if record.usage is not None:
            self.tokens.record(
                record.usage.input_tokens, {**attributes, "gen_ai.token.type": "input"}
            )
            self.tokens.record(
                record.usage.output_tokens, {**attributes, "gen_ai.token.type": "output"}
            )
        if record.cost:
            self.cost.add(float(record.cost), attributes)

        span = self.tracer.start_span(
            f"chat {target.model}", kind=SpanKind.CLIENT, start_time=record.started_ns
        )
        if span.is_recording():
            span.set_attributes(attributes)
            span.set_attribute(f"{NAMESPACE}.attempt", record.attempt)
            span.set_attribute(f"{NAMESPACE}.fallback_index", record.fallback_index)
            span.set_attribute(f"{NAMESPACE}.served_by", record.served_by)
            span.set_attribute(f"{NAMESPACE}.breaker_state", record.breaker_state)
            if record.prompt is not None:
                span.set_attribute(f"{NAMESPACE}.prompt", record.prompt)
            if record.cost is not None:
                span.set_attribute(f"{NAMESPACE}.cost_usd", float(record.cost))
            if record.usage is not None:
                span.set_attribute("gen_ai.usage.input_tokens", record.usage.input_tokens)
                span.set_attribute("gen_ai.usage.output_tokens", record.usage.output_tokens)
            if record.finish_reason is not None:
                span.set_attribute("gen_ai.response.finish_reasons", [record.finish_reason])
            if record.error_type is not None:
                span.set_status(Status(StatusCode.ERROR, record.outcome))
        span.end(end_time=record.started_ns + int(record.duration_s * 1e9))


def configure_sdk_from_environment() -> bool:
    """Install the OpenTelemetry SDK with OTLP exporters when the `otel` extra is installed
    and an exporter endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT and friends).

    Returns whether the SDK was configured. Everything else (service name, headers,
    protocol, sampling) comes from the standard OTEL_* environment variables.
    """
    import os

    endpoint_variables = (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    )
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true" or not any(
        os.environ.get(name) for name in endpoint_variables
    ):
        return False
    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter,
        )
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )
        from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
        from opentelemetry.sdk.metrics.export import (
            PeriodicExportingMetricReader,
        )
        from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        return False
    tracer_provider = SdkTracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(tracer_provider)
    reader = PeriodicExportingMetricReader(OTLPMetricExporter())
    metrics.set_meter_provider(SdkMeterProvider(metric_readers=[reader]))
    return True
