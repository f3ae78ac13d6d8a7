"""Embedders: texts to unit vectors (float32 rows of a numpy array).

- `ModelEmbedder` calls the model boundary's `embed` (the resilient client, so retries, the
  breaker, limits, the budget and the logs apply), in batches, and prices what it used.
- `HashingEmbedder` is the offline embedder: feature hashing of words, word pairs and
  character trigrams (airuntime.model.hashing), deterministic and lexically meaningful.
- `CachedEmbedder` keeps every vector by the hash of (embedder, text) in SQLite, so indexing
  unchanged text again costs nothing.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from airuntime.model.client import EmbeddingClient
from airuntime.model.hashing import DEFAULT_DIMENSIONS, hashed_features
from airuntime.resilience.pricing import PriceTable
from airuntime.types import EmbeddingRequest

Vectors = npt.NDArray[np.float32]
DEFAULT_EMBEDDING_MODEL = "text-embedding-3-small"
DEFAULT_BATCH_SIZE = 128
ZERO = Decimal(0)


class Embedder(Protocol):
    """Turns texts into unit vectors of one fixed size."""

    @property
    def name(self) -> str:
        """What made the vectors ("openai/text-embedding-3-small", "hashing-384"): stored with
        them, so a store never mixes vectors of two spaces."""
        ...

    @property
    def dimensions(self) -> int: ...

    @property
    def cost(self) -> Decimal:
        """US dollars spent so far."""
        ...

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """One row per text, in order, each of unit length (or zero for a text of no words)."""
        ...


def normalized(rows: Vectors) -> Vectors:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    unit: Vectors = (rows / norms).astype(np.float32, copy=False)
    return unit


class HashingEmbedder:
    """The offline embedder: no model, no network, the same vectors in every run."""

    def __init__(self, dimensions: int = DEFAULT_DIMENSIONS) -> None:
        self._dimensions = dimensions

    @property
    def name(self) -> str:
        return f"hashing-{self._dimensions}"

    @property
    def dimensions(self) -> int:
        return self._dimensions

    @property
    def cost(self) -> Decimal:
        return ZERO

    async def embed(self, texts: Sequence[str]) -> Vectors:
        rows = np.zeros((len(texts), self._dimensions), dtype=np.float64)
        for index, text in enumerate(texts):
            indexes, weights = hashed_features(text, self._dimensions)
            if indexes:  # the same sums as hashed_vector, added up by numpy
                rows[index] = np.bincount(indexes, weights, minlength=self._dimensions)
        return normalized(rows.astype(np.float32))


class ModelEmbedder:
    """Vectors from an embedding model through an `EmbeddingClient` (the resilient client)."""

    def __init__(
        self,
        client: EmbeddingClient,
        *,
        model: str = DEFAULT_EMBEDDING_MODEL,
        dimensions: int,
        provider: str,
        pricing: PriceTable | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self._client = client
        self._model = model
        self._dimensions = dimensions
        self._provider = provider
        self._pricing = pricing
        self._batch_size = batch_size
        self._cost = ZERO

    @property
    def name(self) -> str:
        return f"{self._provider}/{self._model}@{self._dimensions}"

    @property
    def dimensions(self) -> int:
        return self._dimensions

    @property
    def cost(self) -> Decimal:
        return self._cost

    async def embed(self, texts: Sequence[str]) -> Vectors:
        rows = np.zeros((len(texts), self._dimensions), dtype=np.float32)
        for start in range(0, len(texts), self._batch_size):
            batch = tuple(texts[start : start + self._batch_size])
            response = await self._client.embed(
                EmbeddingRequest(model=self._model, texts=batch, dimensions=self._dimensions)
            )
            got = np.asarray(response.vectors, dtype=np.float32)
            if got.shape != (len(batch), self._dimensions):
                raise ValueError(
                    f"{self.name} answered vectors of shape {got.shape} for {len(batch)} texts of "
                    f"{self._dimensions} dimensions: set EMBEDDING_DIMENSIONS to the model's size"
                )
            rows[start : start + len(batch)] = got
            if self._pricing is not None:
                price = self._pricing.cost(self._provider, self._model, response.usage)
                self._cost += price if price is not None else ZERO
        return normalized(rows)


class EmbeddingCache:
    """Vectors by content hash in one SQLite file (or in memory with ":memory:")."""

    def __init__(self, path: Path | str) -> None:
        if isinstance(path, Path):
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path))
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS embeddings (key TEXT PRIMARY KEY, vector BLOB NOT NULL)"
        )
        self.hits = 0
        self.misses = 0

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for start in range(0, len(keys), 500):  # SQLite's limit on bound parameters
            part = keys[start : start + 500]
            marks = ",".join("?" * len(part))
            # Only ? marks are formatted in: the keys are bound parameters.
            query = f"SELECT key, vector FROM embeddings WHERE key IN ({marks})"  # noqa: S608
            found.update(self._db.execute(query, part).fetchall())
        return found

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?)", items)

    def close(self) -> None:
        self._db.close()


class CachedEmbedder:
    """An embedder whose vectors are kept by the hash of (embedder name, text)."""

    def __init__(self, inner: Embedder, cache: EmbeddingCache) -> None:
        self.inner = inner
        self.cache = cache

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dimensions(self) -> int:
        return self.inner.dimensions

    @property
    def cost(self) -> Decimal:
        return self.inner.cost

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self.inner.name}\0{text}".encode()).hexdigest()

    async def embed(self, texts: Sequence[str]) -> Vectors:
        keys = [self._key(text) for text in texts]
        found = self.cache.get_many(keys)
        missing = [index for index, key in enumerate(keys) if key not in found]
        self.cache.hits += len(texts) - len(missing)
        self.cache.misses += len(missing)
        rows = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for index, key in enumerate(keys):
            if key in found:
                rows[index] = np.frombuffer(found[key], dtype=np.float32)
        if missing:
            fresh = await self.inner.embed([texts[index] for index in missing])
            rows[missing] = fresh
            self.cache.put_many([(keys[i], fresh[n].tobytes()) for n, i in enumerate(missing)])
        return rows
