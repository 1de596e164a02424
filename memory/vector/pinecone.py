"""Pinecone through the official SDK (v10), data plane only.

Settings: ``PINECONE_API_KEY`` and ``PINECONE_INDEX_HOST`` (or ``PINECONE_INDEX``, a name resolved to
its host once through the control plane: Pinecone's API, or ``PINECONE_CONTROLLER_HOST`` for Pinecone
Local or a proxy). The index must exist, with the embedder's dimension and the cosine metric: at
start-up the store reads the index's stats and refuses a different dimension.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from django.conf import settings
from pinecone import Pinecone
from pinecone.errors import PineconeError

from memory.vector import Filter, Match, StoreStats, VectorItem, VectorStoreError, register_vector_store
from memory.vector.embedded import as_unit_vector, check_items
from memory.vector.filters import normalise_filter

UPSERT_BATCH = 100  # Pinecone caps a request at 2 MB / 1000 vectors; 100 x 384 floats stays well below
ID_BATCH = 1000
MAX_TOP_K = 10_000
# Newer Pinecone API versions name the default namespace "__default__"; ours is "".
DEFAULT_NAMESPACE_ALIASES = {"__default__"}
T = TypeVar("T")


def _batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class PineconeVectorStore:
    name = "pinecone"

    def __init__(
        self,
        dimension: int,
        *,
        api_key: str | None,
        host: str | None = None,
        index_name: str | None = None,
        controller_host: str | None = None,
    ) -> None:
        if not api_key:
            raise VectorStoreError("VECTOR_STORE=pinecone needs PINECONE_API_KEY.")
        if not host and not index_name:
            raise VectorStoreError("VECTOR_STORE=pinecone needs PINECONE_INDEX_HOST or PINECONE_INDEX.")
        self.dimension = dimension
        client = Pinecone(api_key=api_key, host=controller_host or None)
        if not host:
            host = self._resolve_host(client, str(index_name))
        self.host = host
        self._index = client.Index(host=host)
        stats = self._describe()
        if int(stats.dimension) != dimension:
            raise VectorStoreError(
                f"Dimension mismatch: the Pinecone index at {host} holds {stats.dimension}-dimensional vectors, "
                f"but the embedder gives {dimension}. Create an index of dimension {dimension} (metric cosine)."
            )

    def _resolve_host(self, client: Pinecone, index_name: str) -> str:
        with self._translated(f"find the index {index_name!r} (does it exist, and is the key right?)"):
            description = client.describe_index(name=index_name)
        if not description.host or not description.status.ready:
            raise VectorStoreError(
                f"The Pinecone index {index_name!r} is not ready yet (state: {description.status.state}); "
                "try again when it is, or set PINECONE_INDEX_HOST."
            )
        return str(description.host)

    @contextlib.contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        try:
            yield
        except PineconeError as exc:
            raise VectorStoreError(f"Pinecone could not {action}: {exc}") from exc

    def _describe(self) -> Any:
        with self._translated("describe the index (is it reachable, and the key right?)"):
            return self._index.describe_index_stats()

    def upsert(self, items: Sequence[VectorItem], *, namespace: str = "") -> None:
        rows = check_items(items, self.dimension)
        with self._translated("upsert vectors"):
            for batch in _batches(rows, UPSERT_BATCH):
                vectors = [
                    {"id": id, "values": vector.tolist(), "metadata": metadata} for id, vector, metadata in batch
                ]
                self._index.upsert(vectors=vectors, namespace=namespace)

    def query(
        self, vector: npt.NDArray[np.float32], *, k: int, namespace: str = "", filter: Filter | None = None
    ) -> list[Match]:
        query = as_unit_vector(vector, self.dimension, "the query vector")
        if not 0 < k <= MAX_TOP_K:
            raise VectorStoreError(f"k must be between 1 and {MAX_TOP_K} for Pinecone, got {k}.")
        normalise_filter(filter)  # the same validation and errors as every backend
        with self._translated("query"):
            response = self._index.query(
                vector=query.tolist(), top_k=k, namespace=namespace, filter=filter or None, include_metadata=True
            )
        return [Match(id=m.id, score=float(m.score), metadata=dict(m.metadata or {})) for m in response.matches]

    def fetch(self, ids: Sequence[str], *, namespace: str = "") -> dict[str, VectorItem]:
        if isinstance(ids, str):
            raise VectorStoreError("fetch() takes a sequence of ids, not one string.")
        found: dict[str, VectorItem] = {}
        with self._translated("fetch vectors"):
            for batch in _batches(list(dict.fromkeys(ids)), ID_BATCH):
                response = self._index.fetch(ids=list(batch), namespace=namespace)
                for id, vector in response.vectors.items():
                    found[id] = VectorItem(
                        id=id, vector=np.asarray(vector.values, dtype=np.float32), metadata=dict(vector.metadata or {})
                    )
        return found

    def delete(self, ids: Sequence[str], *, namespace: str = "") -> None:
        if isinstance(ids, str):
            raise VectorStoreError("delete() takes a sequence of ids, not one string.")
        with self._translated("delete vectors"):
            for batch in _batches(list(dict.fromkeys(ids)), ID_BATCH):
                self._index.delete(ids=list(batch), namespace=namespace)

    def delete_where(self, filter: Filter, *, namespace: str = "") -> int | None:
        if not normalise_filter(filter):
            raise VectorStoreError("delete_where needs a non-empty filter (refusing to delete a whole namespace).")
        with self._translated("delete by filter"):
            self._index.delete(filter=filter, namespace=namespace)
        return None  # Pinecone does not say how many

    def stats(self) -> StoreStats:
        stats = self._describe()
        namespaces = {
            ("" if name in DEFAULT_NAMESPACE_ALIASES else name): int(summary.vector_count)
            for name, summary in (stats.namespaces or {}).items()
            if int(summary.vector_count) > 0
        }
        return StoreStats(dimension=int(stats.dimension), count=sum(namespaces.values()), namespaces=namespaces)


@register_vector_store("pinecone")
def pinecone_vector_store(dimension: int) -> PineconeVectorStore:
    return PineconeVectorStore(
        dimension,
        api_key=settings.PINECONE_API_KEY,
        host=settings.PINECONE_INDEX_HOST,
        index_name=settings.PINECONE_INDEX,
        controller_host=settings.PINECONE_CONTROLLER_HOST,
    )
