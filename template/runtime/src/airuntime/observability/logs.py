"""Structured logging with structlog: JSON lines in production, readable lines in development.

Every event is one line with an `event` name and flat fields, so `stats --log FILE` (and any
log pipeline) can aggregate it. Configure once at start-up with `configure_logging`.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Literal, TextIO

import structlog

LogFormat = Literal["json", "console"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
_open_log_file: TextIO | None = None


def configure_logging(
    *, level: LogLevel = "INFO", log_format: LogFormat = "console", log_file: Path | None = None
) -> None:
    """Route structlog to stderr (or `log_file`, appended) in the chosen format."""
    global _open_log_file
    reset_logging()
    stream: TextIO = sys.stderr
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        stream = _open_log_file = log_file.open("a", encoding="utf-8")
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def reset_logging() -> None:
    """Close the log file, if any, and return structlog to its defaults."""
    global _open_log_file
    if _open_log_file is not None:
        _open_log_file.close()
        _open_log_file = None
    structlog.reset_defaults()
