"""The kill switch shared by every instance on one Redis (REDIS_URL).

The changes (feature -> off, who, when) are one Redis hash. Each instance reads it again at
most every `refresh_seconds` (the first call after that waits one round trip; callers asking
at the same time share it), so a change made on one replica holds on every replica within
that time. A feature nobody changed follows the instance's AI_SWITCHED_OFF.

The hash has no TTL, unlike the other shared keys: a switch turned off in an emergency must
not turn itself back on. If Redis fails, the last state read holds (counted in
`errors["switch"]` and logged once); a change is refused, so no replica is left behind.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Iterable

import orjson

from airuntime.resilience.shared.connection import RedisState
from airuntime.resilience.state import SharedStateUnavailableError
from airuntime.resilience.switch import KillSwitch, SwitchChange

DEFAULT_REFRESH_SECONDS = 2.0


class SharedKillSwitch(KillSwitch):
    def __init__(
        self,
        state: RedisState,
        seed: Iterable[str] = (),
        *,
        known: Collection[str] | None = None,
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(seed, known=known, wall_clock=wall_clock)
        self.state = state
        self.refresh_seconds = refresh_seconds
        self._key = state.key("switch")
        self._clock = clock
        self._read_at: float | None = None
        self._reading: asyncio.Future[None] | None = None

    @property
    def shared(self) -> bool:
        return True

    async def refresh(self) -> None:
        read_at = self._read_at
        if read_at is not None and self._clock() - read_at < self.refresh_seconds:
            return
        reading = self._reading
        if reading is None:
            reading = self._reading = asyncio.ensure_future(self._read())
            reading.add_done_callback(self._done)
        await asyncio.shield(reading)

    def _done(self, _: object) -> None:
        self._reading = None

    async def _read(self) -> None:
        try:
            entries = await self.state.call("switch", self.state.client.hgetall(self._key))
        except SharedStateUnavailableError:
            # The last state read holds; asked again after the refresh period.
            self._read_at = self._clock()
            return
        changes: dict[str, SwitchChange] = {}
        for key, raw in entries.items():
            feature = key.decode() if isinstance(key, bytes) else key  # decode_responses=True
            try:
                data = orjson.loads(raw)
                changes[feature] = SwitchChange(
                    feature, bool(data["off"]), str(data["by"]), float(data["at"])
                )
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # not written by a switch: ignored rather than trusted
        self._changes = changes
        self._read_at = self._clock()

    async def _store(self, change: SwitchChange) -> None:
        value = orjson.dumps({"off": change.off, "by": change.by, "at": change.at})
        await self.state.call("switch", self.state.client.hset(self._key, change.feature, value))

    async def aclose(self) -> None:
        await self.state.aclose()
