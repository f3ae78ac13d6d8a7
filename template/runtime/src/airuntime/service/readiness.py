"""/readyz: whether this replica should get traffic. Each check returns None when fine, or
one line saying what is wrong; any problem makes the answer a 503 listing them all, so a load
balancer stops sending traffic and a person sees why."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from airuntime.prompts import PromptRegistry
from airuntime.prompts.lock import PromptLockError, check_lock
from airuntime.resilience.breaker import BreakerBoard
from airuntime.resilience.budget import Budget

Check = Callable[[], str | None]


@dataclass(frozen=True, slots=True)
class Readiness:
    checks: Sequence[tuple[str, Check]]

    def report(self) -> tuple[bool, dict[str, str]]:
        """(ready, {check: "ok" or what is wrong}); a check that raises is a problem too."""
        results: dict[str, str] = {}
        for name, check in self.checks:
            try:
                problem = check()
            except Exception as error:  # noqa: BLE001 - a broken check means not ready
                problem = f"the check failed: {type(error).__name__}"
            results[name] = "ok" if problem is None else problem
        return all(value == "ok" for value in results.values()), results


def prompts_lock_check(registry: PromptRegistry, lock: Path) -> Check:
    """Not ready when the prompt files and their lock disagree (a prompt changed without a
    version bump, or the lock was not committed): the first problem, and how many more."""

    def check() -> str | None:
        try:
            problems = check_lock(registry, lock)
        except PromptLockError as error:  # unreadable: its own one-line problems
            problems = list(error.problems)
        if not problems:
            return None
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return problems[0] + more

    return check


def breakers_check(breakers: BreakerBoard) -> Check:
    """Not ready while every known target's breaker is open (nothing could answer)."""

    def check() -> str | None:
        states = breakers.states()
        if states and all(state == "open" for state in states.values()):
            return "every model target's circuit breaker is open: " + ", ".join(sorted(states))
        return None

    return check


def budget_check(budget: Budget, *, minimum: Decimal = Decimal(0)) -> Check:
    """Not ready when the per-process ceiling has (nearly) nothing left."""

    def check() -> str | None:
        if budget.per_process is None:
            return None
        left = budget.per_process - budget.spent - budget.reserved
        if left <= minimum:
            return f"the per-process budget is spent (${left:.6f} left of ${budget.per_process})"
        return None

    return check


def draining_check(draining: Callable[[], bool]) -> Check:
    """Not ready once shutdown has begun: the load balancer takes this replica out first."""

    def check() -> str | None:
        return "shutting down" if draining() else None

    return check
