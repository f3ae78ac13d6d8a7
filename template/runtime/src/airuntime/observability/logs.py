"""Structured logging with structlog: JSON lines in production, readable lines in development.

Every event is one line with an `event` name and flat fields, so `stats --log FILE` (and any
log pipeline) can aggregate it. Configure once at start-up with `configure_logging`.

The model stack writes its events through an `EventLog`: while the configuration is the one
`configure_logging` installed, it runs that configuration's processors itself and hands the line
to the same writer, skipping structlog's per-event plumbing (which cost more than the rest of an
event); under any other configuration (`capture_logs` in tests, an application's own) it logs
through structlog as usual. Either way the line holds the same JSON.

Lines are encoded with orjson when every value is one it writes as the standard library's
encoder would read back alike (a flat event of strings, integers, booleans, None and finite
floats, as the model stack's are) and the line is ASCII; anything else is encoded as
structlog's JSONRenderer does. Key order and spacing may differ; the parsed line never does.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import NoneType
from typing import Any, Literal, Protocol, TextIO

import orjson
import structlog

LogFormat = Literal["json", "console"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
_open_log_file: TextIO | None = None


@functools.lru_cache(maxsize=8)
def _encoder(default: Callable[[Any], Any] | None) -> json.JSONEncoder:
    return json.JSONEncoder(default=default)


def dumps_json(value: Any, *, default: Callable[[Any], Any] | None = None) -> str:
    """`json.dumps(value, default=default)` as JSON: the text may differ in key order and
    spacing, never in what it parses to.

    A flat dict of plain values (an event) is encoded by orjson, about 20 times quicker than the
    standard library's encoder on one; anything else by the standard library's, with the
    encoder built once per `default` (`json.dumps` builds a new one on every call that passes
    any argument, as structlog's JSONRenderer does)."""
    if type(value) is dict:
        line = _plain_json(value)
        if line is not None:
            return line
    return _encoder(default).encode(value)


def _plain_json(event: dict[str, Any]) -> str | None:
    """The event as orjson writes it, when that parses to what `json.dumps` writes, else None.

    That holds for a flat dict whose values are exactly str, int, bool, None or finite floats
    (orjson writes NaN and infinities as null, and a UUID, an enum, a dataclass or a date its
    own way where `json.dumps` calls `default`), and only when the line is ASCII (`json.dumps`
    escapes everything else: a stream with another encoding must still take it). orjson refuses
    integers beyond 64 bits, lone surrogates and keys that are not strings: None too."""
    for value in event.values():
        kind = type(value)
        if kind is str or kind is NoneType or kind is int or kind is bool:
            continue
        if kind is float and value - value == 0.0:  # finite: inf - inf and nan - nan are nan
            continue
        return None
    try:
        line = orjson.dumps(event)
    except orjson.JSONEncodeError:
        return None
    return line.decode() if line.isascii() else None


class UtcTimeStamper:
    """structlog's `TimeStamper(fmt="iso", utc=True)`, quicker: the same `timestamp` text
    (`datetime.now(UTC).isoformat()` with `Z` for `+00:00`, microseconds floored, none shown
    when zero), with the date and time to the second formatted once per second, not per event.
    """

    __slots__ = ("_second",)

    def __init__(self) -> None:
        self._second: tuple[int, str] = (-1, "")  # one tuple: read and replaced atomically

    def __call__(self, _logger: Any, _method_name: str, event_dict: Any) -> Any:
        event_dict["timestamp"] = self.text(time.time_ns())
        return event_dict

    def text(self, now_ns: int) -> str:
        second, micro = divmod(now_ns // 1000, 1_000_000)
        cached = self._second
        if cached[0] != second:
            whole = dt.datetime.fromtimestamp(second, dt.UTC).isoformat()
            cached = self._second = (second, whole.removesuffix("+00:00"))
        return f"{cached[1]}.{micro:06d}Z" if micro else f"{cached[1]}Z"


@dataclass(frozen=True, slots=True)
class _Installed:
    """What `configure_logging` handed to structlog, to recognise it later by identity."""

    processors: Sequence[Any]
    wrapper_class: type
    logger_factory: Any
    context_class: type
    min_level: int


_installed: _Installed | None = None


def configure_logging(
    *, level: LogLevel = "INFO", log_format: LogFormat = "console", log_file: Path | None = None
) -> None:
    """Route structlog to stderr (or `log_file`, appended) in the chosen format."""
    global _open_log_file, _installed
    reset_logging()
    stream: TextIO = sys.stderr
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        stream = _open_log_file = log_file.open("a", encoding="utf-8")
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(serializer=dumps_json)
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    min_level = logging.getLevelNamesMapping()[level]
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        UtcTimeStamper(),
        renderer,
    ]
    wrapper_class = structlog.make_filtering_bound_logger(min_level)
    logger_factory = structlog.WriteLoggerFactory(file=stream)
    structlog.configure(
        processors=processors,
        wrapper_class=wrapper_class,
        logger_factory=logger_factory,
        cache_logger_on_first_use=False,
    )
    context_class = structlog.get_config()["context_class"]
    _installed = _Installed(processors, wrapper_class, logger_factory, context_class, min_level)


def reset_logging() -> None:
    """Close the log file, if any, and return structlog to its defaults."""
    global _open_log_file, _installed
    _installed = None
    if _open_log_file is not None:
        _open_log_file.close()
        _open_log_file = None
    structlog.reset_defaults()


class EventSink(Protocol):
    def enabled(self, level: int) -> bool:
        """Whether an event at `level` is written (if not, build none of its fields)."""
        ...

    def emit(self, level: int, event: str, fields: dict[str, Any]) -> None:
        """Write one event with `fields`, a dict the caller gives away (it may be changed)."""
        ...


@functools.cache
def _method_name(level: int) -> str:
    """The logger method of a level, as structlog's filtering loggers name them."""
    return logging.getLevelName(level).lower()


class _BoundLoggerSink:
    """Through a structlog bound logger: any configuration."""

    __slots__ = ("_enabled", "_logger")

    def __init__(self, logger: Any) -> None:
        self._logger = logger
        self._enabled = getattr(logger, "is_enabled_for", None)

    def enabled(self, level: int) -> bool:
        return self._enabled is None or bool(self._enabled(level))

    def emit(self, level: int, event: str, fields: dict[str, Any]) -> None:
        getattr(self._logger, _method_name(level))(event, **fields)


class _InstalledSink:
    """What a bound logger of `configure_logging`'s configuration does with an event, done
    directly: the event dict is the fields then `event` (the bound context is empty), the
    configured processors run in order (DropEvent drops it), and the wrapped WriteLogger
    writes the result under its lock and flushes, as `_proxy_to_logger` would have it."""

    __slots__ = ("_logger", "_min_level", "_processors")

    def __init__(self, installed: _Installed) -> None:
        self._processors = installed.processors
        self._min_level = installed.min_level
        self._logger = installed.logger_factory()

    def enabled(self, level: int) -> bool:
        return level >= self._min_level

    def emit(self, level: int, event: str, fields: dict[str, Any]) -> None:
        method = _method_name(level)
        fields["event"] = event
        event_dict: Any = fields
        try:
            for processor in self._processors:
                event_dict = processor(self._logger, method, event_dict)
        except structlog.DropEvent:
            return
        write = getattr(self._logger, method)
        if isinstance(event_dict, (str, bytes, bytearray)):
            write(event_dict)
        elif isinstance(event_dict, tuple):
            args, kwargs = event_dict
            write(*args, **kwargs)
        elif isinstance(event_dict, dict):
            write(**event_dict)
        else:
            raise ValueError(
                "Last processor didn't return an appropriate value.  Valid return values are a "
                "dict, a tuple of (args, kwargs), bytes, or a str."
            )


class EventLog:
    """The sink for one logger name under the current structlog configuration.

    structlog's lazy proxy would assemble a new logger for every event unless loggers are
    cached on first use, which would pin every logger to the first configuration; this
    assembles one per configuration instead, so a reconfiguration (tests, `capture_logs`)
    still applies from the next event.
    """

    __slots__ = ("_configuration", "_name", "_sink")

    def __init__(self, name: str) -> None:
        self._name = name
        self._configuration: tuple[object, ...] = (None, None, None, None)
        self._sink: EventSink | None = None

    def at(self, level: int) -> EventSink | None:
        """The sink to write an event at `level` with, or None when the level is filtered out."""
        config = structlog.get_config()
        processors, factory, wrapper, context = self._configuration
        sink = self._sink
        if (
            sink is None
            or config["processors"] is not processors
            or config["logger_factory"] is not factory
            or config["wrapper_class"] is not wrapper
            or config["context_class"] is not context
        ):
            current = (
                config["processors"],
                config["logger_factory"],
                config["wrapper_class"],
                config["context_class"],
            )
            sink = self._sink = self._assemble(current)
            self._configuration = current
        return sink if sink.enabled(level) else None

    def _assemble(self, current: tuple[object, ...]) -> EventSink:
        installed = _installed
        if installed is not None and all(
            now is then
            for now, then in zip(
                current,
                (
                    installed.processors,
                    installed.logger_factory,
                    installed.wrapper_class,
                    installed.context_class,
                ),
                strict=True,
            )
        ):
            return _InstalledSink(installed)
        return _BoundLoggerSink(structlog.get_logger(self._name).bind())
