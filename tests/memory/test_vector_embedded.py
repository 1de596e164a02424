"""The embedded vector store: the shared contract, persistence across restarts, the HNSW path,
other processes' writes, and dimension checks."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.test import override_settings

from memory.vector import VectorItem, VectorStoreError, get_vector_store, reset_vector_stores
from memory.vector.checks import memory_backend_settings
from memory.vector.embedded import EmbeddedVectorStore
from memory.vector.filters import compile_filter
from tests.memory.vector_contract import DIMENSION, VectorStoreContract, items, unit
from tests.servers import REPO


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedVectorStore]:
    opened = EmbeddedVectorStore(DIMENSION, path=tmp_path / "vectors")
    yield opened
    opened.close()


class TestEmbeddedContract(VectorStoreContract):
    pass


class TestEmbeddedContractThroughHNSW(VectorStoreContract):
    """The same contract with the HNSW index built and maintained from the first vector (small
    stores still answer exactly: the index would return most of them anyway)."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[EmbeddedVectorStore]:
        opened = EmbeddedVectorStore(DIMENSION, path=tmp_path / "vectors", ann_threshold=0)
        yield opened
        opened.close()


def test_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "vectors"
    first = EmbeddedVectorStore(DIMENSION, path=path)
    first.upsert(items(10), namespace="team")
    first.delete(["v3"], namespace="team")
    first.upsert([VectorItem(id="v4", vector=unit(44), metadata={"n": 44})], namespace="team")
    first.close()

    again = EmbeddedVectorStore(DIMENSION, path=path)
    assert again.stats().namespaces == {"team": 9}
    assert again.fetch(["v3"], namespace="team") == {}
    assert again.fetch(["v4"], namespace="team")["v4"].metadata == {"n": 44}
    assert again.query(unit(5), k=1, namespace="team")[0].id == "v5"
    assert again.query(unit(44), k=1, namespace="team", filter={"n": {"$gt": 40}})[0].id == "v4"
    again.close()


def test_dimension_mismatch_at_open(tmp_path: Path) -> None:
    EmbeddedVectorStore(DIMENSION, path=tmp_path).close()
    with pytest.raises(VectorStoreError, match=f"holds {DIMENSION}-dimensional vectors, but the embedder gives 384"):
        EmbeddedVectorStore(384, path=tmp_path)


def test_zero_vector_and_bad_metadata_are_refused(store: EmbeddedVectorStore) -> None:
    with pytest.raises(VectorStoreError, match="zero"):
        store.upsert([VectorItem(id="z", vector=np.zeros(DIMENSION, dtype=np.float32))])
    with pytest.raises(VectorStoreError, match="must be a string, a finite number or a boolean"):
        store.upsert([VectorItem(id="m", vector=unit(1), metadata={"tags": ["a"]})])  # type: ignore[dict-item]
    with pytest.raises(VectorStoreError, match="non-empty string"):
        store.upsert([VectorItem(id="", vector=unit(1))])
    assert store.stats().count == 0  # a refused batch writes nothing


def test_delete_where(store: EmbeddedVectorStore) -> None:
    store.upsert(items(10), namespace="n")
    assert store.delete_where({"parity": "odd", "n": {"$gt": 4}}, namespace="n") == 3
    assert sorted(store.fetch([f"v{i}" for i in range(10)], namespace="n")) == sorted(
        ["v0", "v1", "v2", "v3", "v4", "v6", "v8"]
    )
    with pytest.raises(VectorStoreError, match="non-empty filter"):
        store.delete_where({}, namespace="n")


def test_hnsw_above_the_threshold_matches_exact_search(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    latent = rng.standard_normal((3000, 8)).astype(np.float32)
    vectors = latent @ rng.standard_normal((8, DIMENSION)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    batch = [VectorItem(id=f"x{i}", vector=vectors[i], metadata={"bucket": i % 10}) for i in range(3000)]
    path = tmp_path / "vectors"
    store = EmbeddedVectorStore(DIMENSION, path=path, ann_threshold=1000)
    store.upsert(batch)
    assert store._namespaces[""].ann is not None
    queries = vectors[rng.integers(0, 3000, 50)] + 0.05 * rng.standard_normal((50, DIMENSION)).astype(np.float32)
    hits = 0
    for query in queries:
        exact = np.argsort(-(vectors @ (query / np.linalg.norm(query))))[:10]
        got = [int(m.id[1:]) for m in store.query(query, k=10)]
        hits += len(set(got) & set(exact.tolist()))
        filtered = store.query(query, k=5, filter={"bucket": 3})
        assert len(filtered) == 5 and all(m.metadata["bucket"] == 3 for m in filtered)
    assert hits / 500 >= 0.95
    store.delete(["x0"])
    store.upsert([VectorItem(id="x1", vector=unit(1234), metadata={"bucket": 99})])
    store.close()  # saves the graph

    again = EmbeddedVectorStore(DIMENSION, path=path, ann_threshold=1000)
    assert again.query(unit(1234), k=1)[0].id == "x1"
    assert again._namespaces[""].ann is not None and len(again._namespaces[""].ann) == 2999
    assert all(m.id != "x0" for m in again.query(vectors[0], k=20))
    again.close()


def test_writes_of_another_process_are_seen(store: EmbeddedVectorStore) -> None:
    store.upsert(items(3), namespace="shared")
    assert store.stats().count == 3
    script = f"""
import numpy as np
from memory.vector import VectorItem
from memory.vector.embedded import EmbeddedVectorStore
from memory.vector.checks import memory_backend_settings
from memory.vector.filters import compile_filter
other = EmbeddedVectorStore({DIMENSION}, path={str(store.path)!r})
vector = np.ones({DIMENSION}, dtype=np.float32)
other.upsert([VectorItem(id="from-worker", vector=vector, metadata={{"who": "worker"}})], namespace="shared")
other.delete(["v0"], namespace="shared")
other.close()
"""
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', "
            "'config.settings.test'); django.setup(); exec(" + repr(script) + ")",
        ],
        cwd=REPO,
        check=True,
        timeout=60,
    )
    assert store.fetch(["v0"], namespace="shared") == {}
    best = store.query(np.ones(DIMENSION, dtype=np.float32), k=1, namespace="shared")
    assert best[0].id == "from-worker" and best[0].metadata == {"who": "worker"}
    assert store.stats().namespaces == {"shared": 3}


def test_concurrent_threads(store: EmbeddedVectorStore) -> None:
    errors: list[BaseException] = []

    def writer(start: int) -> None:
        try:
            for i in range(start, start + 50):
                store.upsert([VectorItem(id=f"t{i}", vector=unit(i), metadata={"i": i})], namespace="threads")
                store.query(unit(i), k=3, namespace="threads")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n * 50,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert store.stats().namespaces == {"threads": 200}
    assert store.query(unit(123), k=1, namespace="threads")[0].id == "t123"


def test_registry_opens_it_under_the_vector_dir(tmp_path: Path) -> None:
    reset_vector_stores()
    try:
        with override_settings(LODESTONE_VECTOR_DIR=tmp_path / "v", LODESTONE_VECTOR_STORE="embedded"):
            opened = get_vector_store(DIMENSION)
            assert isinstance(opened, EmbeddedVectorStore) and opened.path == tmp_path / "v"
            assert get_vector_store(DIMENSION) is opened
            opened.close()
        with pytest.raises(VectorStoreError, match="Unknown vector store 'nope'"):
            get_vector_store(DIMENSION, name="nope")
    finally:
        reset_vector_stores()


def test_vectorised_filters_agree_with_the_reference_predicate(store: EmbeddedVectorStore) -> None:
    """Column masks (kept up to date by writes and swap-removes) against filters.compile_filter."""
    rng = np.random.default_rng(11)
    colours = ["red", "green", "blue"]

    def random_metadata() -> dict[str, str | int | float | bool]:
        metadata: dict[str, str | int | float | bool] = {}
        if rng.random() < 0.8:
            metadata["colour"] = colours[int(rng.integers(0, 3))]
        if rng.random() < 0.8:
            metadata["size"] = int(rng.integers(0, 10)) if rng.random() < 0.5 else float(rng.integers(0, 10)) / 2
        if rng.random() < 0.3:
            metadata["size"] = "big"  # not a number: never in a range
        if rng.random() < 0.5:
            metadata["ok"] = bool(rng.random() < 0.5)
        return metadata

    filters: list[dict] = [
        {"colour": "red"},
        {"colour": {"$ne": "red"}},
        {"colour": {"$in": ["green", "blue", "purple"]}},
        {"colour": {"$nin": ["green"]}, "ok": True},
        {"size": {"$gte": 2, "$lt": 4.5}},
        {"size": {"$gt": 3}},
        {"size": {"$lte": 1}},
        {"size": 2},
        {"size": "big"},
        {"ok": False, "size": {"$in": [1, 2.5, "big"]}},
        {"ok": 1},  # a number never equals a boolean
    ]
    metadata = {f"m{i}": random_metadata() for i in range(300)}
    store.upsert([VectorItem(id=id, vector=unit(i), metadata=m) for i, (id, m) in enumerate(metadata.items())])

    def check() -> None:
        for filter in filters:
            predicate = compile_filter(filter)
            assert predicate is not None
            expected = {id for id, m in metadata.items() if predicate(m)}
            got = {m.id for m in store.query(unit(0), k=1000, filter=filter)}
            assert got == expected, filter

    check()  # builds the columns
    removed = [f"m{i}" for i in range(0, 300, 7)]
    store.delete(removed)
    for id in removed:
        del metadata[id]
    changed = {f"m{i}": random_metadata() for i in range(1, 300, 5) if f"m{i}" in metadata}
    changed.update({f"new{i}": random_metadata() for i in range(40)})
    store.upsert([VectorItem(id=id, vector=unit(1000 + i), metadata=m) for i, (id, m) in enumerate(changed.items())])
    metadata.update(changed)
    check()  # the columns followed every write


def test_a_killed_writer_leaves_whole_batches_and_a_usable_index(tmp_path: Path) -> None:
    """SIGKILL in the middle of writing: every batch is all there or absent, and the saved HNSW graph
    (older than the table, as no exit handler ran) is reconciled with the table at the next open."""
    path = tmp_path / "vectors"
    script = f"""
import itertools, numpy as np
from memory.vector import VectorItem
from memory.vector.embedded import EmbeddedVectorStore
store = EmbeddedVectorStore({DIMENSION}, path={str(path)!r}, ann_threshold=150)
rng = np.random.default_rng(5)
for batch in itertools.count():
    vectors = rng.standard_normal((100, {DIMENSION})).astype(np.float32)
    items = [VectorItem(id=f"b{{batch}}-{{i}}", vector=v, metadata={{"batch": batch}}) for i, v in enumerate(vectors)]
    store.upsert(items)
"""
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings.test'); "
            "django.setup(); exec(" + repr(script) + ")",
        ],
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (path / "vectors.sqlite3").exists():
                probe = EmbeddedVectorStore(DIMENSION, path=path)
                count = probe.stats().count
                probe.close()
                if count >= 1500:
                    break
            time.sleep(0.2)
        process.kill()
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    assert list(path.glob("ann-*.usearch")), "the graph was saved when it was first built"
    store = EmbeddedVectorStore(DIMENSION, path=path, ann_threshold=150)
    count = store.stats().count
    assert count >= 1500 and count % 100 == 0
    last = count // 100 - 1
    newest = store.fetch([f"b{last}-{i}" for i in range(100)])
    assert len(newest) == 100 and store.fetch([f"b{last + 1}-0"]) == {}
    ann = store._namespaces[""].ann
    assert ann is not None and len(ann) == count  # reconciled: the vectors written after the save are in
    for id, item in list(newest.items())[:10]:
        assert store.query(item.vector, k=1)[0].id == id
    store.close()


def test_system_check_names_bad_backend_settings() -> None:
    assert memory_backend_settings() == []
    with override_settings(LODESTONE_EMBEDDER="bert", LODESTONE_VECTOR_STORE="milvus"):
        assert [e.id for e in memory_backend_settings()] == ["memory.E001", "memory.E002"]
    with override_settings(LODESTONE_VECTOR_STORE="pinecone", PINECONE_API_KEY=None, PINECONE_INDEX_HOST=None):
        assert [e.id for e in memory_backend_settings()] == ["memory.E003", "memory.E004"]
    with override_settings(LODESTONE_MEMORY_MODE="verbatim"):
        assert [e.id for e in memory_backend_settings()] == ["memory.E007"]
    with override_settings(LODESTONE_VECTOR_STORE="pgvector"):
        # pgvector needs PostgreSQL as the database (this suite also runs on it: tests/on_postgres.py).
        on_postgres = "postgresql" in settings.DATABASES["default"]["ENGINE"]
        assert [e.id for e in memory_backend_settings()] == ([] if on_postgres else ["memory.E005"])
