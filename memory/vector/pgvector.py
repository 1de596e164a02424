"""PostgreSQL with the pgvector extension: one table, an HNSW index per dimension (cosine).

The table ``memory_vector`` (namespace, id, dimension, embedding ``vector``, metadata ``jsonb``) is
created by the migration ``memory/0002_pgvector`` when the database is PostgreSQL. The column has no
fixed width, so an embedder of another dimension needs no new table: each dimension gets a partial
HNSW index over ``embedding::vector(N)`` (the migration makes the one for 384 dimensions, a store of
another dimension makes its own at start-up). A store refuses to start while the table holds
vectors of a different dimension than its embedder's.

The store talks to PostgreSQL through its own psycopg connection (autocommit), not Django's: vector
writes are not part of the caller's transaction — memory's services write them after commit.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from django.conf import settings

from memory.vector import Filter, Match, StoreStats, VectorItem, VectorStoreError, register_vector_store
from memory.vector.embedded import as_unit_vector, check_items
from memory.vector.filters import RANGE_OPERATORS, normalise_filter

TABLE = "memory_vector"
DEFAULT_DIMENSION = 384  # the local embedder's; its index is made by the migration
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
_RANGE_SQL = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def schema_statements(dimension: int = DEFAULT_DIMENSION) -> list[str]:
    """Idempotent DDL: the extension, the table and the HNSW index of one dimension."""
    return [
        "CREATE EXTENSION IF NOT EXISTS vector",
        f"""CREATE TABLE IF NOT EXISTS {TABLE} (
            namespace text NOT NULL,
            id text NOT NULL,
            dimension integer NOT NULL CHECK (dimension > 0),
            embedding vector NOT NULL,
            metadata jsonb NOT NULL DEFAULT '{{}}'::jsonb,
            PRIMARY KEY (namespace, id)
        )""",
        *index_statements(dimension),
    ]


def index_statements(dimension: int) -> list[str]:
    dimension = int(dimension)
    return [
        f"CREATE INDEX IF NOT EXISTS {TABLE}_hnsw_{dimension} ON {TABLE} "
        f"USING hnsw ((embedding::vector({dimension})) vector_cosine_ops) "
        f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION}) WHERE dimension = {dimension}",
    ]


def vector_literal(vector: npt.NDArray[np.float32]) -> str:
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


def filter_sql(filter: Filter | None) -> tuple[str, list[Any]]:
    """SQL conditions on ``metadata`` with the filter semantics of memory.vector.filters."""
    parts: list[str] = []
    params: list[Any] = []
    for field, operator, operand in normalise_filter(filter):
        if operator == "$eq":
            parts.append("(metadata -> %s) = %s::jsonb")
            params += [field, json.dumps(operand)]
        elif operator == "$ne":
            parts.append("(metadata -> %s) IS DISTINCT FROM %s::jsonb")
            params += [field, json.dumps(operand)]
        elif operator in ("$in", "$nin"):
            condition = "COALESCE((metadata -> %s) = ANY(%s::jsonb[]), false)"
            parts.append(condition if operator == "$in" else f"NOT {condition}")
            params += [field, [json.dumps(v) for v in operand]]
        elif operator in RANGE_OPERATORS:
            # Only numbers take part in ranges; the CASE keeps other values from being cast.
            parts.append(
                "(CASE WHEN jsonb_typeof(metadata -> %s) = 'number' THEN (metadata ->> %s)::float8 END) "
                f"{_RANGE_SQL[operator]} %s"
            )
            params += [field, field, float(operand)]
    return (" AND ".join(parts) or "TRUE"), params


def dsn_from_settings() -> str:
    database = settings.DATABASES["default"]
    if "postgresql" not in database["ENGINE"]:
        raise VectorStoreError("VECTOR_STORE=pgvector needs a PostgreSQL DATABASE_URL.")
    return psycopg.conninfo.make_conninfo(
        dbname=database.get("NAME") or "",
        user=database.get("USER") or None,
        password=database.get("PASSWORD") or None,
        host=database.get("HOST") or None,
        port=str(database["PORT"]) if database.get("PORT") else None,
    )


class PgVectorStore:
    name = "pgvector"

    def __init__(self, dimension: int, *, dsn: str, ef_search: int = 100) -> None:
        if dimension <= 0:
            raise VectorStoreError(f"A vector store needs a positive dimension, got {dimension}.")
        self.dimension = int(dimension)
        self.ef_search = int(ef_search)
        self._dsn = dsn
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        with self._cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,))
            row = cursor.fetchone()
            if not row or not row[0]:
                raise VectorStoreError(
                    f"The table {TABLE} does not exist: run `manage.py migrate` on this PostgreSQL database "
                    "(the migration memory/0002_pgvector creates it and the vector extension)."
                )
            cursor.execute(
                f"SELECT DISTINCT dimension FROM {TABLE} WHERE dimension <> %s LIMIT 3",  # type: ignore[arg-type]  # noqa: S608
                (self.dimension,),
            )
            others = sorted(r[0] for r in cursor.fetchall())
            if others:
                raise VectorStoreError(
                    f"Dimension mismatch: the pgvector table {TABLE} holds {others[0]}-dimensional vectors, but "
                    f"the embedder gives {self.dimension}. Use the embedder they were made with, or delete them "
                    "and store the experiences again."
                )
            for statement in index_statements(self.dimension):
                cursor.execute(statement)  # type: ignore[arg-type]

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[psycopg.Cursor[Any]]:
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(self._dsn, autocommit=True, connect_timeout=10)
                with self._conn.cursor() as cursor:
                    yield cursor
            except psycopg.OperationalError as exc:
                # A dropped connection is reopened at the next call.
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                raise VectorStoreError(f"PostgreSQL (pgvector) is unreachable: {exc}") from exc
            except psycopg.Error as exc:
                raise VectorStoreError(f"PostgreSQL (pgvector) failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def upsert(self, items: Sequence[VectorItem], *, namespace: str = "") -> None:
        rows = check_items(items, self.dimension)
        if not rows:
            return
        with self._cursor() as cursor, cursor.connection.transaction():
            cursor.executemany(
                f"""INSERT INTO {TABLE} (namespace, id, dimension, embedding, metadata)
                    VALUES (%s, %s, %s, %s::vector, %s::jsonb)
                    ON CONFLICT (namespace, id) DO UPDATE SET dimension = EXCLUDED.dimension,
                        embedding = EXCLUDED.embedding, metadata = EXCLUDED.metadata""",  # type: ignore[arg-type]  # noqa: S608
                [(namespace, id, self.dimension, vector_literal(v), json.dumps(m)) for id, v, m in rows],
            )

    def query(
        self, vector: npt.NDArray[np.float32], *, k: int, namespace: str = "", filter: Filter | None = None
    ) -> list[Match]:
        query = vector_literal(as_unit_vector(vector, self.dimension, "the query vector"))
        if k <= 0:
            raise VectorStoreError(f"k must be positive, got {k}.")
        where, params = filter_sql(filter)
        typed = f"vector({self.dimension})"
        with self._cursor() as cursor, cursor.connection.transaction():
            # Iterative scans (pgvector 0.8) keep walking the HNSW graph until enough rows pass the
            # filter, instead of returning fewer than k.
            cursor.execute(f"SET LOCAL hnsw.ef_search = {max(self.ef_search, k)}")  # type: ignore[arg-type]
            cursor.execute("SET LOCAL hnsw.iterative_scan = strict_order")
            cursor.execute(
                f"""SELECT id, metadata, 1 - (embedding::{typed} <=> %s::{typed}) AS score
                    FROM {TABLE}
                    WHERE namespace = %s AND dimension = %s AND {where}
                    ORDER BY embedding::{typed} <=> %s::{typed}
                    LIMIT %s""",  # type: ignore[arg-type]  # noqa: S608
                [query, namespace, self.dimension, *params, query, k],
            )
            return [Match(id=id, score=float(score), metadata=metadata) for id, metadata, score in cursor.fetchall()]

    def fetch(self, ids: Sequence[str], *, namespace: str = "") -> dict[str, VectorItem]:
        if isinstance(ids, str):
            raise VectorStoreError("fetch() takes a sequence of ids, not one string.")
        with self._cursor() as cursor:
            cursor.execute(
                f"SELECT id, embedding::text, metadata FROM {TABLE} "  # type: ignore[arg-type]  # noqa: S608
                "WHERE namespace = %s AND dimension = %s AND id = ANY(%s)",
                (namespace, self.dimension, list(ids)),
            )
            return {
                id: VectorItem(id=id, vector=np.asarray(json.loads(text), dtype=np.float32), metadata=metadata)
                for id, text, metadata in cursor.fetchall()
            }

    def delete(self, ids: Sequence[str], *, namespace: str = "") -> None:
        if isinstance(ids, str):
            raise VectorStoreError("delete() takes a sequence of ids, not one string.")
        with self._cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {TABLE} WHERE namespace = %s AND dimension = %s AND id = ANY(%s)",  # type: ignore[arg-type]  # noqa: S608
                (namespace, self.dimension, list(ids)),
            )

    def delete_where(self, filter: Filter, *, namespace: str = "") -> int | None:
        if not normalise_filter(filter):
            raise VectorStoreError("delete_where needs a non-empty filter (refusing to delete a whole namespace).")
        where, params = filter_sql(filter)
        with self._cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {TABLE} WHERE namespace = %s AND dimension = %s AND {where}",  # type: ignore[arg-type]  # noqa: S608
                [namespace, self.dimension, *params],
            )
            return cursor.rowcount

    def stats(self) -> StoreStats:
        with self._cursor() as cursor:
            cursor.execute(
                f"SELECT namespace, count(*) FROM {TABLE} WHERE dimension = %s "  # type: ignore[arg-type]  # noqa: S608
                "GROUP BY namespace ORDER BY namespace",
                (self.dimension,),
            )
            namespaces = {namespace: int(count) for namespace, count in cursor.fetchall()}
        return StoreStats(dimension=self.dimension, count=sum(namespaces.values()), namespaces=namespaces)


@register_vector_store("pgvector")
def pgvector_store(dimension: int) -> PgVectorStore:
    return PgVectorStore(dimension, dsn=dsn_from_settings(), ef_search=settings.LODESTONE_PGVECTOR_EF_SEARCH)
