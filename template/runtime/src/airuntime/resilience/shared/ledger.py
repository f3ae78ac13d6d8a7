"""The per-day ledger on Redis: one ceiling for every instance.

A day is a hash: `spent`, and `lease:<holder>` for each instance's lease, beside a sorted set
of when each lease expires (Redis's own clock, so instances' clocks need not agree). Every
operation is one Lua script that first drops expired leases: a killed instance's lease comes
back to the others `lease_seconds` after it last wrote. Both keys live a few days (TTL).

Amounts are whole nanodollars on Redis (exact in Lua's numbers up to $9 million a day; the
packaged prices, with at most 3 decimals per million tokens, give whole nanodollars). What is
finer is rounded against the spender: spending and claims up, give-backs and ceilings down.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from airuntime.resilience.budget import DEFAULT_LEASE_SECONDS, ZERO, utc_today
from airuntime.resilience.shared.connection import RedisState

NANOS = Decimal(1_000_000_000)
KEY_DAYS = 3  # a day's keys outlive it by two days: late settlements still find them

_LEDGER = """
local day, expiry, holder = KEYS[1], KEYS[2], ARGV[1]
local mode, lease_ms, key_ttl = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', expiry, '-inf', '(' .. now)) do
  redis.call('HDEL', day, 'lease:' .. gone)
  redis.call('ZREM', expiry, gone)
end
local field = 'lease:' .. holder
local raw = redis.call('HGET', day, field)
local held = raw ~= false
local lease = tonumber(raw or '0')
local function committed()
  local total = 0
  local all = redis.call('HGETALL', day)
  for i = 1, #all, 2 do
    if all[i] == 'spent' or string.sub(all[i], 1, 6) == 'lease:' then
      total = total + tonumber(all[i + 1])
    end
  end
  return total
end
local function keep(value)
  redis.call('HSET', day, field, string.format('%.0f', value))
  redis.call('ZADD', expiry, now + lease_ms, holder)
end
local granted = 0
if mode == 'add' then
  redis.call('HINCRBY', day, 'spent', ARGV[5])
elseif mode == 'move' then
  if ARGV[5] ~= '0' then redis.call('HINCRBY', day, 'spent', ARGV[5]) end
  if held then keep(math.max(0, lease - tonumber(ARGV[5]) - tonumber(ARGV[6]))) end
elseif mode == 'claim' then
  local needed, wanted, limit = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
  local left = limit - committed()
  if needed <= left then granted = math.min(wanted, left) end
  if granted > 0 or held then keep(lease + granted) end
end
redis.call('EXPIRE', day, key_ttl)
redis.call('EXPIRE', expiry, key_ttl)
return {held and 1 or 0, string.format('%.0f', granted), string.format('%.0f', committed())}
"""


def to_nanos(amount: Decimal, rounding: str) -> int:
    return int((amount * NANOS).to_integral_value(rounding))


def from_nanos(value: Any) -> Decimal:
    return Decimal(int(value)) / NANOS


class RedisLedger:
    """A `SharedLedger`: each object is one lease holder (one instance)."""

    def __init__(
        self,
        state: RedisState,
        *,
        today: Callable[[], date] = utc_today,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> None:
        self._state = state
        self.today = today
        self.lease_seconds = lease_seconds
        self.where = state.where
        self.holder = uuid.uuid4().hex
        self._script = state.client.register_script(_LEDGER)

    async def aclaim(self, needed: Decimal, wanted: Decimal, limit: Decimal, day: date) -> Decimal:
        _, granted, _ = await self._run(
            day,
            "claim",
            to_nanos(needed, ROUND_CEILING),
            to_nanos(wanted, ROUND_CEILING),
            to_nanos(limit, ROUND_FLOOR),
        )
        return from_nanos(granted)

    async def aadd(self, amount: Decimal, day: date) -> None:
        if amount > 0:
            await self._run(day, "add", to_nanos(amount, ROUND_CEILING))

    async def amove(self, day: date, spent: Decimal, returned: Decimal = ZERO) -> bool:
        held, _, _ = await self._run(
            day, "move", to_nanos(spent, ROUND_CEILING), to_nanos(returned, ROUND_FLOOR)
        )
        return bool(int(held))

    async def acommitted(self, day: date) -> Decimal:
        _, _, committed = await self._run(day, "read")
        return from_nanos(committed)

    async def aclose(self) -> None:
        await self._state.aclose()

    async def _run(self, day: date, mode: str, *amounts: int) -> list[Any]:
        key = self._state.key("budget", day.isoformat())
        args: list[str | int] = [
            self.holder,
            mode,
            int(self.lease_seconds * 1000),
            KEY_DAYS * 86_400,
            *(str(amount) for amount in amounts),
        ]
        reply: list[Any] = await self._state.call(
            "budget", self._script(keys=[key, key + ":leases"], args=args)
        )
        return reply
