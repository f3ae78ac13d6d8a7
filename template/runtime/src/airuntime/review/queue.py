"""The review queue: an append-only JSON Lines file, one flagged result per line.

A result is flagged when its confidence is below REVIEW_CONFIDENCE_THRESHOLD or when it is a
degraded (non-AI) answer; an agent's call of a tool that `requires_approval` waits here too
(reason `approval_required`) until a person approves or rejects it. Each line holds the time,
the feature, the request id (to find the call's logs and spans; an agent's run id), the model
the answer is for and who really served it (its provider, or "mock" standing in; both null for
a degraded answer or an approval), an excerpt of the input and the output, both with personal
data redacted, and the reason. A decision is a line of its own (`ReviewDecision`), so the file
stays append-only: reading applies the decisions to their items. Appending is one `write` of
one line on a file opened for append, so concurrent writers (several processes) do not
interleave lines.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from airuntime.redaction import redact

ReviewReason = Literal["low_confidence", "degraded", "approval_required"]
Decision = Literal["approved", "rejected"]
ReviewStatus = Literal["pending", "approved", "rejected"]
EXCERPT_CHARS = 200


def new_item_id() -> str:
    """A short random id a person can type: `review approve 3f9c2a71d0be`."""
    return secrets.token_hex(6)


class ReviewError(ValueError):
    """A decision that cannot be recorded; the message says why and what to do."""


class ReviewItem(BaseModel):
    """One flagged result, as stored on one line of the queue."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    time: datetime
    feature: str
    request_id: str
    # Absent from the lines an older runtime wrote: read as unknown.
    model: str | None = None
    served_by: str | None = None
    reason: ReviewReason
    # None for an approval: no model judged anything.
    confidence: float | None = Field(ge=0, le=1)
    input_excerpt: str
    output: dict[str, Any]
    # Items written before ids existed have none (and need no decision).
    id: str | None = None
    # Not stored with the item: what the decision lines after it say.
    status: ReviewStatus = "pending"

    @classmethod
    def create(
        cls,
        *,
        feature: str,
        request_id: str,
        reason: ReviewReason,
        confidence: float | None,
        text: str,
        output: Mapping[str, Any],
        model: str | None = None,
        served_by: str | None = None,
        now: datetime | None = None,
    ) -> ReviewItem:
        """An item with the input cut to an excerpt and personal data redacted everywhere."""
        excerpt = " ".join(text.split())
        if len(excerpt) > EXCERPT_CHARS:
            excerpt = excerpt[: EXCERPT_CHARS - 1] + "…"
        moment = now if now is not None else datetime.now(UTC)
        return cls(
            time=moment.replace(microsecond=0),
            feature=feature,
            request_id=request_id,
            model=model,
            served_by=served_by,
            reason=reason,
            confidence=confidence,
            input_excerpt=redact(excerpt),
            output=_redacted(dict(output)),
            id=new_item_id(),
        )


class ReviewDecision(BaseModel):
    """A person's decision on one item, stored as a line of its own after the item."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    time: datetime
    item_id: str
    decision: Decision
    note: str = ""


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    return value


class ReviewQueue:
    """Append flagged results to a JSON Lines file and read them back."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, item: ReviewItem) -> None:
        self._write(item.model_dump_json(exclude={"status"}))

    def find(self, item_id: str) -> ReviewItem | None:
        """The item with this id, with its current status."""
        items, _ = self.items()
        return next((item for item in items if item.id == item_id), None)

    def decide(
        self, item_id: str, decision: Decision, *, note: str = "", now: datetime | None = None
    ) -> ReviewItem:
        """Record a decision on a pending approval; ReviewError (one line) when there is none
        by that id or it was decided already. Returns the item as decided."""
        item = self.find(item_id)
        if item is None:
            raise ReviewError(
                f"no review item {item_id!r} in {self.path}: `review list` shows the ids."
            )
        if item.reason != "approval_required":
            raise ReviewError(
                f"review item {item_id} ({item.reason.replace('_', ' ')}) asks for no decision: "
                "only approvals (approval required) can be approved or rejected."
            )
        if item.status != "pending":
            raise ReviewError(f"review item {item_id} was {item.status} already.")
        moment = (now if now is not None else datetime.now(UTC)).replace(microsecond=0)
        record = ReviewDecision(time=moment, item_id=item_id, decision=decision, note=note)
        self._write(record.model_dump_json())
        return item.model_copy(update={"status": decision})

    def _write(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = text + "\n"
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, line.encode("utf-8"))
        finally:
            os.close(descriptor)

    def items(self) -> tuple[list[ReviewItem], int]:
        """Every item, oldest first, and the number of lines that were not items."""
        items: list[ReviewItem] = []
        decisions: dict[str, Decision] = {}
        skipped = 0
        for line in self._lines():
            try:
                items.append(ReviewItem.model_validate_json(line))
                continue
            except ValueError:  # pydantic's ValidationError: a line that is not an item
                pass
            try:
                decision = ReviewDecision.model_validate_json(line)
            except ValueError:
                skipped += 1
                continue
            decisions.setdefault(decision.item_id, decision.decision)  # the first one stands
        decided = [
            item.model_copy(update={"status": decisions[item.id]})
            if item.id is not None and item.id in decisions
            else item
            for item in items
        ]
        return decided, skipped

    def _lines(self) -> Iterator[str]:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as lines:
            yield from (line for line in lines if line.strip())
