"""Spending ceilings that stop a call before it is sent, never after.

Before each attempt the resilient client reserves the attempt's worst-case cost; the
reservation is refused (BudgetExceeded) when it would take spending past the per-call, the
per-process or the per-day ceiling. After the attempt the reservation is settled at the real
cost, which is never more than the reservation. Because every attempt (retries, fallbacks and
repair re-asks included) goes through `reserve`, no sequence of faults can spend past a ceiling.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from airuntime.frozen import quick_init

ZERO = Decimal(0)
# The share of the per-day ceiling a process claims from the ledger at a time.
DAILY_LEASE_SHARE = Decimal("0.01")


def _utc_today() -> date:
    return datetime.now(UTC).date()


class BudgetExceeded(Exception):  # noqa: N818 - the name is what callers read in logs
    """A call was refused before sending because it could spend past a ceiling."""

    def __init__(self, ceiling: str, limit: Decimal, committed: Decimal, needed: Decimal) -> None:
        self.ceiling = ceiling
        self.limit = limit
        self.committed = committed
        self.needed = needed
        left = max(ZERO, limit - committed)
        super().__init__(
            f"budget exceeded: this attempt could cost up to ${needed:.6f} but only "
            f"${left:.6f} is left of the {ceiling} ceiling (${limit}); the call was not sent. "
            f"Raise BUDGET_{ceiling.upper().replace('-', '_')}_USD or wait for the budget to reset."
        )


class DailyLedger:
    """Today's committed spending, shared by every process using the same SQLite file.

    A cron job that restarts every minute gets a fresh per-process budget each time; the
    ledger is what stops it from spending all weekend. Its row for a day holds what was spent
    plus the leases running processes hold (see `Budget`), so the processes together can never
    commit more than the ceiling.
    """

    def __init__(self, path: Path, *, today: Callable[[], date] = _utc_today) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.today = today
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS spend (day TEXT PRIMARY KEY, usd TEXT)")

    def spent_today(self) -> Decimal:
        """Committed today: spent, plus the unused leases of running processes."""
        return self._committed(self.today().isoformat())

    def add(self, amount: Decimal, day: date | None = None) -> None:
        """Record spending (or, negative, give back a lease) on `day`, today by default."""
        if amount:
            self._transaction((day or self.today()).isoformat(), lambda _committed: amount)

    def claim(self, needed: Decimal, wanted: Decimal, limit: Decimal, day: date) -> Decimal:
        """Take `wanted` of what is left of `limit` on `day`, or all that is left when less,
        in one transaction. Returns what was granted: nothing when even `needed` does not fit
        (the caller raises), so a refused claim commits nothing."""
        granted = ZERO

        def take(committed: Decimal) -> Decimal:
            nonlocal granted
            left = limit - committed
            granted = min(wanted, left) if needed <= left else ZERO
            return granted

        self._transaction(day.isoformat(), take)
        return granted

    def close(self) -> None:
        self._db.close()

    def _committed(self, day: str) -> Decimal:
        row = self._db.execute("SELECT usd FROM spend WHERE day = ?", (day,)).fetchone()
        return Decimal(row[0]) if row else ZERO

    def _transaction(self, day: str, change: Callable[[Decimal], Decimal]) -> None:
        # BEGIN IMMEDIATE takes the write lock first, so concurrent processes never lose an add.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            committed = self._committed(day)
            delta = change(committed)
            if delta:
                self._db.execute(
                    "INSERT INTO spend (day, usd) VALUES (?, ?) "
                    "ON CONFLICT(day) DO UPDATE SET usd = excluded.usd",
                    (day, str(max(ZERO, committed + delta))),
                )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


@dataclass(slots=True)
class CallBudget:
    """What one logical call (all its attempts, fallbacks and repairs) has spent.

    `ceiling` bounds this call alone, besides the per-call one: an agent run (every model
    call of it is one logical call) sets its per-run budget here.
    """

    spent: Decimal = ZERO
    reserved: Decimal = ZERO
    ceiling: Decimal | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class Reservation:
    amount: Decimal
    call: CallBudget = field(compare=False)
    day: date | None = field(default=None, compare=False)  # the day of the lease it came from


class Budget:
    """Per-call, per-process and per-day ceilings in US dollars; None means no ceiling.

    The per-day ceiling is shared through the ledger without touching it on every call: the
    budget claims a lease (by default 1% of the ceiling, or what one attempt needs if more) in
    one transaction, takes each reservation from it in memory, puts back what a settled attempt
    did not spend, and claims again only when the lease runs short. The ledger counts leases as
    spent until they come back (on `close`, or when the day changes), so every process together
    stays within the ceiling, as strictly as writing each call would; a process that dies without
    closing leaves at most one lease unused until the next day.
    """

    def __init__(
        self,
        *,
        per_call: Decimal | None = None,
        per_process: Decimal | None = None,
        per_day: Decimal | None = None,
        ledger: DailyLedger | None = None,
        daily_lease: Decimal | None = None,
    ) -> None:
        if per_day is not None and ledger is None:
            raise ValueError("a per-day ceiling needs a ledger to remember today's spending")
        self.per_call = per_call
        self.per_process = per_process
        self.per_day = per_day
        self._ledger = ledger
        self.spent = ZERO
        self.reserved = ZERO
        if daily_lease is None:
            daily_lease = per_day * DAILY_LEASE_SHARE if per_day is not None else ZERO
        self.daily_lease = daily_lease
        self._lease_day: date | None = None
        self._lease_left = ZERO  # claimed from the ledger and not yet reserved

    def reserve(self, amount: Decimal, call: CallBudget) -> Reservation:
        """Hold `amount` for one attempt, or raise BudgetExceeded without holding anything."""
        if self.per_call is not None:
            self._check("per-call", self.per_call, call.spent + call.reserved, amount)
        if call.ceiling is not None:
            self._check("per-run", call.ceiling, call.spent + call.reserved, amount)
        if self.per_process is not None:
            self._check("per-process", self.per_process, self.spent + self.reserved, amount)
        day = None
        if self.per_day is not None and self._ledger is not None:
            day = self._take_from_lease(self.per_day, self._ledger, amount)
        self.reserved += amount
        call.reserved += amount
        return Reservation(amount, call, day)

    def settle(self, reservation: Reservation, actual: Decimal) -> None:
        """Turn a reservation into spending at the real cost.

        The real cost is recorded even in the (unexpected) case that it exceeds the
        reservation: the books must match the bill.
        """
        self._release(reservation)
        self.spent += actual
        reservation.call.spent += actual
        if reservation.day is not None:
            self._return_to_lease(reservation, actual)
        elif self._ledger is not None:  # a ledger that only keeps count, with no ceiling
            self._ledger.add(actual)

    def release(self, reservation: Reservation) -> None:
        """The attempt was not billed (refused before processing): free the reservation."""
        self._release(reservation)
        if reservation.day is not None:
            self._return_to_lease(reservation, ZERO)

    def close(self) -> None:
        """Give the unused lease back to the ledger and close its database, if any."""
        if self._ledger is not None:
            self._give_back_lease(self._ledger)
            self._ledger.close()

    def _release(self, reservation: Reservation) -> None:
        self.reserved -= reservation.amount
        reservation.call.reserved -= reservation.amount

    def _take_from_lease(self, limit: Decimal, ledger: DailyLedger, amount: Decimal) -> date:
        day = ledger.today()
        if day != self._lease_day:
            self._give_back_lease(ledger)
            self._lease_day = day
        if amount > self._lease_left:
            needed = amount - self._lease_left
            granted = ledger.claim(needed, max(needed, self.daily_lease), limit, day)
            if granted < needed:
                # Committed by every process, less what this one holds and could still use.
                committed = ledger.spent_today() - self._lease_left
                raise BudgetExceeded("per-day", limit, committed, amount)
            self._lease_left += granted
        self._lease_left -= amount
        return day

    def _return_to_lease(self, reservation: Reservation, actual: Decimal) -> None:
        unused = reservation.amount - actual
        if reservation.day == self._lease_day:
            self._lease_left += unused
            if self._lease_left < 0 and self._ledger is not None:  # cost beyond the reservation
                self._ledger.add(-self._lease_left, reservation.day)
                self._lease_left = ZERO
        elif self._ledger is not None and unused:  # that day's lease was already given back
            self._ledger.add(-unused, reservation.day)

    def _give_back_lease(self, ledger: DailyLedger) -> None:
        if self._lease_left and self._lease_day is not None:
            ledger.add(-self._lease_left, self._lease_day)
        self._lease_left = ZERO

    @staticmethod
    def _check(ceiling: str, limit: Decimal, committed: Decimal, amount: Decimal) -> None:
        if committed + amount > limit:
            raise BudgetExceeded(ceiling, limit, committed, amount)
