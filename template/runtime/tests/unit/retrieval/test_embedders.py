"""Embedders: the offline hashing embedder is deterministic and lexically meaningful; the cache
spares re-embedding; the model embedder batches, prices and checks shapes."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from airuntime.model.hashing import hashed_vector
from airuntime.model.mock import MockLLM
from airuntime.resilience.pricing import PriceTable
from airuntime.retrieval.embedders import (
    CachedEmbedder,
    EmbeddingCache,
    HashingEmbedder,
    ModelEmbedder,
    Vectors,
)
from airuntime.types import EmbeddingRequest, EmbeddingResponse


def cosine(a: str, b: str) -> float:
    return float(np.dot(hashed_vector(a), hashed_vector(b)))


def test_hashing_is_deterministic_and_unit_length() -> None:
    first = hashed_vector("Refunds are issued within five business days.")
    assert first == hashed_vector("Refunds are issued within five business days.")
    assert np.isclose(np.linalg.norm(first), 1.0)
    assert hashed_vector("...", 8) == [0.0] * 8  # no words, no direction


def test_lexically_related_texts_are_closer_than_unrelated_ones() -> None:
    question = "How long does a refund take?"
    related = "Refunds take five business days to reach your card."
    unrelated = "The office coffee machine is on the third floor."
    assert cosine(question, related) > 0.2
    assert cosine(question, related) > 3 * abs(cosine(question, unrelated))


def test_inflections_share_trigrams() -> None:
    assert cosine("indexing", "index") > 0.4


async def test_the_hashing_embedder_gives_float32_rows_and_costs_nothing() -> None:
    embedder = HashingEmbedder(dimensions=64)
    rows = await embedder.embed(["one text", "another text"])
    assert rows.shape == (2, 64)
    assert rows.dtype == np.float32
    assert embedder.name == "hashing-64"
    assert embedder.cost == Decimal(0)


class CountingEmbedder(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__(dimensions=32)
        self.embedded: list[str] = []

    async def embed(self, texts: Sequence[str]) -> Vectors:
        self.embedded.extend(texts)
        return await super().embed(texts)


async def test_the_cache_embeds_each_text_once_even_across_processes(tmp_path: Path) -> None:
    inner = CountingEmbedder()
    cache = EmbeddingCache(tmp_path / "cache" / "embeddings.sqlite")
    embedder = CachedEmbedder(inner, cache)
    first = await embedder.embed(["alpha", "beta"])
    second = await embedder.embed(["beta", "gamma", "alpha"])
    assert inner.embedded == ["alpha", "beta", "gamma"]
    assert (cache.hits, cache.misses) == (2, 3)
    assert np.array_equal(second[0], first[1])
    cache.close()
    reopened = CachedEmbedder(inner, EmbeddingCache(tmp_path / "cache" / "embeddings.sqlite"))
    again = await reopened.embed(["gamma"])
    assert inner.embedded == ["alpha", "beta", "gamma"]  # served from the file
    assert np.array_equal(again[0], second[1])
    assert (reopened.name, reopened.dimensions, reopened.cost) == ("hashing-32", 32, Decimal(0))
    reopened.cache.close()


async def test_the_model_embedder_batches_prices_and_normalises() -> None:
    mock = MockLLM(provider="openai")
    embedder = ModelEmbedder(
        mock,
        model="text-embedding-3-small",
        dimensions=16,
        provider="openai",
        pricing=PriceTable.load(),
        batch_size=2,
    )
    texts = ["a refund", "two words", "three more words"]
    rows = await embedder.embed(texts)
    assert [len(request.texts) for request in mock.embedding_requests] == [2, 1]
    assert rows.shape == (3, 16)
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-6)
    # mock tokens: 2 + 3 (batch 1) + 4 (batch 2), at $0.02 a million
    assert embedder.cost == Decimal(9) * Decimal("0.02") / Decimal(1_000_000)
    assert embedder.name == "openai/text-embedding-3-small@16"


class WrongSize:
    provider = "openai"

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        return EmbeddingResponse(
            vectors=tuple((1.0, 0.0) for _ in request.texts), model=request.model, provider="x"
        )


async def test_vectors_of_the_wrong_size_are_refused_with_the_setting_to_fix() -> None:
    embedder = ModelEmbedder(WrongSize(), dimensions=4, provider="openai")
    with pytest.raises(ValueError, match="EMBEDDING_DIMENSIONS"):
        await embedder.embed(["x"])


async def test_the_embedder_and_the_mock_give_the_same_vectors() -> None:
    text = "Refunds take five business days, refunds of gift cards none."
    rows = await HashingEmbedder(dimensions=128).embed([text, "..."])
    assert np.allclose(rows[0], hashed_vector(text, 128), atol=1e-6)
    assert not rows[1].any()
