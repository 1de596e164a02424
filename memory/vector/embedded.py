"""The default vector store: one SQLite file under ``LODESTONE_VECTOR_DIR`` plus numpy in memory.

On disk (``var/vectors/``):

- ``vectors.sqlite3`` (WAL, ``synchronous=FULL``) is the truth: table ``vectors`` (key, namespace,
  id, float32 vector blob, metadata JSON), table ``changes`` (an append-only log of upserts and
  deletes that other processes replay) and ``meta`` (the dimension, checked at every open). An
  upsert or delete is one transaction, so a crash leaves each batch either fully written or absent.
- ``ann-<sha1 of namespace>.usearch``: the saved HNSW graph of a large namespace. A cache only: it
  is reconciled with the table by key at load and rebuilt when missing or unreadable; written to a
  temporary file and renamed into place.

In memory, per namespace loaded on first use: a dense float32 matrix of unit vectors, their ids and
metadata. Up to ``ann_threshold`` vectors a query is an exact matrix product; above it, usearch's
HNSW index (f16) proposes candidates that are re-scored exactly against the float32 matrix. A
filtered query that the index cannot answer well (too few matches among the candidates) falls back
to exact search over the matching rows, so results are never silently incomplete.

Several processes (server, Celery worker, a command) may open the same store: before each call a
process checks SQLite's ``data_version`` and replays the other processes' changes from the log.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from django.conf import settings

from memory.vector import (
    Filter,
    Match,
    Metadata,
    StoreStats,
    VectorItem,
    VectorStoreError,
    register_vector_store,
)
from memory.vector.filters import RANGE_OPERATORS, is_number, normalise_filter, validate_metadata, value_key

logger = logging.getLogger(__name__)

FORMAT = "1"
# Changes older than this many entries are trimmed; a process further behind reloads its namespaces.
CHANGES_KEPT = 100_000
HNSW_CONNECTIVITY = 16
HNSW_EXPANSION_ADD = 64
HNSW_EXPANSION_SEARCH = 96
F32 = npt.NDArray[np.float32]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vectors (
    key INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace TEXT NOT NULL,
    id TEXT NOT NULL,
    vector BLOB NOT NULL,
    metadata TEXT NOT NULL,
    UNIQUE (namespace, id)
);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace TEXT NOT NULL,
    id TEXT NOT NULL,
    key INTEGER
);
"""


def as_unit_vector(vector: Any, dimension: int, what: str) -> F32:
    array = np.asarray(vector, dtype=np.float32)
    if array.ndim != 1 or array.shape[0] != dimension:
        raise VectorStoreError(
            f"Dimension mismatch: {what} has shape {array.shape}, the store holds {dimension}-dimensional vectors."
        )
    norm = float(np.linalg.norm(array))
    if not np.isfinite(norm) or norm == 0.0:
        raise VectorStoreError(f"{what} is a zero or non-finite vector; it has no direction to compare.")
    return (array / norm).astype(np.float32)


def check_items(items: Sequence[VectorItem], dimension: int) -> list[tuple[str, F32, Metadata]]:
    """Validated ``(id, unit vector, metadata)``; the last of duplicate ids wins, as in one Pinecone call."""
    rows: dict[str, tuple[str, F32, Metadata]] = {}
    for item in items:
        if not isinstance(item.id, str) or not item.id:
            raise VectorStoreError(f"A vector id must be a non-empty string, got {item.id!r}.")
        rows[item.id] = (
            item.id,
            as_unit_vector(item.vector, dimension, f"vector {item.id!r}"),
            validate_metadata(item.metadata),
        )
    return list(rows.values())


def top_k(scores: F32, k: int) -> npt.NDArray[np.intp]:
    """Indices of the k highest scores, best first."""
    if k >= len(scores):
        return np.argsort(-scores, kind="stable")
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


class _Column:
    """One metadata field over all rows: a code per distinct value (-1: absent) and the number, if any."""

    def __init__(self, capacity: int) -> None:
        self.codes: npt.NDArray[np.int32] = np.full(capacity, -1, dtype=np.int32)
        self.numbers: npt.NDArray[np.float64] = np.full(capacity, np.nan)
        self.code_of: dict[tuple[str, object], int] = {}

    def grow(self, capacity: int, count: int) -> None:
        codes = np.full(capacity, -1, dtype=np.int32)
        numbers = np.full(capacity, np.nan)
        codes[:count], numbers[:count] = self.codes[:count], self.numbers[:count]
        self.codes, self.numbers = codes, numbers

    def set(self, row: int, metadata: Metadata, field: str) -> None:
        if field not in metadata:
            self.codes[row], self.numbers[row] = -1, np.nan
            return
        value = metadata[field]
        self.codes[row] = self.code_of.setdefault(value_key(value), len(self.code_of))
        self.numbers[row] = float(value) if is_number(value) else np.nan

    def move(self, source: int, target: int) -> None:
        self.codes[target], self.numbers[target] = self.codes[source], self.numbers[source]

    def mask(self, operator: str, operand: Any, count: int) -> npt.NDArray[np.bool_]:
        codes = self.codes[:count]
        if operator in ("$eq", "$ne"):
            code = self.code_of.get(value_key(operand))
            hit = codes == code if code is not None else np.zeros(count, dtype=bool)
            return hit if operator == "$eq" else ~hit
        if operator in ("$in", "$nin"):
            wanted = [self.code_of[k] for k in map(value_key, operand) if k in self.code_of]
            hit = np.isin(codes, np.asarray(wanted, dtype=np.int32))
            return hit if operator == "$in" else ~hit
        numbers = self.numbers[:count]  # NaN (absent or not a number) compares False
        if operator == "$gt":
            return numbers > float(operand)
        if operator == "$gte":
            return numbers >= float(operand)
        if operator == "$lt":
            return numbers < float(operand)
        assert operator in RANGE_OPERATORS
        return numbers <= float(operand)


class _Namespace:
    """Dense in-memory copy of one namespace; rows move (swap-remove) but keys and ids do not."""

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self.vectors: F32 = np.empty((0, dimension), dtype=np.float32)
        self.keys: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self.ids: list[str] = []
        self.metadata: list[Metadata] = []
        self.row_of: dict[str, int] = {}
        self.row_of_key: dict[int, int] = {}
        self.ann: Any = None  # usearch Index once built
        self.ann_dirty = False
        # Built on the first filter that names the field, then kept up to date by every write.
        self.columns: dict[str, _Column] = {}

    @property
    def count(self) -> int:
        return len(self.ids)

    def _reserve(self, extra: int) -> None:
        needed = self.count + extra
        if needed <= len(self.vectors):
            return
        capacity = max(needed, 2 * len(self.vectors), 256)
        vectors = np.empty((capacity, self.dimension), dtype=np.float32)
        vectors[: self.count] = self.vectors[: self.count]
        keys = np.empty(capacity, dtype=np.int64)
        keys[: self.count] = self.keys[: self.count]
        self.vectors, self.keys = vectors, keys
        for column in self.columns.values():
            column.grow(capacity, self.count)

    def put(self, key: int, id: str, vector: F32, metadata: Metadata) -> None:
        self.put_many([(key, id, vector, metadata)])

    def put_many(self, rows: list[tuple[int, str, F32, Metadata]]) -> None:
        rows = list({row[1]: row for row in rows}.values())  # one id once: the last write wins
        self._reserve(len(rows))
        stale: list[int] = []
        for key, id, vector, metadata in rows:
            row = self.row_of.get(id)
            if row is not None:
                old_key = int(self.keys[row])
                del self.row_of_key[old_key]
                stale.append(old_key)
            else:
                row = self.count
                self.ids.append(id)
                self.metadata.append({})
                self.row_of[id] = row
            self.vectors[row] = vector
            self.keys[row] = key
            self.metadata[row] = metadata
            self.row_of_key[key] = row
            for field, column in self.columns.items():
                column.set(row, metadata, field)
        if self.ann is not None and rows:
            # One multi-threaded batch: adding a million vectors one at a time takes minutes longer.
            if stale:
                self.ann.remove(np.asarray(stale, dtype=np.uint64))
            keys = np.asarray([r[0] for r in rows], dtype=np.uint64)
            self.ann.add(keys, np.stack([r[2] for r in rows]), threads=0)
            self.ann_dirty = True

    def remove(self, id: str) -> None:
        row = self.row_of.pop(id, None)
        if row is None:
            return
        key = int(self.keys[row])
        del self.row_of_key[key]
        if self.ann is not None:
            self.ann.remove(key)
            self.ann_dirty = True
        last = self.count - 1
        if row != last:  # keep the matrix dense: the last row takes the hole
            self.vectors[row] = self.vectors[last]
            self.keys[row] = self.keys[last]
            self.ids[row] = self.ids[last]
            self.metadata[row] = self.metadata[last]
            for column in self.columns.values():
                column.move(last, row)
            self.row_of[self.ids[row]] = row
            self.row_of_key[int(self.keys[row])] = row
        self.ids.pop()
        self.metadata.pop()

    def column(self, field: str) -> _Column:
        column = self.columns.get(field)
        if column is None:
            column = _Column(len(self.vectors))
            for row in range(self.count):
                column.set(row, self.metadata[row], field)
            self.columns[field] = column
        return column

    def matching_rows(self, filter: Filter | None) -> npt.NDArray[np.intp] | None:
        """Rows whose metadata passes the filter (vectorised over columns); None: no filter."""
        clauses = normalise_filter(filter)
        if not clauses:
            return None
        mask = np.ones(self.count, dtype=bool)
        for field, operator, operand in clauses:
            mask &= self.column(field).mask(operator, operand, self.count)
        return np.flatnonzero(mask)


class EmbeddedVectorStore:
    name = "embedded"

    def __init__(self, dimension: int, *, path: Path, ann_threshold: int = 20_000) -> None:
        if dimension <= 0:
            raise VectorStoreError(f"A vector store needs a positive dimension, got {dimension}.")
        self.dimension = dimension
        self.path = Path(path)
        self.ann_threshold = ann_threshold
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._namespaces: dict[str, _Namespace] = {}
        self._db = sqlite3.connect(self.path / "vectors.sqlite3", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(_SCHEMA)
        self._check_dimension()
        self._seen_seq = self._max_seq()
        self._data_version = self._current_data_version()
        self._closed = False
        _OPEN_STORES.add(self)

    # --- lifecycle

    def _check_dimension(self) -> None:
        with self._transaction():
            row = self._db.execute("SELECT value FROM meta WHERE name = 'dimension'").fetchone()
            if row is None:
                self._db.execute(
                    "INSERT INTO meta (name, value) VALUES ('dimension', ?), ('format', ?)",
                    (str(self.dimension), FORMAT),
                )
                return
        if int(row[0]) != self.dimension:
            raise VectorStoreError(
                f"Dimension mismatch: the embedded vector store at {self.path} holds {row[0]}-dimensional "
                f"vectors, but the embedder gives {self.dimension}. Use the embedder it was built with, "
                "or point LODESTONE_VAR_DIR at a fresh directory and store the experiences again."
            )

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            for namespace, state in self._namespaces.items():
                if state.ann is not None and state.ann_dirty:
                    self._save_ann(namespace, state)
            self._db.close()
            self._closed = True
            _OPEN_STORES.discard(self)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        # BEGIN IMMEDIATE takes the write lock at once: no other process interleaves its changes.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _max_seq(self) -> int:
        return int(self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0])

    def _current_data_version(self) -> int:
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def _ensure_open(self) -> None:
        if self._closed:
            raise VectorStoreError("The embedded vector store is closed.")

    # --- keeping up with other processes

    def _catch_up(self) -> None:
        """Replay changes committed by other connections since we last looked."""
        version = self._current_data_version()
        if version == self._data_version:
            return
        self._data_version = version
        self._replay()

    def _replay(self) -> None:
        oldest = self._db.execute("SELECT MIN(seq) FROM changes").fetchone()[0]
        if oldest is not None and oldest > self._seen_seq + 1:
            # The log was trimmed past us: reload what we hold.
            self._namespaces.clear()
            self._seen_seq = self._max_seq()
            return
        changes = self._db.execute(
            "SELECT seq, namespace, id, key FROM changes WHERE seq > ? ORDER BY seq", (self._seen_seq,)
        ).fetchall()
        for seq, namespace, id, key in changes:
            self._seen_seq = seq
            state = self._namespaces.get(namespace)
            if state is None:
                continue  # loaded fresh from the table when first used
            if key is None:
                state.remove(id)
                continue
            row = self._db.execute("SELECT vector, metadata FROM vectors WHERE key = ?", (key,)).fetchone()
            if row is not None:  # else replaced again later in the log
                state.put(key, id, np.frombuffer(row[0], dtype=np.float32).copy(), json.loads(row[1]))

    # --- namespaces in memory

    def _namespace(self, namespace: str) -> _Namespace:
        state = self._namespaces.get(namespace)
        if state is None:
            state = _Namespace(self.dimension)
            rows = self._db.execute(
                "SELECT key, id, vector, metadata FROM vectors WHERE namespace = ? ORDER BY key", (namespace,)
            ).fetchall()
            count = len(rows)
            state._reserve(count)
            if count:
                state.vectors[:count] = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(
                    count, self.dimension
                )
                state.keys[:count] = [r[0] for r in rows]
                state.ids = [r[1] for r in rows]
                state.metadata = [json.loads(r[3]) for r in rows]
                state.row_of = {id: i for i, id in enumerate(state.ids)}
                state.row_of_key = {int(k): i for i, k in enumerate(state.keys[:count])}
            self._namespaces[namespace] = state
            if count > self.ann_threshold:
                self._load_ann(namespace, state)
        return state

    def _ann_path(self, namespace: str) -> Path:
        return self.path / f"ann-{hashlib.sha1(namespace.encode(), usedforsecurity=False).hexdigest()}.usearch"

    def _new_ann(self) -> Any:
        from usearch.index import Index

        return Index(
            ndim=self.dimension,
            metric="ip",  # unit vectors: inner product is cosine
            dtype="f16",
            connectivity=HNSW_CONNECTIVITY,
            expansion_add=HNSW_EXPANSION_ADD,
            expansion_search=HNSW_EXPANSION_SEARCH,
        )

    def _load_ann(self, namespace: str, state: _Namespace) -> None:
        path = self._ann_path(namespace)
        ann = None
        if path.is_file():
            try:
                ann = self._new_ann()
                ann.load(str(path))
            except Exception:  # a damaged cache is rebuilt, never trusted
                logger.warning("Rebuilding the unreadable ANN index %s", path, exc_info=True)
                ann = None
        if ann is None:
            self._build_ann(namespace, state)
            return
        # Reconcile the saved graph with the table: drop stale keys, add missing ones.
        held = np.fromiter(ann.keys, dtype=np.int64, count=len(ann))
        current = state.keys[: state.count]
        stale = np.setdiff1d(held, current, assume_unique=True)
        missing = np.setdiff1d(current, held, assume_unique=True)
        if len(stale):
            ann.remove(stale.astype(np.uint64))
        if len(missing):
            rows = [state.row_of_key[int(k)] for k in missing]
            ann.add(missing.astype(np.uint64), state.vectors[rows], threads=0)
        state.ann = ann
        state.ann_dirty = bool(len(stale) or len(missing))

    def _build_ann(self, namespace: str, state: _Namespace) -> None:
        ann = self._new_ann()
        count = state.count
        if count:
            ann.add(state.keys[:count].astype(np.uint64), state.vectors[:count], threads=0)
        state.ann = ann
        self._save_ann(namespace, state)

    def _save_ann(self, namespace: str, state: _Namespace) -> None:
        path = self._ann_path(namespace)
        temporary = path.with_suffix(f".tmp-{os.getpid()}")
        state.ann.save(str(temporary))
        os.replace(temporary, path)
        state.ann_dirty = False

    # --- the VectorStore protocol

    def upsert(self, items: Sequence[VectorItem], *, namespace: str = "") -> None:
        rows = check_items(items, self.dimension)
        if not rows:
            return
        with self._lock:
            self._ensure_open()
            state = self._namespace(namespace)
            written: list[tuple[int, str, F32, Metadata]] = []
            with self._transaction():
                self._replay()  # inside the write lock: nothing can slip between replay and our change
                for id, vector, metadata in rows:
                    self._db.execute("DELETE FROM vectors WHERE namespace = ? AND id = ?", (namespace, id))
                    cursor = self._db.execute(
                        "INSERT INTO vectors (namespace, id, vector, metadata) VALUES (?, ?, ?, ?)",
                        (namespace, id, vector.tobytes(), json.dumps(metadata, separators=(",", ":"))),
                    )
                    key = int(cursor.lastrowid or 0)
                    self._db.execute("INSERT INTO changes (namespace, id, key) VALUES (?, ?, ?)", (namespace, id, key))
                    written.append((key, id, vector, metadata))
                self._seen_seq = self._max_seq()
                self._trim_changes()
            self._data_version = self._current_data_version()
            state.put_many(written)
            if state.ann is None and state.count > self.ann_threshold:
                self._build_ann(namespace, state)

    def delete(self, ids: Sequence[str], *, namespace: str = "") -> None:
        if isinstance(ids, str):
            raise VectorStoreError("delete() takes a sequence of ids, not one string.")
        with self._lock:
            self._ensure_open()
            state = self._namespace(namespace)
            with self._transaction():
                self._replay()
                for id in dict.fromkeys(ids):
                    cursor = self._db.execute("DELETE FROM vectors WHERE namespace = ? AND id = ?", (namespace, id))
                    if cursor.rowcount:
                        self._db.execute(
                            "INSERT INTO changes (namespace, id, key) VALUES (?, ?, NULL)", (namespace, id)
                        )
                self._seen_seq = self._max_seq()
            self._data_version = self._current_data_version()
            for id in ids:
                state.remove(id)

    def delete_where(self, filter: Filter, *, namespace: str = "") -> int | None:
        """Delete every vector of the namespace whose metadata matches ``filter``; returns how many."""
        if not normalise_filter(filter):
            raise VectorStoreError("delete_where needs a non-empty filter (refusing to delete a whole namespace).")
        with self._lock:
            self._ensure_open()
            self._catch_up()
            state = self._namespace(namespace)
            rows = state.matching_rows(filter)
            doomed = [state.ids[row] for row in (rows if rows is not None else [])]
            self.delete(doomed, namespace=namespace)
            return len(doomed)

    def fetch(self, ids: Sequence[str], *, namespace: str = "") -> dict[str, VectorItem]:
        if isinstance(ids, str):
            raise VectorStoreError("fetch() takes a sequence of ids, not one string.")
        with self._lock:
            self._ensure_open()
            self._catch_up()
            state = self._namespace(namespace)
            found: dict[str, VectorItem] = {}
            for id in ids:
                row = state.row_of.get(id)
                if row is not None:
                    found[id] = VectorItem(id=id, vector=state.vectors[row].copy(), metadata=dict(state.metadata[row]))
            return found

    def query(
        self, vector: npt.NDArray[np.float32], *, k: int, namespace: str = "", filter: Filter | None = None
    ) -> list[Match]:
        query = as_unit_vector(vector, self.dimension, "the query vector")
        if k <= 0:
            raise VectorStoreError(f"k must be positive, got {k}.")
        normalise_filter(filter)  # a bad filter fails even on an empty namespace
        with self._lock:
            self._ensure_open()
            self._catch_up()
            state = self._namespace(namespace)
            count = state.count
            if count == 0:
                return []
            rows = state.matching_rows(filter)
            if rows is not None and len(rows) == 0:
                return []
            if state.ann is not None and (rows is None or len(rows) > self.ann_threshold):
                best = self._search_ann(state, query, k, rows)
                if best is not None:
                    return self._matches(state, best, query)
            candidates = np.arange(count) if rows is None else rows
            scores = state.vectors[candidates] @ query if rows is not None else state.vectors[:count] @ query
            order = top_k(scores, k)
            return self._matches(state, candidates[order], query)

    def _search_ann(
        self, state: _Namespace, query: F32, k: int, rows: npt.NDArray[np.intp] | None
    ) -> npt.NDArray[np.intp] | None:
        """HNSW candidates re-scored exactly; None when a filter leaves too few of them (caller goes exact)."""
        allowed: npt.NDArray[np.bool_] | None = None
        if rows is not None:
            allowed = np.zeros(state.count, dtype=bool)
            allowed[rows] = True
        wanted = max(4 * k, 40)
        if rows is not None:
            # Only a share of the candidates pass the filter: ask for proportionally more.
            wanted = int(wanted * state.count / len(rows))
        if wanted > state.count // 4:
            return None
        found = state.ann.search(query, wanted)
        rows_of = state.row_of_key
        candidates = np.fromiter((rows_of[k] for k in map(int, found.keys) if k in rows_of), dtype=np.intp)
        if allowed is not None:
            candidates = candidates[allowed[candidates]]
            if len(candidates) < k:
                return None
        scores = state.vectors[candidates] @ query
        return candidates[top_k(scores, k)]

    def _matches(self, state: _Namespace, rows: npt.NDArray[np.intp], query: F32) -> list[Match]:
        return [
            Match(id=state.ids[row], score=float(state.vectors[row] @ query), metadata=dict(state.metadata[row]))
            for row in rows
        ]

    def stats(self) -> StoreStats:
        with self._lock:
            self._ensure_open()
            counts = dict(
                self._db.execute("SELECT namespace, COUNT(*) FROM vectors GROUP BY namespace ORDER BY namespace")
            )
            return StoreStats(dimension=self.dimension, count=sum(counts.values()), namespaces=counts)

    def _trim_changes(self) -> None:
        if self._seen_seq > CHANGES_KEPT:
            self._db.execute("DELETE FROM changes WHERE seq <= ?", (self._seen_seq - CHANGES_KEPT,))


_OPEN_STORES: weakref.WeakSet[EmbeddedVectorStore] = weakref.WeakSet()


@atexit.register
def _close_open_stores() -> None:
    # Saves dirty ANN graphs, so the next start reconciles a few keys instead of rebuilding.
    for store in list(_OPEN_STORES):
        with contextlib.suppress(Exception):
            store.close()


@register_vector_store("embedded")
def embedded_vector_store(dimension: int) -> EmbeddedVectorStore:
    return EmbeddedVectorStore(
        dimension, path=Path(settings.LODESTONE_VECTOR_DIR), ann_threshold=settings.LODESTONE_VECTOR_ANN_THRESHOLD
    )
