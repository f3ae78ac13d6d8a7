"""The storage interfaces of the resilient layer's state.

The budget's day ledger, the breakers, the rate limits and the response cache each keep state
that one process can hold alone (in memory and SQLite: the local backends) or several
instances can share (on Redis: `airuntime.resilience.shared`). The parts depend only on these
small interfaces (the response store's is `cache.ResponseStore`, beside the answers it
holds), so the backend is chosen once, in assembly.

Local backends are synchronous (an SQLite statement or a dict), shared ones asynchronous (a
network round trip); each interface says which it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RedisConfig:
    """Where the shared state lives (REDIS_URL) and how long to wait for it. The backend
    itself is `airuntime.resilience.shared` (the `redis` extra)."""

    url: str
    key_prefix: str = "airuntime:"
    # A loopback or same-zone Redis answers in well under a millisecond; waiting longer than
    # this only delays the fallback.
    socket_timeout_seconds: float = 0.5
    connect_timeout_seconds: float = 1.0
    # Lost mid-run: False, the budget refuses calls (fails closed); True, it falls back to the
    # instance's local ceilings with a warning.
    budget_fallback_local: bool = False
    # How long a breaker's "closed" answer from Redis is kept before asking again (an opening
    # anywhere drops it at once, through pub/sub): this bounds how stale it can be if that
    # message were lost. 0: ask before every attempt.
    breaker_closed_cache_seconds: float = 0.005


class SharedStateUnavailableError(Exception):
    """The shared state store could not be reached (or answered with an error)."""


class LocalLedger(Protocol):
    """A day ledger this process writes synchronously (SQLite).

    Each instance is one lease holder: `claim` adds to its lease, `move` turns part of its
    lease into spending (and renews it), negative `add`s give lease back.
    """

    lease_seconds: float

    def today(self) -> date: ...

    def claim(self, needed: Decimal, wanted: Decimal, limit: Decimal, day: date) -> Decimal: ...

    def add(self, amount: Decimal, day: date | None = None) -> None: ...

    def move(self, day: date, spent: Decimal, returned: Decimal = ...) -> bool: ...

    def spent_today(self) -> Decimal: ...

    def close(self) -> None: ...


class SharedLedger(Protocol):
    """A day ledger shared by several instances over the network (Redis): asynchronous."""

    lease_seconds: float
    where: str  # where it lives, for error messages (a URL without its password)

    def today(self) -> date: ...

    async def aclaim(self, needed: Decimal, wanted: Decimal, limit: Decimal, day: date) -> Decimal:
        """Take `wanted` (or what is left, if at least `needed`) into this holder's lease."""
        ...

    async def aadd(self, amount: Decimal, day: date) -> None:
        """Record spending beyond any lease (a cost above its reservation, no ceiling)."""
        ...

    async def amove(self, day: date, spent: Decimal, returned: Decimal = ...) -> bool:
        """Turn `spent` of this holder's lease into spending and give `returned` back; renews
        the lease. False when the lease had expired (and was recovered by the others)."""
        ...

    async def acommitted(self, day: date) -> Decimal:
        """Committed on `day` by every holder: spent plus the live leases."""
        ...

    async def aclose(self) -> None: ...
