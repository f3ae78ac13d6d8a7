"""`stats`: the metrics table of a finished run, rebuilt from its JSON log."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from {{ package_name }}.exits import ExitCode, fail
from {{ package_name }}.observability.metrics import MetricsRegistry
from {{ package_name }}.settings import ConfigurationError, load_settings


def stats(
    log: Annotated[
        Path | None,
        typer.Option(
            "--log",
            help="JSON log of a run (LOG_FORMAT=json); defaults to LOG_FILE.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Latency percentiles, errors, retries, fallbacks, validation failures and cost per
    provider, model and prompt, from the JSON log of a run."""
    path = log
    if path is None:
        try:
            path = load_settings().log_file
        except ConfigurationError as error:
            raise fail(str(error), ExitCode.CONFIGURATION_ERROR) from None
    if path is None:
        raise fail(
            "no log to read: pass --log FILE, or run with LOG_FORMAT=json and LOG_FILE=FILE first.",
            ExitCode.BAD_INPUT,
        )
    try:
        with path.open(encoding="utf-8") as lines:
            registry, skipped = MetricsRegistry.from_log_lines(lines)
    except OSError as error:
        raise fail(f"cannot read the log {path}: {error.strerror}.", ExitCode.BAD_INPUT) from None
    typer.echo(registry.render_table())
    if skipped:
        typer.echo(f"({skipped} lines of {path} were not JSON and were skipped)", err=True)
