"""The one interface every model client implements: providers, the mock and the wrappers.

Because the resilient client wraps any `LLMClient` and is itself one, features depend on this
protocol only, and tests run the production code paths on the mock provider.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from airuntime.types import Chunk, EmbeddingRequest, EmbeddingResponse, LLMRequest, LLMResponse


@runtime_checkable
class LLMClient(Protocol):
    """A model client. Implementations raise only `llm.errors.LLMError` subclasses."""

    @property
    def provider(self) -> str:
        """Provider name used in logs, metrics and price lookups (e.g. "openai", "mock")."""
        ...

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Run the request to completion."""
        ...

    def stream(self, request: LLMRequest) -> AsyncIterator[Chunk]:
        """Yield the response as chunks; the last one carries finish reason and usage."""
        ...

    async def aclose(self) -> None:
        """Release connections. Safe to call more than once."""
        ...


@runtime_checkable
class EmbeddingClient(Protocol):
    """A client that also turns texts into vectors (the OpenAI adapter, the mock, the resilient
    client). A separate protocol, so a provider without an embeddings API (Anthropic) is still a
    complete `LLMClient`."""

    @property
    def provider(self) -> str: ...

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """One vector per text, in order. Raises only `LLMError` subclasses."""
        ...
