"""The model stack's event log writes lines that parse to exactly what structlog's would, under
the configuration `configure_logging` installs, and goes through structlog itself under any
other."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import logging
import re
import uuid
from collections import namedtuple
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

TIMESTAMP = re.compile(r'"timestamp": ?"[^"]+"')


def parsed(line: str) -> Any:
    """A JSON line as data, NaN and the infinities as names (so that equal lines compare
    equal: NaN is not equal to itself)."""
    return json.loads(line, parse_constant=lambda name: f"<{name}>")


def events() -> list[tuple[int, str, dict[str, Any]]]:
    """Events with every kind of value a field can hold, and some it should not."""
    return [
        (
            logging.INFO,
            "llm.attempt",
            {  # as the model stack's are: orjson writes it
                "request_id": "0ece6199c0c640cbb0099f35ce964e07",
                "prompt": "classify@1.0.0",
                "attempt": 1,
                "latency_ms": 0.123,
                "input_tokens": 2**63,
                "cost_usd": "0.00006375",
                "error_type": None,
                "flag": True,
                "text": 'quotes " and \\ and\nnew lines, a tab\t and \x00',
            },
        ),
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
def test_lines_parse_as_the_ones_structlog_writes(tmp_path: Path, level: Any) -> None:
    ours, theirs = tmp_path / "ours.log", tmp_path / "theirs.log"
    log = EventLog("airuntime.llm")

    configure_logging(level=level, log_format="json", log_file=ours)
    for event_level, name, fields in events():
        sink = log.at(event_level)
        if sink is not None:
            sink.emit(event_level, name, dict(fields))
    configure_logging(level=level, log_format="json", log_file=theirs)
    structlog.get_config()["processors"][-1] = structlog.processors.JSONRenderer()  # stock
    logger = structlog.get_logger("airuntime.llm").bind()
    for event_level, name, fields in events():
        getattr(logger, logging.getLevelName(event_level).lower())(name, **fields)
    reset_logging()

    written = ours.read_text(encoding="utf-8").splitlines()
    expected = theirs.read_text(encoding="utf-8").splitlines()
    shown = [index for index, event in enumerate(events()) if event[0] >= getattr(logging, level)]
    assert len(written) == len(expected) == len(shown) == (4 if level == "INFO" else 2)
    assert [parsed(line) | {"timestamp": "-"} for line in written] == [
        parsed(line) | {"timestamp": "-"} for line in expected
    ]
    for index, line, their_line in zip(shown, written, expected, strict=True):
        if index in (1, 2):  # values orjson writes its own way: the standard library's line
            assert TIMESTAMP.sub("", line) == TIMESTAMP.sub("", their_line)
        else:  # the model stack's kind of event: orjson's line
            assert TIMESTAMP.sub("", line) != TIMESTAMP.sub("", their_line)
    assert all(TIMESTAMP.search(line) and line.isascii() for line in written)


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


class Colour(enum.Enum):
    RED = 1


class Size(enum.IntEnum):
    BIG = 2


class Name(enum.StrEnum):
    ADA = "ada"


class Text(str):
    pass


@dataclasses.dataclass
class Point:
    x: int


Pair = namedtuple("Pair", "a b")

# Values orjson writes its own way (or refuses) where the standard library calls `default`, or
# writes something else: each in an otherwise plain event.
NOT_PLAIN = [
    float("nan"),
    float("inf"),
    -float("inf"),
    uuid.UUID(int=1),
    Colour.RED,
    Size.BIG,
    Name.ADA,
    Text("text"),
    2**64,
    -(2**63) - 1,
    "\ud800",  # a lone surrogate
    "é",
    "☃ \U0001f600",
    dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
    dt.date(2026, 1, 2),
    Point(1),
    Pair(1, 2),
    Decimal("1.5"),
    b"bytes",
    [1, "x"],
    {"nested": True},
    ("x", 1),
]
PLAIN_EVENT: dict[str, Any] = {
    "event": "llm.attempt",
    "request_id": "9f8e",
    "attempt": 1,
    "latency_ms": 0.125,
    "tiny": 1e-7,
    "large": 1e16,
    "negative_zero": -0.0,
    "most": 2**64 - 1,
    "least": -(2**63),
    "error_type": None,
    "ok": True,
    "off": False,
    "text": 'quotes " and \\, / and \n, \r, \t, \x00, \x1f, \x7f',
}


@pytest.mark.parametrize("value", NOT_PLAIN)
def test_a_value_orjson_would_write_otherwise_is_the_standard_librarys(value: object) -> None:
    event = {**PLAIN_EVENT, "odd": value}
    ours = structlog.processors.JSONRenderer(serializer=dumps_json)(None, "info", dict(event))
    theirs = structlog.processors.JSONRenderer()(None, "info", dict(event))

    assert ours == theirs
    assert isinstance(ours, str)
    assert ours.isascii()


def test_a_plain_event_parses_as_structlogs_line() -> None:
    ours = structlog.processors.JSONRenderer(serializer=dumps_json)(None, "info", PLAIN_EVENT)
    theirs = structlog.processors.JSONRenderer()(None, "info", PLAIN_EVENT)

    assert isinstance(ours, str)
    assert isinstance(theirs, str)
    assert ours != theirs  # orjson's spacing: this is the quick path
    assert ours.isascii()
    assert parsed(ours) == parsed(theirs) == PLAIN_EVENT
    assert list(parsed(ours)) == list(PLAIN_EVENT)  # and the fields in the order given


def test_keys_that_are_not_strings_are_the_standard_librarys() -> None:
    event = {"a": "x", 1: "y", None: "z", 2.5: "w", False: "v"}

    assert dumps_json(event, default=repr) == json.dumps(event, default=repr)


@pytest.mark.parametrize(
    "value", [{"a": 1, "b": [1.5, None, True]}, "é", float("inf"), [Decimal(1)], {1: "x"}]
)
def test_dumps_json_of_anything_else_is_json_dumps(value: object) -> None:
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
