"""Incremental indexing, and retrieval of a query's chunks.

`Indexer.ingest` compares each document's content hash with the stored one: unchanged
documents are skipped (nothing embedded), new and changed ones are chunked, embedded and
stored in place of their old chunks, and documents no longer in the repository are removed.
A document that cannot be read is reported and left as it was stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

import numpy as np

from airuntime.retrieval.chunking import ChunkingPolicy, chunk_document
from airuntime.retrieval.documents import DocumentRepository
from airuntime.retrieval.embedders import Embedder
from airuntime.retrieval.errors import DocumentError
from airuntime.retrieval.stores import Hit, VectorStore

Change = Literal["new", "changed", "skipped", "removed", "failed"]
Progress = Callable[[str, Change], None]
"""Called once per document (its source and what happened to it)."""


@dataclass(slots=True)
class IngestReport:
    new: int = 0
    changed: int = 0
    skipped: int = 0
    removed: int = 0
    chunks: int = 0  # chunks embedded and stored by this run
    failures: list[str] = field(default_factory=list)  # one line per unreadable document
    cost: Decimal = Decimal(0)

    def to_dict(self) -> dict[str, object]:
        return {
            "new": self.new,
            "changed": self.changed,
            "skipped": self.skipped,
            "removed": self.removed,
            "chunks": self.chunks,
            "failed": len(self.failures),
            "failures": list(self.failures),
            "cost_usd": str(self.cost),
        }


class Indexer:
    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        policy: ChunkingPolicy | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.policy = policy if policy is not None else ChunkingPolicy()

    async def ingest(
        self, repository: DocumentRepository, progress: Progress | None = None
    ) -> IngestReport:
        report = IngestReport()
        cost_before = self.embedder.cost
        stored = await self.store.document_hashes()
        sources = repository.sources()
        for source in sources:
            change = await self._one(repository, source, stored.get(source), report)
            if progress is not None:
                progress(source, change)
        for source in sorted(set(stored) - set(sources)):
            await self.store.remove_document(source)
            report.removed += 1
            if progress is not None:
                progress(source, "removed")
        report.cost = self.embedder.cost - cost_before
        return report

    async def _one(
        self, repository: DocumentRepository, source: str, stored: str | None, report: IngestReport
    ) -> Change:
        try:
            document = repository.load(source)
        except DocumentError as error:
            report.failures.append(str(error))
            return "failed"
        if stored == document.content_hash:
            report.skipped += 1
            return "skipped"
        chunks = chunk_document(document, self.policy)
        vectors = (
            await self.embedder.embed([chunk.text for chunk in chunks])
            if chunks
            else np.zeros((0, self.embedder.dimensions), dtype=np.float32)
        )
        await self.store.replace_document(source, document.content_hash, chunks, vectors)
        report.chunks += len(chunks)
        if stored is None:
            report.new += 1
            return "new"
        report.changed += 1
        return "changed"


class Retriever:
    """A query's most similar chunks."""

    def __init__(self, store: VectorStore, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder

    async def search(self, query: str, k: int) -> list[Hit]:
        vectors = await self.embedder.embed([query])
        return await self.store.search(vectors[0], k)
