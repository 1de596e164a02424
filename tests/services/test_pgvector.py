"""The pgvector store against a throwaway PostgreSQL 15 cluster with pgvector (built from Debian's
source package by memory/vector/install-pgvector.sh): the project's real migrations, then the contract."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import psycopg
import pytest

from memory.vector import VectorItem, VectorStoreError
from memory.vector.pgvector import TABLE, PgVectorStore
from tests.memory.vector_contract import DIMENSION, VectorStoreContract, items, unit
from tests.servers import REPO
from tests.services.vector_servers import Postgres

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def migrated(postgres_pgvector: Postgres) -> Postgres:
    """`manage.py migrate` of the whole project on PostgreSQL, as production runs it."""
    env = {**os.environ, "DATABASE_URL": postgres_pgvector.url, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return postgres_pgvector


@pytest.fixture
def store(migrated: Postgres) -> Iterator[PgVectorStore]:
    with psycopg.connect(migrated.dsn, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {TABLE}")  # type: ignore[arg-type]
    opened = PgVectorStore(DIMENSION, dsn=migrated.dsn)
    yield opened
    opened.close()


class TestPgVectorContract(VectorStoreContract):
    pass


def test_migration_made_the_table_and_the_default_hnsw_index(migrated: Postgres) -> None:
    with psycopg.connect(migrated.dsn) as conn:
        indexes: dict[str, str] = dict(
            conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", (TABLE,))
        )
        version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    assert version == ("0.8.0",)
    assert "USING hnsw" in indexes[f"{TABLE}_hnsw_384"] and "vector_cosine_ops" in indexes[f"{TABLE}_hnsw_384"]


def test_query_uses_the_hnsw_index(store: PgVectorStore, migrated: Postgres) -> None:
    store.upsert(items(3000))
    with psycopg.connect(migrated.dsn) as conn:
        conn.execute(f"ANALYZE {TABLE}")  # type: ignore[arg-type]
        plan = "\n".join(
            str(row[0])
            for row in conn.execute(
                f"EXPLAIN SELECT id FROM {TABLE} WHERE namespace = '' AND dimension = {DIMENSION} "  # type: ignore[arg-type]  # noqa: S608
                f"ORDER BY embedding::vector({DIMENSION}) <=> %s::vector({DIMENSION}) LIMIT 5",
                ("[" + ",".join(["0.25"] * DIMENSION) + "]",),
            )
        )
    assert f"{TABLE}_hnsw_{DIMENSION}" in plan
    assert store.query(unit(3), k=1)[0].id == "v3"


def test_filtered_query_still_returns_k(store: PgVectorStore) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((2000, DIMENSION)).astype(np.float32)
    store.upsert([VectorItem(id=f"r{i}", vector=vectors[i], metadata={"rare": i % 200 == 0}) for i in range(2000)])
    found = store.query(vectors[5], k=10, filter={"rare": True})
    assert len(found) == 10 and all(m.metadata["rare"] is True for m in found)


def test_another_dimension_is_refused_at_start_up(store: PgVectorStore, migrated: Postgres) -> None:
    store.upsert(items(2))
    with pytest.raises(VectorStoreError, match=f"holds {DIMENSION}-dimensional vectors, but the embedder gives 384"):
        PgVectorStore(384, dsn=migrated.dsn)


def test_delete_where_counts(store: PgVectorStore) -> None:
    store.upsert(items(10), namespace="n")
    assert store.delete_where({"n": {"$gte": 5}}, namespace="n") == 5
    assert store.stats().namespaces == {"n": 5}


def test_unreachable_and_unmigrated_databases_are_clear_errors(postgres_pgvector: Postgres) -> None:
    with pytest.raises(VectorStoreError, match="unreachable"):
        PgVectorStore(DIMENSION, dsn="postgresql://postgres@127.0.0.1:9/nowhere")
    server = postgres_pgvector.dsn.rsplit("/", 1)[0]
    with psycopg.connect(server + "/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS empty_db")
        conn.execute("CREATE DATABASE empty_db")
    with pytest.raises(VectorStoreError, match=r"run `manage\.py migrate`"):
        PgVectorStore(DIMENSION, dsn=server + "/empty_db")
