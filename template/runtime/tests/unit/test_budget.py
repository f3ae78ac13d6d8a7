from __future__ import annotations

import asyncio
import decimal
import time
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from airuntime.resilience.budget import (
    Budget,
    BudgetExceeded,
    CallBudget,
    DailyLedger,
)

D = Decimal


def test_reservations_count_against_every_ceiling_before_spending() -> None:
    budget = Budget(per_call=D("1.00"), per_process=D("1.50"))
    first, second = CallBudget(), CallBudget()

    budget.reserve(D("0.80"), first)
    with pytest.raises(BudgetExceeded) as caught:
        budget.reserve(D("0.80"), second)

    assert caught.value.ceiling == "per-process"
    assert budget.reserved == D("0.80")
    assert second.reserved == 0


def test_per_call_ceiling_counts_spent_and_reserved() -> None:
    budget = Budget(per_call=D("1.00"))
    call = CallBudget()
    reservation = budget.reserve(D("0.60"), call)
    budget.settle(reservation, D("0.50"))

    with pytest.raises(BudgetExceeded, match="per-call") as caught:
        budget.reserve(D("0.51"), call)

    assert caught.value.committed == D("0.50")
    budget.reserve(D("0.50"), call)  # exactly at the ceiling is allowed


def test_settle_records_the_real_cost_and_release_records_nothing() -> None:
    budget = Budget(per_process=D("10"))
    call = CallBudget()

    budget.settle(budget.reserve(D("0.30"), call), D("0.12"))
    budget.release(budget.reserve(D("0.40"), call))

    assert budget.spent == D("0.12")
    assert budget.reserved == 0
    assert call.spent == D("0.12")
    assert call.reserved == 0


def test_message_says_what_was_refused_and_how_to_fix_it() -> None:
    budget = Budget(per_process=D("0.10"))
    budget.settle(budget.reserve(D("0.08"), CallBudget()), D("0.08"))

    with pytest.raises(BudgetExceeded) as caught:
        budget.reserve(D("0.05"), CallBudget())

    assert str(caught.value) == (
        "budget exceeded: this attempt could cost up to $0.050000 but only $0.020000 is left "
        "of the per-process ceiling ($0.10); the call was not sent. Raise BUDGET_PER_PROCESS_USD "
        "or wait for the budget to reset."
    )


def test_daily_ledger_is_shared_between_processes_and_resets_each_day(tmp_path: Path) -> None:
    day = [date(2026, 1, 1)]
    path = tmp_path / "budget.sqlite3"
    with (
        closing(DailyLedger(path, today=lambda: day[0])) as one,
        closing(DailyLedger(path, today=lambda: day[0])) as other,
    ):
        first = Budget(per_day=D("1.00"), ledger=one)
        second = Budget(per_day=D("1.00"), ledger=other)

        first.settle(first.reserve(D("0.70"), CallBudget()), D("0.70"))
        with pytest.raises(BudgetExceeded, match="per-day"):
            second.reserve(D("0.40"), CallBudget())

        day[0] = date(2026, 1, 2)
        second.reserve(D("0.40"), CallBudget())


def test_per_day_ceiling_needs_a_ledger() -> None:
    with pytest.raises(
        ValueError, match=r"^a per-day ceiling needs a ledger to remember today's spending$"
    ):
        Budget(per_day=D("1"))


class CountingLedger(DailyLedger):
    """A ledger that counts its transactions."""

    def __init__(self, path: Path, today: Callable[[], date]) -> None:
        super().__init__(path, today=today)
        self.claims = 0
        self.adds = 0

    def claim(self, needed: Decimal, wanted: Decimal, limit: Decimal, day: date) -> Decimal:
        self.claims += 1
        return super().claim(needed, wanted, limit, day)

    def add(self, amount: Decimal, day: date | None = None) -> None:
        self.adds += 1
        super().add(amount, day)


def test_the_per_day_ceiling_leases_from_the_ledger_instead_of_writing_every_call(
    tmp_path: Path,
) -> None:
    with closing(CountingLedger(tmp_path / "budget.sqlite3", lambda: date(2026, 1, 1))) as ledger:
        budget = Budget(per_day=D("10"), ledger=ledger)  # leases of 1%: $0.10
        for _ in range(100):
            budget.settle(budget.reserve(D("0.002"), CallBudget()), D("0.0005"))

        assert ledger.claims == 1  # one transaction for 100 calls
        assert ledger.spent_today() == D("0.10")  # the lease counts as spent while held
        assert budget.spent == D("0.0500")

        budget.close()  # gives back what was not spent

    with closing(DailyLedger(tmp_path / "budget.sqlite3", today=lambda: date(2026, 1, 1))) as again:
        assert again.spent_today() == D("0.0500")


def test_processes_holding_leases_never_commit_more_than_the_ceiling_together(
    tmp_path: Path,
) -> None:
    path = tmp_path / "budget.sqlite3"
    with (
        closing(DailyLedger(path, today=lambda: date(2026, 1, 1))) as one,
        closing(DailyLedger(path, today=lambda: date(2026, 1, 1))) as other,
    ):
        first = Budget(per_day=D("1.00"), ledger=one, daily_lease=D("0.40"))
        second = Budget(per_day=D("1.00"), ledger=other, daily_lease=D("0.40"))

        first.reserve(D("0.10"), CallBudget())  # leases 0.40
        second.reserve(D("0.10"), CallBudget())  # leases 0.40
        first.reserve(D("0.30"), CallBudget())  # within its lease: no claim
        held = second.reserve(D("0.35"), CallBudget())  # needs 0.05 more: gets the last 0.20
        assert one.spent_today() == D("1.00")

        with pytest.raises(BudgetExceeded, match="per-day") as caught:
            first.reserve(D("0.01"), CallBudget())  # nothing left anywhere
        assert caught.value.committed == D("1.00")

        second.release(held)  # 0.35 back into the second lease, not to the ledger
        with pytest.raises(BudgetExceeded, match="per-day"):
            first.reserve(D("0.01"), CallBudget())
        second.close()  # now its unused 0.50 goes back (its first 0.10 stays reserved)
        first.reserve(D("0.01"), CallBudget())  # a new lease of 0.40
        assert one.spent_today() == D("0.90")


def test_a_cost_above_its_reservation_is_still_recorded_in_full(tmp_path: Path) -> None:
    path = tmp_path / "budget.sqlite3"
    budget = Budget(
        per_day=D("1.00"),
        ledger=DailyLedger(path, today=lambda: date(2026, 1, 1)),
        daily_lease=D("0.10"),
    )
    budget.settle(budget.reserve(D("0.10"), CallBudget()), D("0.25"))
    budget.close()

    with closing(DailyLedger(path, today=lambda: date(2026, 1, 1))) as ledger:
        assert ledger.spent_today() == D("0.25")


def test_a_call_reserved_before_midnight_is_charged_to_its_own_day(tmp_path: Path) -> None:
    day = [date(2026, 1, 1)]
    with closing(DailyLedger(tmp_path / "budget.sqlite3", today=lambda: day[0])) as ledger:
        budget = Budget(per_day=D("1.00"), ledger=ledger, daily_lease=D("0.50"))
        late = budget.reserve(D("0.20"), CallBudget())

        day[0] = date(2026, 1, 2)
        budget.reserve(D("0.10"), CallBudget())  # gives back day one's unused 0.30
        budget.settle(late, D("0.05"))
        assert ledger.spent_today() == D("0.50")  # day two: its own fresh lease

        day[0] = date(2026, 1, 1)
        assert ledger.spent_today() == D("0.05")  # day one: exactly what the late call cost


def test_a_refusal_carries_the_ceiling_its_limit_what_was_committed_and_what_was_needed() -> None:
    budget = Budget(per_process=D("0.10"))
    budget.settle(budget.reserve(D("0.08"), CallBudget()), D("0.08"))

    with pytest.raises(BudgetExceeded) as caught:
        budget.reserve(D("0.05"), CallBudget())

    refused = caught.value
    assert (refused.ceiling, refused.limit, refused.committed, refused.needed) == (
        "per-process",
        D("0.10"),
        D("0.08"),
        D("0.05"),
    )


def test_reservations_held_at_once_all_count() -> None:
    budget = Budget(per_call=D("1.00"))
    call = CallBudget()

    budget.reserve(D("0.30"), call)
    budget.reserve(D("0.20"), call)

    assert (budget.reserved, call.reserved) == (D("0.50"), D("0.50"))


def test_the_per_call_ceiling_counts_what_is_reserved_on_top_of_what_was_spent() -> None:
    budget = Budget(per_call=D("1.00"))
    call = CallBudget()
    budget.settle(budget.reserve(D("0.50"), call), D("0.50"))
    budget.reserve(D("0.30"), call)  # still held

    with pytest.raises(BudgetExceeded, match="per-call") as caught:
        budget.reserve(D("0.30"), call)

    assert caught.value.committed == D("0.80")


def test_a_ledger_without_a_daily_ceiling_keeps_count_of_the_spending(tmp_path: Path) -> None:
    with closing(
        DailyLedger(tmp_path / "budget.sqlite3", today=lambda: date(2026, 1, 1))
    ) as ledger:
        budget = Budget(ledger=ledger)

        budget.settle(budget.reserve(D("0.30"), CallBudget()), D("0.12"))
        budget.release(budget.reserve(D("0.40"), CallBudget()))

        assert ledger.spent_today() == D("0.12")


def test_the_ledger_directory_is_created_with_its_parents(tmp_path: Path) -> None:
    path = tmp_path / "var" / "state" / "budget.sqlite3"

    with closing(DailyLedger(path, today=lambda: date(2026, 1, 1))) as ledger:
        ledger.add(D("0.01"))

        assert ledger.spent_today() == D("0.01")


async def test_the_ledger_can_be_used_from_a_worker_thread(tmp_path: Path) -> None:
    with closing(
        DailyLedger(tmp_path / "budget.sqlite3", today=lambda: date(2026, 1, 1))
    ) as ledger:
        ledger.add(D("0.02"))

        assert await asyncio.to_thread(ledger.spent_today) == D("0.02")


def test_a_failed_update_leaves_the_ledger_usable(tmp_path: Path) -> None:
    with closing(
        DailyLedger(tmp_path / "budget.sqlite3", today=lambda: date(2026, 1, 1))
    ) as ledger:
        ledger.add(D("0.01"))

        with pytest.raises(decimal.InvalidOperation):
            ledger.add(D("NaN"))  # fails inside the transaction, which is rolled back

        ledger.add(D("0.02"))
        assert ledger.spent_today() == D("0.03")


def test_the_ledgers_day_is_the_utc_date_whatever_the_local_time_zone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    utc_hour = datetime.now(UTC).hour
    # A zone whose date differs from UTC's right now: UTC+14 late in the UTC day, else UTC-12.
    monkeypatch.setenv("TZ", "XXX-14" if utc_hour >= 10 else "XXX+12")
    time.tzset()
    try:
        assert datetime.now().date() != datetime.now(UTC).date()  # noqa: DTZ005 - the point
        with closing(DailyLedger(tmp_path / "budget.sqlite3")) as ledger:
            assert ledger.today() == datetime.now(UTC).date()
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_refused_claim_commits_nothing(tmp_path: Path) -> None:
    with closing(
        DailyLedger(tmp_path / "budget.sqlite3", today=lambda: date(2026, 1, 1))
    ) as ledger:
        ledger.add(D("0.95"))
        budget = Budget(per_day=D("1.00"), ledger=ledger, daily_lease=D("0.10"))

        with pytest.raises(BudgetExceeded) as caught:
            budget.reserve(D("0.10"), CallBudget())

        assert caught.value.ceiling == "per-day"
        assert ledger.spent_today() == D("0.95")  # not even the 0.05 that was left


def test_the_last_of_the_daily_ceiling_can_be_reserved_exactly(tmp_path: Path) -> None:
    with closing(
        DailyLedger(tmp_path / "budget.sqlite3", today=lambda: date(2026, 1, 1))
    ) as ledger:
        ledger.add(D("0.90"))
        budget = Budget(per_day=D("1.00"), ledger=ledger, daily_lease=D("0.01"))

        budget.reserve(D("0.10"), CallBudget())

        assert ledger.spent_today() == D("1.00")


def test_a_daily_refusal_counts_what_others_committed_not_this_processs_unused_lease(
    tmp_path: Path,
) -> None:
    path = tmp_path / "budget.sqlite3"
    with (
        closing(DailyLedger(path, today=lambda: date(2026, 1, 1))) as one,
        closing(DailyLedger(path, today=lambda: date(2026, 1, 1))) as other,
    ):
        first = Budget(per_day=D("1.00"), ledger=one, daily_lease=D("0.40"))
        second = Budget(per_day=D("1.00"), ledger=other, daily_lease=D("0.60"))
        first.reserve(D("0.10"), CallBudget())  # leases 0.40, holds 0.30 of it unused
        second.reserve(D("0.60"), CallBudget())  # takes all the rest

        with pytest.raises(BudgetExceeded) as caught:
            first.reserve(D("0.35"), CallBudget())  # 0.05 more than its lease has left

        assert caught.value.committed == D("0.70")
        assert str(caught.value).startswith(
            "budget exceeded: this attempt could cost up to $0.350000 but only $0.300000 is left"
        )


def test_a_cost_above_its_reservation_reaches_the_ledger_at_once(tmp_path: Path) -> None:
    with closing(
        DailyLedger(tmp_path / "budget.sqlite3", today=lambda: date(2026, 1, 1))
    ) as ledger:
        budget = Budget(per_day=D("1.00"), ledger=ledger, daily_lease=D("0.10"))

        budget.settle(budget.reserve(D("0.10"), CallBudget()), D("0.25"))

        assert ledger.spent_today() == D("0.25")  # other processes see it before this one closes
        budget.settle(budget.reserve(D("0.05"), CallBudget()), D("0.05"))  # and goes on
        assert budget.spent == D("0.30")


def test_a_late_cost_above_its_reservation_is_charged_to_the_day_it_was_reserved(
    tmp_path: Path,
) -> None:
    day = [date(2026, 1, 1)]
    with closing(DailyLedger(tmp_path / "budget.sqlite3", today=lambda: day[0])) as ledger:
        budget = Budget(per_day=D("1.00"), ledger=ledger, daily_lease=D("0.10"))
        late = budget.reserve(D("0.10"), CallBudget())

        day[0] = date(2026, 1, 2)
        budget.settle(late, D("0.25"))  # settled after midnight, before any new reservation

        assert ledger.spent_today() == 0
        day[0] = date(2026, 1, 1)
        assert ledger.spent_today() == D("0.25")


def test_a_budget_on_a_shared_ledger_refuses_to_reserve_without_awaiting() -> None:
    class SharedStandIn:  # a shared ledger: its claims are awaited, so it has no `claim`
        lease_seconds = 60.0

    budget = Budget(per_day=Decimal(1), ledger=SharedStandIn())  # type: ignore[arg-type]

    with pytest.raises(TypeError, match="areserve"):
        budget.reserve(Decimal("0.1"), CallBudget())
    assert budget.reserved == 0
