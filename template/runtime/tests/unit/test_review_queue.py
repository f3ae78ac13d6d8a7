"""The review queue: one redacted line per flagged result, read back newest last."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from airuntime.review import ReviewError, ReviewItem, ReviewQueue, ReviewReason

MOMENT = datetime(2026, 3, 14, 9, 30, 5, 123456, tzinfo=UTC)


def item(
    *,
    request_id: str = "req-1",
    reason: ReviewReason = "low_confidence",
    confidence: float = 0.3,
    text: str = "Refund   please,\nmail me at jane.roe@example.com",
) -> ReviewItem:
    return ReviewItem.create(
        feature="classify",
        request_id=request_id,
        reason=reason,
        confidence=confidence,
        text=text,
        output={"label": "billing", "note": "call +44 20 7946 0958", "confidence": confidence},
        now=MOMENT,
    )


def test_an_item_redacts_personal_data_in_the_input_and_the_output() -> None:
    created = item()

    assert created.input_excerpt == "Refund please, mail me at [EMAIL]"
    assert created.output == {"label": "billing", "note": "call [PHONE]", "confidence": 0.3}
    assert created.time == datetime(2026, 3, 14, 9, 30, 5, tzinfo=UTC)


def test_the_excerpt_is_cut_to_200_characters() -> None:
    created = item(text="word " * 100)

    assert len(created.input_excerpt) == 200
    assert created.input_excerpt.endswith("…")


def test_items_are_appended_one_line_each_and_read_back(tmp_path: Path) -> None:
    queue = ReviewQueue(tmp_path / "var" / "review.jsonl")

    queue.append(item(request_id="first"))
    queue.append(item(request_id="second", reason="degraded", confidence=0.0))

    lines = (tmp_path / "var" / "review.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == ["first", "second"]
    items, skipped = queue.items()
    assert [(each.request_id, each.reason) for each in items] == [
        ("first", "low_confidence"),
        ("second", "degraded"),
    ]
    assert skipped == 0


def test_lines_that_are_not_items_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "review.jsonl"
    queue = ReviewQueue(path)
    queue.append(item())
    with path.open("a", encoding="utf-8") as file:
        file.write("not json\n\n[1, 2]\n")
        file.write('{"feature": "x"}\n')

    items, skipped = queue.items()

    assert len(items) == 1
    assert skipped == 3


def test_a_missing_queue_is_empty(tmp_path: Path) -> None:
    assert ReviewQueue(tmp_path / "none.jsonl").items() == ([], 0)


def test_an_item_records_who_answered_and_older_lines_without_it_still_read(
    tmp_path: Path,
) -> None:
    path = tmp_path / "review.jsonl"
    queue = ReviewQueue(path)
    stand_in = ReviewItem.create(
        feature="summarize",
        request_id="req-2",
        model="openai/gpt-5-mini",
        served_by="mock",
        reason="low_confidence",
        confidence=0.4,
        text="text",
        output={},
        now=MOMENT,
    )
    queue.append(stand_in)
    older = item().model_dump(mode="json", exclude={"model", "served_by"})  # a 0.2.0-dev line
    with path.open("a", encoding="utf-8") as lines:
        lines.write(json.dumps(older) + "\n")

    (first, second), skipped = queue.items()

    assert skipped == 0
    assert (first.model, first.served_by) == ("openai/gpt-5-mini", "mock")
    assert json.loads(path.read_text(encoding="utf-8").splitlines()[0])["served_by"] == "mock"
    assert (second.request_id, second.model, second.served_by) == ("req-1", None, None)


# -- approvals: decisions as lines of their own --------------------------------------------


def approval(queue: ReviewQueue) -> ReviewItem:
    item = ReviewItem.create(
        feature="agent:triage",
        request_id="run-1",
        reason="approval_required",
        confidence=None,
        text='refund {"order_id":"A1"}',
        output={"tool": "refund"},
    )
    queue.append(item)
    return item


def test_a_decision_is_appended_and_applied_when_read(tmp_path: Path) -> None:
    queue = ReviewQueue(tmp_path / "review.jsonl")
    item = approval(queue)
    assert item.id is not None

    decided = queue.decide(item.id, "approved", note="ok by Ada")

    assert decided.status == "approved"
    items, skipped = queue.items()
    assert ([entry.status for entry in items], skipped) == (["approved"], 0)
    lines = (tmp_path / "review.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    assert '"status"' not in lines[0]  # the status is the decisions', never stored with the item
    assert '"decision":"approved"' in lines[1]
    assert '"note":"ok by Ada"' in lines[1]


def test_decisions_that_cannot_be_made_are_one_line_errors(tmp_path: Path) -> None:
    queue = ReviewQueue(tmp_path / "review.jsonl")
    item = approval(queue)
    flagged = ReviewItem.create(
        feature="classify",
        request_id="r",
        reason="low_confidence",
        confidence=0.2,
        text="x",
        output={},
    )
    queue.append(flagged)
    assert item.id is not None
    assert flagged.id is not None
    queue.decide(item.id, "rejected")

    with pytest.raises(ReviewError, match="was rejected already"):
        queue.decide(item.id, "approved")
    with pytest.raises(ReviewError, match="asks for no decision: only approvals"):
        queue.decide(flagged.id, "approved")
    with pytest.raises(ReviewError, match="no review item 'nope'"):
        queue.decide("nope", "approved")
    assert queue.find(item.id) is not None
    assert queue.find("nope") is None


def test_items_written_before_ids_existed_still_read(tmp_path: Path) -> None:
    path = tmp_path / "review.jsonl"
    path.write_text(
        '{"time": "2026-03-14T09:30:05Z", "feature": "classify", "request_id": "r", '
        '"reason": "degraded", "confidence": 0.0, "input_excerpt": "x", "output": {}}\n',
        encoding="utf-8",
    )

    (item,), skipped = ReviewQueue(path).items()

    assert (item.id, item.status, skipped) == (None, "pending", 0)
