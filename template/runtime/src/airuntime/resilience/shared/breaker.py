"""Circuit breakers whose open state every instance shares.

Each instance keeps its own breaker (it counts its own consecutive failures), and when one
opens (after the threshold, or at once on a 429 for max(Retry-After, cooldown)) it writes
"open until" to Redis and publishes the target's key on the board's channel. Before an attempt
each instance asks Redis too: while a target is open anywhere, nobody sends to it. After the
cooldown one instance, whichever takes the probe key first, sends the probe; its success
closes the target for all. The keys expire a cooldown after the time they hold.

Asking Redis before every attempt would cost each attempt a round trip (at 100 calls in
flight, most of the throughput), so a "closed" answer is kept for a few milliseconds
(`RedisConfig.breaker_closed_cache_seconds`), and dropped at once when any instance publishes
that it opened the target. It is kept only while this instance is subscribed, and only if no
opening was published while the question was under way; when the subscription is lost,
everything kept is dropped and every attempt asks until it is back. So an opening elsewhere
reaches this instance in one publish (about a round trip), and at worst, if a message were
lost without the connection failing, in the few milliseconds kept.

If Redis fails, the instance's own breakers decide alone (counted in `errors["breaker"]`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from redis.exceptions import RedisError

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

# Open until now + ARGV[1] ms (never shortening a longer hold); keys live a cooldown longer;
# the key is published on the channel ARGV[3] (the others drop the "closed" they keep).
_OPEN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
local held = tonumber(redis.call('GET', KEYS[1]) or '0')
if held > until_ms then until_ms = held end
local ttl = until_ms - now + tonumber(ARGV[2])
redis.call('SET', KEYS[1], string.format('%.0f', until_ms), 'PX', string.format('%.0f', ttl))
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[3], KEYS[1])
return until_ms
"""
# After a lost subscription, wait this long before subscribing again (attempts ask meanwhile).
RESUBSCRIBE_SECONDS = 1.0
# The longest one wait for an opening's message lasts (see _listen).
LISTEN_POLL_SECONDS = 0.1


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
        self._closed_until = 0.0  # time.monotonic() until which Redis's "closed" is kept
        self._refresh_at = 0.0  # past this, the next caller has it checked in the background
        self._refreshing: asyncio.Task[None] | None = None
        self._openings = 0  # openings published (or subscriptions lost) for this target

    async def aallow(self) -> bool:
        """Open anywhere means closed to this caller; otherwise this instance's breaker.

        A "closed" answer kept from a moment ago (see the module) saves the round trip; past
        half its time, one caller has it checked again in the background, so that under
        steady traffic nobody waits for Redis while the target stays closed. Callers asking
        at the same time share one round trip (at 100 calls in flight, one question instead
        of 100); only the caller that asked can be granted the probe.
        """
        now = time.monotonic()
        if now < self._closed_until:
            if now >= self._refresh_at and self._refreshing is None:
                self._refreshing = asyncio.get_running_loop().create_task(self._refresh())
            return self.allow()
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
        board = self._board
        # Keep the answer only if subscribed before asking and no opening came meanwhile
        # (the message and the reply travel on different connections, in either order).
        subscribed, openings = board.subscribed(), self._openings
        try:
            reply = int(
                await board.state.call(
                    "breaker",
                    board.allow_script(
                        keys=[self._key, self._key + ":probe"], args=[board.cooldown_ms]
                    ),
                )
            )
        except SharedStateUnavailableError:
            return None
        if reply == CLOSED and subscribed and openings == self._openings:
            self._keep_closed()
        return reply

    async def _refresh(self) -> None:
        """Is the target still closed on Redis? Only reads: a probe is never taken here,
        where no attempt would use it."""
        board = self._board
        subscribed, openings = board.subscribed(), self._openings
        try:
            held = await board.state.call("breaker", board.state.client.exists(self._key))
        except SharedStateUnavailableError:
            held = 1
        finally:
            self._refreshing = None
        if held:  # open (or its probe's time) somewhere: the next caller asks
            self._closed_until = 0.0
        elif subscribed and openings == self._openings:
            self._keep_closed()

    def _keep_closed(self) -> None:
        now = time.monotonic()
        self._closed_until = now + self._board.closed_cache_seconds
        self._refresh_at = now + self._board.closed_cache_seconds / 2

    def opened_elsewhere(self) -> None:
        """An opening was published (or may have been missed): ask Redis next time."""
        self._closed_until = 0.0
        self._openings += 1

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
            self.opened_elsewhere()
            self._board.send(self._board.open_target(self._key, hold))
        elif probing and error.retryable:  # the shared probe failed: open again for everyone
            self.opened_elsewhere()
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
        self.closed_cache_seconds = state.config.breaker_closed_cache_seconds
        self.channel = state.key("breaker-opened")
        self.allow_script = state.client.register_script(_ALLOW)
        self._open_script = state.client.register_script(_OPEN)
        self._pending: set[asyncio.Task[object]] = set()
        self._by_key: dict[str, SharedBreaker] = {}
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = False

    def get(self, target: ModelTarget) -> CircuitBreaker:
        breaker = self._breakers.get(target)
        if breaker is None:
            shared = SharedBreaker(
                self,
                target,
                failure_threshold=self._failure_threshold,
                cooldown_seconds=self._cooldown_seconds,
                clock=self._clock,
            )
            self._breakers[target] = self._by_key[shared._key] = breaker = shared
        return breaker

    async def open_target(self, key: str, hold_seconds: float) -> None:
        hold_ms = max(1, int(hold_seconds * 1000))
        await self.state.call(
            "breaker",
            self._open_script(
                keys=[key, key + ":probe"], args=[hold_ms, self.cooldown_ms, self.channel]
            ),
        )

    # -- the openings the others publish ---------------------------------------------------------

    def subscribed(self) -> bool:
        """Is this instance hearing the openings now? Starts listening (on the running loop)
        when it is not: the first answers are not kept, until the subscription is made."""
        if self.closed_cache_seconds <= 0:
            return False  # nothing is kept: no need to hear anything
        listener = self._listener
        if listener is None or listener.done():
            self._listener = asyncio.get_running_loop().create_task(self._listen())
            return False
        return self._subscribed

    async def _listen(self) -> None:
        while True:
            subscriber = self.state.subscriber()
            events = subscriber.pubsub(ignore_subscribe_messages=True)
            try:
                await events.subscribe(self.channel)
                self._subscribed = True
                self.state.worked("breaker_events")
                while True:
                    # Bounded waits, not listen(): redis-py (8.1) can swallow a cancellation
                    # that arrives mid-read and read on, which would hang closing the loop;
                    # so each wait ends, and a cancellation seen here ends the listening.
                    _raise_if_cancelling()
                    message = await events.get_message(
                        ignore_subscribe_messages=True, timeout=LISTEN_POLL_SECONDS
                    )
                    breaker = None if message is None else self._by_key.get(message["data"])
                    if breaker is not None:
                        breaker.opened_elsewhere()
            except (RedisError, OSError) as error:
                _raise_if_cancelling()  # its TimeoutError can stand for our cancellation
                self.state.failed("breaker_events", error)
            finally:
                # Whatever was published while not hearing is lost: drop what is kept.
                self._subscribed = False
                for breaker in self._by_key.values():
                    breaker.opened_elsewhere()
                with contextlib.suppress(RedisError, OSError):
                    await events.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py
                with contextlib.suppress(RedisError, OSError):
                    await subscriber.aclose()
            await asyncio.sleep(RESUBSCRIBE_SECONDS)

    async def aclose(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None and listener.get_loop() is asyncio.get_running_loop():
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        for breaker in self._by_key.values():
            if breaker._refreshing is not None:
                breaker._refreshing.cancel()
        await self.flush()

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


def _raise_if_cancelling() -> None:
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
