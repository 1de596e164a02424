"""The behaviour every VectorStore backend shares. A backend's test module subclasses
``VectorStoreContract`` and provides a ``store`` fixture: a fresh, empty store of ``DIMENSION``."""

from __future__ import annotations

import numpy as np
import pytest

from memory.vector import Match, StoreStats, VectorItem, VectorStore, VectorStoreError

DIMENSION = 16


def unit(seed: int, dimension: int = DIMENSION) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(dimension).astype(np.float32)
    return vector / np.linalg.norm(vector)


def near(vector: np.ndarray, amount: float, seed: int) -> np.ndarray:
    moved = vector + amount * unit(seed + 10_000, len(vector))
    return (moved / np.linalg.norm(moved)).astype(np.float32)


def items(count: int, *, offset: int = 0) -> list[VectorItem]:
    return [
        VectorItem(
            id=f"v{i}",
            vector=unit(i),
            metadata={"n": i, "parity": "even" if i % 2 == 0 else "odd", "flag": i % 3 == 0, "score": i / 10},
        )
        for i in range(offset, offset + count)
    ]


class VectorStoreContract:
    # Backends that are eventually consistent (a remote server) can wait here after writes.
    def settle(self, store: VectorStore) -> None:
        return

    def write(self, store: VectorStore, batch: list[VectorItem], namespace: str = "") -> None:
        store.upsert(batch, namespace=namespace)
        self.settle(store)

    def test_is_a_vector_store(self, store: VectorStore) -> None:
        assert isinstance(store, VectorStore)
        assert store.dimension == DIMENSION

    def test_upsert_then_query_ranks_by_cosine(self, store: VectorStore) -> None:
        self.write(store, items(20))
        target = unit(7)
        matches = store.query(near(target, 0.05, 1), k=5)
        assert len(matches) == 5 and all(isinstance(m, Match) for m in matches)
        assert matches[0].id == "v7"
        assert matches[0].score > 0.99
        scores = [m.score for m in matches]
        assert scores == sorted(scores, reverse=True)
        assert matches[0].metadata == {"n": 7, "parity": "odd", "flag": False, "score": 0.7}
        # Exact cosine scores: the same for every backend.
        expected = sorted(((float(unit(i) @ near(target, 0.05, 1)), f"v{i}") for i in range(20)), reverse=True)[:5]
        assert [m.id for m in matches] == [e[1] for e in expected]
        np.testing.assert_allclose(scores, [e[0] for e in expected], atol=2e-3)

    def test_k_larger_than_the_store(self, store: VectorStore) -> None:
        self.write(store, items(3))
        assert {m.id for m in store.query(unit(0), k=10)} == {"v0", "v1", "v2"}

    def test_empty_namespace_returns_nothing(self, store: VectorStore) -> None:
        assert store.query(unit(0), k=3, namespace="nobody-here") == []
        assert store.fetch(["v0"], namespace="nobody-here") == {}

    def test_upsert_replaces_vector_and_metadata(self, store: VectorStore) -> None:
        self.write(store, items(5))
        self.write(store, [VectorItem(id="v1", vector=unit(99), metadata={"n": 100})])
        fetched = store.fetch(["v1"])
        np.testing.assert_allclose(fetched["v1"].vector, unit(99), atol=1e-3)
        assert fetched["v1"].metadata == {"n": 100}
        assert store.query(unit(99), k=1)[0].id == "v1"
        assert store.stats().count == 5

    def test_fetch_returns_vectors_and_metadata_of_known_ids(self, store: VectorStore) -> None:
        self.write(store, items(4))
        fetched = store.fetch(["v2", "missing", "v0"])
        assert set(fetched) == {"v0", "v2"}
        assert fetched["v2"].id == "v2"
        np.testing.assert_allclose(fetched["v2"].vector, unit(2), atol=1e-3)
        assert fetched["v2"].metadata == {"n": 2, "parity": "even", "flag": False, "score": 0.2}

    def test_delete(self, store: VectorStore) -> None:
        self.write(store, items(6))
        store.delete(["v1", "v3", "never-there"])
        self.settle(store)
        assert set(store.fetch(["v1", "v2", "v3"])) == {"v2"}
        assert {m.id for m in store.query(unit(1), k=10)} == {"v0", "v2", "v4", "v5"}
        assert store.stats().count == 4

    def test_filters(self, store: VectorStore) -> None:
        self.write(store, items(12))
        query = unit(4)

        def ids(filter: dict) -> set[str]:
            return {m.id for m in store.query(query, k=12, filter=filter)}

        assert ids({"parity": "even"}) == {f"v{i}" for i in range(0, 12, 2)}
        assert ids({"parity": {"$eq": "odd"}, "n": {"$lt": 5}}) == {"v1", "v3"}
        assert ids({"parity": {"$ne": "even"}}) == {f"v{i}" for i in range(1, 12, 2)}
        assert ids({"n": {"$in": [1, 2, 30]}}) == {"v1", "v2"}
        assert ids({"n": {"$nin": [0, 1, 2, 3, 4, 5, 6, 7, 8]}}) == {"v9", "v10", "v11"}
        assert ids({"n": {"$gte": 3, "$lte": 5}}) == {"v3", "v4", "v5"}
        assert ids({"n": {"$gt": 9}}) == {"v10", "v11"}
        assert ids({"score": {"$gt": 0.85}}) == {"v9", "v10", "v11"}
        assert ids({"flag": True}) == {"v0", "v3", "v6", "v9"}
        assert ids({"flag": False, "parity": "even"}) == {"v2", "v4", "v8", "v10"}
        assert ids({"n": 4.0}) == {"v4"}  # numbers compare by value
        assert ids({"parity": "none"}) == set()
        best = store.query(query, k=2, filter={"parity": "odd"})
        assert len(best) == 2 and all(m.metadata["parity"] == "odd" for m in best)

    def test_bad_filter_is_an_error(self, store: VectorStore) -> None:
        self.write(store, items(2))
        with pytest.raises(VectorStoreError):
            store.query(unit(0), k=1, filter={"n": {"$regex": "x"}})

    def test_namespaces_are_separate(self, store: VectorStore) -> None:
        self.write(store, items(3), namespace="alice")
        self.write(store, items(2, offset=10), namespace="bob")
        assert {m.id for m in store.query(unit(0), k=10, namespace="alice")} == {"v0", "v1", "v2"}
        assert {m.id for m in store.query(unit(0), k=10, namespace="bob")} == {"v10", "v11"}
        assert store.fetch(["v0"], namespace="bob") == {}
        store.delete(["v0"], namespace="bob")  # not there: alice's v0 stays
        self.settle(store)
        assert set(store.fetch(["v0"], namespace="alice")) == {"v0"}
        stats = store.stats()
        assert isinstance(stats, StoreStats)
        assert stats.dimension == DIMENSION and stats.count == 5
        assert stats.namespaces == {"alice": 3, "bob": 2}

    def test_dimension_mismatch_is_an_error(self, store: VectorStore) -> None:
        with pytest.raises(VectorStoreError, match=r"(?i)dimension"):
            store.upsert([VectorItem(id="x", vector=unit(1, DIMENSION + 1))])
        self.write(store, items(1))
        with pytest.raises(VectorStoreError, match=r"(?i)dimension"):
            store.query(unit(1, DIMENSION - 1), k=1)
