"""Vector stores behind one interface, and the embedded default: exact search over numpy.

Why exact numpy search for the embedded store (and not sqlite-vec or LanceDB): at the sizes one
machine's documents reach (up to a few hundred thousand chunks) a brute-force matrix-vector
product through numpy's BLAS takes milliseconds, finds the true nearest chunks (recall 1.0, no
index to tune or rebuild), and needs no native extension beyond numpy: sqlite-vec's scan is
the same brute force without BLAS, and LanceDB brings pyarrow and its own file format for an
approximate index this size does not need. Chunks and vectors persist in one SQLite file; the
vectors are loaded into one float32 matrix when the store opens and after writes. Past that
size, or for several service instances sharing one index, use the pgvector store.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from airuntime.retrieval.chunking import DocumentChunk
from airuntime.retrieval.embedders import Vectors
from airuntime.retrieval.errors import StoreError


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved chunk and its cosine similarity to the query (-1 to 1)."""

    chunk: DocumentChunk
    score: float


class VectorStore(Protocol):
    """Chunks and their vectors, searchable by cosine similarity, kept per document."""

    async def open(self, embedder: str, dimensions: int) -> None:
        """Create what is missing; StoreError if the store holds vectors of another embedder."""
        ...

    async def document_hashes(self) -> dict[str, str]:
        """The content hash of every stored document, by source."""
        ...

    async def replace_document(
        self, source: str, content_hash: str, chunks: Sequence[DocumentChunk], vectors: Vectors
    ) -> None:
        """Store a document's chunks in place of any it had (one transaction)."""
        ...

    async def remove_document(self, source: str) -> None: ...

    async def search(self, vector: Vectors, k: int) -> list[Hit]:
        """The k most similar chunks, best first."""
        ...

    async def count(self) -> int:
        """How many chunks are stored."""
        ...

    async def aclose(self) -> None: ...


def check_embedder(stored: str | None, embedder: str, where: str) -> None:
    if stored is not None and stored != embedder:
        raise StoreError(
            f"{where} holds vectors made by {stored}, not {embedder}: vectors of two embedders "
            "cannot be compared; re-index into a new store or switch the embedder back."
        )


def top_k(scores: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.intp]:
    """The indices of the k highest scores, highest first (argpartition, then a sort of k)."""
    if k >= len(scores):
        return np.argsort(-scores, kind="stable")
    best = np.argpartition(-scores, k - 1)[:k]
    return best[np.argsort(-scores[best], kind="stable")]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (source TEXT PRIMARY KEY, content_hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    row INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL REFERENCES documents(source) ON DELETE CASCADE,
    title TEXT NOT NULL,
    heading TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    text TEXT NOT NULL,
    tokens INTEGER NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_source ON chunks(source);
"""


class EmbeddedStore:
    """Exact cosine search over a numpy matrix, persisted in one SQLite file."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._matrix: Vectors = np.zeros((0, 0), dtype=np.float32)
        self._rows: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._dirty = True
        self._dimensions = 0

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError("the store is not open: call open() first.")
        return self._db

    async def open(self, embedder: str, dimensions: int) -> None:
        if isinstance(self.path, Path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(self.path))
        try:
            # WAL with synchronous=NORMAL: one fsync per checkpoint rather than per document
            # written (a crash loses at most the last documents, which the next ingest redoes).
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.executescript(_SCHEMA)
            db.execute("PRAGMA foreign_keys = ON")
            stored = dict(db.execute("SELECT key, value FROM meta").fetchall())
            check_embedder(stored.get("embedder"), embedder, str(self.path))
            with db:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('embedder', ?)", (embedder,))
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('dimensions', ?)", (str(dimensions),)
                )
        except sqlite3.DatabaseError as error:
            db.close()
            raise StoreError(f"{self.path} is not a usable store: {error}.") from None
        except BaseException:
            db.close()
            raise
        self._db, self._dimensions, self._dirty = db, dimensions, True

    async def document_hashes(self) -> dict[str, str]:
        return dict(self._connection().execute("SELECT source, content_hash FROM documents"))

    async def replace_document(
        self, source: str, content_hash: str, chunks: Sequence[DocumentChunk], vectors: Vectors
    ) -> None:
        db = self._connection()
        rows = np.ascontiguousarray(vectors, dtype=np.float32)
        with db:
            db.execute("DELETE FROM documents WHERE source = ?", (source,))
            db.execute("INSERT INTO documents VALUES (?, ?)", (source, content_hash))
            db.executemany(
                "INSERT INTO chunks (id, source, title, heading, ordinal, text, tokens, vector)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (c.id, c.source, c.title, c.heading, c.ordinal, c.text, c.tokens, row.tobytes())
                    for c, row in zip(chunks, rows, strict=True)
                ],
            )
        self._dirty = True

    async def remove_document(self, source: str) -> None:
        with self._connection() as db:
            db.execute("DELETE FROM documents WHERE source = ?", (source,))
        self._dirty = True

    def _load(self) -> None:
        """The matrix and its row ids, read again after writes (once per batch of writes)."""
        found = self._connection().execute("SELECT row, vector FROM chunks ORDER BY row").fetchall()
        self._rows = np.fromiter((row for row, _ in found), dtype=np.int64, count=len(found))
        data = b"".join(vector for _, vector in found)
        self._matrix = np.frombuffer(data, dtype=np.float32).reshape(len(found), self._dimensions)
        self._dirty = False

    async def search(self, vector: Vectors, k: int) -> list[Hit]:
        if self._dirty:
            self._load()
        if not len(self._rows) or k <= 0:
            return []
        scores = self._matrix @ np.asarray(vector, dtype=np.float32).reshape(-1)
        best = top_k(scores, k)
        wanted = [int(self._rows[index]) for index in best]
        marks = ",".join("?" * len(wanted))
        # Only ? marks are formatted in: the rows are bound parameters.
        columns = "row, id, source, title, heading, ordinal, text, tokens"
        query = f"SELECT {columns} FROM chunks WHERE row IN ({marks})"  # noqa: S608
        by_row = {
            row[0]: DocumentChunk(*row[1:]) for row in self._connection().execute(query, wanted)
        }
        return [
            Hit(by_row[row], float(scores[index])) for row, index in zip(wanted, best, strict=True)
        ]

    async def count(self) -> int:
        (total,) = self._connection().execute("SELECT count(*) FROM chunks").fetchone()
        return int(total)

    async def aclose(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
