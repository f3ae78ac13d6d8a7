"""Process-wide observability set-up, done once at start-up from the project's settings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from airuntime.observability.logs import LogFormat, LogLevel, configure_logging
from airuntime.observability.otel import configure_sdk_from_environment
from airuntime.observability.telemetry import Telemetry

Environment = Literal["development", "production"]


def log_format_for(environment: Environment, log_format: LogFormat | Literal["auto"]) -> LogFormat:
    """LOG_FORMAT, where `auto` means JSON in production and readable lines in development."""
    if log_format == "auto":
        return "json" if environment == "production" else "console"
    return log_format


def configure_observability(
    *,
    level: LogLevel = "WARNING",
    log_format: LogFormat = "console",
    log_file: Path | None = None,
    log_content: bool = False,
) -> Telemetry:
    """Configure logging (and OpenTelemetry export when its OTEL_* variables are set) and
    return the observer the model stack reports to."""
    configure_logging(level=level, log_format=log_format, log_file=log_file)
    configure_sdk_from_environment()
    return Telemetry(log_content=log_content)
