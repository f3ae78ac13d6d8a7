"""`stats`: the metrics table of a finished run, rebuilt from its JSON log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from airuntime.cli.exits import ExitCode, fail
from airuntime.cli.support import load_or_exit
from airuntime.observability.metrics import MetricsRegistry

LogOption = Annotated[
    Path | None,
    typer.Option(
        "--log", help="JSON log of a run (LOG_FORMAT=json); defaults to LOG_FILE.", dir_okay=False
    ),
]


def stats_command(log_file: Callable[[], Path | None]) -> Callable[[Path | None], None]:
    """The `stats` command; `log_file` gives the project's LOG_FILE (read only when --log is
    not given)."""

    def stats(log: LogOption = None) -> None:
        """Latency percentiles, errors, retries, fallbacks, validation failures and cost per
        provider, model and prompt, from the JSON log of a run."""
        show_stats(log if log is not None else load_or_exit(log_file))

    return stats


def show_stats(path: Path | None) -> None:
    """Print the metrics table rebuilt from the JSON log at `path`."""
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
