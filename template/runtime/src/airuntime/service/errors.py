"""The service's answers on purpose: a status, a stable error type, one line a client can act
on, and a Retry-After when waiting helps. Never a stack trace or an internal path.

Light on purpose (the settings import the key parser, which raises these): the mapping of the
runtime's errors onto them is in `mapping`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# What a client is told to wait when nothing more precise is known.
DEFAULT_RETRY_AFTER_SECONDS = 1


class ServiceError(Exception):
    """An answer the service gives on purpose: `status`, `type` (stable, for clients and
    metrics), a one-line `message` and, when waiting helps, `retry_after` seconds."""

    def __init__(
        self, status: int, type_: str, message: str, *, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}

    def body(self, request_id: str | None) -> dict[str, object]:
        # `code` and `param` too: the shape of an OpenAI error object, so that the OpenAI
        # SDKs read the answers given before a route runs (a 413) on the gateway's routes.
        return {
            "error": {
                "type": self.type,
                "message": self.message,
                "request_id": request_id,
                "code": self.type,
                "param": None,
            }
        }


@dataclass(frozen=True, slots=True)
class ErrorPolicy:
    """What the mapping needs to know of the deployment: how long to tell clients to wait
    when every provider is down (the breakers' cooldown is a good value), and when a feature
    with no degraded answer is switched off (an operator turns it back on: minutes, not
    seconds)."""

    unavailable_retry_after: int = 30
    switched_off_retry_after: int = 60


def seconds_to_utc_midnight(now: datetime | None = None) -> int:
    """Seconds until the next UTC day, when a per-day ceiling resets (at least 1)."""
    moment = now if now is not None else datetime.now(UTC)
    tomorrow = (moment + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, math.ceil((tomorrow - moment).total_seconds()))
