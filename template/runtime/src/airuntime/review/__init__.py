"""The human review queue: results a person should look at before anyone relies on them, and
agents' tool calls waiting for a person's approval."""

from airuntime.review.queue import (
    Decision,
    ReviewDecision,
    ReviewError,
    ReviewItem,
    ReviewQueue,
    ReviewReason,
    ReviewStatus,
)

__all__ = [
    "Decision",
    "ReviewDecision",
    "ReviewError",
    "ReviewItem",
    "ReviewQueue",
    "ReviewReason",
    "ReviewStatus",
]
