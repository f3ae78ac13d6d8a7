"""A per-attempt timeout that costs nothing when the attempt never waits.

`asyncio.timeout` schedules a timer on entry and cancels it on exit, whether or not the awaited
call ever suspends (about 5 us of every attempt). A timeout can only act where a coroutine
suspends, so `run_until` runs the call up to its first suspension outside any timer, and arms
`asyncio.timeout_at` with the same deadline only if it did suspend: a call that answers without
waiting (a cache, the mock, a local model) never touches the event loop's timers, and one that
waits is timed out exactly as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from types import CoroutineType
from typing import Any, TypeVar, cast

T = TypeVar("T")


async def run_until(call: Coroutine[Any, Any, T], when: float) -> T:
    """`await call` under `asyncio.timeout_at(when)` (TimeoutError once the loop's clock passes
    `when` while the call waits), with the timer armed at the call's first suspension."""
    if type(call) is not CoroutineType:  # another awaitable: no first step to take apart
        async with asyncio.timeout_at(when):
            return await call
    try:
        suspended_on = call.send(None)
    except StopIteration as finished:
        return cast("T", finished.value)
    try:
        async with asyncio.timeout_at(when):
            result: T = await _Resumed(call, suspended_on)
            return result
    finally:
        call.close()  # a no-op once it has finished; if the timer could not be armed, it ends it


class _Resumed:
    """Awaiting it carries on a coroutine already started, as `await` would have carried it
    on: what it yields goes to the task, what the task sends or throws goes back to it."""

    __slots__ = ("_call", "_suspended_on")

    def __init__(self, call: Coroutine[Any, Any, Any], suspended_on: Any) -> None:
        self._call = call
        self._suspended_on = suspended_on

    def __await__(self) -> Generator[Any, Any, Any]:
        call, suspended_on = self._call, self._suspended_on
        while True:
            try:
                sent = yield suspended_on
            except GeneratorExit:
                call.close()
                raise
            except BaseException as thrown:  # noqa: BLE001 - handed on to the call, as `await` does
                try:
                    suspended_on = call.throw(thrown)
                except StopIteration as finished:
                    return finished.value
            else:
                try:
                    suspended_on = call.send(sent)
                except StopIteration as finished:
                    return finished.value
