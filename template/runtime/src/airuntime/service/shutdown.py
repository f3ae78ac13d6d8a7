"""Graceful shutdown. uvicorn, on SIGTERM, stops accepting connections and waits (up to its
graceful timeout) for the open ones; this module lets the app know at once, so open streams
end with a final event instead of running until they are cut, and /readyz says so."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from types import FrameType

HANDLED = (signal.SIGTERM, signal.SIGINT)

Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


class Drain:
    """Set once shutdown begins; streams wait on `event` next to their upstream."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    @property
    def draining(self) -> bool:
        return self.event.is_set()

    def begin(self) -> None:
        self.event.set()


def drain_on_signals(drain: Drain, loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """Chain a handler before the server's own SIGTERM/SIGINT handlers (installed by then:
    uvicorn installs its own before the app starts). Returns the undo."""
    previous: dict[int, Handler] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(drain.begin)
        before = previous.get(signum)
        if callable(before):
            before(signum, frame)

    for sig in HANDLED:
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread (a test server in a thread): nothing to chain
            return lambda: None

    def undo() -> None:
        for sig, before in previous.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, before if before is not None else signal.SIG_DFL)

    return undo
