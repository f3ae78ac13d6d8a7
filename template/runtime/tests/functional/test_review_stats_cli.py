"""`review list` and `stats` end to end, through a command line composed as a project composes
them (review_app with the queue's path, stats_command with LOG_FILE): the flagged results newest
first, and the metrics table of a run rebuilt from its JSON log."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from airuntime.cli.exits import ExitCode
from airuntime.cli.review import EXCERPT_WIDTH, item_row, review_app
from airuntime.cli.stats import stats_command
from airuntime.cli.support import set_global_options
from airuntime.errors import ConfigurationError
from airuntime.model.mock import MockLLM
from airuntime.model.mock_faults import Fault
from airuntime.observability.logs import configure_logging
from airuntime.observability.telemetry import Telemetry
from airuntime.review import ReviewItem, ReviewQueue, ReviewReason
from airuntime.testing import FakeClock, flat_prices, resilient_client
from airuntime.types import LLMRequest, LLMResponse, Message, ModelTarget, Usage

runner = CliRunner()
MOMENT = datetime(2026, 3, 14, 9, 30, 5, tzinfo=UTC)
CONFIG_ERROR = "invalid configuration: REVIEW_QUEUE_PATH must be a file"


@dataclass
class Project:
    """What a project's settings would say: REVIEW_QUEUE_PATH and LOG_FILE, or a bad setting."""

    queue: Path
    log_file: Path | None = None
    broken: bool = False
    reads: list[str] = field(default_factory=list)

    def queue_path(self) -> Path:
        self.reads.append("REVIEW_QUEUE_PATH")
        if self.broken:
            raise ConfigurationError(CONFIG_ERROR)
        return self.queue

    def log(self) -> Path | None:
        self.reads.append("LOG_FILE")
        if self.broken:
            raise ConfigurationError(CONFIG_ERROR)
        return self.log_file

    def app(self) -> typer.Typer:
        app = typer.Typer()

        @app.callback()
        def root(
            ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False
        ) -> None:
            set_global_options(ctx, provider=None, as_json=as_json)

        app.add_typer(review_app(self.queue_path))
        app.command("stats")(stats_command(self.log))
        return app

    def run(self, *arguments: str) -> tuple[int, str, str]:
        result = runner.invoke(self.app(), list(arguments))
        return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(queue=tmp_path / "var" / "review.jsonl")


def flag(
    queue: ReviewQueue,
    feature: str,
    request_id: str,
    *,
    reason: ReviewReason = "low_confidence",
    minutes: int = 0,
    text: str = "Where is the office?",
) -> None:
    queue.append(
        ReviewItem.create(
            feature=feature,
            request_id=request_id,
            reason=reason,
            confidence=0.0 if reason == "degraded" else 0.3,
            text=text,
            output={"label": "other"},
            now=MOMENT + timedelta(minutes=minutes),
        )
    )


# -- review list ----------------------------------------------------------------------------


def test_review_list_is_a_table_newest_first(project: Project) -> None:
    queue = ReviewQueue(project.queue)
    flag(queue, "classify", "req-1", text="Call me at +44 20 7946 0958 tomorrow.")
    flag(queue, "summarize", "req-2", reason="degraded", minutes=1)

    code, out, err = project.run("review", "list")

    assert (code, err) == (0, "")
    header, rule, *rows, blank, total = out.splitlines()
    assert header.split() == [
        "time",
        "(UTC)",
        "feature",
        "reason",
        "conf",
        "id",
        "request",
        "id",
        "input",
    ]
    assert rule == "-" * (len(header) + EXCERPT_WIDTH)
    assert rows[0].split()[:5] == ["2026-03-14", "09:31:05", "summarize", "degraded", "0.00"]
    items, _ = queue.items()
    assert rows[1].split()[:7] == [
        "2026-03-14",
        "09:30:05",
        "classify",
        "low_confidence",
        "0.30",
        items[0].id,
        "req-1",
    ]
    assert rows[1].endswith("Call me at [PHONE] tomorrow.")
    assert (blank, total) == ("", f"2 of 2 items waiting in {project.queue}.")


def test_limit_and_feature_choose_what_is_shown(project: Project) -> None:
    queue = ReviewQueue(project.queue)
    for number in range(3):
        flag(queue, "classify", f"c{number}", minutes=number)
    flag(queue, "summarize", "s0", minutes=9)

    code, out, _ = project.run("review", "list", "--feature", "classify", "--limit", "2")

    assert code == 0
    rows = out.splitlines()[2:-2]
    assert [row.split()[6] for row in rows] == ["c2", "c1"]
    assert out.splitlines()[-1] == f"2 of 3 items waiting in {project.queue}."


@pytest.mark.parametrize("arguments", [["--json", "review", "list"], ["review", "list", "--json"]])
def test_review_list_as_json(project: Project, arguments: list[str]) -> None:
    queue = ReviewQueue(project.queue)
    flag(queue, "classify", "old")
    flag(queue, "classify", "new", minutes=1)

    code, out, _ = project.run(*arguments, "--limit", "1")

    assert code == 0
    newest = queue.items()[0][1]
    assert json.loads(out) == [
        {
            "time": "2026-03-14T09:31:05Z",
            "feature": "classify",
            "request_id": "new",
            "model": None,
            "served_by": None,
            "reason": "low_confidence",
            "confidence": 0.3,
            "input_excerpt": "Where is the office?",
            "output": {"label": "other"},
            "id": newest.id,
            "status": "pending",
        }
    ]


def test_an_empty_queue_says_so(project: Project) -> None:
    assert project.run("review", "list") == (0, f"Nothing to review in {project.queue}.\n", "")
    assert project.run("review", "list", "--json") == (0, "[]\n", "")


@pytest.mark.parametrize(("garbage", "note"), [("x\n", "1 line"), ("x\n[]\n{}\n", "3 lines")])
def test_lines_that_are_not_items_are_skipped_with_a_note(
    project: Project, garbage: str, note: str
) -> None:
    flag(ReviewQueue(project.queue), "classify", "req-1")
    with project.queue.open("a", encoding="utf-8") as file:
        file.write(garbage)

    code, out, err = project.run("review", "list")

    assert code == 0
    assert err == f"note: skipped {note} of {project.queue} (not review items).\n"
    assert out.splitlines()[-1] == f"1 of 1 items waiting in {project.queue}."


def test_a_long_input_is_cut_to_the_excerpt_width() -> None:
    item = ReviewItem.create(
        feature="classify",
        request_id="r",
        reason="low_confidence",
        confidence=0.25,
        text="word " * 30,
        output={},
        now=MOMENT,
    )

    row = item_row(item)

    words = " ".join(["word"] * 30)
    assert item.id is not None
    assert len(item.id) == 12
    assert row == (
        f"2026-03-14 09:30:05  classify    low_confidence     0.25  {item.id}  {'r':<32}  "
        f"{words[: EXCERPT_WIDTH - 1]}…"
    )


def test_bad_configuration_stops_review_list(project: Project) -> None:
    project.broken = True

    assert project.run("review", "list") == (
        ExitCode.CONFIGURATION_ERROR,
        "",
        f"error: {CONFIG_ERROR}\n",
    )


# -- stats ----------------------------------------------------------------------------------

TARGET = ModelTarget(provider="mock", model="model-a")
ANSWER = LLMResponse(
    text="fine", model="model-a", provider="mock", usage=Usage(input_tokens=100, output_tokens=50)
)


async def logged_run(log_file: Path) -> None:
    """Two calls, the first after a server error, logged as JSON as LOG_FORMAT=json does."""
    configure_logging(level="INFO", log_format="json", log_file=log_file)
    clock = FakeClock()
    client = resilient_client(
        {"mock": MockLLM([Fault("server_error"), ANSWER, ANSWER], sleep=clock.sleep)},
        clock=clock,
        pricing=flat_prices([TARGET]),
        observer=Telemetry(),
    )
    request = LLMRequest(model="model-a", messages=(Message(role="user", content="hi"),))
    try:
        await client.run(request)
        await client.run(request)
    finally:
        configure_logging()


async def test_stats_rebuilds_the_metrics_of_a_run_from_its_log(
    project: Project, tmp_path: Path
) -> None:
    log = tmp_path / "run.jsonl"
    await logged_run(log)

    code, out, err = project.run("stats", "--log", str(log))

    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["provider/model", "prompt", "attempts"]
    row = lines[2].split()
    assert (row[0], row[1], row[2], row[3]) == ("mock/model-a", "-", "3", "1")
    assert row[-2:] == ["200/100", f"{2 * Decimal('0.0002'):.6f}"]  # 100 x $1 + 50 x $2 per M
    assert "calls 2: ok 2" in lines
    assert "cache hits 0   retries 1   budget refusals 0" in lines
    assert "errors by type: ServerError 1" in lines
    assert lines[-1] == "total cost $0.000400"
    assert project.reads == [], "--log given: LOG_FILE is not read"


async def test_stats_reads_log_file_when_no_log_is_given_and_notes_skipped_lines(
    tmp_path: Path,
) -> None:
    log = tmp_path / "run.jsonl"
    await logged_run(log)
    with log.open("a", encoding="utf-8") as file:
        file.write("Traceback (most recent call last):\n[1]\n")
    project = Project(queue=tmp_path / "q.jsonl", log_file=log)

    code, out, err = project.run("stats")

    assert code == 0
    assert "calls 2: ok 2" in out.splitlines()
    assert err == f"(2 lines of {log} were not JSON and were skipped)\n"
    assert project.reads == ["LOG_FILE"]


def test_stats_of_an_empty_log_says_nothing_was_recorded(project: Project, tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("", encoding="utf-8")

    code, out, _ = project.run("stats", "--log", str(tmp_path / "empty.jsonl"))

    assert code == 0
    assert "(no model attempts recorded)" in out.splitlines()
    assert "calls 0: " in out.splitlines()


def test_stats_without_a_log_says_how_to_make_one(project: Project) -> None:
    assert project.run("stats") == (
        ExitCode.BAD_INPUT,
        "",
        "error: no log to read: pass --log FILE, or run with LOG_FORMAT=json and LOG_FILE=FILE "
        "first.\n",
    )


def test_stats_of_a_missing_log_is_bad_input(project: Project, tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"

    assert project.run("stats", "--log", str(missing)) == (
        ExitCode.BAD_INPUT,
        "",
        f"error: cannot read the log {missing}: No such file or directory.\n",
    )


def test_bad_configuration_stops_stats_without_a_log(project: Project, tmp_path: Path) -> None:
    project.broken = True
    (tmp_path / "run.jsonl").write_text("", encoding="utf-8")

    broken = project.run("stats")
    given = project.run("stats", "--log", str(tmp_path / "run.jsonl"))

    assert broken == (ExitCode.CONFIGURATION_ERROR, "", f"error: {CONFIG_ERROR}\n")
    assert given[0] == 0
