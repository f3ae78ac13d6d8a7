"""Observability of the model boundary: structured logs, in-process metrics, OpenTelemetry.

`Telemetry` is the observer the resilient client reports to; it writes one log event per
attempt and per call, updates the in-process metrics behind `stats`, and emits OpenTelemetry
GenAI spans and metrics (no-ops unless an OpenTelemetry SDK is configured).
"""
