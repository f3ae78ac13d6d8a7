"""PostgreSQL + pgvector: the store for scale-out (many chunks, several service instances).

Chunks live in one table with a `vector(d)` column and an HNSW index on cosine distance
(approximate: `ef_search` trades latency for recall; the benchmark measures both). Connections
come from a psycopg 3 async pool, so concurrent requests share a few connections. Needs the
runtime's `pgvector` extra and a database where `CREATE EXTENSION vector` is allowed (or done).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from pgvector.psycopg import register_vector_async
from psycopg import AsyncConnection, sql
from psycopg.errors import Error as PsycopgError
from psycopg_pool import AsyncConnectionPool

from airuntime.retrieval.chunking import DocumentChunk
from airuntime.retrieval.embedders import Vectors
from airuntime.retrieval.errors import StoreError
from airuntime.retrieval.stores import Hit, check_embedder

DEFAULT_TABLE = "rag"
DEFAULT_EF_SEARCH = 100
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")


class PgVectorStore:
    """Chunks in PostgreSQL tables `<table>_documents`, `<table>_chunks`, `<table>_meta`."""

    def __init__(
        self,
        url: str,
        *,
        table: str = DEFAULT_TABLE,
        min_connections: int = 1,
        max_connections: int = 10,
        ef_search: int = DEFAULT_EF_SEARCH,
        hnsw_m: int = 16,
        hnsw_ef_construction: int = 64,
    ) -> None:
        if not _IDENTIFIER.match(table):
            raise StoreError(
                f"the table name {table!r} is not a plain identifier: use lower-case letters, "
                "digits and _ (at most 41 characters)."
            )
        self.url = url
        self.table = table
        self.ef_search = ef_search
        self._hnsw = (hnsw_m, hnsw_ef_construction)
        self._pool = AsyncConnectionPool(
            url,
            min_size=min_connections,
            max_size=max_connections,
            open=False,
            configure=self._configure,
            kwargs={"autocommit": True},
        )
        self._dimensions = 0

    @staticmethod
    async def _configure(connection: AsyncConnection[Any]) -> None:
        await register_vector_async(connection)

    def _name(self, suffix: str) -> sql.Identifier:
        return sql.Identifier(f"{self.table}_{suffix}")

    async def open(self, embedder: str, dimensions: int) -> None:
        try:
            async with await AsyncConnection.connect(self.url, autocommit=True) as first:
                await first.execute("CREATE EXTENSION IF NOT EXISTS vector")
            await self._pool.open(wait=True, timeout=30)
            async with self._pool.connection() as connection:
                await self._create(connection, dimensions)
                stored = await (
                    await connection.execute(
                        sql.SQL("SELECT value FROM {} WHERE key = 'embedder'").format(
                            self._name("meta")
                        )
                    )
                ).fetchone()
                check_embedder(stored[0] if stored else None, embedder, f"table {self.table}")
                await connection.execute(
                    sql.SQL(
                        "INSERT INTO {} VALUES ('embedder', %s) ON CONFLICT (key) DO NOTHING"
                    ).format(self._name("meta")),
                    (embedder,),
                )
        except PsycopgError as error:
            raise StoreError(f"PostgreSQL store {self.table}: {_one_line(error)}") from None
        self._dimensions = dimensions

    async def _create(self, connection: AsyncConnection[Any], dimensions: int) -> None:
        m, ef_construction = self._hnsw
        statements = [
            sql.SQL("CREATE TABLE IF NOT EXISTS {} (key text PRIMARY KEY, value text NOT NULL)"),
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}"
                " (source text PRIMARY KEY, content_hash text NOT NULL)"
            ),
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (id text PRIMARY KEY, source text NOT NULL"
                " REFERENCES {} (source) ON DELETE CASCADE, title text NOT NULL,"
                " heading text NOT NULL, ordinal integer NOT NULL, text text NOT NULL,"
                " tokens integer NOT NULL, embedding vector({}) NOT NULL)"
            ),
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (source)"),
            sql.SQL(
                "CREATE INDEX IF NOT EXISTS {} ON {} USING hnsw (embedding vector_cosine_ops)"
                " WITH (m = {}, ef_construction = {})"
            ),
        ]
        names = [
            (self._name("meta"),),
            (self._name("documents"),),
            (self._name("chunks"), self._name("documents"), sql.Literal(dimensions)),
            (self._name("chunks_source"), self._name("chunks")),
            (
                self._name("chunks_hnsw"),
                self._name("chunks"),
                sql.Literal(m),
                sql.Literal(ef_construction),
            ),
        ]
        for statement, arguments in zip(statements, names, strict=True):
            await connection.execute(statement.format(*arguments))

    async def document_hashes(self) -> dict[str, str]:
        async with self._pool.connection() as connection:
            cursor = await connection.execute(
                sql.SQL("SELECT source, content_hash FROM {}").format(self._name("documents"))
            )
            return dict(await cursor.fetchall())

    async def replace_document(
        self, source: str, content_hash: str, chunks: Sequence[DocumentChunk], vectors: Vectors
    ) -> None:
        rows = [
            (c.id, c.source, c.title, c.heading, c.ordinal, c.text, c.tokens, vector)
            for c, vector in zip(chunks, np.asarray(vectors, dtype=np.float32), strict=True)
        ]
        async with self._pool.connection() as connection, connection.transaction():
            await connection.execute(
                sql.SQL("DELETE FROM {} WHERE source = %s").format(self._name("documents")),
                (source,),
            )
            await connection.execute(
                sql.SQL("INSERT INTO {} VALUES (%s, %s)").format(self._name("documents")),
                (source, content_hash),
            )
            async with connection.cursor() as cursor:
                await cursor.executemany(
                    sql.SQL(
                        "INSERT INTO {} (id, source, title, heading, ordinal, text, tokens,"
                        " embedding) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                    ).format(self._name("chunks")),
                    rows,
                )

    async def remove_document(self, source: str) -> None:
        async with self._pool.connection() as connection:
            await connection.execute(
                sql.SQL("DELETE FROM {} WHERE source = %s").format(self._name("documents")),
                (source,),
            )

    async def search(self, vector: Vectors, k: int) -> list[Hit]:
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        async with self._pool.connection() as connection, connection.transaction():
            # SET LOCAL: the setting ends with this transaction, not with the pooled connection.
            await connection.execute(
                sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(self.ef_search))
            )
            cursor = await connection.execute(
                sql.SQL(
                    "SELECT id, source, title, heading, ordinal, text, tokens,"
                    " 1 - (embedding <=> %s) AS score FROM {} ORDER BY embedding <=> %s LIMIT %s"
                ).format(self._name("chunks")),
                (query, query, k),
            )
            found = await cursor.fetchall()
        return [Hit(DocumentChunk(*row[:7]), float(row[7])) for row in found]

    async def count(self) -> int:
        async with self._pool.connection() as connection:
            cursor = await connection.execute(
                sql.SQL("SELECT count(*) FROM {}").format(self._name("chunks"))
            )
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def aclose(self) -> None:
        await self._pool.close()


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__
