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

ZERO = Decimal(0)


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
    """Today's spending, shared by every process using the same SQLite file.

    A cron job that restarts every minute gets a fresh per-process budget each time; the
    ledger is what stops it from spending all weekend.
    """

    def __init__(self, path: Path, *, today: Callable[[], date] = _utc_today) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._today = today
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS spend (day TEXT PRIMARY KEY, usd TEXT)")

    def spent_today(self) -> Decimal:
        row = self._db.execute(
            "SELECT usd FROM spend WHERE day = ?", (self._today().isoformat(),)
        ).fetchone()
        return Decimal(row[0]) if row else ZERO

    def add(self, amount: Decimal) -> None:
        if amount <= 0:
            return
        day = self._today().isoformat()
        # BEGIN IMMEDIATE takes the write lock first, so concurrent processes never lose an add.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute("SELECT usd FROM spend WHERE day = ?", (day,)).fetchone()
            total = (Decimal(row[0]) if row else ZERO) + amount
            self._db.execute(
                "INSERT INTO spend (day, usd) VALUES (?, ?) "
                "ON CONFLICT(day) DO UPDATE SET usd = excluded.usd",
                (day, str(total)),
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


@dataclass
class CallBudget:
    """What one logical call (all its attempts, fallbacks and repairs) has spent."""

    spent: Decimal = ZERO
    reserved: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class Reservation:
    amount: Decimal
    call: CallBudget = field(compare=False)


class Budget:
    """Per-call, per-process and per-day ceilings in US dollars; None means no ceiling."""

    def __init__(
        self,
        *,
        per_call: Decimal | None = None,
        per_process: Decimal | None = None,
        per_day: Decimal | None = None,
        ledger: DailyLedger | None = None,
    ) -> None:
        if per_day is not None and ledger is None:
            raise ValueError("a per-day ceiling needs a ledger to remember today's spending")
        self.per_call = per_call
        self.per_process = per_process
        self.per_day = per_day
        self._ledger = ledger
        self.spent = ZERO
        self.reserved = ZERO

    def reserve(self, amount: Decimal, call: CallBudget) -> Reservation:
        """Hold `amount` for one attempt, or raise BudgetExceeded without holding anything."""
        if self.per_call is not None:
            self._check("per-call", self.per_call, call.spent + call.reserved, amount)
        if self.per_process is not None:
            self._check("per-process", self.per_process, self.spent + self.reserved, amount)
        if self.per_day is not None and self._ledger is not None:
            committed = self._ledger.spent_today() + self.reserved
            self._check("per-day", self.per_day, committed, amount)
        self.reserved += amount
        call.reserved += amount
        return Reservation(amount, call)

    def settle(self, reservation: Reservation, actual: Decimal) -> None:
        """Turn a reservation into spending at the real cost.

        The real cost is recorded even in the (unexpected) case that it exceeds the
        reservation: the books must match the bill.
        """
        self._release(reservation)
        self.spent += actual
        reservation.call.spent += actual
        if self._ledger is not None:
            self._ledger.add(actual)

    def release(self, reservation: Reservation) -> None:
        """The attempt was not billed (refused before processing): free the reservation."""
        self._release(reservation)

    def close(self) -> None:
        """Close the daily ledger's database, if any."""
        if self._ledger is not None:
            self._ledger.close()

    def _release(self, reservation: Reservation) -> None:
        self.reserved -= reservation.amount
        reservation.call.reserved -= reservation.amount

    @staticmethod
    def _check(ceiling: str, limit: Decimal, committed: Decimal, amount: Decimal) -> None:
        if committed + amount > limit:
            raise BudgetExceeded(ceiling, limit, committed, amount)
