"""The kill switch: which features (prompt ids) have their AI path off, read live at each call.

A feature that is off serves its degraded answer (marked degraded, no model called, no cost);
one with no degraded answer is refused (`SwitchedOffError`, a 503 over HTTP). The set starts
as AI_SWITCHED_OFF; an operator changes it with `set` (the service's POST /admin/switch),
and the last word on a feature wins over the setting until the process restarts.

This `KillSwitch` is one process's own. `airuntime.resilience.shared.switch.SharedKillSwitch`
keeps the changes on Redis (REDIS_URL), so every replica obeys one switch within its refresh.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from airuntime.errors import ConfigurationError


class SwitchedOffError(ConfigurationError):
    """A switched-off prompt that has no degraded answer to serve instead."""


class UnknownFeatureError(ValueError):
    """A switch change naming a prompt id that does not exist (a typo would leave it on)."""

    def __init__(self, feature: str, known: Collection[str]) -> None:
        self.feature = feature
        self.known = tuple(sorted(known))
        super().__init__(
            f"{feature!r} is not a prompt id: use one of {', '.join(self.known) or 'none'}."
        )


@dataclass(frozen=True, slots=True)
class SwitchChange:
    """The last change of one feature's switch: who (the admin key's name), when (UTC epoch
    seconds) and to what."""

    feature: str
    off: bool
    by: str
    at: float

    def to_dict(self) -> dict[str, object]:
        return {"feature": self.feature, "off": self.off, "by": self.by, "at": self.at}


class KillSwitch:
    """The switched-off prompt ids of one process: `seed` (AI_SWITCHED_OFF) then the changes.

    `known` are the prompt ids a change may name (None: any, for tests of a single prompt).
    """

    def __init__(
        self,
        seed: Iterable[str] = (),
        *,
        known: Collection[str] | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.known = None if known is None else frozenset(known)
        self.seed = frozenset(seed)
        for feature in sorted(self.seed):
            self.check(feature)
        self._changes: dict[str, SwitchChange] = {}
        self._wall_clock = wall_clock

    @property
    def shared(self) -> bool:
        """Whether every replica sees this switch (False: this process only)."""
        return False

    def check(self, feature: str) -> None:
        if self.known is not None and feature not in self.known:
            raise UnknownFeatureError(feature, self.known)

    def features(self) -> list[str]:
        """Every feature the switch can name or has named, sorted."""
        return sorted((self.known or frozenset()) | self.seed | set(self._changes))

    def is_off(self, feature: str) -> bool:
        """Whether `feature`'s AI path is off now (in memory: no I/O on the hot path)."""
        change = self._changes.get(feature)
        return change.off if change is not None else feature in self.seed

    async def refresh(self) -> None:
        """Bring the switch up to date (nothing to do for one process's own)."""

    def off(self) -> frozenset[str]:
        """Every feature switched off now."""
        changed_off = {name for name, change in self._changes.items() if change.off}
        changed_on = {name for name, change in self._changes.items() if not change.off}
        return frozenset((self.seed - changed_on) | changed_off)

    def changes(self) -> dict[str, SwitchChange]:
        """The last change of each feature changed since start."""
        return dict(self._changes)

    async def set(self, feature: str, off: bool, *, by: str) -> SwitchChange:
        """Turn `feature`'s AI path off (or back on); takes effect at the next call."""
        self.check(feature)
        change = SwitchChange(feature, off, by, self._wall_clock())
        await self._store(change)
        self._changes[feature] = change
        return change

    async def _store(self, change: SwitchChange) -> None:
        """Where a shared switch writes the change first (nothing for one process's own)."""
        del change

    async def aclose(self) -> None:
        """Release what the switch holds (a shared switch's connection)."""


__all__ = ["KillSwitch", "SwitchChange", "SwitchedOffError", "UnknownFeatureError"]
