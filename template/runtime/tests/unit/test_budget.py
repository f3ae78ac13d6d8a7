from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from datetime import date
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
    with pytest.raises(ValueError, match="needs a ledger"):
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
