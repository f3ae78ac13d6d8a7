"""One streamed attempt after its first chunk: the pieces that must live as long as the
stream (the concurrency slot, the budget reservation) and their settlement at the end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import NoReturn

from airuntime.errors import LLMError, ProviderTimeoutError, ServerError
from airuntime.resilience.accounting import Attempt, AttemptBooks
from airuntime.resilience.limits import Limits
from airuntime.types import Chunk, FinishReason, Usage


class OpenStream:
    """A provider stream, opened by `start()` once its first chunk has arrived.

    Holds the concurrency slot and the budget reservation until the stream ends, then settles
    at the real cost from the last chunk's usage (or, when the stream fails or ends without
    usage, at the reservation: the provider may have billed it).
    """

    def __init__(
        self,
        chunks: AsyncIterator[Chunk],
        attempt: Attempt,
        books: AttemptBooks,
        limits: Limits,
        *,
        timeout: Callable[[], float],
    ) -> None:
        self._chunks = chunks
        self._attempt = attempt
        self._books = books
        self._limits = limits
        self._timeout = timeout
        self._exit = AsyncExitStack()
        self._first: Chunk | None = None
        self._usage: Usage | None = None
        self._finish_reason: FinishReason | None = None
        self._model = attempt.target.model
        self._settled = False

    async def start(self) -> None:
        try:
            await self._exit.enter_async_context(self._limits.slot(self._attempt.tokens))
            self._first = await self._next()
        except StopAsyncIteration:
            await self._fail(
                ServerError(
                    "the stream ended before its first chunk",
                    provider=self._attempt.target.provider,
                    model=self._model,
                )
            )
        except LLMError as error:
            await self._fail(error)
        except BaseException:
            self._books.abandon(self._attempt)
            await self._close()
            raise

    async def chunks(self) -> AsyncIterator[Chunk]:
        if self._first is None:
            raise RuntimeError("start() must succeed before chunks() is read")
        yield self._first
        while True:
            try:
                chunk = await self._next()
            except StopAsyncIteration:
                break
            except LLMError as error:
                await self._fail(error)
            yield chunk
        self._settled = True
        self._books.succeed(
            self._attempt,
            self._usage,
            finish_reason=self._finish_reason,
            response_model=self._model,
        )

    async def _next(self) -> Chunk:
        timeout = self._timeout()
        try:
            async with asyncio.timeout(timeout):
                chunk = await anext(self._chunks)
        except TimeoutError:
            raise ProviderTimeoutError(
                f"no chunk within {timeout:.3g}s",
                provider=self._attempt.target.provider,
                model=self._model,
            ) from None
        if chunk.usage is not None:
            self._usage = chunk.usage
        if chunk.finish_reason is not None:
            self._finish_reason = chunk.finish_reason
        return chunk

    async def _fail(self, error: LLMError) -> NoReturn:
        self._settled = True
        self._books.fail(self._attempt, error)
        await self._close()
        raise error

    async def _close(self) -> None:
        close = getattr(self._chunks, "aclose", None)
        if close is not None:
            await close()
        await self._exit.aclose()

    async def __aenter__(self) -> OpenStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if not self._settled:  # the caller stopped reading, or was cancelled, mid-stream
            # The model was answering and may have billed what it sent: settle as a success
            # (at the reservation unless usage arrived), so nothing stays reserved and a
            # half-open breaker's probe is not left in flight forever.
            self._books.succeed(
                self._attempt,
                self._usage,
                finish_reason=self._finish_reason,
                response_model=self._model,
            )
        await self._close()
