"""Process-wide observability set-up, done once at start-up from the settings."""

from __future__ import annotations

from {{ package_name }}.observability.logs import LogFormat, configure_logging
from {{ package_name }}.observability.otel import configure_sdk_from_environment
from {{ package_name }}.observability.telemetry import Telemetry
from {{ package_name }}.settings import Settings


def log_format_for(settings: Settings) -> LogFormat:
    """LOG_FORMAT, where `auto` means JSON in production and readable lines in development."""
    if settings.log_format == "auto":
        return "json" if settings.environment == "production" else "console"
    return settings.log_format


def configure_observability(settings: Settings) -> Telemetry:
    """Configure logging (and OpenTelemetry export when its variables are set) and return the
    observer the model stack reports to."""
    configure_logging(
        level=settings.log_level, log_format=log_format_for(settings), log_file=settings.log_file
    )
    configure_sdk_from_environment()
    return Telemetry(log_content=settings.log_content)
