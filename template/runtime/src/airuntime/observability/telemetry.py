"""The observer that turns the resilient client's records into logs, metrics and traces."""

from __future__ import annotations

import logging
from typing import Any

from airuntime.observability.events import AttemptRecord, CallRecord, ValidationFailure
from airuntime.observability.logs import EventLog
from airuntime.observability.metrics import (
    ATTEMPT_EVENT,
    CALL_EVENT,
    VALIDATION_EVENT,
    MetricsRegistry,
)
from airuntime.observability.otel import NAMESPACE, GenAIInstruments
from airuntime.redaction import redact

LOGGER_NAME = "airuntime.llm"


class Telemetry:
    """Logs one event per attempt and per call, feeds `stats`, and emits GenAI telemetry.

    Message content is never logged unless `log_content` is on, and then only redacted.
    """

    def __init__(
        self,
        *,
        metrics: MetricsRegistry | None = None,
        instruments: GenAIInstruments | None = None,
        log_content: bool = False,
    ) -> None:
        self.metrics = metrics if metrics is not None else MetricsRegistry()
        self.instruments = instruments if instruments is not None else GenAIInstruments()
        self.log_content = log_content
        self._events = EventLog(LOGGER_NAME)

    def on_attempt(self, record: AttemptRecord) -> None:
        usage = record.usage
        self.metrics.count_attempt(
            record.target.provider,
            record.target.model,
            record.prompt or "-",
            record.outcome,
            record.error_type,
            record.duration_s,
            usage.input_tokens if usage else 0,
            usage.output_tokens if usage else 0,
            record.cost,
        )
        sent = record.attempt > 0  # attempt 0: skipped without sending, nothing to trace
        if sent:
            self.instruments.record_attempt(record)
        level = logging.INFO if record.outcome == "ok" or not sent else logging.WARNING
        sink = self._events.at(level)
        if sink is None:
            return
        fields: dict[str, Any] = {
            "request_id": record.request_id,
            "prompt": record.prompt,
            "prompt_hash": record.prompt_hash,
            "provider": record.target.provider,
            "model": record.target.model,
            "served_by": record.served_by,
            "attempt": record.attempt,
            "fallback_index": record.fallback_index,
            "latency_ms": round(record.duration_s * 1000, 3),
            "input_tokens": usage.input_tokens if usage else None,
            "output_tokens": usage.output_tokens if usage else None,
            "cost_usd": None if record.cost is None else str(record.cost),
            "outcome": record.outcome,
            "error_type": record.error_type,
            "breaker_state": record.breaker_state,
            "finish_reason": record.finish_reason,
        }
        if self.log_content and record.request is not None:
            fields["messages"] = [
                {"role": message.role, "content": redact(message.content)}
                for message in record.request.messages
            ]
            if record.response_text is not None:
                fields["response"] = redact(record.response_text)
        sink.emit(level, ATTEMPT_EVENT, fields)

    def on_call(self, record: CallRecord) -> None:
        self.metrics.count_call(record.outcome, record.retries, record.cost, record.unknown_cost)
        target = record.target
        attributes = {
            "gen_ai.provider.name": target.provider if target else "-",
            "gen_ai.request.model": target.model if target else "-",
            "outcome": record.outcome,
        }
        if record.outcome in ("fallback", "degraded"):
            self.instruments.fallbacks.add(1, attributes)
        sink = self._events.at(logging.INFO)
        if sink is None:
            return
        sink.emit(
            logging.INFO,
            CALL_EVENT,
            {
                "request_id": record.request_id,
                "prompt": record.prompt,
                "prompt_hash": record.prompt_hash,
                "outcome": record.outcome,
                "provider": target.provider if target else None,
                "model": target.model if target else None,
                "served_by": record.served_by,
                "fallback_index": record.fallback_index,
                "attempts": record.attempts,
                "retries": record.retries,
                "latency_ms": round(record.duration_s * 1000, 3),
                "input_tokens": record.usage.input_tokens,
                "output_tokens": record.usage.output_tokens,
                "cost_usd": str(record.cost),
                "unknown_cost": record.unknown_cost,
                "error_type": record.error_type,
            },
        )

    def on_validation_failure(self, failure: ValidationFailure) -> None:
        self.metrics.observe_validation_failure()
        target = failure.target
        self.instruments.validation_failures.add(
            1,
            {
                "gen_ai.provider.name": target.provider if target else "-",
                "gen_ai.request.model": target.model if target else "-",
                f"{NAMESPACE}.prompt": failure.prompt or "-",
            },
        )
        sink = self._events.at(logging.WARNING)
        if sink is None:
            return
        fields: dict[str, Any] = {
            "request_id": failure.request_id,
            "prompt": failure.prompt,
            "repair_attempt": failure.repair_attempt,
            "errors": list(failure.errors),
        }
        if self.log_content:
            fields["raw_text"] = redact(failure.raw_text)
        sink.emit(logging.WARNING, VALIDATION_EVENT, fields)
