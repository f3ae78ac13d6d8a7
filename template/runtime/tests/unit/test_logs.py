"""The model stack's event log writes exactly the lines structlog would, under the configuration
`configure_logging` installs, and goes through structlog itself under any other."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import structlog

from airuntime.observability.logs import (
    EventLog,
    UtcTimeStamper,
    configure_logging,
    dumps_json,
    reset_logging,
)

TIMESTAMP = re.compile(r'"timestamp": "[^"]+"')


def events() -> list[tuple[int, str, dict[str, Any]]]:
    """Events with every kind of value a field can hold, and some it should not."""
    return [
        (
            logging.INFO,
            "llm.attempt",
            {
                "request_id": "9f8e",
                "prompt": None,
                "attempt": 1,
                "latency_ms": 0.125,
                "huge": 1e300 * 10,  # inf: json writes Infinity
                "ratio": float("nan"),
                "flag": True,
                "off": False,
                "text": 'quotes " and \\ and\nnew lines, é, ☃, \U0001f600',
                "cost_usd": "0.000123",
            },
        ),
        (
            logging.WARNING,
            "llm.validation_failed",
            {
                "errors": ["label: Field required", "(root): nope"],
                "nested": {"a": [1, 2.5, None], "b": {"c": "d"}},
                "pair": ("x", 1),
                "decimal": Decimal("1.5"),  # not JSON: the renderer's fallback (repr)
                "level": "overwritten by add_log_level",
            },
        ),
        (logging.ERROR, "llm.call", {}),
    ]


@pytest.fixture
def contextvars_bound() -> Iterator[None]:
    structlog.contextvars.bind_contextvars(user="ada", attempt=99)  # attempt: already a field
    yield
    structlog.contextvars.clear_contextvars()


@pytest.mark.usefixtures("contextvars_bound")
@pytest.mark.parametrize("level", ["INFO", "WARNING"])
def test_lines_are_the_ones_structlog_writes(tmp_path: Path, level: Any) -> None:
    ours, theirs = tmp_path / "ours.log", tmp_path / "theirs.log"
    log = EventLog("airuntime.llm")

    configure_logging(level=level, log_format="json", log_file=ours)
    for event_level, name, fields in events():
        sink = log.at(event_level)
        if sink is not None:
            sink.emit(event_level, name, dict(fields))
    configure_logging(level=level, log_format="json", log_file=theirs)
    logger = structlog.get_logger("airuntime.llm").bind()
    for event_level, name, fields in events():
        getattr(logger, logging.getLevelName(event_level).lower())(name, **fields)
    reset_logging()

    written = ours.read_text(encoding="utf-8").splitlines()
    expected = theirs.read_text(encoding="utf-8").splitlines()
    assert len(written) == (3 if level == "INFO" else 2)
    assert [TIMESTAMP.sub("", line) for line in written] == [
        TIMESTAMP.sub("", line) for line in expected
    ]
    assert all(TIMESTAMP.search(line) for line in written)


def test_a_filtered_level_gives_no_sink(tmp_path: Path) -> None:
    configure_logging(level="WARNING", log_format="json", log_file=tmp_path / "x.log")
    log = EventLog("airuntime.llm")

    assert log.at(logging.INFO) is None
    assert log.at(logging.WARNING) is not None


def test_any_other_configuration_goes_through_structlog(tmp_path: Path) -> None:
    configure_logging(level="INFO", log_format="json", log_file=tmp_path / "x.log")
    log = EventLog("airuntime.llm")
    log.at(logging.INFO)  # assembled for configure_logging's configuration

    with structlog.testing.capture_logs() as captured:
        sink = log.at(logging.INFO)
        assert sink is not None
        sink.emit(logging.INFO, "llm.call", {"outcome": "ok"})

    assert captured == [{"outcome": "ok", "event": "llm.call", "log_level": "info"}]
    assert (tmp_path / "x.log").read_text() == ""


def test_a_processor_can_drop_an_event(tmp_path: Path) -> None:
    log_file = tmp_path / "x.log"
    configure_logging(level="INFO", log_format="json", log_file=log_file)

    def drop(_logger: object, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        if event_dict.get("drop"):
            raise structlog.DropEvent
        return event_dict

    structlog.get_config()["processors"].insert(0, drop)  # changed in place: still ours
    sink = EventLog("airuntime.llm").at(logging.INFO)
    assert sink is not None
    sink.emit(logging.INFO, "llm.call", {"drop": True})
    sink.emit(logging.INFO, "llm.call", {"drop": False})

    (line,) = log_file.read_text().splitlines()
    assert json.loads(line)["drop"] is False


@pytest.mark.parametrize(
    "value", [{"a": 1, "b": [1.5, None, True]}, "é", float("inf"), [Decimal(1)], {1: "x"}]
)
def test_dumps_json_is_json_dumps(value: object) -> None:
    assert dumps_json(value, default=repr) == json.dumps(value, default=repr)
    assert dumps_json(value, default=str) == json.dumps(value, default=str)


@pytest.mark.parametrize(
    "now_ns",
    [
        0,
        1_767_225_600_000_000_000,  # 2026-01-01T00:00:00Z: no microseconds, none shown
        1_767_225_599_999_999_999,  # the last microsecond of 2025, floored
        1_767_225_600_000_001_000,
        1_700_000_000_123_456_789,
    ],
)
def test_the_timestamp_is_the_one_structlog_writes(now_ns: int) -> None:
    expected = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=now_ns // 1000)
    stamper = UtcTimeStamper()

    assert stamper.text(now_ns) == expected.isoformat().replace("+00:00", "Z")
    assert stamper.text(now_ns + 1000) == (
        expected + dt.timedelta(microseconds=1)
    ).isoformat().replace("+00:00", "Z")  # the second's text, reused


def test_a_live_timestamp_reads_as_the_time_now() -> None:
    before = dt.datetime.now(dt.UTC)
    stamped = UtcTimeStamper()(None, "info", {})["timestamp"]
    after = dt.datetime.now(dt.UTC)
    theirs = structlog.processors.TimeStamper(fmt="iso", utc=True)(None, "info", {})["timestamp"]

    assert before <= dt.datetime.fromisoformat(stamped) <= after
    assert stamped.endswith("Z")
    assert len(stamped) in (len(theirs), len(theirs) - 7, len(theirs) + 7)  # .ffffff or none
