"""The human review queue: results a person should look at before anyone relies on them."""

from airuntime.review.queue import ReviewItem, ReviewQueue, ReviewReason

__all__ = ["ReviewItem", "ReviewQueue", "ReviewReason"]
