"""Circuit breakers whose open state every instance shares.

Each instance keeps its own breaker (it counts its own consecutive failures), and when one
opens (after the threshold, or at once on a 429 for max(Retry-After, cooldown)) it writes
"open until" to Redis. Before every attempt each instance asks Redis too: while a target is
open anywhere, nobody sends to it. After the cooldown one instance, whichever takes the probe
key first, sends the probe; its success closes the target for all. The keys expire a
cooldown after the time they hold.

If Redis fails, the instance's own breakers decide alone (counted in `errors["breaker"]`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from airuntime.errors import LLMError
from airuntime.resilience.breaker import BreakerBoard, BreakerState, CircuitBreaker
from airuntime.resilience.shared.connection import RedisState
from airuntime.resilience.state import SharedStateUnavailableError
from airuntime.types import ModelTarget

# 1: closed; 2: the cooldown has passed and this caller took the probe; 0: open.
_ALLOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = redis.call('GET', KEYS[1])
if not until_ms then return 1 end
if now < tonumber(until_ms) then return 0 end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return 2 end
return 0
"""
CLOSED, OPEN, PROBE = 1, 0, 2

# Open until now + ARGV[1] ms (never shortening a longer hold); keys live a cooldown longer.
_OPEN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
local held = tonumber(redis.call('GET', KEYS[1]) or '0')
if held > until_ms then until_ms = held end
local ttl = until_ms - now + tonumber(ARGV[2])
redis.call('SET', KEYS[1], string.format('%.0f', until_ms), 'PX', string.format('%.0f', ttl))
redis.call('DEL', KEYS[2])
return until_ms
"""


class SharedBreaker(CircuitBreaker):
    """This instance's breaker, asking and telling the others through Redis."""

    def __init__(
        self,
        board: SharedBreakerBoard,
        target: ModelTarget,
        *,
        failure_threshold: int,
        cooldown_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        super().__init__(
            failure_threshold=failure_threshold, cooldown_seconds=cooldown_seconds, clock=clock
        )
        self._board = board
        self._key = board.state.key("breaker", str(target))
        self._probing = False  # this instance holds the shared probe
        self._asking: asyncio.Future[int | None] | None = None

    async def aallow(self) -> bool:
        """Open anywhere means closed to this caller; otherwise this instance's breaker.

        Callers asking at the same time share one round trip (at 100 calls in flight, one
        question instead of 100); only the caller that asked can be granted the probe.
        """
        asking = self._asking
        if asking is None:
            asking = self._asking = asyncio.ensure_future(self._ask())
            asking.add_done_callback(self._asked)
            shared = await asyncio.shield(asking)
        else:
            shared = await asyncio.shield(asking)
            shared = OPEN if shared == PROBE else shared
        if shared is None:  # Redis failed: this instance's breaker decides alone
            return self.allow()
        if shared == OPEN:
            return False
        allowed = self.allow()
        self._probing = allowed and shared == PROBE
        return allowed

    async def _ask(self) -> int | None:
        try:
            reply = await self._board.state.call(
                "breaker",
                self._board.allow_script(
                    keys=[self._key, self._key + ":probe"], args=[self._board.cooldown_ms]
                ),
            )
        except SharedStateUnavailableError:
            return None
        return int(reply)

    def _asked(self, _: object) -> None:
        self._asking = None

    def record_success(self) -> None:
        was_open = self._state is not BreakerState.CLOSED or self._failures > 0
        super().record_success()
        if was_open or self._probing:
            self._probing = False
            self._board.send(self._board.close_target(self._key))

    def record_failure(self, error: LLMError) -> None:
        before = self._open_until
        super().record_failure(error)
        probing, self._probing = self._probing, False
        if self._state is BreakerState.OPEN and self._open_until > before:
            hold = max(0.0, self._open_until - self._clock())
            self._board.send(self._board.open_target(self._key, hold))
        elif probing and error.retryable:  # the shared probe failed: open again for everyone
            self._board.send(self._board.open_target(self._key, self.cooldown_seconds))


class SharedBreakerBoard(BreakerBoard):
    """The breakers of every target, shared through Redis."""

    def __init__(
        self,
        state: RedisState,
        *,
        failure_threshold: int,
        cooldown_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            failure_threshold=failure_threshold, cooldown_seconds=cooldown_seconds, clock=clock
        )
        self.state = state
        self.cooldown_ms = max(1, int(cooldown_seconds * 1000))
        self.allow_script = state.client.register_script(_ALLOW)
        self._open_script = state.client.register_script(_OPEN)
        self._pending: set[asyncio.Task[object]] = set()

    def get(self, target: ModelTarget) -> CircuitBreaker:
        breaker = self._breakers.get(target)
        if breaker is None:
            breaker = SharedBreaker(
                self,
                target,
                failure_threshold=self._failure_threshold,
                cooldown_seconds=self._cooldown_seconds,
                clock=self._clock,
            )
            self._breakers[target] = breaker
        return breaker

    async def open_target(self, key: str, hold_seconds: float) -> None:
        hold_ms = max(1, int(hold_seconds * 1000))
        await self.state.call(
            "breaker",
            self._open_script(keys=[key, key + ":probe"], args=[hold_ms, self.cooldown_ms]),
        )

    async def close_target(self, key: str) -> None:
        await self.state.call("breaker", self.state.client.delete(key, key + ":probe"))

    def send(self, write: object) -> None:
        """Tell the others in the background (the attempt that learned it does not wait)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            close = getattr(write, "close", None)
            if close is not None:
                close()
            return
        task = loop.create_task(self._quietly(write))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def flush(self) -> None:
        """Wait for the writes under way (tests, and closing)."""
        while self._pending:
            await asyncio.gather(*self._pending)

    @staticmethod
    async def _quietly(write: object) -> None:
        # A failure is counted and logged by RedisState; this instance's breaker still decides.
        with contextlib.suppress(SharedStateUnavailableError):
            await write  # type: ignore[misc]
