"""Requests and tokens per minute counted across every instance.

One GCRA (generic cell rate algorithm) key per limit: Redis keeps the theoretical arrival time,
a Lua script admits a request when it fits in the minute's allowance (bursts up to one
minute's worth, as the local leaky buckets allow) or answers how long to wait. Keys expire when
the allowance is whole again. The concurrency cap stays per instance (it protects this
process's sockets). If Redis fails, the instance's own limiters apply (`errors["limits"]`).
"""

from __future__ import annotations

import asyncio

from airuntime.resilience.limits import SECONDS_PER_MINUTE, Limits, Slot
from airuntime.resilience.shared.connection import RedisState
from airuntime.resilience.state import SharedStateUnavailableError

# ARGV: the cost in units, ms per unit, the burst (ms): 0 admitted, else ms to wait.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local cost, per_unit, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + cost * per_unit
local wait = new_tat - now - burst
if wait > 0 then return tostring(wait) end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1)
return '0'
"""

MINUTE_MS = SECONDS_PER_MINUTE * 1000


class SharedLimits(Limits):
    def __init__(
        self,
        state: RedisState,
        *,
        max_concurrency: int,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
    ) -> None:
        super().__init__(
            max_concurrency=max_concurrency,
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
        )
        self.state = state
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self._script = state.client.register_script(_GCRA)

    def slot(self, tokens: int) -> Slot:
        return SharedSlot(self, tokens)

    async def admit(self, name: str, cost: int, per_minute: int) -> bool:
        """Wait until the shared allowance admits `cost`; False when Redis failed."""
        key = self.state.key("limit", name)
        per_unit = MINUTE_MS / per_minute
        cost = min(cost, per_minute)  # more than a minute's allowance could never be admitted
        while True:
            try:
                wait = float(
                    await self.state.call(
                        "limits", self._script(keys=[key], args=[cost, per_unit, MINUTE_MS])
                    )
                )
            except SharedStateUnavailableError:
                return False
            if wait <= 0:
                return True
            await asyncio.sleep(wait / 1000)


class SharedSlot(Slot):
    __slots__ = ()

    async def __aenter__(self) -> None:
        limits = self._limits
        assert isinstance(limits, SharedLimits)  # noqa: S101 - made by SharedLimits.slot
        rpm, tpm = limits.requests_per_minute, limits.tokens_per_minute
        if rpm and not await limits.admit("requests", 1, rpm) and limits._requests is not None:
            await limits._requests.acquire()
        if tpm and not await limits.admit("tokens", self._tokens, tpm) and limits._tokens:
            await limits._tokens.acquire(min(self._tokens, limits._tokens.max_rate))
        await limits._slots.acquire()
        limits.in_flight += 1
