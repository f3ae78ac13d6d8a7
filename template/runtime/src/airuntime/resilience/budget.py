"""Spending ceilings that stop a call before it is sent, never after.

Before each attempt the resilient client reserves the attempt's worst-case cost; the
reservation is refused (BudgetExceeded) when it would take spending past the per-call, the
per-process or the per-day ceiling. After the attempt the reservation is settled at the real
cost, which is never more than the reservation. Because every attempt (retries, fallbacks and
repair re-asks included) goes through `reserve`, no sequence of faults can spend past a ceiling.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import cast

import structlog

from airuntime.frozen import quick_init
from airuntime.resilience.state import LocalLedger, SharedLedger, SharedStateUnavailableError

ZERO = Decimal(0)
# The share of the per-day ceiling a process claims from the ledger at a time.
DAILY_LEASE_SHARE = Decimal("0.01")
# How long a lease lives after its holder last wrote: the recovery time of a killed process.
DEFAULT_LEASE_SECONDS = 60.0
# How long spending may wait in memory before it moves from the lease to the ledger: locally
# (an SQLite transaction costs about as much as the rest of a call), and on Redis (writes of
# many calls go out as one).
DEFAULT_FLUSH_SECONDS = 1.0
DEFAULT_SHARED_FLUSH_SECONDS = 0.05

log = structlog.get_logger("airuntime.budget")


def utc_today() -> date:
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


class BudgetUnavailableError(BudgetExceeded):
    """The shared ledger could not be reached: the call is refused (the budget fails closed)."""

    def __init__(self, where: str, cause: BaseException) -> None:
        Exception.__init__(
            self,
            f"budget unavailable: the shared day ledger at {where} cannot be reached ({cause}); "
            "the call was not sent. Bring Redis back, or set SHARED_STATE_FALLBACK=local to "
            "fall back to this instance's own ceilings while it is down.",
        )
        self.ceiling = "per-day"
        self.limit = ZERO
        self.committed = ZERO
        self.needed = ZERO


class DailyLedger:
    """Today's committed spending, shared by every process using the same SQLite file.

    A cron job that restarts every minute gets a fresh per-process budget each time; the
    ledger is what stops it from spending all weekend. A day's committed spending is what was
    spent plus the leases running processes hold (see `Budget`), so the processes together can
    never commit more than the ceiling.

    Each ledger object is one lease holder. A lease lives `lease_seconds` after its holder last
    wrote (the budget renews it while it runs); the lease of a process that was killed expires
    and comes back to the others, instead of being held until the day ends.
    """

    def __init__(
        self,
        path: Path,
        *,
        today: Callable[[], date] = utc_today,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.today = today
        self.lease_seconds = lease_seconds
        self.holder = uuid.uuid4().hex
        self._wall_clock = wall_clock
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS spend (day TEXT PRIMARY KEY, usd TEXT)")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS leases (day TEXT, holder TEXT, usd TEXT, "
            "expires REAL, PRIMARY KEY (day, holder))"
        )

    def spent_today(self) -> Decimal:
        """Committed today: spent, plus the unused leases of running processes."""
        return self._committed(self.today().isoformat(), self._wall_clock())

    def add(self, amount: Decimal, day: date | None = None) -> None:
        """Record spending on `day` (today by default); a negative amount gives back lease."""
        if amount:
            key = (day or self.today()).isoformat()
            with self._transaction():
                if amount > 0:
                    self._add_spent(key, amount)
                else:
                    self._change_lease(key, amount, renew=False)

    def claim(self, needed: Decimal, wanted: Decimal, limit: Decimal, day: date) -> Decimal:
        """Take `wanted` of what is left of `limit` on `day`, or all that is left when less,
        into this holder's lease, in one transaction. Returns what was granted: nothing when
        even `needed` does not fit (the caller raises), so a refused claim commits nothing."""
        key = day.isoformat()
        with self._transaction() as now:
            left = limit - self._committed(key, now)
            granted = min(wanted, left) if needed <= left else ZERO
            if granted:
                self._change_lease(key, granted, renew=True)
        return granted

    def move(self, day: date, spent: Decimal, returned: Decimal = ZERO) -> bool:
        """Turn `spent` of this holder's lease into spending, give `returned` back, and renew
        the lease. False when the lease had expired (the others may have taken it back): the
        spending is still recorded."""
        key = day.isoformat()
        with self._transaction():
            held = self._lease(key) is not None
            if spent:
                self._add_spent(key, spent)
            if held:
                self._change_lease(key, -(spent + returned), renew=True)
        return held

    def close(self) -> None:
        self._db.close()

    def _committed(self, day: str, now: float) -> Decimal:
        row = self._db.execute("SELECT usd FROM spend WHERE day = ?", (day,)).fetchone()
        spent = Decimal(row[0]) if row else ZERO
        leased = self._db.execute(
            "SELECT usd FROM leases WHERE day = ? AND expires >= ?", (day, now)
        ).fetchall()
        return spent + sum((Decimal(usd) for (usd,) in leased), ZERO)

    def _lease(self, day: str) -> Decimal | None:
        row = self._db.execute(
            "SELECT usd FROM leases WHERE day = ? AND holder = ?", (day, self.holder)
        ).fetchone()
        return Decimal(row[0]) if row else None

    def _add_spent(self, day: str, amount: Decimal) -> None:
        row = self._db.execute("SELECT usd FROM spend WHERE day = ?", (day,)).fetchone()
        spent = Decimal(row[0]) if row else ZERO
        self._db.execute(
            "INSERT INTO spend (day, usd) VALUES (?, ?) "
            "ON CONFLICT(day) DO UPDATE SET usd = excluded.usd",
            (day, str(max(ZERO, spent + amount))),
        )

    def _change_lease(self, day: str, delta: Decimal, *, renew: bool) -> None:
        held = self._lease(day)
        if held is None and not renew:
            return  # expired and recovered: nothing of it is left to give back
        usd = max(ZERO, (held or ZERO) + delta)
        self._db.execute(
            "INSERT INTO leases (day, holder, usd, expires) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(day, holder) DO UPDATE SET usd = excluded.usd, "
            "expires = CASE WHEN ? THEN excluded.expires ELSE leases.expires END",
            (day, self.holder, str(usd), self._wall_clock() + self.lease_seconds, renew),
        )

    @contextmanager
    def _transaction(self) -> Iterator[float]:
        # BEGIN IMMEDIATE takes the write lock first, so concurrent processes never lose an add.
        self._db.execute("BEGIN IMMEDIATE")
        now = self._wall_clock()
        try:
            # Leases whose holders stopped renewing them (killed, or gone) come back here.
            self._db.execute("DELETE FROM leases WHERE expires < ?", (now,))
            yield now
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


@dataclass(slots=True)
class CallBudget:
    """What one logical call (all its attempts, fallbacks and repairs) has spent.

    `ceiling` bounds this call alone, besides the per-call one: an agent run (every model
    call of it is one logical call) sets its per-run budget here. The per-call ceiling counts
    what was spent since `per_call_from`: an agent run moves it to `spent` before each step, so
    BUDGET_PER_CALL_USD bounds each model call of the run, and `ceiling` the whole run.
    """

    spent: Decimal = ZERO
    reserved: Decimal = ZERO
    ceiling: Decimal | None = None
    per_call_from: Decimal = ZERO


@quick_init
@dataclass(frozen=True, slots=True)
class Reservation:
    amount: Decimal
    call: CallBudget = field(compare=False)
    day: date | None = field(default=None, compare=False)  # the day of the lease it came from
    lease: int = field(default=0, compare=False)  # which lease (a new one after a loss)


class Budget:
    """Per-call, per-process and per-day ceilings in US dollars; None means no ceiling.

    The per-day ceiling is shared through the ledger without touching it on every call: the
    budget claims a lease (by default 1% of the ceiling, or what one attempt needs if more) in
    one transaction, takes each reservation from it in memory, puts back what a settled attempt
    did not spend, and claims again only when the lease runs short. The ledger counts leases as
    committed until they come back, so every process together stays within the ceiling, as
    strictly as writing each call would.

    What was spent moves from the lease to the ledger's spending at most `flush_seconds` later
    (1 s locally, 50 ms on Redis; 0: at once), and that write renews the lease; a lease not
    renewed for the ledger's `lease_seconds` expires. So a process killed mid-run gives its
    lease back within `lease_seconds`, losing from the books at most its last `flush_seconds`
    of spending and the attempts it had in flight. A process that finds its own lease expired
    (it stalled for longer than that) stops using it and claims a new one.

    A shared ledger (Redis) is asynchronous: the resilient client uses `areserve`, and the
    writes of `settle` go out in the background. When it cannot be reached the budget fails
    closed (BudgetUnavailableError) unless a local `fallback` ledger is given, which it then
    uses, with one warning, for the rest of the process's life.
    """

    def __init__(
        self,
        *,
        per_call: Decimal | None = None,
        per_process: Decimal | None = None,
        per_day: Decimal | None = None,
        ledger: LocalLedger | SharedLedger | None = None,
        daily_lease: Decimal | None = None,
        flush_seconds: float | None = None,
        fallback: LocalLedger | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_day is not None and ledger is None:
            raise ValueError("a per-day ceiling needs a ledger to remember today's spending")
        self.per_call = per_call
        self.per_process = per_process
        self.per_day = per_day
        self._ledger = ledger
        self._shared = ledger is not None and not hasattr(ledger, "claim")
        self._fallback = fallback
        self.spent = ZERO
        self.reserved = ZERO
        if daily_lease is None:
            daily_lease = per_day * DAILY_LEASE_SHARE if per_day is not None else ZERO
        self.daily_lease = daily_lease
        if flush_seconds is None:
            shared = self._shared
            flush_seconds = DEFAULT_SHARED_FLUSH_SECONDS if shared else DEFAULT_FLUSH_SECONDS
        self.flush_seconds = flush_seconds
        self._clock = clock
        self._lease_day: date | None = None
        self._lease_left = ZERO  # claimed from the ledger and not yet reserved
        self._lease = 0  # the current lease's number; reservations remember theirs
        self._holding = False  # the ledger holds a lease of ours for _lease_day
        self._lost: set[int] = set()  # leases that expired under us
        self._renew_at = 0.0
        self._flush_at = 0.0
        # Writes not yet made: per day, spending moved out of the lease and lease given back;
        # and spending beyond any lease.
        self._moves: dict[date, list[Decimal]] = {}
        self._adds: dict[date, Decimal] = {}
        self._writer: asyncio.Task[None] | None = None
        self._broken: SharedStateUnavailableError | None = None

    # -- reservations ------------------------------------------------------------------------

    def reserve(self, amount: Decimal, call: CallBudget) -> Reservation:
        """Hold `amount` for one attempt, or raise BudgetExceeded without holding anything."""
        if self._shared:  # its claims go over the network: only `areserve` can make them
            raise TypeError("a budget on a shared ledger reserves with `await areserve(...)`")
        self._check_local(amount, call)
        day = None
        if self.per_day is not None and self._ledger is not None:
            day = self._take_from_lease(self.per_day, self._local(), amount)
        return self._hold(amount, call, day)

    async def areserve(self, amount: Decimal, call: CallBudget) -> Reservation:
        """`reserve` for the resilient client: with a shared ledger, claims and renewals are
        awaited (and a ledger that cannot be reached refuses the call, or falls back)."""
        if not self._shared:
            return self.reserve(amount, call)
        self._check_local(amount, call)
        day = None
        if self.per_day is not None:
            try:
                day = await self._atake_from_lease(self.per_day, amount)
            except SharedStateUnavailableError as error:
                self._unavailable(error)
                return self.reserve(amount, call)  # fell back to the local ledger
        return self._hold(amount, call, day)

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
        elif self._ledger is not None and actual:  # a ledger that only keeps count
            self._write_add(actual, self._ledger.today())

    def release(self, reservation: Reservation) -> None:
        """The attempt was not billed (refused before processing): free the reservation."""
        self._release(reservation)
        if reservation.day is not None:
            self._return_to_lease(reservation, ZERO)

    async def flush(self) -> None:
        """Wait until every write so far has reached a shared ledger (no-op when local)."""
        if self._writer is not None:
            await asyncio.shield(self._writer)

    def close(self) -> None:
        """Give the unused lease back to the ledger and close its database, if any."""
        if self._ledger is not None and not self._shared:
            ledger = self._local()
            self._give_back_lease()
            self._write_local(ledger, force=True)
            ledger.close()

    async def aclose(self) -> None:
        """`close`, for a shared ledger too: its writes are made before it is closed."""
        if not self._shared:
            self.close()
            return
        self._give_back_lease()
        try:
            await self.flush()
            await self._awrite()
        except SharedStateUnavailableError as error:
            log.error(
                "budget: could not write the last spending to the shared ledger (%s): %s",
                self._moves or self._adds,
                error,
            )
        await self._shared_ledger().aclose()
        if self._fallback is not None:
            self._fallback.close()

    # -- the lease ---------------------------------------------------------------------------

    def _hold(self, amount: Decimal, call: CallBudget, day: date | None) -> Reservation:
        self.reserved += amount
        call.reserved += amount
        return Reservation(amount, call, day, self._lease)

    def _check_local(self, amount: Decimal, call: CallBudget) -> None:
        if self.per_call is not None:
            this_call = call.spent - call.per_call_from + call.reserved
            self._check("per-call", self.per_call, this_call, amount)
        if call.ceiling is not None:
            self._check("per-run", call.ceiling, call.spent + call.reserved, amount)
        if self.per_process is not None:
            self._check("per-process", self.per_process, self.spent + self.reserved, amount)

    def _release(self, reservation: Reservation) -> None:
        self.reserved -= reservation.amount
        reservation.call.reserved -= reservation.amount

    def _new_day(self, day: date) -> None:
        if day != self._lease_day:
            self._give_back_lease()
            self._lease_day = day
            self._lease += 1

    def _take_from_lease(self, limit: Decimal, ledger: LocalLedger, amount: Decimal) -> date:
        day = ledger.today()
        self._new_day(day)
        if self._holding and self._clock() >= self._renew_at:
            started = self._clock()
            self._renewed(ledger.move(day, *self._take_moves(day)), started)
        self._write_local(ledger)
        if amount > self._lease_left:
            needed = amount - self._lease_left
            started = self._clock()
            granted = ledger.claim(needed, max(needed, self.daily_lease), limit, day)
            if granted < needed:
                # Committed by every process, less what this one holds and could still use.
                committed = ledger.spent_today() - self._lease_left
                raise BudgetExceeded("per-day", limit, committed, amount)
            self._claimed(granted, started)
        self._lease_left -= amount
        return day

    async def _atake_from_lease(self, limit: Decimal, amount: Decimal) -> date:
        ledger = self._shared_ledger()
        day = ledger.today()
        self._new_day(day)
        if self._broken is not None:
            await self._awrite()  # the writes that failed first: they are real spending
        elif (self._moves or self._adds) and self._clock() >= self._flush_at:
            self._write_soon()
        if self._holding and self._clock() >= self._renew_at:
            started = self._clock()
            self._renewed(await ledger.amove(day, *self._take_moves(day)), started)
        if amount > self._lease_left:
            needed = amount - self._lease_left
            started = self._clock()
            await self.flush()  # so the ledger's committed total is current
            granted = await ledger.aclaim(needed, max(needed, self.daily_lease), limit, day)
            if granted < needed:
                committed = await ledger.acommitted(day) - self._lease_left
                raise BudgetExceeded("per-day", limit, committed, amount)
            self._claimed(granted, started)
        self._lease_left -= amount
        return day

    def _claimed(self, granted: Decimal, started: float) -> None:
        self._lease_left += granted
        self._holding = True
        self._renew_at = started + self._lease_seconds() / 3

    def _renewed(self, held: bool, started: float) -> None:
        if held:
            self._renew_at = started + self._lease_seconds() / 3
            return
        # Our lease expired (this process stalled longer than the lease lives) and the others
        # may have spent it: what is left of it is no longer ours.
        log.warning("budget: this process's lease on the day ledger had expired; claiming anew")
        self._lost.add(self._lease)
        self._lease += 1
        self._lease_left = ZERO
        self._holding = False

    def _return_to_lease(self, reservation: Reservation, actual: Decimal) -> None:
        day = reservation.day
        assert day is not None  # noqa: S101 - the caller checked
        unused = reservation.amount - actual
        if reservation.lease == self._lease and day == self._lease_day:
            self._lease_left += unused
            moved = actual
            if self._lease_left < 0:  # cost beyond the reservation: recorded at once
                self._write_add(-self._lease_left, day)
                moved += self._lease_left
                self._lease_left = ZERO
            self._queue_move(day, moved, ZERO, due=False)
        elif reservation.lease in self._lost:  # the lease it came from is gone: spend only
            self._write_add(actual, day)
        else:  # that day's lease was given back, all but this reservation: settle it now
            self._queue_move(day, actual, unused, due=True)

    def _give_back_lease(self) -> None:
        if self._lease_day is not None and (self._lease_left or self._holding):
            self._queue_move(self._lease_day, ZERO, self._lease_left, due=False)
        self._lease_left = ZERO
        self._holding = False

    # -- writes ------------------------------------------------------------------------------

    def _queue_move(self, day: date, spent: Decimal, returned: Decimal, *, due: bool) -> None:
        pending = self._moves.setdefault(day, [ZERO, ZERO])
        pending[0] += spent
        pending[1] += returned
        if due or self._clock() >= self._flush_at:
            self._write_soon()

    def _write_add(self, amount: Decimal, day: date) -> None:
        self._adds[day] = self._adds.get(day, ZERO) + amount
        self._write_soon()

    def _take_moves(self, day: date) -> tuple[Decimal, Decimal]:
        spent, returned = self._moves.pop(day, (ZERO, ZERO))
        return spent, returned

    def _write_soon(self) -> None:
        if not self._shared:
            self._write_local(self._local())
        elif self._writer is None and self._broken is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # outside a loop: written by the next areserve or aclose
            self._writer = loop.create_task(self._background_write())

    def _write_local(self, ledger: LocalLedger, *, force: bool = False) -> None:
        adds, self._adds = self._adds, {}
        for day, amount in adds.items():
            ledger.add(amount, day)
        if not force and self._clock() < self._flush_at and not self._due_now():
            return
        self._flush_at = self._clock() + self.flush_seconds
        moves, self._moves = self._moves, {}
        for day, (spent, returned) in moves.items():
            started = self._clock()
            held = ledger.move(day, spent, returned)
            if day == self._lease_day and self._holding:
                self._renewed(held, started)

    def _due_now(self) -> bool:
        """Moves that cannot wait: given-back lease, or another day's."""
        return any(returned or day != self._lease_day for day, (_, returned) in self._moves.items())

    async def _background_write(self) -> None:
        try:
            await self._awrite()
        except SharedStateUnavailableError as error:
            self._broken = error
            log.error("budget: the shared day ledger cannot be reached: %s", error)
        finally:
            self._writer = None

    async def _awrite(self) -> None:
        """Write every pending change to the shared ledger; on failure keep what was not."""
        ledger = self._shared_ledger()
        self._flush_at = self._clock() + self.flush_seconds
        while self._moves or self._adds:
            adds, self._adds = self._adds, {}
            moves, self._moves = self._moves, {}
            try:
                for day in list(adds):
                    await ledger.aadd(adds[day], day)
                    del adds[day]
                for day in list(moves):
                    started = self._clock()
                    held = await ledger.amove(day, *moves[day])
                    del moves[day]
                    if day == self._lease_day and self._holding:
                        self._renewed(held, started)
            except SharedStateUnavailableError:
                for day, amount in adds.items():
                    self._adds[day] = self._adds.get(day, ZERO) + amount
                for day, (spent, returned) in moves.items():
                    pending = self._moves.setdefault(day, [ZERO, ZERO])
                    pending[0] += spent
                    pending[1] += returned
                raise
        self._broken = None

    def _unavailable(self, error: SharedStateUnavailableError) -> None:
        """The shared ledger failed mid-run: refuse, or go on with local ceilings."""
        ledger = self._shared_ledger()
        if self._fallback is None:
            raise BudgetUnavailableError(ledger.where, error) from None
        log.warning(
            "budget: the shared day ledger at %s cannot be reached (%s); falling back to this "
            "instance's local ledger for the rest of its run (its spending there: %s)",
            ledger.where,
            error,
            self._moves or self._adds or "none yet",
        )
        self._ledger = self._fallback
        self._shared = False
        self._moves, self._adds = {}, {}
        self._lost.add(self._lease)
        self._lease += 1
        self._lease_left = ZERO
        self._holding = False
        self._lease_day = None

    def _local(self) -> LocalLedger:
        return cast("LocalLedger", self._ledger)

    def _shared_ledger(self) -> SharedLedger:
        return cast("SharedLedger", self._ledger)

    def _lease_seconds(self) -> float:
        return cast("LocalLedger | SharedLedger", self._ledger).lease_seconds

    @staticmethod
    def _check(ceiling: str, limit: Decimal, committed: Decimal, amount: Decimal) -> None:
        if committed + amount > limit:
            raise BudgetExceeded(ceiling, limit, committed, amount)
