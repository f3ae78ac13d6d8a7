"""Server-Sent Events: the framing, and a reader that waits for the next chunk of a stream
with a deadline, so the writer can send a heartbeat while the model is quiet and stop when
the server drains, without cancelling the upstream call for either.

The upstream is read one chunk ahead in its own task. When the reader goes away (the client
disconnected, the server is stopping), `abandon()` cancels that task without awaiting it: the
stream's own clean-up (settling the budget reservation, reporting the call) runs in it, so it
runs even while the request's task is being cancelled.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator, Mapping
from typing import Any, Generic, TypeVar

import orjson

T = TypeVar("T")

HEARTBEAT = b": heartbeat\n\n"
MEDIA_TYPE = "text/event-stream"
# Proxies must pass events through as they come (nginx buffers unless told otherwise).
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

# Clean-up tasks of abandoned streams, kept referenced until they finish.
_CLOSING: set[asyncio.Future[Any]] = set()


def sse_event(event: str, data: Mapping[str, Any]) -> bytes:
    """One event: `event: <name>` and its data as one line of JSON."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def sse_data(data: Mapping[str, Any]) -> bytes:
    """One unnamed event, as OpenAI's streams send them: only a `data:` line of JSON."""
    return b"data: " + orjson.dumps(data) + b"\n\n"


# The end of an OpenAI-style stream.
DONE = b"data: [DONE]\n\n"


class Signal(enum.Enum):
    IDLE = "idle"  # nothing within the wait: time for a heartbeat
    END = "end"  # the stream is finished
    STOPPED = "stopped"  # the stop event was set (the server is draining)


class StreamReader(Generic[T]):
    def __init__(self, source: AsyncIterator[T], stop: asyncio.Event | None = None) -> None:
        self._source = source
        self._stop = stop
        self._pending: asyncio.Future[T] | None = None
        self._stop_waiter: asyncio.Future[Any] | None = None
        self._done = False

    async def next(self, wait: float) -> T | Signal:
        """The next item, or a signal: IDLE after `wait` seconds without one, END, STOPPED.
        An error of the stream is raised."""
        if self._done:
            return Signal.END
        pending = self._pending
        if pending is None:
            pending = self._pending = asyncio.ensure_future(anext(self._source))
        if not pending.done():
            waiters: set[asyncio.Future[Any]] = {pending}
            if self._stop is not None:
                waiter = self._stop_waiter
                if waiter is None:
                    waiter = self._stop_waiter = asyncio.ensure_future(self._stop.wait())
                waiters.add(waiter)
            await asyncio.wait(waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            if not pending.done():
                return (
                    Signal.STOPPED
                    if self._stop is not None and self._stop.is_set()
                    else Signal.IDLE
                )
        self._pending = None
        try:
            return pending.result()
        except StopAsyncIteration:
            self._finish()
            return Signal.END
        except BaseException:
            self._finish()
            raise

    def abandon(self) -> asyncio.Future[Any] | None:
        """Stop reading: cancel the chunk in flight (or close the stream) without waiting;
        returns the clean-up to await when the caller can (it is not being cancelled)."""
        if self._done:
            return None
        self._finish()
        pending, self._pending = self._pending, None
        if pending is not None and not pending.done():
            pending.cancel()
            _keep(pending)
            return pending
        close = getattr(self._source, "aclose", None)
        if close is None:
            return None
        closing: asyncio.Future[Any] = asyncio.ensure_future(close())
        _keep(closing)
        return closing

    async def stop(self) -> None:
        """Stop reading and wait until the stream has cleaned up (settled, reported)."""
        cleanup = self.abandon()
        if cleanup is not None:
            await asyncio.wait({cleanup})

    def _finish(self) -> None:
        self._done = True
        if self._stop_waiter is not None:
            self._stop_waiter.cancel()
            self._stop_waiter = None


def _keep(task: asyncio.Future[Any]) -> None:
    _CLOSING.add(task)
    task.add_done_callback(_forget)


def _forget(task: asyncio.Future[Any]) -> None:
    _CLOSING.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: an upstream error after the reader left is not news
