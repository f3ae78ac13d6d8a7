"""The review queue: an append-only JSON Lines file, one flagged result per line.

A result is flagged when its confidence is below REVIEW_CONFIDENCE_THRESHOLD or when it is a
degraded (non-AI) answer. Each line holds the time, the feature, the request id (to find the
call's logs and spans), the model the answer is for and who really served it (its provider, or
"mock" standing in; both null for a degraded answer), an excerpt of the input and the output,
both with personal data redacted, and the reason. Appending is one `write` of one line on a
file opened for append, so concurrent writers (several processes) do not interleave lines.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from airuntime.redaction import redact

ReviewReason = Literal["low_confidence", "degraded"]
EXCERPT_CHARS = 200


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
    confidence: float = Field(ge=0, le=1)
    input_excerpt: str
    output: dict[str, Any]

    @classmethod
    def create(
        cls,
        *,
        feature: str,
        request_id: str,
        reason: ReviewReason,
        confidence: float,
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
        )


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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = item.model_dump_json() + "\n"
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, line.encode("utf-8"))
        finally:
            os.close(descriptor)

    def items(self) -> tuple[list[ReviewItem], int]:
        """Every item, oldest first, and the number of lines that were not items."""
        items: list[ReviewItem] = []
        skipped = 0
        for line in self._lines():
            try:
                items.append(ReviewItem.model_validate_json(line))
            except ValueError:  # pydantic's ValidationError: a line that is not an item
                skipped += 1
        return items, skipped

    def _lines(self) -> Iterator[str]:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as lines:
            yield from (line for line in lines if line.strip())
