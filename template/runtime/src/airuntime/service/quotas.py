"""Per-key limits, checked before the model is called: a request rate (a token bucket per
key), a daily spend ceiling (what a key's calls may reserve and spend per UTC day) and the
number of requests the process serves at once. Each refusal is a 429 with Retry-After.

They are kept in this process: behind a load balancer each replica enforces them on its own
share of the traffic (divide the limits by the replica count, or share them through Redis).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from airuntime.service.errors import ServiceError, seconds_to_utc_midnight

ZERO = Decimal(0)


def _today() -> date:
    return datetime.now(UTC).date()


class KeyRateLimit:
    """A token bucket per key: `per_minute` requests a minute, bursts up to `burst`."""

    def __init__(
        self,
        per_minute: int,
        *,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(burst if burst is not None else per_minute)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def admit(self, key: str) -> None:
        """Take one request's token, or raise a 429 saying when the next one is due."""
        now = self._clock()
        tokens, at = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            wait = math.ceil((1.0 - tokens) / self.rate)
            raise ServiceError(
                429,
                "rate_limited",
                f"API key {key!r} is over its rate limit; retry after {wait} s.",
                retry_after=wait,
            )
        self._buckets[key] = (tokens - 1.0, now)


@dataclass(slots=True)
class SpendHold:
    key: str
    amount: Decimal
    day: date


class KeySpend:
    """Each key's spend per UTC day, and an optional ceiling per key.

    A call holds its worst case (the per-call budget ceiling) against the key before it runs
    and settles at its real cost after, so concurrent calls of one key cannot together pass
    the ceiling: it is checked before the call, never after.
    """

    def __init__(
        self,
        ceiling: Decimal | None,
        *,
        hold: Decimal | None,
        today: Callable[[], date] = _today,
    ) -> None:
        self.ceiling = ceiling
        self.hold_amount = hold
        self._today = today
        self._day = today()
        self.spent: dict[str, Decimal] = {}  # today, by key
        self.total: dict[str, Decimal] = {}  # since start, by key (a Prometheus counter)
        self._held: dict[str, Decimal] = {}

    def reserve(self, key: str) -> SpendHold:
        """Hold a call's worst case for `key`, or raise a 429 until the day resets."""
        self._roll()
        spent = self.spent.get(key, ZERO) + self._held.get(key, ZERO)
        amount = ZERO
        if self.ceiling is not None:
            left = self.ceiling - spent
            amount = left if self.hold_amount is None else min(self.hold_amount, left)
            if left <= ZERO or (self.hold_amount is not None and left < self.hold_amount):
                raise ServiceError(
                    429,
                    "key_spend_exceeded",
                    f"API key {key!r} has reached its daily spend ceiling (${self.ceiling}).",
                    retry_after=seconds_to_utc_midnight(),
                )
        self._held[key] = self._held.get(key, ZERO) + amount
        return SpendHold(key, amount, self._day)

    def settle(self, hold: SpendHold, cost: Decimal) -> None:
        """The call cost `cost`: release the hold, record the spend."""
        self._held[hold.key] = self._held.get(hold.key, ZERO) - hold.amount
        self.total[hold.key] = self.total.get(hold.key, ZERO) + cost
        self._roll()
        if hold.day == self._day:
            self.spent[hold.key] = self.spent.get(hold.key, ZERO) + cost

    def _roll(self) -> None:
        day = self._today()
        if day != self._day:
            self._day = day
            self.spent.clear()


class AdmissionGate:
    """At most `limit` requests served at once; one more is refused at once (429), not
    queued, so a client can go to another replica instead of waiting behind this one."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0

    def enter(self) -> None:
        if self.in_flight >= self.limit:
            raise ServiceError(
                429,
                "overloaded",
                f"this server is at its limit of {self.limit} requests at once; retry soon.",
                retry_after=1,
            )
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1
