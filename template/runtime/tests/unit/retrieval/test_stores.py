"""The embedded store: exact results, documents replaced and removed, persistence, and one
embedder per store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from airuntime.retrieval.chunking import DocumentChunk
from airuntime.retrieval.embedders import Vectors, normalized
from airuntime.retrieval.errors import StoreError
from airuntime.retrieval.stores import EmbeddedStore, top_k

DIMENSIONS = 16


def chunks(source: str, count: int) -> list[DocumentChunk]:
    return [
        DocumentChunk(f"{source}-{i}", source, source.title(), "", i, f"{source} {i}", 2)
        for i in range(count)
    ]


def unit_rows(count: int, seed: int) -> Vectors:
    rows = np.random.default_rng(seed).normal(size=(count, DIMENSIONS)).astype(np.float32)
    return normalized(rows)


async def opened(path: Path | str) -> EmbeddedStore:
    store = EmbeddedStore(path)
    await store.open("hashing-16", DIMENSIONS)
    return store


async def test_search_is_exact_brute_force_best_first(tmp_path: Path) -> None:
    store = await opened(tmp_path / "store.sqlite")
    vectors = {"a": unit_rows(30, 1), "b": unit_rows(20, 2)}
    for source, rows in vectors.items():
        await store.replace_document(source, f"hash-{source}", chunks(source, len(rows)), rows)
    query = unit_rows(1, 3)[0]
    hits = await store.search(query, 5)
    everything = np.vstack([vectors["a"], vectors["b"]])
    ids = [f"a-{i}" for i in range(30)] + [f"b-{i}" for i in range(20)]
    expected = [ids[i] for i in np.argsort(-(everything @ query))[:5]]
    assert [hit.chunk.id for hit in hits] == expected
    assert hits[0].score >= hits[-1].score
    assert np.isclose(hits[0].score, float(np.max(everything @ query)))
    assert hits[0].chunk.text.startswith(hits[0].chunk.source)
    assert await store.count() == 50
    await store.aclose()


async def test_replacing_and_removing_documents(tmp_path: Path) -> None:
    store = await opened(tmp_path / "store.sqlite")
    await store.replace_document("a", "h1", chunks("a", 3), unit_rows(3, 1))
    await store.replace_document("b", "h2", chunks("b", 2), unit_rows(2, 2))
    await store.replace_document("a", "h3", chunks("a", 1), unit_rows(1, 3))
    assert await store.document_hashes() == {"a": "h3", "b": "h2"}
    assert await store.count() == 3
    await store.remove_document("b")
    hits = await store.search(unit_rows(1, 4)[0], 10)
    assert [hit.chunk.id for hit in hits] == ["a-0"]
    await store.aclose()


async def test_the_store_persists_and_keeps_to_one_embedder(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "store.sqlite"
    store = await opened(path)
    await store.replace_document("a", "h", chunks("a", 2), unit_rows(2, 1))
    await store.aclose()
    again = await opened(path)
    assert await again.count() == 2
    await again.aclose()
    other = EmbeddedStore(path)
    with pytest.raises(StoreError, match="holds vectors made by hashing-16, not openai/x"):
        await other.open("openai/x", DIMENSIONS)


async def test_an_empty_store_finds_nothing_and_an_unopened_one_says_so(tmp_path: Path) -> None:
    store = await opened(":memory:")
    assert await store.search(unit_rows(1, 1)[0], 3) == []
    await store.aclose()
    with pytest.raises(StoreError, match="call open"):
        await store.count()


async def test_a_file_that_is_not_a_store_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "not.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="is not a usable store"):
        await EmbeddedStore(path).open("hashing-16", DIMENSIONS)


def test_top_k_orders_the_best_and_handles_k_past_the_size() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.7], dtype=np.float32)
    assert top_k(scores, 2).tolist() == [1, 3]
    assert top_k(scores, 10).tolist() == [1, 3, 2, 0]
